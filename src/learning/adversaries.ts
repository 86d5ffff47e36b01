/**
 * Simulated adversaries (pure, no I/O): each attack turns honest material (the global model, the
 * attacker's own honestly trained update, updates it can see) into what a malicious trainer submits,
 * so that strategies, validation and slashing can be tested against them.
 *
 *   label-flip      data poisoning: trains on y -> (classes - 1 - y) (9 - y on MNIST), submits the result
 *   sign-flip       global - s * (own - global): the honest step reversed and scaled
 *   gaussian-noise  global + N(0, sigma^2) per weight (sigma in weight units), no training
 *   noise-norm      global + a random direction scaled to `norm` x the mean norm of the colluders'
 *                   benign deltas: noise as large as an honest step (norm 1) or a few times larger
 *   alie            "A little is enough" (Baruch et al. 2019): per weight, mean - z * std of the honest
 *                   updates the colluders see; small enough to pass robust aggregators, z from n and f
 *   fang-trim       Fang et al. 2020, the attack on trimmed mean and median with partial knowledge: per
 *                   weight, a value beyond the colluders' benign extreme, against the benign direction
 *   fang-krum       Fang et al. 2020, the attack on Krum: global - lambda * sign(benign direction), lambda
 *                   the largest (by halving) that Krum over the colluders' updates would select
 *   min-max         Shejwalkar and Houmansadr (NDSS 2021): mean + gamma * p, gamma the largest keeping the
 *                   update within the colluders' largest pairwise distance of every benign update
 *   min-sum         the same, bounding the sum of squared distances to the benign updates instead
 *   backdoor        model replacement (Bagdasaryan et al. 2020): trains on digits stamped with a trigger
 *                   and relabelled to a target class, submits global + boost * (own - global)
 *   free-ride       submits the global model unchanged (claims a contribution, did no work)
 *   copy            an exact copy of another update; copy-noise: the copy plus N(0, sigma^2)
 *   no-show         submits nothing (the `noShow` marker)
 *
 * Results are rounded half away from zero and saturated to the canonical int32 range, so they always
 * encode. Under the protocol's commit-reveal an attacker cannot see others' updates before committing;
 * copy models a leak or a protocol without commit-reveal; the attacks that see "colluders" (noise-norm,
 * ALIE, Fang's, min-max, min-sum) model a collusion: the attackers share their own benign updates
 * (Fang's "partial knowledge"), never the honest trainers'. With a single colluder, what needs a spread
 * has none: ALIE, min-max and min-sum then submit the colluder's own benign update, fang-trim draws
 * from Fang's interval around that one update (its min and max), and fang-krum (Krum needs three
 * updates to select from) takes the step of its upper bound without the halving.
 */
import { type CanonicalModel, type QuantizedTensor, sameArchitecture } from "../ml/encoding.ts";
import { createRng, type Dataset, type Rng } from "../ml/partition.ts";
import { DEFAULT_BACKDOOR_TARGET, DEFAULT_POISON_FRACTION, poisonWithTrigger } from "./backdoor.ts";
import { krumSelect } from "./krum.ts";
import { type Address, cloneModel, roundHalfAway, saturate } from "./strategy.ts";

export interface NoShow {
  readonly kind: "no-show";
}

/** What a no-show submits: nothing. */
export const noShow: NoShow = Object.freeze({ kind: "no-show" as const });

export function isNoShow(value: unknown): value is NoShow {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "no-show";
}

function checkCompatible(what: string, reference: CanonicalModel, other: CanonicalModel): void {
  if (!sameArchitecture(reference, other) || reference.scaleBits !== other.scaleBits) {
    throw new Error(
      `${what}: model "${other.architecture}" (scaleBits ${other.scaleBits}) does not match "${reference.architecture}" (scaleBits ${reference.scaleBits})`,
    );
  }
}

