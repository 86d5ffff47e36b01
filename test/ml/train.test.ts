import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/ml/backend.ts";
import { loadMnist } from "../../src/ml/mnist.ts";
import { createModel, getWeights, type ModelTensor } from "../../src/ml/models.ts";
import type { Dataset } from "../../src/ml/partition.ts";
import { evaluate, trainModel } from "../../src/ml/train.ts";

let train: Dataset;
let test: Dataset;

before(async () => {
  await initBackend();
  ({ train, test } = loadMnist({ train: 2000, test: 500 }));
});

function distance(a: ModelTensor[], b: ModelTensor[]): number {
  let s = 0;
  a.forEach((t, i) => {
    const u = (b[i] as ModelTensor).values;
    for (let k = 0; k < t.values.length; k++) s += ((t.values[k] as number) - (u[k] as number)) ** 2;
  });
  return Math.sqrt(s);
}

function norm(a: ModelTensor[]): number {
  let s = 0;
  for (const t of a) for (const v of t.values) s += v * v;
  return Math.sqrt(s);
}

function head(ds: Dataset, n: number): Dataset {
  return { x: ds.x.subarray(0, n * 784), y: ds.y.subarray(0, n), n };
}

describe("trainModel / evaluate", () => {
  it("trains logistic regression on 2,000 digits to > 0.8 test accuracy without leaking tensors", async () => {
    const model = createModel("logreg-784-10", 1);
    const start = tf.memory().numTensors;
    const untrained = await evaluate(model, test);
    const losses: number[] = [];
    const result = await trainModel(model, train, {
      epochs: 2,
      batchSize: 32,
      learningRate: 0.1,
      seed: 1,
      onEpoch: (epoch, { loss }) => {
        assert.equal(epoch, losses.length);
        losses.push(loss);
      },
    });
    const metrics = await evaluate(model, test);
    assert.equal(tf.memory().numTensors, start, "tensors leaked");
    assert.equal(losses.length, 2);
    assert.equal(result.loss, losses[1]);
    assert.equal(result.steps, 2 * Math.ceil(2000 / 32));
    assert.ok((losses[1] as number) < (losses[0] as number));
    assert.ok(untrained.accuracy < 0.3, `untrained accuracy ${untrained.accuracy}`);
    assert.ok(metrics.accuracy > 0.8, `test accuracy ${metrics.accuracy}`);
    assert.ok(metrics.loss < untrained.loss);
    model.dispose();
  });

  it("trains the MLP with SGD and with Adam, leaking nothing", async () => {
    for (const optimizer of ["sgd", "adam"] as const) {
      const model = createModel("mlp-784-128-10", 2);
      const start = tf.memory().numTensors;
      await trainModel(model, train, {
        epochs: 2,
        batchSize: 32,
        learningRate: optimizer === "adam" ? 0.002 : 0.1,
        seed: 2,
        optimizer,
      });
      const { accuracy } = await evaluate(model, test);
      assert.equal(tf.memory().numTensors, start, `${optimizer} leaked tensors`);
      assert.ok(accuracy > 0.8, `${optimizer} test accuracy ${accuracy}`);
      model.dispose();
    }
  });

  it("is reproducible for a seed", async () => {
    const data = head(train, 300);
    const runs: ModelTensor[][] = [];
    for (const seed of [5, 5, 6]) {
      const model = createModel("mlp-784-16-10", 3);
      await trainModel(model, data, { epochs: 1, batchSize: 16, learningRate: 0.1, seed });
      runs.push(getWeights(model));
      model.dispose();
    }
    assert.equal(distance(runs[0] as ModelTensor[], runs[1] as ModelTensor[]), 0);
    assert.ok(distance(runs[0] as ModelTensor[], runs[2] as ModelTensor[]) > 0);
  });

  it("computes the same updates by hand as tfjs autodiff", async () => {
    const data = head(train, 256);
    const weights: ModelTensor[][] = [];
    for (const gradients of ["auto", "tape"] as const) {
      const model = createModel("mlp-784-32-16-10", 4);
      const start = tf.memory().numTensors;
      const { loss } = await trainModel(model, data, {
        epochs: 1,
        batchSize: 32,
        learningRate: 0.1,
        seed: 4,
        gradients,
      });
      assert.ok(Number.isFinite(loss));
      assert.equal(tf.memory().numTensors, start, `${gradients} leaked tensors`);
      weights.push(getWeights(model));
      model.dispose();
    }
    const [auto, tape] = weights as [ModelTensor[], ModelTensor[]];
    assert.ok(distance(auto, tape) < 1e-5 * norm(auto), `hand vs tape ${distance(auto, tape)}`);
  });

  it("keeps weights near the global model with the FedProx term, on both gradient paths", async () => {
    const data = head(train, 500);
    for (const gradients of ["auto", "tape"] as const) {
      const drift: number[] = [];
      for (const mu of [0, 1]) {
        const model = createModel("logreg-784-10", 9);
        const global = getWeights(model);
        const start = tf.memory().numTensors;
        await trainModel(model, data, {
          epochs: 2,
          batchSize: 32,
          learningRate: 0.1,
          seed: 9,
          proximalMu: mu,
          globalWeights: global,
          gradients,
        });
        assert.equal(tf.memory().numTensors, start, "prox leaked tensors");
        drift.push(distance(getWeights(model), global));
        model.dispose();
      }
      assert.ok(
        (drift[1] as number) < 0.8 * (drift[0] as number),
        `${gradients}: drift mu=1 ${drift[1]} vs mu=0 ${drift[0]}`,
      );
    }
    const model = createModel("logreg-784-10", 9);
    await assert.rejects(
      trainModel(model, data, { epochs: 1, batchSize: 32, learningRate: 0.1, seed: 1, proximalMu: 0.1 }),
      /needs globalWeights/,
    );
    model.dispose();
  });

  it("rejects datasets and options that do not fit", async () => {
    const model = createModel("logreg-20-10", 1);
    const ds = { x: new Float32Array(40), y: new Uint8Array(2), n: 2 };
    await assert.rejects(
      trainModel(model, train, { epochs: 1, batchSize: 8, learningRate: 0.1, seed: 1 }),
      /784 features, the model takes 20/,
    );
    await assert.rejects(
      trainModel(model, ds, { epochs: 0, batchSize: 8, learningRate: 0.1, seed: 1 }),
      /epochs/,
    );
    await assert.rejects(
      trainModel(model, ds, { epochs: 1, batchSize: 8, learningRate: -1, seed: 1 }),
      /learningRate/,
    );
    await assert.rejects(evaluate(model, { ...ds, y: Uint8Array.from([1, 12]) }), /label 12/);
    model.dispose();
  });
});
