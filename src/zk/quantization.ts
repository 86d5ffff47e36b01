/**
 * What proving costs in accuracy (pure, no I/O): a circuit proves the canonical fixed-point model exactly,
 * so the only loss is the quantization of the float model into that encoding. This compares the two on
 * the model's test data.
 */
import type { CanonicalModel } from "../ml/encoding.ts";
import type { Dataset } from "../ml/partition.ts";
import { answerOf, toFixedInput } from "../oracle/client.ts";
import { inferFixed } from "../oracle/fixed-point.ts";

export interface QuantizationReport {
  examples: number;
  /** Accuracy of the float model (the caller's predictions). */
  floatAccuracy: number;
  /** Accuracy of the fixed-point model, which the circuit computes bit for bit. */
  fixedAccuracy: number;
  /** floatAccuracy − fixedAccuracy, in percentage points (negative: the fixed-point model did better). */
  lossPoints: number;
  /** Share of examples on which both models give the same label. */
  agreement: number;
}

/** The fixed-point model's labels on a dataset, as the oracle and the circuit compute them. */
export function fixedPointLabels(model: CanonicalModel, dataset: Dataset): Uint8Array {
  const features = dataset.x.length / dataset.n;
  const labels = new Uint8Array(dataset.n);
  for (let i = 0; i < dataset.n; i++) {
    const row = toFixedInput(Array.from(dataset.x.subarray(i * features, (i + 1) * features)));
    labels[i] = Number(answerOf(inferFixed(model, row)));
  }
  return labels;
}

/** Compares the float model's labels (`floatLabels`) with the fixed-point model's on `dataset`. */
export function quantizationReport(
  model: CanonicalModel,
  floatLabels: ArrayLike<number>,
  dataset: Dataset,
): QuantizationReport {
  if (floatLabels.length !== dataset.n)
    throw new RangeError(`${floatLabels.length} float labels for ${dataset.n} examples`);
  const fixed = fixedPointLabels(model, dataset);
  let floatRight = 0;
  let fixedRight = 0;
  let same = 0;
  for (let i = 0; i < dataset.n; i++) {
    const truth = dataset.y[i];
    if (floatLabels[i] === truth) floatRight++;
    if (fixed[i] === truth) fixedRight++;
    if (fixed[i] === floatLabels[i]) same++;
  }
  const floatAccuracy = floatRight / dataset.n;
  const fixedAccuracy = fixedRight / dataset.n;
  return {
    examples: dataset.n,
    floatAccuracy,
    fixedAccuracy,
    lossPoints: (floatAccuracy - fixedAccuracy) * 100,
    agreement: same / dataset.n,
  };
}