/** A model with `reference`'s header and ints computed per coordinate (rounded and saturated). */
function mapInts(reference: CanonicalModel, f: (t: number, i: number) => number): CanonicalModel {
  return {
    architecture: reference.architecture,
    scaleBits: reference.scaleBits,
    tensors: reference.tensors.map((t, ti) => {
      const ints = new Int32Array(t.ints.length);
      for (let i = 0; i < ints.length; i++) ints[i] = saturate(roundHalfAway(f(ti, i)));
      return { name: t.name, shape: [...t.shape], ints };
    }),
  };
}

const intsOf = (model: CanonicalModel, t: number): Int32Array => (model.tensors[t] as QuantizedTensor).ints;

/**
 * Label flipping: a new dataset with y -> classes - 1 - y (the x array is shared, not copied; the
 * input is not modified). Labels must lie in 0..classes-1.
 */
export function flipLabels(dataset: Dataset, classes = 10): Dataset {
  const y = new Uint8Array(dataset.n);
  for (let i = 0; i < dataset.n; i++) {
    const label = dataset.y[i] as number;
    if (label >= classes) throw new RangeError(`flipLabels: label ${label} at ${i} is not below ${classes}`);
    y[i] = classes - 1 - label;
  }
  return { x: dataset.x, y, n: dataset.n };
}

/** Sign flipping: global - scale * (own - global); scale > 0 (scale 1 reverses the honest step). */
export function signFlip(global: CanonicalModel, own: CanonicalModel, scale: number): CanonicalModel {
  if (!(scale > 0) || !Number.isFinite(scale))
    throw new RangeError(`signFlip: scale must be > 0, got ${scale}`);
  checkCompatible("signFlip", global, own);
  return mapInts(global, (t, i) => {
    const g = intsOf(global, t)[i] as number;
    return g - scale * ((intsOf(own, t)[i] as number) - g);
  });
}

/** base + N(0, sigma^2) per weight, sigma in weight units (sigma * 2^scaleBits in ints). */
export function gaussianNoise(base: CanonicalModel, sigma: number, rng: Rng): CanonicalModel {
  if (!(sigma >= 0) || !Number.isFinite(sigma))
    throw new RangeError(`gaussianNoise: sigma must be >= 0, got ${sigma}`);
  const std = sigma * 2 ** base.scaleBits;
  return mapInts(base, (t, i) => (intsOf(base, t)[i] as number) + std * rng.normal());
}

/** Free riding: the global model unchanged. */
export function freeRide(global: CanonicalModel): CanonicalModel {
  return cloneModel(global);
}

/** Copying: an exact copy of another participant's update. */
export function copyUpdate(victim: CanonicalModel): CanonicalModel {
  return cloneModel(victim);
}

/** Copying with small noise, to dodge an exact-duplicate check: victim + N(0, sigma^2). */
export function copyWithNoise(victim: CanonicalModel, sigma: number, rng: Rng): CanonicalModel {
  return gaussianNoise(victim, sigma, rng);
}

/**
 * Inverse standard normal CDF (Acklam's rational approximation, relative error below 1.2e-9).
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  const tail = (q: number) =>
    (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  const low = 0.02425;
  if (p < low) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - low) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}

/**
 * ALIE's z for n clients of which f collude (Baruch et al. 2019, Algorithm 1): the attackers need
 * s = floor(n/2 + 1) - f honest "supporters", and z = Phi^-1((n - s) / n), the largest shift that
 * keeps the malicious value closer to the mean than that many honest values.
 */
export function alieZ(n: number, f: number): number {
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(f) || f < 0 || f >= n) {
    throw new RangeError(`alieZ: need integers 0 <= f < n, got n = ${n}, f = ${f}`);
  }
  const s = Math.floor(n / 2 + 1) - f;
  const p = (n - s) / n;
  if (!(p > 0 && p < 1)) throw new RangeError(`alieZ: no valid z for n = ${n}, f = ${f} (p = ${p})`);
  return normalQuantile(p);
}

