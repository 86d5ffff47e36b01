/**
 * Coordinate-wise trimmed mean (Yin et al. 2018): per weight, sort the clients' deltas, drop the
 * k = floor(beta * n) smallest and the k largest, and average the rest (unweighted; rounded half away
 * from zero). Tolerates up to k arbitrary clients per coordinate. beta in [0, 0.5); at least one value
 * must remain. beta * n is computed in IEEE double arithmetic plus 1e-9 before the floor, so that
 * e.g. 0.29 * 100 = 28.999999999999996 trims 29 as intended; the same on every machine.
 */
import type { CanonicalModel } from "../ml/encoding.ts";
import {
  AggregationError,
  type ClientUpdate,
  coordinatewise,
  prepareUpdates,
  roundedMean,
  type Strategy,
} from "./strategy.ts";

export const DEFAULT_TRIM_BETA = 0.2;

export interface TrimmedMeanOptions {
  /** Fraction trimmed from each end, in [0, 0.5); default DEFAULT_TRIM_BETA (one of five clients). */
  beta?: number;
}

/** Values trimmed from each end for n clients. */
export function trimCount(n: number, beta: number): number {
  return Math.floor(beta * n + 1e-9);
}

export function trimmedMean(options: TrimmedMeanOptions = {}): Strategy {
  const beta = options.beta ?? DEFAULT_TRIM_BETA;
  if (!(beta >= 0 && beta < 0.5)) throw new RangeError(`trimmedMean: beta must be in [0, 0.5), got ${beta}`);
  return {
    name: "trimmed-mean",
    aggregate(global: CanonicalModel, updates: ClientUpdate[]): CanonicalModel {
      const sorted = prepareUpdates(global, updates);
      const n = sorted.length;
      const k = trimCount(n, beta);
      if (n - 2 * k < 1) {
        throw new AggregationError(`Trimmed mean with beta ${beta} leaves nothing of ${n} updates`);
      }
      return coordinatewise(
        global,
        sorted.map((u) => u.model),
        (values) => roundedMean(values, k, n - k),
      );
    },
  };
}
