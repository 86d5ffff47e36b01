import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  gaussianEpsilon,
  gaussianNoiseMultiplier,
  l2Norm,
  privatizeUpdate,
  privatizeWeights,
} from "../../src/learning/privacy.ts";
import {
  decodeModel,
  encodeCanonical,
  encodeModel,
  type ModelTensor,
  toFloatTensors,
} from "../../src/ml/encoding.ts";
import { initialWeights } from "../../src/ml/models.ts";
import { createRng } from "../../src/ml/partition.ts";

const ARCH = "logreg-784-10";

/** Global weights and a local model = global + `direction` scaled to L2 norm `norm`. */
function pair(norm: number, seed = 1): { global: ModelTensor[]; local: ModelTensor[] } {
  const global = toFloatTensors(
    decodeModel(encodeModel({ architecture: ARCH, tensors: initialWeights(ARCH, seed) })),
  );
  const rng = createRng(seed + 100);
  const direction = global.map((t) => Float64Array.from(t.values, () => rng.normal()));
  let squares = 0;
  for (const d of direction) for (const v of d) squares += v * v;
  const k = norm / Math.sqrt(squares);
  const local = global.map((t, i) => ({
    name: t.name,
    shape: [...t.shape],
    values: Float32Array.from(t.values, (v, j) => v + k * ((direction[i] as Float64Array)[j] as number)),
  }));
  return { global, local };
}

function delta(a: ModelTensor[], b: ModelTensor[]): ModelTensor[] {
  return a.map((t, i) => ({
    name: t.name,
    shape: t.shape,
    values: Array.from(t.values, (v, j) => v - ((b[i] as ModelTensor).values[j] as number)),
  }));
}

describe("client-level differential privacy", () => {
  it("clipping bounds the delta's L2 norm by C and keeps its direction; small deltas pass unchanged", () => {
    const { global, local } = pair(10);
    const { tensors, report } = privatizeWeights(global, local, { clipNorm: 1, noiseMultiplier: 0 });
    assert.ok(Math.abs(report.normBefore - 10) < 1e-3, `norm before ${report.normBefore}`);
    assert.ok(Math.abs(report.clipFactor - 0.1) < 1e-5);
    const clipped = delta(tensors, global);
    const norm = l2Norm(clipped);
    assert.ok(norm <= 1 + 1e-4 && norm > 0.999, `clipped norm ${norm}`);
    // Same direction: clipped delta = 0.1 * original delta (up to float32 rounding).
    const original = delta(local, global);
    const ratio = (clipped[0]?.values[5] as number) / (original[0]?.values[5] as number);
    assert.ok(Math.abs(ratio - 0.1) < 1e-3, `ratio ${ratio}`);

    const small = pair(0.5);
    const kept = privatizeWeights(small.global, small.local, { clipNorm: 1, noiseMultiplier: 0 });
    assert.equal(kept.report.clipFactor, 1);
    assert.deepEqual(
      kept.tensors.map((t) => Array.from(t.values)),
      small.local.map((t) => Array.from(t.values)),
    );
  });

  it("noise has std sigma * C per coordinate and zero mean, seeded and repeatable", () => {
    const { global } = pair(0);
    const options = { clipNorm: 2, noiseMultiplier: 0.25, seed: 42 };
    const { tensors, report } = privatizeWeights(global, global, options);
    assert.equal(report.noiseStd, 0.5);
    const values = delta(tensors, global).flatMap((t) => Array.from(t.values));
    assert.equal(values.length, 7850);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
    // Standard errors: mean 0.5 / sqrt(7850) = 0.0056, std 0.5 / sqrt(2 * 7850) = 0.004.
    assert.ok(Math.abs(mean) < 0.025, `mean ${mean}`);
    assert.ok(Math.abs(std - 0.5) < 0.02, `std ${std}`);
    // About 68.3% within one std, 95.4% within two.
    const within1 = values.filter((v) => Math.abs(v) < 0.5).length / values.length;
    const within2 = values.filter((v) => Math.abs(v) < 1).length / values.length;
    assert.ok(Math.abs(within1 - 0.683) < 0.02, `within 1 std ${within1}`);
    assert.ok(Math.abs(within2 - 0.954) < 0.01, `within 2 std ${within2}`);
    const again = privatizeWeights(global, global, options).tensors;
    assert.deepEqual(
      again.map((t) => Array.from(t.values)),
      tensors.map((t) => Array.from(t.values)),
    );
    const other = privatizeWeights(global, global, { ...options, seed: 43 }).tensors;
    assert.notDeepEqual(
      other.map((t) => Array.from(t.values)),
      tensors.map((t) => Array.from(t.values)),
    );
  });

  it("privatizeUpdate quantizes global + clipped delta at the global's scale", () => {
    const { global, local } = pair(3, 7);
    const canonical = decodeModel(encodeModel({ architecture: ARCH, tensors: global }));
    const { model, report } = privatizeUpdate(canonical, local, { clipNorm: 0.5, noiseMultiplier: 0 });
    assert.ok(report.clipFactor < 0.2);
    assert.equal(model.architecture, ARCH);
    assert.equal(model.scaleBits, canonical.scaleBits);
    encodeCanonical(model);
    const step = 2 ** -canonical.scaleBits;
    const norm = l2Norm(delta(toFloatTensors(model), toFloatTensors(canonical)));
    // Each weight moves by at most half a step from rounding.
    assert.ok(Math.abs(norm - 0.5) < (step / 2) * Math.sqrt(7850), `norm ${norm}`);
    const noisy = privatizeUpdate(canonical, local, { clipNorm: 0.5, noiseMultiplier: 1, seed: "secret" });
    assert.equal(
      Buffer.from(encodeCanonical(noisy.model)).toString("hex"),
      Buffer.from(
        encodeCanonical(
          privatizeUpdate(canonical, local, { clipNorm: 0.5, noiseMultiplier: 1, seed: "secret" }).model,
        ),
      ).toString("hex"),
    );
  });

  it("relates sigma to (epsilon, delta) by the classic Gaussian mechanism bound", () => {
    const sigma = gaussianNoiseMultiplier(0.5, 1e-5);
    assert.ok(Math.abs(sigma - Math.sqrt(2 * Math.log(1.25e5)) / 0.5) < 1e-12);
    assert.ok(Math.abs(sigma - 9.689) < 1e-3);
    assert.ok(Math.abs(gaussianEpsilon(sigma, 1e-5) - 0.5) < 1e-12);
    assert.ok(Math.abs(gaussianNoiseMultiplier(0.5, 1e-5, "replace") - 2 * sigma) < 1e-12);
    assert.throws(() => gaussianNoiseMultiplier(2, 1e-5), /0 < epsilon < 1/);
  });

  it("refuses bad options and mismatched models", () => {
    const { global, local } = pair(1);
    assert.throws(() => privatizeWeights(global, local, { clipNorm: 0, noiseMultiplier: 0 }), RangeError);
    assert.throws(() => privatizeWeights(global, local, { clipNorm: 1, noiseMultiplier: -1 }), RangeError);
    assert.throws(
      () => privatizeWeights(global, local, { clipNorm: 1, noiseMultiplier: 1 }),
      /rng or a seed/,
    );
    assert.throws(
      () => privatizeWeights(global, local.slice(1), { clipNorm: 1, noiseMultiplier: 0 }),
      /has 1 tensors, the global 2/,
    );
    const renamed = local.map((t, i) => (i === 0 ? { ...t, name: "other" } : t));
    assert.throws(
      () => privatizeWeights(global, renamed, { clipNorm: 1, noiseMultiplier: 0 }),
      /does not match/,
    );
  });
});