/**
 * "A little is enough": per weight, mean - z * std over the honest updates the colluders see
 * (population std, computed in float64 from the ints; translation invariant, so the same on deltas).
 */
export function alie(
  global: CanonicalModel,
  honest: readonly CanonicalModel[],
  params: { z: number } | { n: number; f: number },
): CanonicalModel {
  if (honest.length === 0) throw new Error("alie: needs at least one honest update to imitate");
  for (const h of honest) checkCompatible("alie", global, h);
  const z = "z" in params ? params.z : alieZ(params.n, params.f);
  if (!Number.isFinite(z)) throw new RangeError(`alie: z must be finite, got ${z}`);
  const k = honest.length;
  return mapInts(global, (t, i) => {
    let sum = 0;
    for (const h of honest) sum += intsOf(h, t)[i] as number;
    const mean = sum / k;
    let squares = 0;
    for (const h of honest) squares += ((intsOf(h, t)[i] as number) - mean) ** 2;
    return mean - z * Math.sqrt(squares / k);
  });
}

/** A model's weights flattened over its tensors (ints, as float64). */
function flatOf(model: CanonicalModel): Float64Array {
  const flat = new Float64Array(model.tensors.reduce((a, t) => a + t.ints.length, 0));
  let k = 0;
  for (const t of model.tensors) for (const v of t.ints) flat[k++] = v;
  return flat;
}

/** A model with `reference`'s header and the flat weights given (rounded and saturated). */
function fromFlat(reference: CanonicalModel, flat: ArrayLike<number>): CanonicalModel {
  const offsets: number[] = [];
  let k = 0;
  for (const t of reference.tensors) {
    offsets.push(k);
    k += t.ints.length;
  }
  return mapInts(reference, (t, i) => flat[(offsets[t] as number) + i] as number);
}

const squaredGap = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let sum = 0;
  for (let j = 0; j < a.length; j++) sum += ((a[j] as number) - (b[j] as number)) ** 2;
  return sum;
};

const norm2 = (v: ArrayLike<number>): number => {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += (v[i] as number) ** 2;
  return Math.sqrt(sum);
};

/** The colluders' benign updates as flat offsets from the global model. */
function benignDeltas(
  caller: string,
  global: CanonicalModel,
  benign: readonly CanonicalModel[],
): Float64Array[] {
  if (benign.length === 0) throw new Error(`${caller}: needs at least one benign update of the colluders`);
  for (const b of benign) checkCompatible(caller, global, b);
  const g = flatOf(global);
  return benign.map((b) => flatOf(b).map((v, j) => v - (g[j] as number)));
}

function meanOf(vectors: readonly Float64Array[]): Float64Array {
  const mean = new Float64Array((vectors[0] as Float64Array).length);
  for (const v of vectors)
    for (let j = 0; j < mean.length; j++) mean[j] = (mean[j] as number) + (v[j] as number);
  return mean.map((s) => s / vectors.length);
}

/** global + a flat offset. */
const offsetBy = (global: CanonicalModel, delta: Float64Array) => {
  const g = flatOf(global);
  return fromFlat(
    global,
    delta.map((d, j) => (g[j] as number) + d),
  );
};

/**
 * Noise at the honest norm: global + a uniformly random direction (a normalized Gaussian vector) of
 * length `norm` x the mean L2 norm of the colluders' benign deltas. Unlike a fixed sigma it stays as
 * large as an honest step whatever the model, learning rate and round, so a norm screen cannot tell it.
 */
export function noiseAtNorm(
  global: CanonicalModel,
  benign: readonly CanonicalModel[],
  norm: number,
  rng: Rng,
): CanonicalModel {
  if (!(norm >= 0) || !Number.isFinite(norm)) {
    throw new RangeError(`noiseAtNorm: norm must be >= 0, got ${norm}`);
  }
  const deltas = benignDeltas("noiseAtNorm", global, benign);
  const length = (norm * deltas.reduce((a, d) => a + norm2(d), 0)) / deltas.length;
  const direction = new Float64Array((deltas[0] as Float64Array).length).map(() => rng.normal());
  const scale = length / norm2(direction);
  return offsetBy(
    global,
    direction.map((v) => v * scale),
  );
}

