/**
 * Coordinate-wise median (Yin et al. 2018): each weight of the next model is the median of that
 * weight's deltas over the clients, added to the global. Unweighted: sample counts are unverifiable
 * claims, and weighting by them would let one client buy the median.
 *
 * Even counts: the exact mean of the two middle deltas, rounded half away from zero (not the lower
 * median, which would bias every coordinate downwards). Robust to fewer than half of the clients being
 * arbitrary, per coordinate.
 */
import type { CanonicalModel } from "../ml/encoding.ts";
import {
  type ClientUpdate,
  coordinatewise,
  divRoundNumber,
  prepareUpdates,
  type Strategy,
} from "./strategy.ts";

/** Median of ascending integer deltas (|v| < 2^32, so the middle pair's sum is exact). */
export function medianOfSorted(values: Float64Array): number {
  const n = values.length;
  const mid = n >> 1;
  if (n % 2 === 1) return values[mid] as number;
  return divRoundNumber((values[mid - 1] as number) + (values[mid] as number), 2);
}

export function medianAggregate(global: CanonicalModel, updates: readonly ClientUpdate[]): CanonicalModel {
  const sorted = prepareUpdates(global, updates);
  return coordinatewise(
    global,
    sorted.map((u) => u.model),
    medianOfSorted,
  );
}

export function median(): Strategy {
  return { name: "median", aggregate: medianAggregate };
}
