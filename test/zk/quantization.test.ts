import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { initBackend } from "../../src/ml/backend.ts";
import { decodeModel, encodeModel } from "../../src/ml/encoding.ts";
import { loadMnist } from "../../src/ml/mnist.ts";
import { createModel, getWeights } from "../../src/ml/models.ts";
import type { Dataset } from "../../src/ml/partition.ts";
import { predictProbabilities, trainModel } from "../../src/ml/train.ts";
import { fixedPointLabels, quantizationReport } from "../../src/zk/quantization.ts";
import { argmaxRows } from "../ml/onnx-runtime.ts";

describe("quantization report: the fixed-point model a circuit proves, against the float model", () => {
  const architecture = "mlp-784-32-10";
  let test: Dataset;
  let floatLabels: number[];
  let tensors: ReturnType<typeof getWeights>;

  before(async () => {
    await initBackend();
    const data = loadMnist({ train: 2000, test: 300 });
    test = data.test;
    const model = createModel(architecture, 11);
    await trainModel(model, data.train, { epochs: 2, batchSize: 32, learningRate: 0.1, seed: 11 });
    floatLabels = argmaxRows(predictProbabilities(model, test.x), 10);
    tensors = getWeights(model);
    model.dispose();
  });

  it("at the canonical scale (2^16) the MNIST MLP loses at most half a point and agrees on nearly every digit", () => {
    const canonical = decodeModel(encodeModel({ architecture, scaleBits: 16, tensors }));
    const report = quantizationReport(canonical, floatLabels, test);
    assert.equal(report.examples, 300);
    assert.ok(report.floatAccuracy > 0.75, `float accuracy ${report.floatAccuracy}`);
    assert.ok(Math.abs(report.lossPoints) <= 0.5, `loss ${report.lossPoints} points`);
    assert.ok(report.agreement >= 0.99, `agreement ${report.agreement}`);
  });

  it("a coarse scale (2^2) shows its loss: the report measures the encoding it is given", () => {
    const coarse = decodeModel(encodeModel({ architecture, scaleBits: 2, tensors }));
    const report = quantizationReport(coarse, floatLabels, test);
    assert.ok(report.agreement < 0.9, `agreement at 2^2: ${report.agreement}`);
    assert.ok(report.lossPoints > 5, `loss at 2^2: ${report.lossPoints} points`);
  });

  it("counts against the labels it is given, example by example", () => {
    const canonical = decodeModel(encodeModel({ architecture, scaleBits: 16, tensors }));
    const fixed = fixedPointLabels(canonical, test);
    // Float labels equal to the fixed-point ones: no loss, full agreement, by construction.
    const same = quantizationReport(canonical, Array.from(fixed), test);
    assert.equal(same.agreement, 1);
    assert.equal(same.lossPoints, 0);
    assert.throws(() => quantizationReport(canonical, [1, 2], test), RangeError);
  });
});