/**
 * Fang et al. 2020's attack on trimmed mean and median, partial knowledge: per weight, s the sign of
 * the colluders' mean benign change; where the benign models move up (s > 0), a value drawn uniformly
 * below their smallest weight w_min, in [w_min / b, w_min] if w_min > 0 and [b * w_min, w_min] if not;
 * where they move down, symmetrically above the largest weight. Weights that do not move stay at the
 * benign mean. It works on weights, as the paper does, so b (> 1) scales weights, not steps. Lying
 * beyond every benign value, the crafted ones that trimming does not cut pull the mean the wrong way.
 */
export function fangTrim(
  global: CanonicalModel,
  benign: readonly CanonicalModel[],
  b: number,
  rng: Rng,
): CanonicalModel {
  if (!(b > 1) || !Number.isFinite(b)) throw new RangeError(`fangTrim: b must be > 1, got ${b}`);
  const direction = meanOf(benignDeltas("fangTrim", global, benign));
  const weights = benign.map(flatOf);
  const mean = meanOf(weights);
  const crafted = direction.map((s, j) => {
    if (s === 0) return mean[j] as number;
    let extreme = weights[0]?.[j] as number;
    for (const w of weights)
      extreme = s > 0 ? Math.min(extreme, w[j] as number) : Math.max(extreme, w[j] as number);
    // Below the smallest when the benign move up, above the largest when they move down.
    const far = s > 0 === extreme > 0 ? extreme / b : extreme * b;
    return extreme + rng.next() * (far - extreme);
  });
  return fromFlat(global, crafted);
}

/** Fang's stopping threshold for the halving of lambda, in ints (a step of less changes no weight). */
const FANG_KRUM_EPSILON = 1;

/** Addresses for the updates of a simulated Krum selection: 0x00..01, 0x00..02, ... */
const simulatedAddress = (k: number): Address => `0x${(k + 1).toString(16).padStart(40, "0")}`;

/**
 * Fang et al. 2020's upper bound on lambda against Krum, on the colluders' c benign updates standing
 * in for the benign ones (partial knowledge): the smallest mean distance of one of them to the others,
 * plus their largest distance to the global, both over sqrt(d). One colluder: the second term alone.
 */
export function fangKrumBound(global: CanonicalModel, benign: readonly CanonicalModel[]): number {
  const deltas = benignDeltas("fangKrum", global, benign);
  const c = deltas.length;
  let spread = c > 1 ? Number.POSITIVE_INFINITY : 0;
  for (let i = 0; i < c && c > 1; i++) {
    let sum = 0;
    for (let l = 0; l < c; l++) {
      if (l !== i) sum += Math.sqrt(squaredGap(deltas[i] as Float64Array, deltas[l] as Float64Array));
    }
    spread = Math.min(spread, sum / (c - 1));
  }
  return (spread + Math.max(...deltas.map(norm2))) / Math.sqrt((deltas[0] as Float64Array).length);
}

/**
 * Fang et al. 2020's lambda against Krum, partial knowledge: fangKrumBound halved until Krum
 * (krum.ts, its default f) run over the colluders' benign updates and f copies of global - lambda * s
 * selects a copy, or until lambda drops below FANG_KRUM_EPSILON (then that small lambda, as in the
 * paper). Fewer than 3 updates leave Krum undefined: the bound itself. s is the sign of the
 * colluders' mean benign change.
 */
