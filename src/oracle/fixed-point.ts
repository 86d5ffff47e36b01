/**
 * Deterministic integer inference of dense models from their canonical encoding (pure, no I/O).
 *
 * Oracle operators must agree on an output bit for bit, and a floating-point forward pass does not
 * promise that across machines, libraries or summation orders. So operators run the model here: every
 * value is a BigInt, every operation is exact integer arithmetic in a fixed order, and every rounding is
 * stated. Same canonical bytes + same input = same output, on any machine.
 *
 * Scales:
 *   inputs, activations and outputs  fixed point at 1e6 (ORACLE_ONE = 1_000_000 = 1.0), the oracle's
 *   weights and biases               the model's own scale: int / 2^scaleBits (canonical encoding)
 *
 * One dense layer, for output unit j, in this order:
 *   acc_j = Σ_i W[i][j] · a_i  (i ascending)  +  b_j · 1e6      exact, scale 2^s · 1e6
 *   z_j   = (acc_j + 2^(s−1)) >> s                               back to 1e6; >> floors, so this rounds
 *                                                                half up (towards +∞); s = 0: z = acc
 * then ReLU (max(0, z)) on hidden layers; the last layer is linear, or sigmoid when the architecture
 * id ends in "-sigmoid".
 *
 * Fixed-point sigmoid: piecewise-linear interpolation of σ(x) = 1 / (1 + e^(−x)) between knots every
 * 1/8 on [0, 16], from the integer table SIGMOID_TABLE (σ(k/8) · 1e6 rounded half up, computed once with
 * 50-digit decimals and written here as literals, so nothing depends on a machine's Math.exp):
 *   t = |x| · 8;  k = floor(t / 1e6);  f = t − k · 1e6            (f in [0, 1e6): position in the step)
 *   σ⁺ = T[k] + floor(((T[k+1] − T[k]) · f + 5e5) / 1e6)           (|x| ≥ 16: σ⁺ = 1e6)
 *   σ(x) = σ⁺ for x ≥ 0, 1e6 − σ⁺ for x < 0                        (σ(−x) = 1 − σ(x), exactly)
 * Error: linear interpolation errs by at most h²/8 · max|σ''| = (1/8)²/8 · 0.0962 ≈ 1.9e-4, plus half a
 * unit of table and interpolation rounding: |sigmoidFixed(x) − σ(x)| ≤ 2e-4 everywhere (tested). It is
 * monotone (non-decreasing) and needs only comparisons, products and a division by a constant, which
 * keeps it cheap in Solidity and in an arithmetic circuit.
 *
 * Architectures: "mlp-<in>-<h1>[-<h2>...]-<out>" (ReLU hidden layers, linear output: logits for the
 * classifiers of src/ml/models.ts), "mlp-...-<out>-sigmoid" (sigmoid output: scores and probabilities
 * such as the yield-loss model), "logreg-<in>-<out>" (one linear layer). The output activation is part of
 * the architecture id, hence of the hashed bytes, so operators cannot disagree about it. Tensors are
 * "dense<i>.kernel" [in, out] and "dense<i>.bias" [out].
 */
import { type CanonicalModel, decodeModel, dequantize } from "../ml/encoding.ts";

/** 1.0 in the oracle's fixed point. */
export const ORACLE_ONE = 1_000_000n;
const HALF_ONE = 500_000n;

