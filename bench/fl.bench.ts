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
// No sizes were reduced to fit the time budget: the whole benchmark takes about 65 s on this 2-core machine.
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
