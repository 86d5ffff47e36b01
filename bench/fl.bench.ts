// Federated learning on real MNIST digits (the in-memory engine, src/learning/simulate.ts): accuracy
// against centralized training, and robustness of the scoring protocol against four attacks.
//
// Setting: 10 clients, non-IID Dirichlet alpha 0.5 over the 7,800 digits left after 1,000 test digits
// and 3 validators x 400 held-out digits (the `mnist` package holds 10,000), softmax regression
// (logreg-784-10), 1 local epoch of SGD per round (lr 0.1, batch 32), seed 1.
//  - fl.accuracy_ratio: FedAvg after 30 rounds / centralized training on the union of the clients'
//    data for 30 epochs (the same 234,000 sample passes, the same lr, batch and initialization).
//  - robustness: 3 of the 10 clients attack for 20 rounds (label flip; sign flip x5; Gaussian noise
//    sigma 1; ALIE with z from n = 10, f = 3), once with the protocol (3 validators score every
//    update, median consensus, rejected updates slashed, FedAvg of the accepted ones) and once with
//    plain FedAvg of everything. drop_pts = 100 x (accuracy of plain FedAvg without attackers after
//    the same 20 rounds - accuracy of the attacked run); detection_rate = attacker-rounds slashed /
//    attacker-rounds; false_slashes = honest trainers slashed, summed over the four protocol runs.
// No sizes were reduced to fit the time budget: these take about 65 s on this 2-core machine.
//
// The evaluation grid (src/learning/evaluate.ts), fair pay, and the protocol on-chain with the MLP (benchGrid):
//  - fl.grid.*: the reduced grid (GRIDS.reduced: alpha 0.1 and 1.0, 10 clients, 3 attackers, label-flip,
//    sign-flip x1, noise at the honest norm, ALIE, Fang on trimmed mean, min-max, min-sum, backdoor; seed
//    1; 15 rounds; each cell: the protocol, then FedAvg, median, trimmed mean, Krum and multi-Krum alone),
//    on 2 worker processes, into a fresh results file. false_slashes: honest trainer-rounds slashed over
//    the protocol runs and the no-show references; worst_drop_pts: the protocol's worst drop against the
//    no-show reference (same seed, partition and attackers, who never show up); backdoor_asr_pts: the
//    protocol's backdoor success rate minus the reference's, in points. Sized for about 5 minutes: the
//    50 runs of its first four attacks took 191 s on 2 workers with this 2-core machine shared (load 5
//    to 8), about 3.5 s a run alone.
//  - fl.fair_pay.spearman.*: 10 trainers, no attackers, 15 rounds, seed 1: Spearman's rank correlation of
//    each trainer's earnings with its exact contribution (final accuracy minus that of the same run
//    without it), at alpha 0.1 and 1.0; in the same pool as the grid. fl.fair_pay.spearman_loss.*: the
//    same runs, with the contribution measured by the final test loss (without it, less with everyone),
//    which the accuracy on 1,000 test digits rounds to steps of 0.1 point.
//  - fl.accuracy_ratio.onchain: runProtocol on the embedded chain with mlp-784-128-10, 10 clients, no
//    attackers, FL_BENCH_SETTING (alpha 0.5) for FL_RATIO_ROUNDS rounds, over seeds 1, 2, 3: final
//    accuracy / centralized training of the same seed with the same sample passes; mean, min and max.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FAIR_PAY_ALPHAS,
  fairPayReport,
  fairPayRuns,
  GRIDS,
  gridReport,
  gridRuns,
  runPool,
  totalsLines,
} from "../src/learning/evaluate.ts";
import { runProtocol } from "../src/learning/protocol.ts";
import {
  centralizedBaseline,
  type SimulationOptions,
  type SimulationSummary,
  simulateFederated,
} from "../src/learning/simulate.ts";
import type { Figures } from "./results-file.ts";

export const FL_BENCH_SETTING = {
  clients: 10,
  alpha: 0.5,
  seed: 1,
  localEpochs: 1,
  lr: 0.1,
  batch: 32,
  validators: 3,
  architecture: "logreg-784-10",
} as const;
export const FL_RATIO_ROUNDS = 30;
export const FL_ATTACK_ROUNDS = 20;
export const FL_BYZANTINE = 3;
export const FL_ATTACKS = ["label-flip", "sign-flip", "noise", "alie"] as const;

