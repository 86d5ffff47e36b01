/**
 * Simulated adversaries (pure, no I/O): each attack turns honest material (the global model, the
 * attacker's own honestly trained update, updates it can see) into what a malicious trainer submits,
 * so that strategies, validation and slashing can be tested against them.
 *
 *   label-flip      data poisoning: trains on y -> (classes - 1 - y) (9 - y on MNIST), submits the result
 *   sign-flip       global - s * (own - global): the honest step reversed and scaled
 *   gaussian-noise  global + N(0, sigma^2) per weight (sigma in weight units), no training
 *   alie            "A little is enough" (Baruch et al. 2019): per weight, mean - z * std of the honest
 *                   updates the colluders see; small enough to pass robust aggregators, z from n and f
 *   free-ride       submits the global model unchanged (claims a contribution, did no work)
 *   copy            an exact copy of another update; copy-noise: the copy plus N(0, sigma^2)
 *   no-show         submits nothing (the `noShow` marker)
 *
 * Results are rounded half away from zero and saturated to the canonical int32 range, so they always
 * encode. Under the protocol's commit-reveal an attacker cannot see others' updates before committing;
 * copy and ALIE model a leak, a collusion among attackers (ALIE's colluders share their own benign
 * updates), or a protocol without commit-reveal.
 */
import { type CanonicalModel, type QuantizedTensor, sameArchitecture } from "../ml/encoding.ts";
import { createRng, type Dataset, type Rng } from "../ml/partition.ts";
import { cloneModel, roundHalfAway, saturate } from "./strategy.ts";

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

export const ATTACK_NAMES = [
  "none",
  "label-flip",
  "sign-flip",
  "gaussian-noise",
  "alie",
  "free-ride",
  "copy",
  "copy-noise",
  "no-show",
] as const;
export type AttackName = (typeof ATTACK_NAMES)[number];

export interface AttackParams {
  /** sign-flip: s (default 1). */
  scale?: number;
  /** gaussian-noise, copy-noise: noise std in weight units (defaults 1 and 0.001). */
  sigma?: number;
  /** alie: z directly, or n clients and f colluders to derive it (default: n = visible + 1, f = 1). */
  z?: number;
  n?: number;
  f?: number;
  /** classes for label-flip (default 10). */
  classes?: number;
  /** Seeds the noise when the context gives no rng. */
  seed?: number | string;
}

export interface AttackContext {
  global: CanonicalModel;
  /** The attacker's own trained update (on poisoned data for label-flip). */
  own?: CanonicalModel;
  /** Honest updates the attacker sees: colluders' benign updates (alie), the victim first (copy). */
  visible?: readonly CanonicalModel[];
  rng?: Rng;
}

export interface Attack {
  name: AttackName;
  /** Whether the attacker trains locally at all (and so needs `own` in the context). */
  trains: boolean;
  /** Applied to the attacker's training data before local training; identity except label-flip. */
  poisonData(dataset: Dataset): Dataset;
  /** What the attacker submits. */
  craft(context: AttackContext): CanonicalModel | NoShow;
}

function need<T>(value: T | undefined, attack: string, what: string): T {
  if (value === undefined) throw new Error(`Attack ${attack} needs ${what} in its context`);
  return value;
}

/** The attack of a name, with its parameters. "none" is the honest behaviour. */
export function attackByName(name: string, params: AttackParams = {}): Attack {
  if (!(ATTACK_NAMES as readonly string[]).includes(name)) {
    throw new Error(`Unknown attack "${name}"; expected one of ${ATTACK_NAMES.join(", ")}`);
  }
  const attack = name as AttackName;
  const identity = (dataset: Dataset) => dataset;
  const rngOf = (context: AttackContext) => context.rng ?? createRng(params.seed ?? attack);
  const own = (context: AttackContext) => cloneModel(need(context.own, attack, "the attacker's own update"));
  const victim = (context: AttackContext) =>
    need(context.visible?.[0], attack, "a visible update to copy (visible[0])");
  switch (attack) {
    case "none":
      return { name: attack, trains: true, poisonData: identity, craft: own };
    case "label-flip": {
      const classes = params.classes ?? 10;
      return { name: attack, trains: true, poisonData: (d) => flipLabels(d, classes), craft: own };
    }
    case "sign-flip": {
      const scale = params.scale ?? 1;
      return {
        name: attack,
        trains: true,
        poisonData: identity,
        craft: (context) => signFlip(context.global, need(context.own, attack, "own"), scale),
      };
    }
    case "gaussian-noise": {
      const sigma = params.sigma ?? 1;
      return {
        name: attack,
        trains: false,
        poisonData: identity,
        craft: (context) => gaussianNoise(context.global, sigma, rngOf(context)),
      };
    }
    case "alie":
      return {
        name: attack,
        trains: true,
        poisonData: identity,
        craft: (context) => {
          const visible = context.visible ?? (context.own ? [context.own] : []);
          const z = params.z ?? alieZ(params.n ?? visible.length + 1, params.f ?? 1);
          return alie(context.global, visible, { z });
        },
      };
    case "free-ride":
      return {
        name: attack,
        trains: false,
        poisonData: identity,
        craft: (context) => freeRide(context.global),
      };
    case "copy":
      return {
        name: attack,
        trains: false,
        poisonData: identity,
        craft: (context) => copyUpdate(victim(context)),
      };
    case "copy-noise": {
      const sigma = params.sigma ?? 0.001;
      return {
        name: attack,
        trains: false,
        poisonData: identity,
        craft: (context) => copyWithNoise(victim(context), sigma, rngOf(context)),
      };
    }
    case "no-show":
      return { name: attack, trains: false, poisonData: identity, craft: () => noShow };
  }
}
