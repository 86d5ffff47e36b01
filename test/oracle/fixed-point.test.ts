import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CanonicalModel, decodeModel, encodeCanonical, encodeModel } from "../../src/ml/encoding.ts";
import { initialWeights } from "../../src/ml/models.ts";
import { createRng } from "../../src/ml/partition.ts";
import {
  FixedPointError,
  fromFixed,
  inferFixed,
  inferFloat,
  ORACLE_ONE,
  parseDenseArchitecture,
  SIGMOID_MAX_ERROR,
  SIGMOID_TABLE,
  sigmoidFixed,
} from "../../src/oracle/fixed-point.ts";

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** A random dense model: weights ~ U(-1, 1) (biases too), encoded at `scaleBits`. */
function randomModel(architecture: string, seed: number, scaleBits = 16): Uint8Array {
  const rng = createRng(seed);
  const { sizes } = parseDenseArchitecture(architecture);
  const tensors = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const fanIn = sizes[l] as number;
    const fanOut = sizes[l + 1] as number;
    const kernel = Float32Array.from(
      { length: fanIn * fanOut },
      () => (2 * rng.next() - 1) / Math.sqrt(fanIn),
    );
    const bias = Float32Array.from({ length: fanOut }, () => 2 * rng.next() - 1);
    tensors.push({ name: `dense${l}.kernel`, shape: [fanIn, fanOut], values: kernel });
    tensors.push({ name: `dense${l}.bias`, shape: [fanOut], values: bias });
  }
  return encodeModel({ architecture, scaleBits, tensors });
}

function randomInput(n: number, rng: ReturnType<typeof createRng>): bigint[] {
  return Array.from({ length: n }, () => BigInt(Math.round((rng.next() * 1.4 - 0.2) * 1e6)));
}

describe("fixed-point sigmoid", () => {
  it("has a table of σ(k/8), rounded, monotone, ending at 1", () => {
    assert.equal(SIGMOID_TABLE.length, 129);
    SIGMOID_TABLE.forEach((v, k) => {
      assert.ok(Math.abs(Number(v) - 1e6 * sigmoid(k / 8)) <= 0.5 + 1e-6, `table[${k}] = ${v}`);
      if (k > 0) assert.ok(v >= (SIGMOID_TABLE[k - 1] as bigint));
    });
    assert.equal(SIGMOID_TABLE[0], 500_000n);
    assert.equal(SIGMOID_TABLE[128], 1_000_000n);
  });

  it(`is within ${SIGMOID_MAX_ERROR} of σ, symmetric, monotone and saturating`, () => {
    let worst = 0;
    let previous = -1n;
    for (let x = -20_000_000n; x <= 20_000_000n; x += 997n) {
      const y = sigmoidFixed(x);
      worst = Math.max(worst, Math.abs(fromFixed(y) - sigmoid(fromFixed(x))));
      assert.ok(y >= previous, `not monotone at ${x}`);
      assert.equal(y + sigmoidFixed(-x), ORACLE_ONE, `σ(x) + σ(-x) != 1 at ${x}`);
      previous = y;
    }
    assert.ok(worst <= SIGMOID_MAX_ERROR, `worst error ${worst}`);
    assert.ok(worst > 1e-4, "the bound is tight, not vacuous");
    assert.equal(sigmoidFixed(0n), 500_000n);
    assert.equal(sigmoidFixed(125_000n), SIGMOID_TABLE[1]); // a knot: exactly the table
    assert.equal(sigmoidFixed(10n ** 30n), ORACLE_ONE);
    assert.equal(sigmoidFixed(-(10n ** 30n)), 0n);
  });
});