const round4 = (v: number) => Math.round(v * 1e4) / 1e4;
const log = (line: string) => process.stderr.write(`  [fl] ${line}\n`);

async function run(
  label: string,
  options: Partial<SimulationOptions> & { rounds: number },
): Promise<SimulationSummary> {
  const summary = await simulateFederated({
    ...FL_BENCH_SETTING,
    byzantine: 0,
    attack: "none",
    strategy: "fedavg",
    withProtocol: false,
    ...options,
  });
  const detection = Number.isNaN(summary.detectionRate)
    ? ""
    : `, detection ${summary.detectionRate.toFixed(3)}, false slashes ${summary.falseSlashes}`;
  log(`${label}: accuracy ${summary.finalAccuracy.toFixed(4)}${detection} (${summary.seconds.toFixed(1)} s)`);
  return summary;
}

export async function benchFederated(): Promise<Figures> {
  const started = performance.now();
  const figures: Figures = {};

  // Accuracy: FedAvg against centralized training with the same sample passes.
  const fedavg = await run(`fedavg, ${FL_RATIO_ROUNDS} rounds`, { rounds: FL_RATIO_ROUNDS });
  const central = await centralizedBaseline({ ...FL_BENCH_SETTING, rounds: FL_RATIO_ROUNDS });
  log(
    `centralized, ${central.epochs} epochs over ${central.samples} digits: accuracy ${central.accuracy.toFixed(4)} (${central.seconds.toFixed(1)} s)`,
  );
  if (central.samplePasses !== fedavg.samplePasses) {
    throw new Error(
      `sample passes differ: FedAvg ${fedavg.samplePasses}, centralized ${central.samplePasses}`,
    );
  }
  figures["fl.accuracy_ratio"] = round4(fedavg.finalAccuracy / central.accuracy);
  figures["fl.final_accuracy.fedavg"] = round4(fedavg.finalAccuracy);
  figures["fl.final_accuracy.centralized"] = round4(central.accuracy);

  // Robustness. The clean reference is the same FedAvg run after FL_ATTACK_ROUNDS rounds (its first
  // rounds are exactly a shorter run with the same seed).
  const clean = (fedavg.rounds[FL_ATTACK_ROUNDS - 1] as { accuracy: number }).accuracy;
  figures[`fl.final_accuracy.no_attack.r${FL_ATTACK_ROUNDS}`] = round4(clean);
  const protocolClean = await run("protocol, no attack", { rounds: FL_ATTACK_ROUNDS, withProtocol: true });
  figures["fl.false_slashes.no_attack"] = protocolClean.falseSlashes;
  figures["fl.drop_pts.protocol.none"] = round4(100 * (clean - protocolClean.finalAccuracy));
  let falseSlashes = 0;
  for (const attack of FL_ATTACKS) {
    const attacked = { rounds: FL_ATTACK_ROUNDS, byzantine: FL_BYZANTINE, attack };
    const protocol = await run(`protocol, ${attack}`, { ...attacked, withProtocol: true });
    const plain = await run(`fedavg, ${attack}`, { ...attacked, withProtocol: false });
    falseSlashes += protocol.falseSlashes;
    figures[`fl.drop_pts.protocol.${attack}`] = round4(100 * (clean - protocol.finalAccuracy));
    figures[`fl.drop_pts.fedavg.${attack}`] = round4(100 * (clean - plain.finalAccuracy));
    figures[`fl.detection_rate.${attack}`] = round4(protocol.detectionRate);
    figures[`fl.final_accuracy.protocol.${attack}`] = round4(protocol.finalAccuracy);
    figures[`fl.final_accuracy.fedavg.${attack}`] = round4(plain.finalAccuracy);
  }
  figures["fl.false_slashes"] = falseSlashes;
  figures["fl.bench_s"] = Math.round((performance.now() - started) / 100) / 10;
  return figures;
}

export const GRID_WORKERS = 2;
export const ONCHAIN_ARCHITECTURE = "mlp-784-128-10";
export const ONCHAIN_SEEDS = [1, 2, 3] as const;