export function fangKrumLambda(global: CanonicalModel, benign: readonly CanonicalModel[], f: number): number {
  if (!Number.isSafeInteger(f) || f < 1)
    throw new RangeError(`fangKrum: f must be a positive integer, got ${f}`);
  let lambda = fangKrumBound(global, benign);
  const c = benign.length;
  if (c + f < 3) return lambda;
  const updates = benign.map((model, k) => ({ participant: simulatedAddress(k), samples: 1, model }));
  const crafted = new Set(Array.from({ length: f }, (_, k) => simulatedAddress(c + k)));
  for (; lambda >= FANG_KRUM_EPSILON; lambda /= 2) {
    const model = fangKrum(global, benign, lambda);
    const all = [...updates, ...[...crafted].map((participant) => ({ participant, samples: 1, model }))];
    if (crafted.has(krumSelect(global, all, {}).selected[0] as Address)) break;
  }
  return lambda;
}

/** Fang's crafted model against Krum for a lambda: global - lambda * sign(mean benign change), per weight. */
export function fangKrum(
  global: CanonicalModel,
  benign: readonly CanonicalModel[],
  lambda: number,
): CanonicalModel {
  if (!(lambda >= 0) || !Number.isFinite(lambda)) {
    throw new RangeError(`fangKrum: lambda must be >= 0, got ${lambda}`);
  }
  return offsetBy(
    global,
    meanOf(benignDeltas("fangKrum", global, benign)).map((s) => -lambda * Math.sign(s)),
  );
}

/** The perturbation directions of min-max and min-sum (Shejwalkar and Houmansadr 2021). */
export const PERTURBATIONS = ["std", "unit", "sign"] as const;
export type Perturbation = (typeof PERTURBATIONS)[number];

/**
 * The test of min-max (max_i ||m - b_i|| <= max_ij ||b_i - b_j||) or min-sum (sum_i ||m - b_i||^2 <=
 * max_i sum_j ||b_i - b_j||^2) for a crafted offset m, over the benign offsets b (bound computed once).
 */
export function boundTest(
  kind: "min-max" | "min-sum",
  benign: readonly Float64Array[],
): (m: ArrayLike<number>) => boolean {
  let bound = 0;
  for (const a of benign) {
    const gaps = benign.map((b) => squaredGap(a, b));
    bound = Math.max(bound, kind === "min-max" ? Math.max(...gaps) : gaps.reduce((s, g) => s + g, 0));
  }
  if (kind === "min-max") return (m) => benign.every((b) => squaredGap(m, b) <= bound);
  return (m) => benign.reduce((s, b) => s + squaredGap(m, b), 0) <= bound;
}

/** The perturbation p of min-max and min-sum: -std, -mean / ||mean|| or -sign(mean), per weight. */
export function perturbationOf(benign: readonly Float64Array[], kind: Perturbation): Float64Array {
  const mean = meanOf(benign);
  if (kind === "sign") return mean.map((v) => -Math.sign(v));
  if (kind === "unit") {
    const length = norm2(mean);
    return mean.map((v) => (length === 0 ? 0 : -v / length));
  }
  return mean.map(
    (mu, j) => -Math.sqrt(benign.reduce((s, b) => s + ((b[j] as number) - mu) ** 2, 0) / benign.length),
  );
}

/**
 * The largest gamma >= 0 such that mean + gamma * p satisfies the bound (boundTest), by doubling
 * then 60 bisection steps: the feasible gammas form an interval that holds 0 (the mean is within
 * both bounds and the distances are convex in gamma). 0 when p is zero (one colluder: no spread).
 */
export function optimalGamma(
  kind: "min-max" | "min-sum",
  benign: readonly Float64Array[],
  p: Float64Array,
): number {
  if (norm2(p) === 0) return 0;
  const mean = meanOf(benign);
  const within = boundTest(kind, benign);
  const ok = (gamma: number) => within(mean.map((mu, j) => mu + gamma * (p[j] as number)));
  let low = 0;
  let high = 1;
  while (ok(high)) {
    low = high;
    high *= 2;
  }
  for (let step = 0; step < 60; step++) {
    const middle = (low + high) / 2;
    if (ok(middle)) low = middle;
    else high = middle;
  }
  return low;
}

