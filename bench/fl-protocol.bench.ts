// The federated-learning protocol on the embedded chain (src/learning/protocol.ts) against the in-memory
// engine (src/learning/simulate.ts), and its scale.
//  - fl.overhead_ratio: one round of the full protocol (commits, published blobs, validators' score
//    commit and reveal, finalize, the aggregate proposed, attested and appended to the registry) over the
//    same round of the engine, with the same training, scoring and test evaluation: 10 clients, 3
//    validators, mlp-784-128-10 (the MLP that STACK.md measured; mlp-784-64-10 under `.mlp64`), seed 1,
//    both in this process, in lockstep: engine round 1, protocol round 1, engine round 2, and so on, for
//    twelve rounds. fl.overhead_ratio is the median over k = 2 to 11 of protocol round k / the mean of
//    engine rounds k and k + 1, the rounds run just before and after it: round 1 pays for tfjs's warm-up,
//    and rounds run back to back share the machine's speed of the moment (this shared 2-core machine's
//    speed drifts by a third over minutes, which made the ratios of separate runs swing between 1.0 and
//    1.4). fl.overhead.ratio_min/max are the extreme rounds. The same harness with the engine against
//    itself gave medians of 0.96 and 1.02, rounds from 0.77 to 1.19: that is its precision.
//  - fl.round_s.nK and gas.fl.protocol_round.nK: one round with K = 10, 100 and 1000 trainers of a small
//    model (logreg-784-10, the 7,800 training digits shared among them), 3 validators; wall seconds of
//    the round and the gas of all its transactions. Growth per trainer is printed. All are honest:
//    fl.false_slashes.nK counts the trainers slashed anyway (target 0) and fl.round.excluded.nK those left
//    out unpaid.
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
  rounds: 12,
  localEpochs: 1,
  lr: 0.1,
  batch: 32,
  architecture: "mlp-784-128-10" as string,
  byzantine: 0,
  attack: "none",
  strategy: "fedavg",
} as const;

const SCALE_SIZES = [10, 100, 1000] as const;
const FREE_RIDING_ATTACKS = ["free-ride", "copy", "copy-noise"] as const;

export async function benchLearningProtocol(): Promise<Figures> {
  const figures: Figures = {};

  // The target's model first; the smaller MLP shows how the fixed cost of the chain weighs on less work.
  for (const [architecture, suffix] of [
    ["mlp-784-128-10", ""],
    ["mlp-784-64-10", ".mlp64"],
  ] as const) {
    const { engine, protocol } = await inLockstep({ ...OVERHEAD_SETTING, architecture });
    // Protocol round k against the engine rounds run just before and just after it (k = 2 to 11): the
    // machine's drift cancels, and neither kind always runs first.
    const pairs = protocol.rounds.slice(1, -1).map((p, i) => {
      const before = (engine.rounds[i + 1] as { seconds: number }).seconds;
      const after = (engine.rounds[i + 2] as { seconds: number }).seconds;
      const around = (before + after) / 2;
      return { ratio: p.seconds / around, engine: around, protocol: p.seconds, chain: p.overheadSeconds };
    });
    const ratios = pairs.map((x) => x.ratio);
    figures[`fl.overhead_ratio${suffix}`] = round3(medianOf(ratios));
    figures[`fl.overhead.ratio_min${suffix}`] = round3(Math.min(...ratios));
    figures[`fl.overhead.ratio_max${suffix}`] = round3(Math.max(...ratios));
    figures[`fl.overhead.engine_round_s${suffix}`] = round3(medianOf(pairs.map((x) => x.engine)));
    figures[`fl.overhead.protocol_round_s${suffix}`] = round3(medianOf(pairs.map((x) => x.protocol)));
    figures[`fl.overhead.chain_and_store_s${suffix}`] = round3(medianOf(pairs.map((x) => x.chain)));
    // The same decisions and the same integer aggregation give the same model, so the same accuracy.
    log(
      `a round of 10 clients, ${architecture}, rounds 2-${OVERHEAD_SETTING.rounds - 1} in lockstep: engine ${figures[`fl.overhead.engine_round_s${suffix}`]} s, protocol ${figures[`fl.overhead.protocol_round_s${suffix}`]} s (of which chain, store and hashing ${figures[`fl.overhead.chain_and_store_s${suffix}`]} s), medians; ratio ${figures[`fl.overhead_ratio${suffix}`]} (per round ${ratios.map((r) => r.toFixed(2)).join(", ")}); final accuracy engine ${engine.finalAccuracy.toFixed(4)}, protocol ${protocol.finalAccuracy.toFixed(4)}`,
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
    // No trainer attacks here: every slash is a false one, and what is not accepted was excluded (unpaid).
    figures[`fl.false_slashes.n${n}`] = round.falseSlashes;
    figures[`fl.round.excluded.n${n}`] = round.rejected;
    const growth = previous
      ? `; from ${previous.n}: +${((round.seconds - previous.seconds) / (n - previous.n)).toFixed(4)} s and +${Math.round((gas - previous.gas) / (n - previous.n))} gas per trainer`
      : "";
    log(
      `${n} trainers: round ${round.seconds.toFixed(1)} s (setup ${summary.setupSeconds.toFixed(1)} s), ${gas} gas, ${round.accepted}/${round.submitted} accepted, ${round.falseSlashes} slashed${growth}`,
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

/**
 * The engine and the protocol on the same setting, one round at a time in turn (engine round 1, protocol
 * round 1, engine round 2, ...), never both at once: each waits in its round hook for the other's round.
 */
async function inLockstep(setting: typeof OVERHEAD_SETTING & { architecture: string }) {
  const finished = { engine: new Map<number, () => void>(), protocol: new Map<number, () => void>() };
  const waits = { engine: new Map<number, Promise<void>>(), protocol: new Map<number, Promise<void>>() };
  const roundDone = (who: "engine" | "protocol", round: number): Promise<void> => {
    let wait = waits[who].get(round);
    if (!wait) {
      wait = new Promise<void>((resolve) => finished[who].set(round, resolve));
      waits[who].set(round, wait);
    }
    return wait;
  };
  const finish = (who: "engine" | "protocol", round: number) => {
    void roundDone(who, round);
    finished[who].get(round)?.();
  };
  let engineRun: ReturnType<typeof simulateFederated> | undefined;
  let failed: (err: unknown) => void = () => {};
  const failure = new Promise<never>((_, reject) => {
    failed = reject;
  });
  const protocolRun = runProtocol({
    ...setting,
    onStart: () => {
      engineRun = simulateFederated({
        ...setting,
        withProtocol: true,
        onRound: (r) => {
          finish("engine", r.round);
          return roundDone("protocol", r.round);
        },
      });
      engineRun.catch(failed);
      return Promise.race([roundDone("engine", 1), failure]);
    },
    onRound: (r) => {
      finish("protocol", r.round);
      return r.round < setting.rounds ? Promise.race([roundDone("engine", r.round + 1), failure]) : undefined;
    },
  });
  const protocol = await protocolRun;
  const engine = await (engineRun as ReturnType<typeof simulateFederated>);
  return { engine, protocol };
}