const gridLog = (line: string) => process.stderr.write(`  [fl-grid] ${line}\n`);
const alphaKey = (alpha: number) => `alpha${String(alpha).replace(".", "_")}`;
const figureKey = (alpha: number) => `fl.fair_pay.spearman.${alphaKey(alpha)}`;
const lossFigureKey = (alpha: number) => `fl.fair_pay.spearman_loss.${alphaKey(alpha)}`;

export async function benchGrid(): Promise<Figures> {
  const started = performance.now();
  const figures: Figures = {};
  const grid = gridRuns(GRIDS.reduced);
  const fairPay = FAIR_PAY_ALPHAS.map((alpha) => fairPayRuns(alpha, 1));
  const dir = mkdtempSync(join(tmpdir(), "ledgermind-bench-grid-"));
  try {
    const runs = [...grid.runs, ...fairPay.flat()];
    const { results, failed } = await runPool(runs, {
      workers: GRID_WORKERS,
      out: join(dir, "results.jsonl"),
      onProgress: (p) => {
        if (p.done % 10 === 0 || p.error)
          gridLog(`${p.done}/${p.total} runs${p.error ? `; ${p.run.id} failed: ${p.error}` : ""}`);
      },
    });
    if (failed.length > 0) {
      throw new Error(`${failed.length} grid runs failed, for example ${failed[0]?.id}: ${failed[0]?.error}`);
    }
    const byId = new Map(results.map((r) => [r.id, r]));
    const report = gridReport("reduced", grid, byId);
    for (const line of totalsLines(report.totals)) gridLog(line);
    figures["fl.grid.false_slashes"] = report.totals.falseSlashes;
    if (report.totals.worstProtocolDropPts !== null) {
      figures["fl.grid.worst_drop_pts"] = round4(report.totals.worstProtocolDropPts);
    }
    if (report.totals.worstBackdoorAsrPts === null)
      gridLog("no backdoor success rate: the engine does not measure it");
    else figures["fl.grid.backdoor_asr_pts"] = round4(report.totals.worstBackdoorAsrPts);
    for (const [i, alpha] of FAIR_PAY_ALPHAS.entries()) {
      const fair = fairPayReport(fairPay[i] ?? [], byId);
      if (fair?.spearman == null) gridLog(`fair pay at alpha ${alpha}: no earnings in the engine's summary`);
      else {
        figures[figureKey(alpha)] = round4(fair.spearman);
        gridLog(`fair pay at alpha ${alpha}: Spearman ${fair.spearman.toFixed(3)}`);
        if (fair.spearmanLoss !== null) figures[lossFigureKey(alpha)] = round4(fair.spearmanLoss);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  figures["fl.grid.bench_s"] = Math.round((performance.now() - started) / 100) / 10;
  Object.assign(figures, await benchOnchainRatio());
  return figures;
}

/** fl.accuracy_ratio.onchain: the protocol on the embedded chain against centralized training. */
export async function benchOnchainRatio(
  seeds: readonly number[] = ONCHAIN_SEEDS,
  rounds = FL_RATIO_ROUNDS,
): Promise<Figures> {
  const started = performance.now();
  const ratios: number[] = [];
  for (const seed of seeds) {
    const setting = {
      ...FL_BENCH_SETTING,
      architecture: ONCHAIN_ARCHITECTURE,
      seed,
      rounds,
    };
    const protocol = await runProtocol({ ...setting, byzantine: 0, attack: "none", strategy: "fedavg" });
    const central = await centralizedBaseline(setting);
    ratios.push(protocol.finalAccuracy / central.accuracy);
    gridLog(
      `on-chain ${ONCHAIN_ARCHITECTURE}, seed ${seed}: protocol ${protocol.finalAccuracy.toFixed(4)}, centralized ${central.accuracy.toFixed(4)} (${protocol.seconds.toFixed(0)} s + ${central.seconds.toFixed(0)} s)`,
    );
  }
  return {
    "fl.accuracy_ratio.onchain": round4(ratios.reduce((a, b) => a + b, 0) / ratios.length),
    "fl.accuracy_ratio.onchain.min": round4(Math.min(...ratios)),
    "fl.accuracy_ratio.onchain.max": round4(Math.max(...ratios)),
    "fl.accuracy_ratio.onchain_s": Math.round((performance.now() - started) / 100) / 10,
  };
}
