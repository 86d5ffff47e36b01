/**
 * Synthetic crop-yield-loss data for the crop-insurance oracle (pure, seeded, no I/O).
 *
 * No real agronomic data set ships in an npm package here, so this is a documented generator, not
 * observations: it draws plausible weather and soil conditions per (region, season) and computes the
 * yield loss from a stated agronomic relation plus noise. A model trained on it learns that relation;
 * it says nothing about any real farm, and the model card says so.
 *
 * Features of one (region, season), raw units:
 *   rainfallDeficit  fraction of the normal seasonal rain that did not fall, in [0, 1]
 *   heatDays         days with a maximum above 35 °C during the growing season, 0..60
 *   soilMoisture     volumetric soil water content at flowering (m³/m³), 0.05..0.45
 *   growingDegreeDays  thermal time over the season (base 10 °C), 900..2300 °C·d
 *
 * The relation (maize, rain-fed):
 *   1. Soil water availability w = clip((θ − θwp) / (θfc − θwp), 0, 1) with a loam's field capacity
 *      θfc = 0.32 and wilting point θwp = 0.12 (FAO-56, Table 19 ranges).
 *   2. Relative evapotranspiration deficit e = clip(0.7 · deficit + 0.3 · (1 − w), 0, 1): the crop
 *      misses water when the rain falls short and when the soil store it draws on is depleted.
 *   3. Water-stress loss Lw = min(1, Ky · e), the FAO-33 yield response (Doorenbos & Kassam 1979):
 *      1 − Ya/Ym = Ky · (1 − ETa/ETm). FAO-33 tabulates Ky = 1.25 for maize over the whole season
 *      (field estimates lie around 1.1–1.3); we use Ky = 1.25.
 *   4. Heat loss Lh = min(1, 0.01 · heatDays · (1 + 0.7 · e)): about 1 % of yield per hot day with
 *      enough water, 1.7 % under full water stress, after Lobell et al. (2011, Nature Climate Change),
 *      who found each degree-day above 30 °C cost maize 1 % under optimal rain and 1.7 % under drought;
 *      heat and drought compound (closed stomata cannot cool the canopy, pollen fails above ~35 °C).
 *   5. Phenology loss Lg = 0.08 · clip((GDD − 1700) / 400, 0, 1): a hot season accumulates thermal
 *      time fast and shortens grain filling.
 *   6. Expected loss L = 1 − (1 − Lw)(1 − Lh)(1 − Lg): each stress removes a share of what the others
 *      left. Observed loss y = clip(L + N(0, 0.04²), 0, 1), the noise standing for everything the
 *      four features do not see (management, pests, hail, measurement).
 *
 * Conditions: each region has an aridity a ~ U(0, 1); each season a drought anomaly z ~ N(0, 1) that
 * moves all four features together (dry years are hot years), plus independent noise per feature.
 * Sample i is region i mod REGIONS, season floor(i / REGIONS).
 *
 * Features handed to models are normalized to about [0, 1] (see `normalizeFeatures`); the oracle's
 * inputs are those normalized values in fixed point, 1_000_000 = 1.0 (`toOracleInput`).
 */
import { createRng } from "../ml/partition.ts";

export const FEATURE_NAMES = ["rainfallDeficit", "heatDays", "soilMoisture", "growingDegreeDays"] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];
export const FEATURE_COUNT = FEATURE_NAMES.length;

/** Regions the generator cycles through. */
export const REGIONS = 40;

/** Crop yield response factor to water (FAO-33, maize, whole season). */
export const KY_MAIZE = 1.25;
/** Loam field capacity and permanent wilting point (m³/m³). */
export const FIELD_CAPACITY = 0.32;
export const WILTING_POINT = 0.12;
/** Standard deviation of the observation noise added to the expected loss. */
export const NOISE_SD = 0.04;

/** The oracle's fixed-point scale: 1_000_000 = 1.0. */
export const ORACLE_SCALE = 1_000_000;

export interface RawConditions {
  rainfallDeficit: number;
  heatDays: number;
  soilMoisture: number;
  growingDegreeDays: number;
}

/** How each raw feature maps to the model's [0, 1] input: (raw − min) / (max − min). */
export const FEATURE_RANGES: Record<FeatureName, { min: number; max: number; unit: string }> = {
  rainfallDeficit: { min: 0, max: 1, unit: "fraction of normal seasonal rain" },
  heatDays: { min: 0, max: 60, unit: "days above 35 °C" },
  soilMoisture: { min: 0.05, max: 0.45, unit: "m³/m³ volumetric water content" },
  growingDegreeDays: { min: 900, max: 2300, unit: "°C·d, base 10 °C" },
};