/** Min-max or min-sum: global + mean benign offset + gamma * p, gamma from optimalGamma. */
export function minMaxSum(
  kind: "min-max" | "min-sum",
  global: CanonicalModel,
  benign: readonly CanonicalModel[],
  perturbation: Perturbation,
): CanonicalModel {
  const deltas = benignDeltas(kind, global, benign);
  const p = perturbationOf(deltas, perturbation);
  const gamma = optimalGamma(kind, deltas, p);
  return offsetBy(
    global,
    meanOf(deltas).map((mu, j) => mu + gamma * (p[j] as number)),
  );
}

/**
 * Model replacement: global + boost * (own - global). Shared by the colluders, boost = n / f makes the
 * FedAvg of n equally weighted updates land near the backdoored model; boost 1 is plain data poisoning.
 */
export function modelReplacement(global: CanonicalModel, own: CanonicalModel, boost: number): CanonicalModel {
  if (!(boost > 0) || !Number.isFinite(boost)) {
    throw new RangeError(`modelReplacement: boost must be > 0, got ${boost}`);
  }
  checkCompatible("modelReplacement", global, own);
  return mapInts(global, (t, i) => {
    const g = intsOf(global, t)[i] as number;
    return g + boost * ((intsOf(own, t)[i] as number) - g);
  });
}

export const ATTACK_NAMES = [
  "none",
  "label-flip",
  "sign-flip",
  "gaussian-noise",
  "noise-norm",
  "alie",
  "fang-trim",
  "fang-krum",
  "min-max",
  "min-sum",
  "backdoor",
  "free-ride",
  "copy",
  "copy-noise",
  "no-show",
] as const;
export type AttackName = (typeof ATTACK_NAMES)[number];

export interface AttackParams {
  /**
   * sign-flip: s (default 1); fang-trim: b (default DEFAULT_FANG_B); backdoor: the boost (default
   * n / f, model replacement; 1 is plain data poisoning).
   */
  scale?: number;
  /** gaussian-noise, copy-noise: noise std in weight units (defaults 1 and 0.001). */
  sigma?: number;
  /** noise-norm: length as a multiple of the colluders' mean benign norm (default 1). */
  norm?: number;
  /** alie: z directly, or n clients and f colluders to derive it (default: n = visible + 1, f = 1). */
  z?: number;
  /** alie (see z) and backdoor (boost n / f): clients and attackers. */
  n?: number;
  f?: number;
  /** min-max, min-sum: the direction p pushed along (default "std": -std per weight). */
  perturbation?: Perturbation;
  /** backdoor: the class triggered digits are relabelled to (default DEFAULT_BACKDOOR_TARGET). */
  target?: number;
  /** backdoor: share of the attacker's samples stamped and relabelled (default DEFAULT_POISON_FRACTION). */
  fraction?: number;
  /** classes for label-flip (default 10). */
  classes?: number;
  /** Seeds the noise when the context gives no rng. */
  seed?: number | string;
}

export interface AttackContext {
  global: CanonicalModel;
  /** The attacker's own trained update (on poisoned data for label-flip). */
  own?: CanonicalModel;
  /** Updates the attacker sees (see Attack.sees): the colluders' benign updates, or the victim (copy). */
  visible?: readonly CanonicalModel[];
  rng?: Rng;
}

export interface Attack {
  name: AttackName;
  /** Whether the attacker trains locally at all (and so needs `own` in the context). */
  trains: boolean;
  /**
   * What `visible` must hold: "colluders" the benign updates of every attacker (its own included, in
   * client order), "victim" an honest update of the previous round, "nothing" none.
   */
  sees: "nothing" | "colluders" | "victim";
  /** Applied to the attacker's training data before local training; identity except label-flip. */
  poisonData(dataset: Dataset): Dataset;
  /** What the attacker submits. */
  craft(context: AttackContext): CanonicalModel | NoShow;
}

