/**
 * Optional differential privacy for client updates (pure, no I/O): client-level DP in the style of
 * DP-FedAvg (McMahan et al. 2018), applied by each client to its own update before encoding.
 *
 *   delta   = local - global                               (all tensors as one flat vector)
 *   clipped = delta * min(1, C / ||delta||_2)              (L2 clipping to norm C)
 *   noisy   = clipped + N(0, (sigma * C)^2) per coordinate (sigma = noise multiplier)
 *   update  = global + noisy
 *
 * Client-level: the unit protected is a client's whole contribution in a round (all its samples), not
 * one training example. Because every client adds the full noise itself, the guarantee holds even
 * against the aggregator and the validators who see each update (no trusted server); the price is
 * that the noise in a mean of n updates has std sigma*C/sqrt(n) rather than sigma*C/n for noise added
 * once centrally.
 *
 * (epsilon, delta), roughly: the classic Gaussian mechanism (Dwork & Roth 2014, Thm A.1) is
 * (epsilon, delta)-DP when the noise std is at least Delta * sqrt(2 ln(1.25 / delta)) / epsilon for
 * epsilon < 1, Delta being the L2 sensitivity. With add/remove-one-client adjacency (DP-FedAvg's),
 * Delta = C, so sigma = sqrt(2 ln(1.25 / delta)) / epsilon; if a neighbouring input may replace the
 * client's data by anything, the clipped update can move by 2C and epsilon doubles for the same sigma.
 * This is one round only: no accounting across rounds (composition over T rounds costs roughly
 * sqrt(T) more with an RDP / moments accountant, which is not implemented). For epsilon >= 1 the
 * classic bound is not proven; use the analytic Gaussian mechanism (Balle & Wang 2018) there.
 *
 * Seeds: a seeded rng makes tests reproducible, but anyone who knows the seed can subtract the noise.
 * In production the seed must be secret and fresh (e.g. 32 random bytes from crypto.getRandomValues).
 */
import {
  type CanonicalModel,
  MAX_INT,
  type ModelTensor,
  QuantizationOverflowError,
  type QuantizedTensor,
} from "../ml/encoding.ts";
import { createRng, type Rng } from "../ml/partition.ts";

export interface DpOptions {
  /** L2 norm bound C on the update delta, in weight units (> 0). */
  clipNorm: number;
  /** sigma: the noise std is sigma * C. 0 clips without noise. */
  noiseMultiplier: number;
  /** Noise source; or `seed` to create one. Required when noiseMultiplier > 0. */
  rng?: Rng;
  seed?: number | string;
}

export interface DpReport {
  /** ||local - global||_2 before clipping. */
  normBefore: number;
  /** The factor the delta was multiplied by: min(1, C / normBefore). */
  clipFactor: number;
  /** Noise std per coordinate, sigma * C. */
  noiseStd: number;
}

function checkOptions(options: DpOptions): Rng | undefined {
  const { clipNorm, noiseMultiplier } = options;
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) {
    throw new RangeError(`DP: clipNorm must be a positive number, got ${clipNorm}`);
  }
  if (!(noiseMultiplier >= 0) || !Number.isFinite(noiseMultiplier)) {
    throw new RangeError(`DP: noiseMultiplier must be >= 0, got ${noiseMultiplier}`);
  }
  if (noiseMultiplier === 0) return undefined;
  if (options.rng) return options.rng;
  if (options.seed === undefined)
    throw new Error("DP: noise needs an rng or a seed (a secret one in production)");
  return createRng(options.seed);
}

function checkPairs(
  globalShapes: { name: string; shape: number[]; length: number }[],
  local: readonly ModelTensor[],
) {
  if (globalShapes.length !== local.length) {
    throw new Error(`DP: the local model has ${local.length} tensors, the global ${globalShapes.length}`);
  }
  globalShapes.forEach((g, i) => {
    const l = local[i] as ModelTensor;
    if (
      l.name !== g.name ||
      l.shape.length !== g.shape.length ||
      l.shape.some((d, k) => d !== g.shape[k]) ||
      l.values.length !== g.length
    ) {
      throw new Error(
        `DP: local tensor ${i} "${l.name}" [${l.shape.join("x")}] does not match global "${g.name}" [${g.shape.join("x")}]`,
      );
    }
  });
}

/**
 * The privatized delta as float64 arrays, one per tensor, given the global and local weights per
 * tensor. Noise is drawn tensor by tensor in row-major order.
 */