export interface YieldData {
  /** n rows of FEATURE_COUNT normalized features, row-major. */
  x: Float32Array;
  /** Observed relative yield loss in [0, 1]. */
  y: Float32Array;
  /** The expected loss before noise: the best any model can do on average. */
  expected: Float32Array;
  n: number;
  featureNames: readonly FeatureName[];
  region: Uint16Array;
  season: Uint16Array;
}

const clip = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** The stated relation: expected relative yield loss (no noise) of raw conditions. */
export function expectedYieldLoss(c: RawConditions): number {
  const w = clip((c.soilMoisture - WILTING_POINT) / (FIELD_CAPACITY - WILTING_POINT), 0, 1);
  const e = clip(0.7 * c.rainfallDeficit + 0.3 * (1 - w), 0, 1);
  const lw = Math.min(1, KY_MAIZE * e);
  const lh = Math.min(1, 0.01 * c.heatDays * (1 + 0.7 * e));
  const lg = 0.08 * clip((c.growingDegreeDays - 1700) / 400, 0, 1);
  return 1 - (1 - lw) * (1 - lh) * (1 - lg);
}

/** Raw conditions to the model's normalized features, in FEATURE_NAMES order. */
export function normalizeFeatures(c: RawConditions): number[] {
  return FEATURE_NAMES.map((name) => {
    const { min, max } = FEATURE_RANGES[name];
    return (c[name] - min) / (max - min);
  });
}

/** Normalized features to the oracle's fixed-point input (round half away from zero, 1e6 = 1.0). */
export function toOracleInput(features: readonly number[]): bigint[] {
  return features.map((v) => {
    if (!Number.isFinite(v)) throw new Error(`toOracleInput: feature ${v} is not finite`);
    const m = Math.round(Math.abs(v) * ORACLE_SCALE);
    return BigInt(v < 0 ? -m : m);
  });
}

/** Draws the raw conditions of one season in a region of the given aridity. */
function drawConditions(aridity: number, rng: ReturnType<typeof createRng>): RawConditions {
  const z = rng.normal();
  return {
    rainfallDeficit: clip(0.05 + 0.2 * aridity + 0.14 * z + 0.05 * rng.normal(), 0, 1),
    heatDays: clip(Math.round(3 + 7 * aridity + 4 * z + 2.5 * rng.normal()), 0, 60),
    soilMoisture: clip(0.31 - 0.05 * aridity - 0.04 * z + 0.03 * rng.normal(), 0.05, 0.45),
    growingDegreeDays: clip(1450 + 250 * aridity + 100 * z + 80 * rng.normal(), 900, 2300),
  };
}

/**
 * `n` (region, season) samples, reproducible from `seed` on every machine (up to the last bit of
 * float rounding in Math.log/sqrt/cos of the normal draws, which the canonical encoding of anything
 * derived from it absorbs).
 */
export function generateYieldData(n: number, seed: number | string): YieldData {
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`generateYieldData: n must be an integer >= 0, got ${n}`);
  const rng = createRng(seed);
  const aridity = Array.from({ length: REGIONS }, () => rng.next());
  const x = new Float32Array(n * FEATURE_COUNT);
  const y = new Float32Array(n);
  const expected = new Float32Array(n);
  const region = new Uint16Array(n);
  const season = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const r = i % REGIONS;
    const c = drawConditions(aridity[r] as number, rng);
    const loss = expectedYieldLoss(c);
    x.set(normalizeFeatures(c), i * FEATURE_COUNT);
    expected[i] = loss;
    y[i] = clip(loss + NOISE_SD * rng.normal(), 0, 1);
    region[i] = r;
    season[i] = Math.floor(i / REGIONS);
  }
  return { x, y, expected, n, featureNames: FEATURE_NAMES, region, season };
}

/**
 * Canonical bytes of a generated data set (for a content address in the model card): "LMYD1", then
 * u32 n and u32 features, then x and y as float32 little-endian.
 */
export function encodeYieldData(data: YieldData): Uint8Array {
  const magic = new TextEncoder().encode("LMYD1");
  const bytes = new Uint8Array(magic.length + 8 + 4 * (data.x.length + data.y.length));
  const view = new DataView(bytes.buffer);
  bytes.set(magic, 0);
  let offset = magic.length;
  view.setUint32(offset, data.n, true);
  view.setUint32(offset + 4, FEATURE_COUNT, true);
  offset += 8;
  for (const v of data.x) {
    view.setFloat32(offset, v, true);
    offset += 4;
  }
  for (const v of data.y) {
    view.setFloat32(offset, v, true);
    offset += 4;
  }
  return bytes;
}