function need<T>(value: T | undefined, attack: string, what: string): T {
  if (value === undefined) throw new Error(`Attack ${attack} needs ${what} in its context`);
  return value;
}

/** Fang's default factor b against trimmed mean and median (the paper's choice). */
export const DEFAULT_FANG_B = 2;

/** The attack of a name, with its parameters. "none" is the honest behaviour. */
export function attackByName(name: string, params: AttackParams = {}): Attack {
  if (!(ATTACK_NAMES as readonly string[]).includes(name)) {
    throw new Error(`Unknown attack "${name}"; expected one of ${ATTACK_NAMES.join(", ")}`);
  }
  const attack = name as AttackName;
  const identity = (dataset: Dataset) => dataset;
  const rngOf = (context: AttackContext) => context.rng ?? createRng(params.seed ?? attack);
  const own = (context: AttackContext) => need(context.own, attack, "own");
  const victim = (context: AttackContext) =>
    need(context.visible?.[0], attack, "a visible update to copy (visible[0])");
  // One colluder alone, or a caller without the pool, has only its own update to go by.
  const colluders = (context: AttackContext) =>
    context.visible && context.visible.length > 0 ? context.visible : [own(context)];
  const trained = (
    craft: (context: AttackContext) => CanonicalModel,
    sees: Attack["sees"] = "nothing",
  ): Attack => ({
    name: attack,
    trains: true,
    sees,
    poisonData: identity,
    craft,
  });
  const untrained = (craft: Attack["craft"], sees: Attack["sees"] = "nothing"): Attack => ({
    name: attack,
    trains: false,
    sees,
    poisonData: identity,
    craft,
  });
  switch (attack) {
    case "none":
      return trained((context) => cloneModel(own(context)));
    case "label-flip": {
      const classes = params.classes ?? 10;
      return { ...trained((context) => cloneModel(own(context))), poisonData: (d) => flipLabels(d, classes) };
    }
    case "sign-flip":
      return trained((context) => signFlip(context.global, own(context), params.scale ?? 1));
    case "gaussian-noise":
      return untrained((context) => gaussianNoise(context.global, params.sigma ?? 1, rngOf(context)));
    case "noise-norm":
      return trained(
        (context) => noiseAtNorm(context.global, colluders(context), params.norm ?? 1, rngOf(context)),
        "colluders",
      );
    case "alie":
      return trained((context) => {
        const visible = colluders(context);
        const z = params.z ?? alieZ(params.n ?? visible.length + 1, params.f ?? 1);
        return alie(context.global, visible, { z });
      }, "colluders");
    case "fang-trim":
      return trained(
        (context) =>
          fangTrim(context.global, colluders(context), params.scale ?? DEFAULT_FANG_B, rngOf(context)),
        "colluders",
      );
    case "fang-krum":
      return trained((context) => {
        const visible = colluders(context);
        return fangKrum(context.global, visible, fangKrumLambda(context.global, visible, visible.length));
      }, "colluders");
    case "min-max":
    case "min-sum":
      return trained(
        (context) => minMaxSum(attack, context.global, colluders(context), params.perturbation ?? "std"),
        "colluders",
      );
    case "backdoor": {
      const target = params.target ?? DEFAULT_BACKDOOR_TARGET;
      const fraction = params.fraction ?? DEFAULT_POISON_FRACTION;
      const boost = params.scale ?? (params.n ?? 1) / (params.f ?? 1);
      return {
        ...trained((context) => modelReplacement(context.global, own(context), boost)),
        poisonData: (d) => poisonWithTrigger(d, fraction, target),
      };
    }
    case "free-ride":
      return untrained((context) => freeRide(context.global));
    case "copy":
      return untrained((context) => copyUpdate(victim(context)), "victim");
    case "copy-noise":
      return untrained(
        (context) => copyWithNoise(victim(context), params.sigma ?? 0.001, rngOf(context)),
        "victim",
      );
    case "no-show":
      return untrained(() => noShow);
  }
}
