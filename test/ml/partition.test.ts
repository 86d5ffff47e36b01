import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  createRng,
  labelHistogram,
  partitionDirichlet,
  partitionIid,
  sampleDirichlet,
  subset,
} from "../../src/ml/partition.ts";

function assertCoversOnce(parts: number[][], n: number): void {
  const seen = new Uint8Array(n);
  for (const part of parts) {
    for (const i of part) {
      assert.ok(Number.isInteger(i) && i >= 0 && i < n, `index ${i} out of range`);
      assert.equal(seen[i], 0, `index ${i} appears twice`);
      seen[i] = 1;
    }
  }
  assert.ok(
    seen.every((v) => v === 1),
    "some index is missing",
  );
}

/** Mean over clients of the total-variation distance between a client's label mix and the global one. */
function skew(labels: Uint8Array, parts: number[][], classes: number): number {
  const global = labelHistogram(labels, [Array.from(labels.keys())], classes)[0] as number[];
  const hist = labelHistogram(labels, parts, classes);
  let total = 0;
  for (const counts of hist) {
    const n = counts.reduce((a, b) => a + b, 0);
    let tv = 0;
    for (let k = 0; k < classes; k++)
      tv += Math.abs((counts[k] as number) / n - (global[k] as number) / labels.length);
    total += tv / 2;
  }
  return total / parts.length;
}

const labels = Uint8Array.from({ length: 2000 }, (_, i) => i % 10);

describe("createRng", () => {
  it("is reproducible and pinned across machines", () => {
    const a = createRng(42);
    const b = createRng(42);
    for (let i = 0; i < 100; i++) assert.equal(a.next(), b.next());
    const c = createRng(42);
    assert.deepEqual([c.nextUint32(), c.nextUint32(), c.nextUint32()], [2837322924, 544945897, 479756282]);
    const s = createRng("round-1");
    assert.deepEqual([s.nextUint32(), s.nextUint32()], [4020782146, 3972430873]);
  });

  it("separates seeds, including the high bits of large ones", () => {
    assert.notEqual(createRng(1).next(), createRng(2).next());
    assert.notEqual(createRng(7).next(), createRng(7 + 2 ** 32).next());
    assert.notEqual(createRng("a").next(), createRng("b").next());
    assert.throws(() => createRng(1.5), /safe integer/);
  });

  it("draws uniforms in [0,1), standard normals and gammas with the right moments", () => {
    const rng = createRng(7);
    const N = 20000;
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < N; i++) {
      const u = rng.next();
      assert.ok(u >= 0 && u < 1);
      const z = rng.normal();
      sum += z;
      sumSq += z * z;
    }
    assert.ok(Math.abs(sum / N) < 0.03, `normal mean ${sum / N}`);
    assert.ok(Math.abs(sumSq / N - 1) < 0.05, `normal variance ${sumSq / N}`);
    for (const shape of [0.3, 1, 4.5]) {
      let g = 0;
      for (let i = 0; i < N; i++) g += rng.gamma(shape);
      assert.ok(Math.abs(g / N - shape) < 0.05 * Math.max(1, shape), `gamma(${shape}) mean ${g / N}`);
    }
    for (let i = 0; i < 1000; i++) {
      const k = rng.int(7);
      assert.ok(Number.isInteger(k) && k >= 0 && k < 7);
    }
    const p = sampleDirichlet(5, 0.5, rng);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  });
});

describe("partitionIid", () => {
  it("covers every index exactly once with balanced sizes", () => {
    const parts = partitionIid(1003, 10, createRng(1));
    assertCoversOnce(parts, 1003);
    const sizes = parts.map((p) => p.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
  });

  it("is reproducible per seed", () => {
    assert.deepEqual(partitionIid(500, 7, createRng(3)), partitionIid(500, 7, createRng(3)));
    assert.notDeepEqual(partitionIid(500, 7, createRng(3)), partitionIid(500, 7, createRng(4)));
  });

  it("rejects more clients than samples", () => {
    assert.throws(() => partitionIid(3, 4, createRng(1)), /at least one/);
    assert.throws(() => partitionIid(3, 0, createRng(1)), /clients/);
  });
});

describe("partitionDirichlet", () => {
  it("covers every index exactly once and is reproducible", () => {
    const parts = partitionDirichlet(labels, 10, 0.5, createRng(5));
    assertCoversOnce(parts, labels.length);
    assert.deepEqual(parts, partitionDirichlet(labels, 10, 0.5, createRng(5)));
    assert.notDeepEqual(parts, partitionDirichlet(labels, 10, 0.5, createRng(6)));
  });

  it("gives every client at least one sample, even with tiny alpha and many clients", () => {
    const few = labels.subarray(0, 100);
    for (const seed of [1, 2, 3]) {
      const parts = partitionDirichlet(few, 50, 0.01, createRng(seed));
      assertCoversOnce(parts, few.length);
      assert.ok(parts.every((p) => p.length >= 1));
    }
  });

  it("is measurably skewed with small alpha, close to IID with large alpha", () => {
    const iid = skew(labels, partitionIid(labels.length, 10, createRng(9)), 10);
    const small = skew(labels, partitionDirichlet(labels, 10, 0.1, createRng(9)), 10);
    const large = skew(labels, partitionDirichlet(labels, 10, 1000, createRng(9)), 10);
    assert.ok(iid < 0.15, `iid skew ${iid}`);
    assert.ok(small > 0.5, `alpha 0.1 skew ${small}`);
    assert.ok(small > 3 * iid, `alpha 0.1 skew ${small} vs iid ${iid}`);
    assert.ok(large < 0.15, `alpha 1000 skew ${large}`);
  });

  it("validates its inputs", () => {
    assert.throws(() => partitionDirichlet(labels, 10, 0, createRng(1)), /alpha/);
    assert.throws(() => partitionDirichlet([0, 1], 3, 1, createRng(1)), /at least one/);
  });
});

describe("subset", () => {
  it("copies the chosen rows in order", () => {
    const ds = { x: Float32Array.from({ length: 12 }, (_, i) => i), y: Uint8Array.from([0, 1, 2, 3]), n: 4 };
    const s = subset(ds, [3, 1]);
    assert.equal(s.n, 2);
    assert.deepEqual(Array.from(s.x), [9, 10, 11, 3, 4, 5]);
    assert.deepEqual(Array.from(s.y), [3, 1]);
    s.x[0] = -1;
    assert.equal(ds.x[9], 9);
    assert.throws(() => subset(ds, [4]), /out of range/);
  });
});
