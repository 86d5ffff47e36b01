import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadMnist, MNIST_FEATURES, mnistSize } from "../../src/ml/mnist.ts";
import type { Dataset } from "../../src/ml/partition.ts";

/** A key per row (pixel sums weighted by position), to compare sets of digits across copies. */
function rowKeys(ds: Dataset): Set<string> {
  const keys = new Set<string>();
  for (let i = 0; i < ds.n; i++) {
    let a = 0;
    let b = 0;
    for (let k = 0; k < MNIST_FEATURES; k++) {
      const v = ds.x[i * MNIST_FEATURES + k] as number;
      a += v;
      b += v * (k + 1);
    }
    keys.add(`${ds.y[i]}:${a.toFixed(3)}:${b.toFixed(2)}`);
  }
  return keys;
}

describe("loadMnist", () => {
  it("returns real digits with the documented shapes, values and labels", () => {
    const { train, test } = loadMnist({ train: 2000, test: 500 });
    assert.equal(mnistSize(), 10000);
    for (const [ds, n] of [
      [train, 2000],
      [test, 500],
    ] as const) {
      assert.equal(ds.n, n);
      assert.ok(ds.x instanceof Float32Array);
      assert.ok(ds.y instanceof Uint8Array);
      assert.equal(ds.x.length, n * 784);
      assert.equal(ds.y.length, n);
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const v of ds.x) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      assert.equal(min, 0);
      assert.ok(max > 0.99 && max <= 1, `max pixel ${max}`);
      const counts = new Array<number>(10).fill(0);
      for (const label of ds.y) {
        assert.ok(label <= 9);
        counts[label] = (counts[label] as number) + 1;
      }
      assert.ok(
        counts.every((c) => c >= n / 20),
        `every class present: ${counts}`,
      );
    }
  });

  it("is deterministic, within and across processes", () => {
    const a = loadMnist({ train: 300, test: 100 });
    const b = loadMnist({ train: 300, test: 100 });
    assert.deepEqual(a.train.x, b.train.x);
    assert.deepEqual(a.train.y, b.train.y);
    assert.deepEqual(a.test.y, b.test.y);
    // Pinned: the canonical split must not change between machines or releases.
    assert.deepEqual(Array.from(a.train.y.subarray(0, 10)), [8, 4, 9, 1, 4, 5, 9, 0, 9, 1]);
    const bigger = loadMnist({ train: 1000, test: 100 });
    assert.deepEqual(bigger.train.y.subarray(0, 300), a.train.y);
  });

  it("keeps train and test disjoint, and a smaller test set inside a larger one", () => {
    const { train, test } = loadMnist({ train: 3000, test: 1000 });
    const trainKeys = rowKeys(train);
    const testKeys = rowKeys(test);
    let shared = 0;
    for (const k of testKeys) if (trainKeys.has(k)) shared++;
    assert.equal(shared, 0);
    const small = rowKeys(loadMnist({ train: 0, test: 400 }).test);
    for (const k of small) assert.ok(testKeys.has(k));
  });

  it("returns copies that callers may modify", () => {
    const a = loadMnist({ train: 10, test: 10 });
    a.train.x.fill(7);
    a.train.y.fill(7);
    const b = loadMnist({ train: 10, test: 10 });
    assert.notEqual(b.train.x[0], 7);
    assert.deepEqual(Array.from(b.train.y.subarray(0, 3)), [8, 4, 9]);
  });

  it("refuses more samples than the package holds, and bad counts", () => {
    assert.throws(() => loadMnist({ train: 9000, test: 1001 }), /holds only 10000/);
    assert.throws(() => loadMnist({ train: -1, test: 10 }), /non-negative integer/);
    assert.throws(() => loadMnist({ train: 1.5, test: 10 }), /non-negative integer/);
    assert.equal(loadMnist({ train: 9000, test: 1000 }).train.n, 9000);
  });
});