/** Knots per unit of x in SIGMOID_TABLE. */
export const SIGMOID_STEPS_PER_UNIT = 8n;
/** σ(k / 8) · 1e6, rounded half up, for k = 0..128 (x from 0 to 16). */
export const SIGMOID_TABLE: readonly bigint[] = [
  500_000, 531_209, 562_177, 592_667, 622_459, 651_355, 679_179, 705_785, 731_059, 754_915, 777_300, 798_187,
  817_574, 835_484, 851_953, 867_036, 880_797, 893_309, 904_651, 914_901, 924_142, 932_453, 939_913, 946_597,
  952_574, 957_912, 962_673, 966_914, 970_688, 974_043, 977_023, 979_668, 982_014, 984_094, 985_936, 987_568,
  989_013, 990_292, 991_423, 992_423, 993_307, 994_089, 994_780, 995_390, 995_930, 996_406, 996_827, 997_199,
  997_527, 997_817, 998_073, 998_299, 998_499, 998_675, 998_830, 998_968, 999_089, 999_196, 999_290, 999_374,
  999_447, 999_512, 999_569, 999_620, 999_665, 999_704, 999_739, 999_769, 999_797, 999_820, 999_842, 999_860,
  999_877, 999_891, 999_904, 999_915, 999_925, 999_934, 999_942, 999_949, 999_955, 999_960, 999_965, 999_969,
  999_972, 999_976, 999_979, 999_981, 999_983, 999_985, 999_987, 999_989, 999_990, 999_991, 999_992, 999_993,
  999_994, 999_995, 999_995, 999_996, 999_996, 999_997, 999_997, 999_997, 999_998, 999_998, 999_998, 999_998,
  999_999, 999_999, 999_999, 999_999, 999_999, 999_999, 999_999, 999_999, 999_999, 1_000_000, 1_000_000,
  1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000,
  1_000_000,
].map(BigInt);

const SIGMOID_LAST = BigInt(SIGMOID_TABLE.length - 1);

/** Stated bound on |sigmoidFixed(x) / 1e6 − σ(x / 1e6)|. */
export const SIGMOID_MAX_ERROR = 2e-4;

export class FixedPointError extends Error {
  override name = "FixedPointError";
}

export type OutputActivation = "linear" | "sigmoid";

export interface DenseArchitecture {
  /** Layer widths from input to output. */
  sizes: number[];
  output: OutputActivation;
}

/** Parses an architecture id this module can run. */
export function parseDenseArchitecture(architecture: string): DenseArchitecture {
  const match = /^(mlp|logreg)-([0-9]+(?:-[0-9]+)+)(-sigmoid)?$/.exec(architecture);
  if (!match) {
    throw new FixedPointError(
      `Cannot run architecture ${JSON.stringify(architecture)}: expected mlp-<in>-<hidden...>-<out>[-sigmoid] or logreg-<in>-<out>`,
    );
  }
  const parts = (match[2] as string).split("-");
  const sizes = parts.map(Number);
  parts.forEach((p, i) => {
    const v = sizes[i] as number;
    if (!Number.isSafeInteger(v) || v < 1 || String(v) !== p)
      throw new FixedPointError(`Architecture ${JSON.stringify(architecture)}: bad layer width "${p}"`);
  });
  if (match[1] === "logreg" && (sizes.length !== 2 || match[3]))
    throw new FixedPointError(`Architecture ${JSON.stringify(architecture)}: logreg is logreg-<in>-<out>`);
  if (match[1] === "mlp" && sizes.length < 3)
    throw new FixedPointError(`Architecture ${JSON.stringify(architecture)}: mlp needs a hidden layer`);
  return { sizes, output: match[3] ? "sigmoid" : "linear" };
}

interface DenseLayer {
  inputs: number;
  outputs: number;
  kernel: Int32Array;
  bias: Int32Array;
}

function layersOf(model: CanonicalModel): { arch: DenseArchitecture; layers: DenseLayer[] } {
  const arch = parseDenseArchitecture(model.architecture);
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const layers: DenseLayer[] = [];
  for (let l = 0; l + 1 < arch.sizes.length; l++) {
    const inputs = arch.sizes[l] as number;
    const outputs = arch.sizes[l + 1] as number;
    const kernel = byName.get(`dense${l}.kernel`);
    const bias = byName.get(`dense${l}.bias`);
    const shapeIs = (shape: readonly number[] | undefined, want: number[]) =>
      shape !== undefined && shape.length === want.length && shape.every((d, i) => d === want[i]);
    if (!kernel || !shapeIs(kernel.shape, [inputs, outputs]))
      throw new FixedPointError(
        `${model.architecture}: needs tensor dense${l}.kernel [${inputs}, ${outputs}]`,
      );
    if (!bias || !shapeIs(bias.shape, [outputs]))
      throw new FixedPointError(`${model.architecture}: needs tensor dense${l}.bias [${outputs}]`);
    layers.push({ inputs, outputs, kernel: kernel.ints, bias: bias.ints });
  }
  if (model.tensors.length !== layers.length * 2)
    throw new FixedPointError(`${model.architecture}: has tensors the architecture does not name`);
  return { arch, layers };
}

