// The federated-learning protocol on the embedded chain (src/learning/protocol.ts) against the in-memory
// engine (src/learning/simulate.ts), and its scale.
//  - fl.overhead_ratio: one round of the full protocol (commits, published blobs, validators' score
//    commit and reveal, finalize, the aggregate proposed, attested and appended to the registry) over the
//    same round of the engine, with the same training, scoring and test evaluation: 10 clients, 3
//    validators, mlp-784-128-10 (the MLP that STACK.md measured; mlp-784-64-10 under `.mlp64`), seed 1,
//    both in this process. Each runs four rounds and rounds 2 to 4 are compared, so neither pays for
//    tfjs's warm-up or the chain's deployment, and one slow round on a shared machine weighs less.
//  - fl.round_s.nK and gas.fl.protocol_round.nK: one round with K = 10, 100 and 1000 trainers of a small
//    model (logreg-784-10, the 7,800 training digits shared among them), 3 validators; wall seconds of
//    the round and the gas of all its transactions. Growth per trainer is printed.
import { runProtocol } from "../src/learning/protocol.ts";
import { simulateFederated } from "../src/learning/simulate.ts";
import type { Figures } from "./results-file.ts";

const log = (line: string) => process.stderr.write(`  [fl protocol] ${line}\n`);
const round3 = (v: number) => Math.round(v * 1000) / 1000;

const OVERHEAD_SETTING = {
  clients: 10,
  validators: 3,
  alpha: 0.5,
  seed: 1,
  rounds: 4,
  localEpochs: 1,
  lr: 0.1,
  batch: 32,
  architecture: "mlp-784-128-10" as string,
  byzantine: 0,
  attack: "none",
  strategy: "fedavg",
} as const;

const SCALE_SIZES = [10, 100, 1000] as const;

export async function benchLearningProtocol(): Promise<Figures> {
  const figures: Figures = {};

  const measured = (rounds: readonly { seconds: number }[]) =>
    rounds.slice(1).reduce((a, r) => a + r.seconds, 0) / (rounds.length - 1);
  // The target's model first; the smaller MLP shows how the fixed cost of the chain weighs on less work.
  for (const [architecture, suffix] of [
    ["mlp-784-128-10", ""],
    ["mlp-784-64-10", ".mlp64"],
  ] as const) {
    const setting = { ...OVERHEAD_SETTING, architecture };
    const engine = await simulateFederated({ ...setting, withProtocol: true });
    const protocol = await runProtocol(setting);
    const engineRound = measured(engine.rounds);
    const protocolRound = measured(protocol.rounds);
    const chainRound = measured(protocol.rounds.map((r) => ({ seconds: r.overheadSeconds })));
    figures[`fl.overhead_ratio${suffix}`] = round3(protocolRound / engineRound);
    figures[`fl.overhead.engine_round_s${suffix}`] = round3(engineRound);
    figures[`fl.overhead.protocol_round_s${suffix}`] = round3(protocolRound);
    figures[`fl.overhead.chain_and_store_s${suffix}`] = round3(chainRound);
    // The same decisions and the same integer aggregation give the same model, so the same accuracy.
    log(
      `a round of 10 clients, ${architecture} (mean of rounds 2-4): engine ${engineRound.toFixed(2)} s, protocol ${protocolRound.toFixed(2)} s (of which chain, store and hashing ${chainRound.toFixed(2)} s): ratio ${figures[`fl.overhead_ratio${suffix}`]}; final accuracy engine ${engine.finalAccuracy.toFixed(4)}, protocol ${protocol.finalAccuracy.toFixed(4)}`,
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
  return figures;
}