function privatize(
  global: readonly ArrayLike<number>[],
  local: readonly ArrayLike<number>[],
  options: DpOptions,
): { deltas: Float64Array[]; report: DpReport } {
  const rng = checkOptions(options);
  const deltas = global.map((g, t) => {
    const l = local[t] as ArrayLike<number>;
    const d = new Float64Array(g.length);
    for (let i = 0; i < g.length; i++) d[i] = (l[i] as number) - (g[i] as number);
    return d;
  });
  let squares = 0;
  for (const d of deltas) for (let i = 0; i < d.length; i++) squares += (d[i] as number) ** 2;
  const normBefore = Math.sqrt(squares);
  if (!Number.isFinite(normBefore)) throw new Error("DP: the update holds non-finite values");
  const C = options.clipNorm;
  const clipFactor = normBefore > C ? C / normBefore : 1;
  const noiseStd = options.noiseMultiplier * C;
  for (const d of deltas) {
    for (let i = 0; i < d.length; i++) {
      d[i] = (d[i] as number) * clipFactor + (rng ? noiseStd * rng.normal() : 0);
    }
  }
  return { deltas, report: { normBefore, clipFactor, noiseStd } };
}

/** L2 norm of all tensors' values together. */
export function l2Norm(tensors: readonly { values: ArrayLike<number> }[]): number {
  let squares = 0;
  for (const t of tensors) for (let i = 0; i < t.values.length; i++) squares += (t.values[i] as number) ** 2;
  return Math.sqrt(squares);
}

/**
 * Clips and noises a client's float weights relative to float global weights (same names and
 * shapes, in order); returns global + privatized delta as float32 tensors, ready for encodeModel.
 */
export function privatizeWeights(
  global: readonly ModelTensor[],
  local: readonly ModelTensor[],
  options: DpOptions,
): { tensors: ModelTensor[]; report: DpReport } {
  checkPairs(
    global.map((g) => ({ name: g.name, shape: g.shape, length: g.values.length })),
    local,
  );
  const { deltas, report } = privatize(
    global.map((g) => g.values),
    local.map((l) => l.values),
    options,
  );
  const tensors = global.map((g, t): ModelTensor => {
    const d = deltas[t] as Float64Array;
    const values = new Float32Array(d.length);
    for (let i = 0; i < d.length; i++) values[i] = (g.values[i] as number) + (d[i] as number);
    return { name: g.name, shape: [...g.shape], values };
  });
  return { tensors, report };
}

/**
 * Clips and noises a client's float weights against the canonical global model and quantizes the
 * result at the global's scale: ints = global.ints + round(privatized delta * 2^scaleBits), ties away
 * from zero. Throws QuantizationOverflowError if a weight leaves the int32 range.
 */
export function privatizeUpdate(
  global: CanonicalModel,
  local: readonly ModelTensor[],
  options: DpOptions,
): { model: CanonicalModel; report: DpReport } {
  const scale = 2 ** global.scaleBits;
  checkPairs(
    global.tensors.map((g) => ({ name: g.name, shape: g.shape, length: g.ints.length })),
    local,
  );
  // ints / 2^scaleBits is exact in a double (unlike float32 for |ints| >= 2^24).
  const globalValues = global.tensors.map((g) => Float64Array.from(g.ints, (v) => v / scale));
  const { deltas, report } = privatize(
    globalValues,
    local.map((l) => l.values),
    options,
  );
  const tensors = global.tensors.map((g, t): QuantizedTensor => {
    const d = deltas[t] as Float64Array;
    const ints = new Int32Array(d.length);
    for (let i = 0; i < d.length; i++) {
      const step = (d[i] as number) * scale;
      const q = (step < 0 ? -Math.round(-step) : Math.round(step)) + (g.ints[i] as number);
      if (!(Math.abs(q) <= MAX_INT)) {
        throw new QuantizationOverflowError(g.name, i, q / scale, global.scaleBits);
      }
      ints[i] = q;
    }
    return { name: g.name, shape: [...g.shape], ints };
  });
  return {
    model: { architecture: global.architecture, scaleBits: global.scaleBits, tensors },
    report,
  };
}

export type Adjacency = "add-remove" | "replace";

/**
 * Noise multiplier sigma for one round of (epsilon, delta)-DP under the classic Gaussian mechanism:
 * sqrt(2 ln(1.25 / delta)) / epsilon, times 2 for replace adjacency. epsilon must be in (0, 1).
 */
export function gaussianNoiseMultiplier(
  epsilon: number,
  delta: number,
  adjacency: Adjacency = "add-remove",
): number {
  if (!(epsilon > 0 && epsilon < 1)) {
    throw new RangeError(`The classic Gaussian mechanism bound needs 0 < epsilon < 1, got ${epsilon}`);
  }
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  return ((adjacency === "replace" ? 2 : 1) * Math.sqrt(2 * Math.log(1.25 / delta))) / epsilon;
}

/**
 * The epsilon of one round for a noise multiplier, by the same formula solved for epsilon. Values
 * >= 1 are outside the bound's proven range: read them as "no meaningful guarantee from this bound".
 */
export function gaussianEpsilon(
  noiseMultiplier: number,
  delta: number,
  adjacency: Adjacency = "add-remove",
): number {
  if (!(noiseMultiplier > 0)) throw new RangeError(`noiseMultiplier must be > 0, got ${noiseMultiplier}`);
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  return ((adjacency === "replace" ? 2 : 1) * Math.sqrt(2 * Math.log(1.25 / delta))) / noiseMultiplier;
}