/** σ(x) in fixed point (1e6 = 1.0) by the documented piecewise-linear table. */
export function sigmoidFixed(x: bigint): bigint {
  const negative = x < 0n;
  const t = (negative ? -x : x) * SIGMOID_STEPS_PER_UNIT;
  const k = t / ORACLE_ONE; // t >= 0: division truncates = floors
  let positive: bigint;
  if (k >= SIGMOID_LAST) {
    positive = ORACLE_ONE;
  } else {
    const f = t - k * ORACLE_ONE;
    const lo = SIGMOID_TABLE[Number(k)] as bigint;
    const hi = SIGMOID_TABLE[Number(k) + 1] as bigint;
    // hi >= lo and f >= 0, so the numerator is non-negative and / floors.
    positive = lo + ((hi - lo) * f + HALF_ONE) / ORACLE_ONE;
  }
  return negative ? ORACLE_ONE - positive : positive;
}

function toBigInt(v: bigint | number, i: number): bigint {
  if (typeof v === "bigint") return v;
  if (!Number.isSafeInteger(v))
    throw new FixedPointError(`input[${i}] = ${v} is not an integer; inputs are fixed point, 1e6 = 1.0`);
  return BigInt(v);
}

/**
 * Integer forward pass. `input`: the model's input width of fixed-point values (1e6 = 1.0). Returns the
 * outputs at 1e6. `model` is the canonical bytes or their decoded form.
 */
export function inferFixed(
  model: CanonicalModel | Uint8Array,
  input: readonly (bigint | number)[],
): bigint[] {
  const canonical = model instanceof Uint8Array ? decodeModel(model) : model;
  const { arch, layers } = layersOf(canonical);
  const first = layers[0] as DenseLayer;
  if (input.length !== first.inputs)
    throw new FixedPointError(`${canonical.architecture} takes ${first.inputs} inputs, got ${input.length}`);
  const s = BigInt(canonical.scaleBits);
  const half = s === 0n ? 0n : 1n << (s - 1n);
  let a = input.map(toBigInt);
  layers.forEach((layer, l) => {
    const last = l === layers.length - 1;
    const out: bigint[] = new Array(layer.outputs);
    for (let j = 0; j < layer.outputs; j++) {
      let acc = BigInt(layer.bias[j] as number) * ORACLE_ONE;
      for (let i = 0; i < layer.inputs; i++) {
        acc += BigInt(layer.kernel[i * layer.outputs + j] as number) * (a[i] as bigint);
      }
      const z = (acc + half) >> s;
      out[j] = last ? (arch.output === "sigmoid" ? sigmoidFixed(z) : z) : z > 0n ? z : 0n;
    }
    a = out;
  });
  return a;
}

/**
 * Reference float64 forward pass on the same (dequantized) weights, exact sigmoid; inputs and outputs
 * in real units. For tests and tolerances only: never use it where operators must agree.
 */
export function inferFloat(model: CanonicalModel | Uint8Array, input: readonly number[]): number[] {
  const canonical = model instanceof Uint8Array ? decodeModel(model) : model;
  const { arch, layers } = layersOf(canonical);
  if (input.length !== (layers[0] as DenseLayer).inputs)
    throw new FixedPointError(`${canonical.architecture}: wrong input width ${input.length}`);
  let a = [...input];
  layers.forEach((layer, l) => {
    const kernel = dequantize(layer.kernel, canonical.scaleBits);
    const bias = dequantize(layer.bias, canonical.scaleBits);
    const last = l === layers.length - 1;
    a = Array.from({ length: layer.outputs }, (_, j) => {
      let z = bias[j] as number;
      for (let i = 0; i < layer.inputs; i++)
        z += (kernel[i * layer.outputs + j] as number) * (a[i] as number);
      if (!last) return Math.max(0, z);
      return arch.output === "sigmoid" ? 1 / (1 + Math.exp(-z)) : z;
    });
  });
  return a;
}

/** Fixed point (1e6 = 1.0) to a number, for display and metrics. */
export function fromFixed(v: bigint): number {
  return Number(v) / Number(ORACLE_ONE);
}
