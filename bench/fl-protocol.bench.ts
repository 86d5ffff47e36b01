// The federated-learning protocol on the embedded chain (src/learning/protocol.ts) against the in-memory
// engine (src/learning/simulate.ts), and its scale.
//  - fl.overhead_ratio: one round of the full protocol (commits, published blobs, validators' score
//    commit and reveal, finalize, the aggregate proposed, attested and appended to the registry) over the
//    same round of the engine, with the same training, scoring and test evaluation: 10 clients, 3
//    validators, mlp-784-128-10 (the MLP that STACK.md measured; mlp-784-64-10 under `.mlp64`), seed 1,
//    both in this process. Each runs five rounds, twice, alternating (engine, protocol, engine, protocol),
//    and the ratio is of the median rounds 2 to 5 (eight of each): neither pays for tfjs's warm-up or the
//    chain's deployment, and a slow spell of this shared 2-core machine moves a median little. The
//    spread (fl.overhead.ratio_min/max: the least and greatest ratio of one run's mean round to the
//    neighbouring run's of the other kind) is printed beside it.
//  - fl.round_s.nK and gas.fl.protocol_round.nK: one round with K = 10, 100 and 1000 trainers of a small
//    model (logreg-784-10, the 7,800 training digits shared among them), 3 validators; wall seconds of
//    the round and the gas of all its transactions. Growth per trainer is printed.
//  - fl.earned_mind.<attack> and fl.attacker_rounds_slashed.<attack>: what free riders (the global model
//    sent back), exact copiers and noisy copiers of another trainer's previous update earn on the chain,
//    in MIND summed over 3 attackers of 10 trainers and 5 rounds (logreg-784-10), and how many of their 15
//    attacker-rounds were slashed; fl.earned_mind.honest_min is the least an honest trainer earned in them.
import { formatEther } from "viem";
import { runProtocol } from "../src/learning/protocol.ts";
import { medianOf } from "../src/learning/scoring.ts";
import { simulateFederated } from "../src/learning/simulate.ts";
import type { Figures } from "./results-file.ts";

const log = (line: string) => process.stderr.write(`  [fl protocol] ${line}\n`);
const round3 = (v: number) => Math.round(v * 1000) / 1000;

const OVERHEAD_SETTING = {
  clients: 10,
  validators: 3,
  alpha: 0.5,
  seed: 1,
  rounds: 5,
  localEpochs: 1,
  lr: 0.1,
  batch: 32,
  architecture: "mlp-784-128-10" as string,
  byzantine: 0,
  attack: "none",
  strategy: "fedavg",
} as const;

const OVERHEAD_REPEATS = 2;
const SCALE_SIZES = [10, 100, 1000] as const;
const FREE_RIDING_ATTACKS = ["free-ride", "copy", "copy-noise"] as const;

