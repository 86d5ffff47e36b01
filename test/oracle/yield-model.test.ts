import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { decodeModel } from "../../src/ml/encoding.ts";
import { fromFixed, inferFixed, SIGMOID_MAX_ERROR } from "../../src/oracle/fixed-point.ts";
import { encodeYieldData, FEATURE_COUNT, toOracleInput } from "../../src/oracle/yield-data.ts";
import {
  predictFixed,
  regressionMetrics,
  type TrainedYieldModel,
  trainYieldModel,
  YIELD_DEFAULTS,
} from "../../src/oracle/yield-model.ts";
import { encodeModelCard, parseModelCard } from "../../src/registry/model-card.ts";
import { cidOf, sha256Digest } from "../../src/storage/cid.ts";

let trained: TrainedYieldModel;

describe("yield-risk model", () => {
  before(async () => {
    trained = await trainYieldModel();
    const m = trained.metrics;
    console.log(
      `yield model: ${trained.trainingSeconds.toFixed(2)} s; held-out MAE ${m.test.mae.toFixed(4)} ` +
        `R2 ${m.test.r2.toFixed(4)} (integer: MAE ${m.testFixed.mae.toFixed(4)} R2 ${m.testFixed.r2.toFixed(4)}); ` +
        `baseline MAE ${m.baseline.mae.toFixed(4)}; noise floor MAE ${m.noiseFloor.mae.toFixed(4)}; ` +
        `max |float - integer| ${m.maxFixedDeviation.toExponential(2)}`,
    );
  });

  it("beats the constant-mean baseline by a clear margin on held-out data", () => {
    const m = trained.metrics;
    assert.ok(m.test.mae < 0.3 * m.baseline.mae, `MAE ${m.test.mae} vs baseline ${m.baseline.mae}`);
    assert.ok(m.test.r2 > 0.9, `R2 ${m.test.r2}`);
    assert.ok(m.baseline.r2 < 0.01);
    // Close to what the noise allows: within 20 % of the noise-free expected loss's MAE.
    assert.ok(m.test.mae < 1.2 * m.noiseFloor.mae, `MAE ${m.test.mae} vs floor ${m.noiseFloor.mae}`);
    // Not overfitting: train and held-out errors are alike.
    assert.ok(Math.abs(m.train.mae - m.test.mae) < 0.01);
  });

  it("keeps its quality under integer inference, which is what the oracle computes", () => {
    const m = trained.metrics;
    assert.ok(m.testFixed.mae < 0.3 * m.baseline.mae);
    assert.ok(m.testFixed.r2 > 0.9);
    assert.ok(Math.abs(m.testFixed.mae - m.test.mae) < 1e-3);
    // Quantized weights (2^-16) plus the integer sigmoid: well under a tenth of a percentage point.
    assert.ok(m.maxFixedDeviation < SIGMOID_MAX_ERROR + 1e-4, `deviation ${m.maxFixedDeviation}`);
  });

  it("exports canonical weights of mlp-4-16-1-sigmoid with their digest", () => {
    assert.equal(trained.architecture, "mlp-4-16-1-sigmoid");
    const model = decodeModel(trained.canonical);
    assert.equal(model.architecture, "mlp-4-16-1-sigmoid");
    assert.equal(model.scaleBits, YIELD_DEFAULTS.scaleBits);
    assert.deepEqual(
      model.tensors.map((t) => [t.name, t.shape]),
      [
        ["dense0.kernel", [4, 16]],
        ["dense0.bias", [16]],
        ["dense1.kernel", [16, 1]],
        ["dense1.bias", [1]],
      ],
    );
    assert.equal(trained.weightsDigest, sha256Digest(trained.canonical));
    // A drought scores higher than a calm season, through the oracle's arithmetic.
    const calm = fromFixed(inferFixed(model, toOracleInput([0, 0, 0.7, 0.4]))[0] as bigint);
    const drought = fromFixed(inferFixed(model, toOracleInput([0.6, 0.4, 0.1, 0.8]))[0] as bigint);
    assert.ok(calm < 0.1 && drought > 0.7, `calm ${calm}, drought ${drought}`);
  });

  it("trains in a few seconds", () => {
    assert.ok(trained.trainingSeconds < 15, `${trained.trainingSeconds} s`);
  });

  it("has a model card that validates and says the data is synthetic", () => {
    const card = parseModelCard(trained.card);
    assert.equal(card.architecture, trained.architecture);
    assert.ok(/synthetic/i.test(card.name));
    assert.ok(
      card.dataProvenance.every((d) => /synthetic/i.test(d.name) || /generator/i.test(d.description)),
    );
    assert.ok(card.dataProvenance[0]?.description.includes("Ky = 1.25"));
    assert.equal(card.dataProvenance[0]?.cid, cidOf(encodeYieldData(trained.trainData)));
    assert.equal(card.dataProvenance[1]?.cid, cidOf(encodeYieldData(trained.testData)));
    const mae = card.metrics.find((m) => m.name === "MAE");
    assert.ok(mae && Math.abs(mae.value - trained.metrics.testFixed.mae) < 1e-6);
    assert.ok(card.knownLimitations.some((l) => /synthetic/i.test(l)));
    assert.ok(encodeModelCard(card).length > 0);
  });

  it("is reproducible: the same options give the same canonical bytes", async () => {
    const options = { trainSize: 400, testSize: 100, epochs: 2 };
    const a = await trainYieldModel(options);
    const b = await trainYieldModel(options);
    assert.equal(a.weightsDigest, b.weightsDigest);
    const c = await trainYieldModel({ ...options, seed: "another" });
    assert.notEqual(a.weightsDigest, c.weightsDigest);
  });

  it("computes regression metrics", () => {
    const m = regressionMetrics([1, 2, 3], [1, 2, 5]);
    assert.ok(Math.abs(m.mae - 2 / 3) < 1e-12);
    assert.ok(Math.abs(m.rmse - Math.sqrt(4 / 3)) < 1e-12);
    // SST = (1-8/3)^2 + (2-8/3)^2 + (5-8/3)^2 = 26/3; SSE = 4.
    assert.ok(Math.abs(m.r2 - (1 - 4 / (26 / 3))) < 1e-12);
    assert.throws(() => regressionMetrics([], []), /non-empty/);
    const p = predictFixed(trained.canonical, trained.testData);
    assert.equal(p.length, trained.testData.n);
    const row = Array.from(trained.testData.x.subarray(0, FEATURE_COUNT));
    assert.equal(p[0], fromFixed(inferFixed(trained.canonical, toOracleInput(row))[0] as bigint));
  });
});
