/**
 * Krum and Multi-Krum (Blanchard et al. 2017), with f the number of byzantine clients tolerated.
 *
 * Each update's score is the sum of its squared L2 distances to its n - f - 2 nearest other updates
 * (distances between models equal distances between deltas). Krum returns the update with the lowest
 * score, exactly (a copy of its model); Multi-Krum averages the m lowest-scoring updates' deltas,
 * unweighted (the paper's rule; sample counts are unverifiable claims), rounded half away from zero.
 * Ties in score go to the lower participant address. Distances are exact integers (BigInt totals, see
 * squaredDistance), so every party selects the same updates.
 *
 * Needs n >= 2f + 3 (so each score sums at least one distance and honest updates outnumber the
 * byzantine ones among any update's neighbours). f defaults to the most tolerated, floor((n - 3) / 2);
 * m defaults to n - f.
 */
import type { CanonicalModel } from "../ml/encoding.ts";
import {
  type Address,
  AggregationError,
  type ClientUpdate,
  cloneModel,
  prepareUpdates,
  type Strategy,
  squaredDistance,
  weightedMeanOfDeltas,
} from "./strategy.ts";

export interface KrumOptions {
  /** Byzantine clients tolerated; default floor((n - 3) / 2) for n updates. */
  f?: number;
}

export interface MultiKrumOptions extends KrumOptions {
  /** Updates averaged; default n - f. */
  m?: number;
}

export interface KrumSelection {
  /** Participants ordered by ascending score (ties by address), the first m of them selected. */
  ranking: { participant: Address; score: bigint }[];
  selected: Address[];
  f: number;
  m: number;
}

function checkCount(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
    throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
  }
}

function scoreSorted(sorted: readonly ClientUpdate[], options: MultiKrumOptions): KrumSelection {
  const n = sorted.length;
  const f = options.f ?? Math.max(0, Math.floor((n - 3) / 2));
  const m = options.m ?? n - f;
  if (n < 2 * f + 3) {
    throw new AggregationError(`Krum with f = ${f} needs at least ${2 * f + 3} updates, got ${n}`);
  }
  if (m < 1 || m > n) throw new AggregationError(`Multi-Krum: m = ${m} is not in 1..${n}`);
  const neighbours = n - f - 2;
  const distances: bigint[][] = Array.from({ length: n }, () => new Array<bigint>(n).fill(0n));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const d = squaredDistance((sorted[i] as ClientUpdate).model, (sorted[j] as ClientUpdate).model);
      (distances[i] as bigint[])[j] = d;
      (distances[j] as bigint[])[i] = d;
    }
  }
  const compare = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);
  const scored = sorted.map((u, i) => {
    const row = (distances[i] as bigint[]).filter((_, j) => j !== i).sort(compare);
    let score = 0n;
    for (let k = 0; k < neighbours; k++) score += row[k] as bigint;
    return { participant: u.participant, score, index: i };
  });
  // Stable on the address order of `sorted`: equal scores keep the lower address first.
  scored.sort((a, b) => compare(a.score, b.score) || a.index - b.index);
  return {
    ranking: scored.map(({ participant, score }) => ({ participant, score })),
    selected: scored.slice(0, m).map((s) => s.participant),
    f,
    m,
  };
}

/** Validates, scores and selects, without aggregating (for inspection and tests). */
export function krumSelect(
  global: CanonicalModel,
  updates: readonly ClientUpdate[],
  options: MultiKrumOptions = {},
): KrumSelection {
  checkCount("Krum f", options.f);
  checkCount("Multi-Krum m", options.m);
  return scoreSorted(prepareUpdates(global, updates), options);
}

export function krum(options: KrumOptions = {}): Strategy {
  checkCount("Krum f", options.f);
  return {
    name: "krum",
    aggregate(global, updates) {
      const sorted = prepareUpdates(global, updates);
      const { selected } = scoreSorted(sorted, { f: options.f, m: 1 });
      const best = sorted.find((u) => u.participant === selected[0]) as ClientUpdate;
      return cloneModel(best.model);
    },
  };
}

export function multiKrum(options: MultiKrumOptions = {}): Strategy {
  checkCount("Krum f", options.f);
  checkCount("Multi-Krum m", options.m);
  return {
    name: "multi-krum",
    aggregate(global, updates) {
      const sorted = prepareUpdates(global, updates);
      const chosen = new Set(scoreSorted(sorted, options).selected);
      const models = sorted.filter((u) => chosen.has(u.participant)).map((u) => u.model);
      return weightedMeanOfDeltas(
        global,
        models,
        models.map(() => 1),
      );
    },
  };
}