export async function benchLearningProtocol(): Promise<Figures> {
  const figures: Figures = {};

  const laterRounds = (runs: readonly { rounds: readonly { seconds: number }[] }[]) =>
    runs.flatMap((run) => run.rounds.slice(1).map((r) => r.seconds));
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  // The target's model first; the smaller MLP shows how the fixed cost of the chain weighs on less work.
  for (const [architecture, suffix] of [
    ["mlp-784-128-10", ""],
    ["mlp-784-64-10", ".mlp64"],
  ] as const) {
    const setting = { ...OVERHEAD_SETTING, architecture };
    const engines: Awaited<ReturnType<typeof simulateFederated>>[] = [];
    const protocols: Awaited<ReturnType<typeof runProtocol>>[] = [];
    for (let repeat = 0; repeat < OVERHEAD_REPEATS; repeat++) {
      engines.push(await simulateFederated({ ...setting, withProtocol: true }));
      protocols.push(await runProtocol(setting));
    }
    const engineRound = medianOf(laterRounds(engines));
    const protocolRound = medianOf(laterRounds(protocols));
    const chainRound = medianOf(
      protocols.flatMap((run) => run.rounds.slice(1).map((r) => r.overheadSeconds)),
    );
    const pairRatios = protocols.map((p, i) => {
      const e = engines[i] as (typeof engines)[number];
      return mean(laterRounds([p])) / mean(laterRounds([e]));
    });
    figures[`fl.overhead_ratio${suffix}`] = round3(protocolRound / engineRound);
    figures[`fl.overhead.ratio_min${suffix}`] = round3(Math.min(...pairRatios));
    figures[`fl.overhead.ratio_max${suffix}`] = round3(Math.max(...pairRatios));
    figures[`fl.overhead.engine_round_s${suffix}`] = round3(engineRound);
    figures[`fl.overhead.protocol_round_s${suffix}`] = round3(protocolRound);
    figures[`fl.overhead.chain_and_store_s${suffix}`] = round3(chainRound);
    // The same decisions and the same integer aggregation give the same model, so the same accuracy.
    const accuracies = [...engines, ...protocols].map((r) => r.finalAccuracy.toFixed(4));
    log(
      `a round of 10 clients, ${architecture} (median of rounds 2-5, two runs each): engine ${engineRound.toFixed(2)} s, protocol ${protocolRound.toFixed(2)} s (of which chain, store and hashing ${chainRound.toFixed(2)} s): ratio ${figures[`fl.overhead_ratio${suffix}`]} (per pair of runs ${pairRatios.map((r) => r.toFixed(2)).join(", ")}); final accuracies engine, engine, protocol, protocol: ${accuracies.join(", ")}`,
    );
  }

  let previous: { n: number; seconds: number; gas: number } | undefined;
  for (const n of SCALE_SIZES) {
    const summary = await runProtocol({
      ...OVERHEAD_SETTING,
      clients: n,
      rounds: 1,
      architecture: "logreg-784-10",
    });
    const round = summary.rounds[0];
    if (!round) throw new Error(`no round with ${n} trainers`);
    const gas = Number(round.gas.total);
    figures[`fl.round_s.n${n}`] = round3(round.seconds);
    figures[`gas.fl.protocol_round.n${n}`] = gas;
    figures[`fl.round.accepted.n${n}`] = round.accepted;
    const growth = previous
      ? `; from ${previous.n}: +${((round.seconds - previous.seconds) / (n - previous.n)).toFixed(4)} s and +${Math.round((gas - previous.gas) / (n - previous.n))} gas per trainer`
      : "";
    log(
      `${n} trainers: round ${round.seconds.toFixed(1)} s (setup ${summary.setupSeconds.toFixed(1)} s), ${gas} gas, ${round.accepted}/${round.submitted} accepted${growth}`,
    );
    previous = { n, seconds: round.seconds, gas };
  }
  let honestMin = Number.POSITIVE_INFINITY;
  for (const attack of FREE_RIDING_ATTACKS) {
    const summary = await runProtocol({
      ...OVERHEAD_SETTING,
      architecture: "logreg-784-10",
      rounds: 5,
      byzantine: 3,
      attack,
    });
    const earned = new Map<string, bigint>(summary.trainers.map((a) => [a.toLowerCase(), 0n]));
    for (const round of summary.rounds) {
      for (const [address, reward] of Object.entries(round.rewards)) {
        const key = address.toLowerCase();
        const before = earned.get(key);
        if (before !== undefined) earned.set(key, before + reward);
      }
    }
    const attackers = new Set(summary.attackers.map((a) => a.toLowerCase()));
    let attackersEarned = 0n;
    for (const [address, amount] of earned) {
      if (attackers.has(address)) attackersEarned += amount;
      else honestMin = Math.min(honestMin, Number(formatEther(amount)));
    }
    figures[`fl.earned_mind.${attack}`] = Number(formatEther(attackersEarned));
    figures[`fl.attacker_rounds_slashed.${attack}`] = summary.attackersSlashed;
    log(
      `${attack}: 3 attackers of 10 trainers earned ${formatEther(attackersEarned)} MIND in 5 rounds; ${summary.attackersSlashed}/15 attacker-rounds slashed; false slashes ${summary.falseSlashes}`,
    );
  }
  figures["fl.earned_mind.honest_min"] = round3(honestMin);
  return figures;
}