describe("integer inference", () => {
  it("computes a hand-checked model exactly", () => {
    // mlp-2-2-1 at scaleBits 2 (quarters). Hidden: h0 = relu(0.5 x0 - 0.25 x1 + 0.25),
    // h1 = relu(-x0 + 0.75 x1 - 0.5); output y = 1.25 h0 - 0.5 h1 + 0.
    const model: CanonicalModel = {
      architecture: "mlp-2-2-1",
      scaleBits: 2,
      tensors: [
        { name: "dense0.kernel", shape: [2, 2], ints: Int32Array.from([2, -4, -1, 3]) },
        { name: "dense0.bias", shape: [2], ints: Int32Array.from([1, -2]) },
        { name: "dense1.kernel", shape: [2, 1], ints: Int32Array.from([5, -2]) },
        { name: "dense1.bias", shape: [1], ints: Int32Array.from([0]) },
      ],
    };
    // x = (0.4, 0.2): h0 = 0.2 - 0.05 + 0.25 = 0.4; h1 = relu(-0.4 + 0.15 - 0.5) = 0; y = 0.5.
    assert.deepEqual(inferFixed(model, [400_000n, 200_000n]), [500_000n]);
    // x = (-1, 1): h0 = relu(-0.5 - 0.25 + 0.25) = 0; h1 = 1 + 0.75 - 0.5 = 1.25; y = -0.625.
    assert.deepEqual(inferFixed(model, [-1_000_000, 1_000_000]), [-625_000n]);
    // Rounding: x = (0.000001, 0): acc of h0 = 2 * 1 + 1 * 1e6 = 1_000_002 quarter-units -> 250_000.5,
    // rounded half up to 250_001; y = 5 * 250_001 / 4 = 312_501.25 -> 312_501.
    assert.deepEqual(inferFixed(model, [1n, 0n]), [312_501n]);
    // With a sigmoid head the same pre-activation goes through the table: 0.5 * 8 = 4, a knot.
    const withSigmoid = { ...model, architecture: "mlp-2-2-1-sigmoid" };
    assert.deepEqual(inferFixed(withSigmoid, [400_000n, 200_000n]), [622_459n]);
    // Between knots: |-0.3| * 8 = 2.4, so k = 2, f = 400_000; 562_177 + (30_490 * 400_000 + 500_000) / 1e6
    // = 562_177 + 12_196 = 574_373; negative: 1e6 - 574_373.
    assert.equal(sigmoidFixed(-300_000n), 425_627n);
  });

  it("is deterministic: the bytes or their decoding, again and again, give the same integers", () => {
    const bytes = randomModel("mlp-4-16-1-sigmoid", 1);
    const rng = createRng("det");
    for (let t = 0; t < 50; t++) {
      const x = randomInput(4, rng);
      const a = inferFixed(bytes, x);
      assert.deepEqual(inferFixed(decodeModel(bytes), x), a);
      assert.deepEqual(inferFixed(encodeCanonical(decodeModel(bytes)), x), a);
      assert.deepEqual(
        inferFixed(
          bytes,
          x.map((v) => Number(v)),
        ),
        a,
      );
    }
  });

  it("matches float inference: linear heads within 1e-5, sigmoid heads within the sigmoid bound + 1e-5", () => {
    const cases: [string, number][] = [
      ["mlp-4-16-1", 2],
      ["mlp-4-16-1-sigmoid", 3],
      ["mlp-8-32-16-3", 4],
      ["mlp-8-32-16-1-sigmoid", 5],
      ["logreg-6-3", 6],
    ];
    for (const [architecture, seed] of cases) {
      const bytes = randomModel(architecture, seed);
      const { sizes, output } = parseDenseArchitecture(architecture);
      const tolerance = output === "sigmoid" ? SIGMOID_MAX_ERROR + 1e-5 : 1e-5;
      const rng = createRng(seed);
      let worst = 0;
      for (let t = 0; t < 300; t++) {
        const x = randomInput(sizes[0] as number, rng);
        const fixed = inferFixed(bytes, x).map(fromFixed);
        const float = inferFloat(bytes, x.map(fromFixed));
        fixed.forEach((v, j) => {
          worst = Math.max(worst, Math.abs(v - (float[j] as number)));
        });
      }
      assert.ok(worst <= tolerance, `${architecture}: worst deviation ${worst} > ${tolerance}`);
    }
  });

  it("runs the classifiers of src/ml/models.ts (logits, same argmax as float)", () => {
    const bytes = encodeModel({ architecture: "mlp-10-8-3", tensors: initialWeights("mlp-10-8-3", 9) });
    const rng = createRng(10);
    for (let t = 0; t < 100; t++) {
      const x = randomInput(10, rng);
      const fixed = inferFixed(bytes, x).map(fromFixed);
      const float = inferFloat(bytes, x.map(fromFixed));
      const argmax = (v: number[]) => v.indexOf(Math.max(...v));
      const sorted = [...float].sort((a, b) => b - a);
      if ((sorted[0] as number) - (sorted[1] as number) > 1e-4) assert.equal(argmax(fixed), argmax(float));
    }
  });

  it("works at any scale, including scaleBits 0 and 31", () => {
    for (const scaleBits of [0, 8, 24]) {
      const bytes = randomModel("mlp-3-5-2", 11, scaleBits);
      const x = [100_000n, -200_000n, 300_000n];
      const fixed = inferFixed(bytes, x).map(fromFixed);
      const float = inferFloat(bytes, x.map(fromFixed));
      fixed.forEach((v, j) => {
        assert.ok(Math.abs(v - (float[j] as number)) < 1e-5);
      });
    }
    const tiny: CanonicalModel = {
      architecture: "logreg-1-1",
      scaleBits: 31,
      tensors: [
        { name: "dense0.kernel", shape: [1, 1], ints: Int32Array.from([0x40000000]) }, // 0.5
        { name: "dense0.bias", shape: [1], ints: Int32Array.from([0]) },
      ],
    };
    assert.deepEqual(inferFixed(tiny, [3n]), [2n]); // 1.5 rounds half up
    assert.deepEqual(inferFixed(tiny, [-3n]), [-1n]); // -1.5 rounds half up
  });

  it("refuses what it cannot run", () => {
    const bytes = randomModel("mlp-4-16-1-sigmoid", 1);
    assert.throws(() => inferFixed(bytes, [1n, 2n, 3n]), FixedPointError);
    assert.throws(() => inferFixed(bytes, [1, 2, 3, 0.5]), /not an integer/);
    assert.throws(() => parseDenseArchitecture("cnn-4-1"), FixedPointError);
    assert.throws(() => parseDenseArchitecture("mlp-4-1"), /hidden layer/);
    assert.throws(() => parseDenseArchitecture("logreg-4-1-sigmoid"), FixedPointError);
    assert.throws(() => parseDenseArchitecture("mlp-4-016-1"), /bad layer width/);
    const model = decodeModel(bytes);
    const missing = { ...model, tensors: model.tensors.slice(0, 3) };
    assert.throws(() => inferFixed(missing, [0n, 0n, 0n, 0n]), /dense1.bias/);
    const extra: CanonicalModel = {
      ...model,
      tensors: [...model.tensors, { name: "extra", shape: [1], ints: Int32Array.from([1]) }],
    };
    assert.throws(() => inferFixed(extra, [0n, 0n, 0n, 0n]), /does not name/);
    const reshaped: CanonicalModel = {
      ...model,
      architecture: "mlp-4-8-2-sigmoid",
    };
    assert.throws(() => inferFixed(reshaped, [0n, 0n, 0n, 0n]), /dense0.kernel \[4, 8\]/);
  });
});
