// Federated learning across processes (`ledgermind devnet`: a development chain and one `ledgermind node`
// process per participant) against the in-memory engine, on the same data.
//  - fl.overhead_ratio.multiprocess: the median round (rounds 2 to 9, round 1 pays for the processes'
//    warm-up; 8 rounds, since with 4 the same code gave ratios from 2.25 to 3.02 between runs) of 10
//    trainer processes and 3 validator processes (one also aggregating and keeping the task), over the
//    median round of the engine (src/learning/simulate.ts) on the same split, model and training, run in
//    this process just after. Every process shares this machine's 2 cores, so the ratio is an upper bound
//    of what a consortium pays: on one machine per node the trainers train in parallel, and a round costs
//    about one trainer's training plus one validator's scoring plus the chain's and the network's latency.
//  - node.bytes_per_round.n10: blob bytes the nodes served each other (their /metrics), per round: every
//    validator and the aggregator fetch each update, every trainer the new global model.
//  - node.round_s.n10 and fl.engine_round_s.n10: the two medians.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { medianOf } from "../src/learning/scoring.ts";
import { simulateFederated } from "../src/learning/simulate.ts";
import { runDevnet } from "../src/node/devnet.ts";
import type { Figures } from "./results-file.ts";

const log = (line: string) => process.stderr.write(`  [node] ${line}\n`);
const round3 = (v: number) => Math.round(v * 1000) / 1000;

const SETTING = {
  trainers: 10,
  validators: 3,
  rounds: 9,
  alpha: 0.5,
  seed: 1,
  samplesPerClient: 2000,
  architecture: "mlp-784-128-10",
} as const;

export async function benchMultiprocess(): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), "ledgermind-bench-devnet-"));
  try {
    const devnet = await runDevnet({
      nodes: SETTING.trainers + SETTING.validators,
      rounds: SETTING.rounds,
      dir,
      seed: SETTING.seed,
      alpha: SETTING.alpha,
      samplesPerClient: SETTING.samplesPerClient,
      architecture: SETTING.architecture,
      oracle: false,
      log,
    });
    const engine = await simulateFederated({
      clients: SETTING.trainers,
      validators: SETTING.validators,
      rounds: SETTING.rounds,
      alpha: SETTING.alpha,
      seed: SETTING.seed,
      samplesPerClient: SETTING.samplesPerClient,
      architecture: SETTING.architecture,
      localEpochs: 1,
      lr: 0.1,
      batch: 32,
      byzantine: 0,
      attack: "none",
      strategy: "fedavg",
      withProtocol: true,
    });
    const nodeRound = medianOf(devnet.rounds.slice(1).map((r) => r.seconds));
    const engineRound = medianOf(engine.rounds.slice(1).map((r) => r.seconds));
    const figures: Figures = {
      "fl.overhead_ratio.multiprocess": round3(nodeRound / engineRound),
      "node.round_s.n10": round3(nodeRound),
      "fl.engine_round_s.n10": round3(engineRound),
      "node.bytes_per_round.n10": Math.round(devnet.bytesServed / SETTING.rounds),
    };
    log(
      `10 trainer and 3 validator processes, ${SETTING.architecture}: median round ${figures["node.round_s.n10"]} s against the engine's ${figures["fl.engine_round_s.n10"]} s (ratio ${figures["fl.overhead_ratio.multiprocess"]}); accuracy ${devnet.finalAccuracy.toFixed(4)} against ${engine.finalAccuracy.toFixed(4)}; ${figures["node.bytes_per_round.n10"]} bytes served per round`,
    );
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
