import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/ml/backend.ts";
import {
  architectureOf,
  architectureParameters,
  architectureShapes,
  createModel,
  getWeights,
  initialWeights,
  type ModelTensor,
  parseArchitecture,
  setWeights,
} from "../../src/ml/models.ts";
import { predictProbabilities } from "../../src/ml/train.ts";

before(async () => {
  await initBackend();
});

function maxAbsDiff(a: ModelTensor[], b: ModelTensor[]): number {
  let d = 0;
  a.forEach((t, i) => {
    const u = b[i] as ModelTensor;
    assert.equal(t.name, u.name);
    assert.deepEqual(t.shape, u.shape);
    for (let k = 0; k < t.values.length; k++)
      d = Math.max(d, Math.abs((t.values[k] as number) - (u.values[k] as number)));
  });
  return d;
}

describe("architectures", () => {
  it("names the tensors of logreg, mlp and generic mlps", () => {
    assert.deepEqual(architectureShapes("logreg-784-10"), [
      { name: "dense0.kernel", shape: [784, 10] },
      { name: "dense0.bias", shape: [10] },
    ]);
    assert.deepEqual(architectureShapes("mlp-784-128-10"), [
      { name: "dense0.kernel", shape: [784, 128] },
      { name: "dense0.bias", shape: [128] },
      { name: "dense1.kernel", shape: [128, 10] },
      { name: "dense1.bias", shape: [10] },
    ]);
    assert.deepEqual(
      architectureShapes("mlp-20-16-8-3").map((s) => s.shape),
      [[20, 16], [16], [16, 8], [8], [8, 3], [3]],
    );
    assert.equal(architectureParameters("mlp-784-128-10"), 784 * 128 + 128 + 128 * 10 + 10);
    assert.deepEqual(parseArchitecture("mlp-4-3-2").sizes, [4, 3, 2]);
  });

  it("rejects malformed ids clearly", () => {
    assert.throws(() => architectureShapes("cnn-28-10"), /Unknown architecture/);
    assert.throws(() => architectureShapes("mlp-784-10"), /at least one hidden/);
    assert.throws(() => architectureShapes("logreg-784-64-10"), /exactly an input and an output/);
    assert.throws(() => architectureShapes("mlp-784-0128-10"), /leading zeros/);
    assert.throws(() => architectureShapes("logreg-784-1"), /2 classes/);
    assert.throws(() => architectureShapes("mlp-100000-100000-10"), /parameters/);
  });
});

describe("createModel / getWeights / setWeights", () => {
  it("builds seeded, reproducible models matching architectureShapes", () => {
    const before = tf.memory().numTensors;
    const a = createModel("mlp-784-128-10", 7);
    const b = createModel("mlp-784-128-10", 7);
    const c = createModel("mlp-784-128-10", 8);
    const wa = getWeights(a);
    assert.equal(architectureOf(a), "mlp-784-128-10");
    assert.deepEqual(
      wa.map(({ name, shape }) => ({ name, shape })),
      architectureShapes("mlp-784-128-10"),
    );
    assert.equal(maxAbsDiff(wa, getWeights(b)), 0);
    assert.equal(maxAbsDiff(wa, initialWeights("mlp-784-128-10", 7)), 0);
    assert.ok(maxAbsDiff(wa, getWeights(c)) > 0.01);
    const kernel = (wa[0] as ModelTensor).values as Float32Array;
    const limit = Math.sqrt(6 / (784 + 128));
    assert.ok(kernel.every((v) => Math.abs(v) <= limit));
    assert.ok(Math.abs(kernel.reduce((s, v) => s + v, 0) / kernel.length) < 0.01);
    assert.ok(((wa[1] as ModelTensor).values as Float32Array).every((v) => v === 0));
    for (const m of [a, b, c]) m.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  it("round-trips weights between models, in any order and as plain arrays", () => {
    const before = tf.memory().numTensors;
    const a = createModel("mlp-20-16-8-3", 1);
    const b = createModel("mlp-20-16-8-3", 2);
    const wa = getWeights(a);
    setWeights(b, [...wa].reverse());
    assert.equal(maxAbsDiff(getWeights(b), wa), 0);
    const x = Float32Array.from({ length: 5 * 20 }, (_, i) => Math.sin(i));
    assert.deepEqual(predictProbabilities(a, x), predictProbabilities(b, x));
    setWeights(
      b,
      wa.map((t) => ({ ...t, values: Array.from(t.values) })),
    );
    assert.equal(maxAbsDiff(getWeights(b), wa), 0);
    // getWeights returns copies; setWeights copies its input.
    ((wa[0] as ModelTensor).values as Float32Array).fill(5);
    assert.notEqual(getWeights(b)[0]?.values[0], 5);
    assert.notEqual(getWeights(a)[0]?.values[0], 5);
    const p = predictProbabilities(a, x);
    for (let i = 0; i < 5; i++)
      assert.ok(Math.abs(p.subarray(i * 3, i * 3 + 3).reduce((s, v) => s + v, 0) - 1) < 1e-5);
    a.dispose();
    b.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  it("rejects wrong names, shapes and sizes without changing the model", () => {
    const m = createModel("logreg-784-10", 3);
    const w = getWeights(m);
    const [kernel, bias] = w as [ModelTensor, ModelTensor];
    assert.throws(() => setWeights(m, [kernel]), /missing dense0\.bias/);
    assert.throws(
      () => setWeights(m, [kernel, { ...bias, name: "dense1.bias" }]),
      /missing dense0\.bias; unexpected dense1\.bias/,
    );
    assert.throws(() => setWeights(m, [kernel, bias, bias]), /given twice/);
    assert.throws(
      () => setWeights(m, [{ ...kernel, shape: [10, 784], values: new Float32Array(7840).fill(1) }, bias]),
      /"dense0\.kernel" has shape \[10, 784\], the model expects \[784, 10\]/,
    );
    assert.throws(() => setWeights(m, [kernel, { ...bias, values: new Float32Array(9) }]), /has 9 values/);
    assert.equal(maxAbsDiff(getWeights(m), w), 0);
    m.dispose();
  });
});
