/**
 * Federated-learning aggregation strategies: the common interface and the exact integer arithmetic
 * they share (pure, no I/O).
 *
 * A strategy turns the current global model and the clients' updates of it into the next global
 * model, Flower-style. Updates arrive as canonical models (int32 fixed point, see ../ml/encoding.ts)
 * and the result is hashed and attested on-chain, so every honest party that runs the same strategy on
 * the same updates must get the same bytes. Hence every strategy:
 *
 *  1. validates: every update has the global's architecture (tensor names and shapes) and scaleBits,
 *     a well-formed participant address, no participant twice, a positive integer sample count;
 *     otherwise it throws (IncompatibleUpdateError / AggregationError naming the participant);
 *  2. sorts the updates by participant address (lower-case hex), so nothing depends on arrival order
 *     (the arithmetic below is exact, hence order-free anyway; the sort fixes tie-breaks such as two
 *     equal Krum scores);
 *  3. computes in exact integer arithmetic and rounds once, half away from zero:
 *     round(p / q) = sign(p) * floor((2|p| + q) / (2q)). Sums use Number only when a bound computed up
 *     front proves every intermediate value stays below 2^52 (so it is an exact integer); otherwise
 *     they run in BigInt. Both paths give the same integers, so the path taken never shows in the bytes.
 *
 * Strategies aggregate deltas (update - global), then add the rounded aggregate back to the global:
 *  - rounding happens on the delta, and rounding half away from zero is symmetric around zero, so a
 *    tie rounds the same distance towards or away from the global model whatever the sign of the
 *    weight; rounding the weights themselves would push ties away from weight 0 instead, a drift
 *    unrelated to the update (round half away from zero is not translation invariant);
 *  - deltas are small (a round moves weights little), so the fast Number path nearly always applies;
 *  - the result is exactly the global when every update is the global (free riders add nothing), and
 *    per coordinate it lies between the smallest and the largest update (a mean or an order statistic
 *    of the deltas, rounded to an integer, never leaves the integer range of its inputs), so it is
 *    always a valid canonical int32, with no overflow possible;
 *  - delta norms and distances are what DP clipping, attacks and Krum reason about.
 */
import { type CanonicalModel, MAX_INT, type QuantizedTensor, sameArchitecture } from "../ml/encoding.ts";

export type Address = `0x${string}`;

export interface ClientUpdate {
  /** The trainer's address (any case); updates are ordered by its lower-case form. */
  participant: Address;
  /** Training samples the client claims to have used (FedAvg weight): a positive safe integer. */
  samples: number;
  model: CanonicalModel;
}

export interface Strategy {
  name: string;
  /** The next global model. Pure: the inputs are not modified and the result shares no arrays with them. */
  aggregate(global: CanonicalModel, updates: ClientUpdate[]): CanonicalModel;
}

/** Any reason the updates cannot be aggregated (empty, duplicated participant, bad sample count...). */
export class AggregationError extends Error {
  override name = "AggregationError";
  constructor(
    message: string,
    /** The participant at fault, when one is. */
    readonly participant?: string,
  ) {
    super(message);
  }
}

/** An update whose architecture, tensors or scale differ from the global model's. */
export class IncompatibleUpdateError extends AggregationError {
  override name = "IncompatibleUpdateError";
  constructor(participant: string, reason: string) {
    super(`Update from ${participant} is incompatible with the global model: ${reason}`, participant);
  }
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
/** Below this every integer and every sum of two such integers is exact in a double. */
const EXACT = 2 ** 52;

function describeTensors(model: CanonicalModel): string {
  return model.tensors.map((t) => `${t.name}[${t.shape.join("x")}]`).join(", ");
}

function checkInts(t: QuantizedTensor, owner: string, isGlobal: boolean): void {
  const count = t.shape.reduce((a, b) => a * b, 1);
  const fail = (reason: string) =>
    isGlobal ? new AggregationError(`Global model: ${reason}`) : new IncompatibleUpdateError(owner, reason);
  if (!(t.ints instanceof Int32Array) || t.ints.length !== count) {
    throw fail(`tensor "${t.name}" holds ${t.ints?.length} ints, its shape needs ${count}`);
  }
  for (let i = 0; i < t.ints.length; i++) {
    if (t.ints[i] === -0x80000000) {
      throw fail(`tensor "${t.name}" holds -2^31 at index ${i}, outside the canonical range`);
    }
  }
}

/**
 * Step 1 and 2 of every strategy: validates the global model and the updates and returns the updates
 * sorted by lower-case participant address (participants given in lower case in the result).
 */
export function prepareUpdates(global: CanonicalModel, updates: readonly ClientUpdate[]): ClientUpdate[] {
  if (!Array.isArray(updates) || updates.length === 0) {
    throw new AggregationError("No updates to aggregate");
  }
  for (const t of global.tensors) checkInts(t, "global", true);
  const seen = new Set<string>();
  const sorted: ClientUpdate[] = [];
  for (const update of updates) {
    const raw = String(update.participant);
    if (!ADDRESS.test(raw)) {
      throw new AggregationError(`Participant ${JSON.stringify(raw)} is not a 20-byte hex address`, raw);
    }
    const participant = raw.toLowerCase() as Address;
    if (seen.has(participant)) {
      throw new AggregationError(`Participant ${participant} submitted more than one update`, participant);
    }
    seen.add(participant);
    if (!Number.isSafeInteger(update.samples) || update.samples < 1) {
      throw new AggregationError(
        `Update from ${participant} claims ${update.samples} samples; a positive integer is required`,
        participant,
      );
    }
    const model = update.model;
    if (model.architecture !== global.architecture) {
      throw new IncompatibleUpdateError(
        participant,
        `architecture "${model.architecture}", the global model is "${global.architecture}"`,
      );
    }
    if (!sameArchitecture(global, model)) {
      throw new IncompatibleUpdateError(
        participant,
        `tensors ${describeTensors(model)}, the global model has ${describeTensors(global)}`,
      );
    }
    if (model.scaleBits !== global.scaleBits) {
      throw new IncompatibleUpdateError(
        participant,
        `scaleBits ${model.scaleBits}, the global model uses ${global.scaleBits}`,
      );
    }
    for (const t of model.tensors) checkInts(t, participant, false);
    sorted.push({ participant, samples: update.samples, model });
  }
  sorted.sort((a, b) => (a.participant < b.participant ? -1 : a.participant > b.participant ? 1 : 0));
  return sorted;
}

/** A deep copy of a canonical model. */
export function cloneModel(model: CanonicalModel): CanonicalModel {
  return {
    architecture: model.architecture,
    scaleBits: model.scaleBits,
    tensors: model.tensors.map((t) => ({ name: t.name, shape: [...t.shape], ints: Int32Array.from(t.ints) })),
  };
}

/** round(p / q), half away from zero, exactly; q > 0. */
export function divRoundBig(p: bigint, q: bigint): bigint {
  if (q <= 0n) throw new RangeError("divRoundBig: the divisor must be positive");
  const a = p < 0n ? -p : p;
  const r = (2n * a + q) / (2n * q);
  return p < 0n ? -r : r;
}

/**
 * round(p / q), half away from zero, exactly, for integers with 2|p| + 3q < 2^53 (the caller's bound).
 * The float quotient is only a first guess; the remainder check makes the floor exact.
 */
export function divRoundNumber(p: number, q: number): number {
  const x = 2 * Math.abs(p) + q;
  const y = 2 * q;
  let r = Math.floor(x / y);
  const rest = x - r * y;
  if (rest < 0) r -= 1;
  else if (rest >= y) r += 1;
  return p < 0 && r !== 0 ? -r : r; // never -0
}

/** Largest |update - global| over every coordinate of every model. */
export function maxAbsDelta(global: CanonicalModel, models: readonly CanonicalModel[]): number {
  let max = 0;
  global.tensors.forEach((g, t) => {
    const gi = g.ints;
    for (const model of models) {
      const ui = (model.tensors[t] as QuantizedTensor).ints;
      for (let i = 0; i < gi.length; i++) {
        const d = Math.abs((ui[i] as number) - (gi[i] as number));
        if (d > max) max = d;
      }
    }
  });
  return max;
}

/** A canonical model with the global's header and the given ints per tensor. */
function withInts(global: CanonicalModel, ints: Int32Array[]): CanonicalModel {
  return {
    architecture: global.architecture,
    scaleBits: global.scaleBits,
    tensors: global.tensors.map((t, i) => ({
      name: t.name,
      shape: [...t.shape],
      ints: ints[i] as Int32Array,
    })),
  };
}

/**
 * global + round(sum_k w_k (m_k - global) / sum_k w_k) per coordinate, rounding half away from zero.
 * Models must already be validated against the global (prepareUpdates); weights are positive safe
 * integers. Exact: Number arithmetic when (2 max|delta| + 3) * sum(w) < 2^52, else BigInt.
 */
export function weightedMeanOfDeltas(
  global: CanonicalModel,
  models: readonly CanonicalModel[],
  weights: readonly number[],
): CanonicalModel {
  if (models.length === 0 || models.length !== weights.length) {
    throw new AggregationError(`weightedMeanOfDeltas: ${models.length} models, ${weights.length} weights`);
  }
  let total = 0n;
  for (const w of weights) {
    if (!Number.isSafeInteger(w) || w < 1)
      throw new AggregationError(`Weight ${w} is not a positive integer`);
    total += BigInt(w);
  }
  const maxDelta = maxAbsDelta(global, models);
  // Both factors are exact integers below 2^53; if the computed product is below 2^52 the true one is.
  const fast = total < BigInt(EXACT) && (2 * maxDelta + 3) * Number(total) < EXACT;
  const n = models.length;
  const out = global.tensors.map((g, t) => {
    const gi = g.ints;
    const us = models.map((m) => (m.tensors[t] as QuantizedTensor).ints);
    const ints = new Int32Array(gi.length);
    if (fast) {
      const q = Number(total);
      for (let i = 0; i < gi.length; i++) {
        const base = gi[i] as number;
        let sum = 0;
        for (let k = 0; k < n; k++)
          sum += (weights[k] as number) * (((us[k] as Int32Array)[i] as number) - base);
        ints[i] = base + divRoundNumber(sum, q);
      }
    } else {
      const ws = weights.map((w) => BigInt(w));
      for (let i = 0; i < gi.length; i++) {
        const base = gi[i] as number;
        let sum = 0n;
        for (let k = 0; k < n; k++) {
          sum += (ws[k] as bigint) * BigInt(((us[k] as Int32Array)[i] as number) - base);
        }
        ints[i] = base + Number(divRoundBig(sum, total));
      }
    }
    return ints;
  });
  return withInts(global, out);
}

/**
 * `weightedMeanOfDeltas` of every subset that leaves one model out, each in O(parameters) rather than
 * O(models x parameters): the weighted sum of all deltas is computed once and the left-out delta
 * subtracted. Integer sums are exact, so each result is bit-identical to weightedMeanOfDeltas of the
 * subset; when the sums could exceed exact float integers, it falls back to that function.
 */
export function leaveOneOutMeans(
  global: CanonicalModel,
  models: readonly CanonicalModel[],
  weights: readonly number[],
): (left: number) => CanonicalModel {
  if (models.length < 2) throw new AggregationError("leaveOneOutMeans needs at least two models");
  let total = 0;
  for (const w of weights) total += w;
  const fast = Number.isSafeInteger(total) && (2 * maxAbsDelta(global, models) + 3) * total < EXACT;
  if (!fast) {
    return (left) =>
      weightedMeanOfDeltas(
        global,
        models.filter((_, k) => k !== left),
        weights.filter((_, k) => k !== left),
      );
  }
  weightedMeanOfDeltas(global, models, weights); // validates the models and weights
  const sums = global.tensors.map((g, t) => {
    const gi = g.ints;
    const sum = new Float64Array(gi.length);
    models.forEach((m, k) => {
      const ui = (m.tensors[t] as QuantizedTensor).ints;
      const w = weights[k] as number;
      for (let i = 0; i < gi.length; i++)
        sum[i] = (sum[i] as number) + w * ((ui[i] as number) - (gi[i] as number));
    });
    return sum;
  });
  return (left) => {
    const w = weights[left] as number;
    const model = models[left] as CanonicalModel;
    const q = total - w;
    return withInts(
      global,
      global.tensors.map((g, t) => {
        const gi = g.ints;
        const ui = (model.tensors[t] as QuantizedTensor).ints;
        const sum = sums[t] as Float64Array;
        const ints = new Int32Array(gi.length);
        for (let i = 0; i < gi.length; i++) {
          const base = gi[i] as number;
          ints[i] = base + divRoundNumber((sum[i] as number) - w * ((ui[i] as number) - base), q);
        }
        return ints;
      }),
    );
  };
}

/**
 * Per coordinate: the deltas (update - global) of every model, sorted ascending into `values`, are
 * reduced by `reduce` to an integer delta that is added back to the global.
 */
export function coordinatewise(
  global: CanonicalModel,
  models: readonly CanonicalModel[],
  reduce: (sortedDeltas: Float64Array) => number,
): CanonicalModel {
  const n = models.length;
  const values = new Float64Array(n);
  const out = global.tensors.map((g, t) => {
    const gi = g.ints;
    const us = models.map((m) => (m.tensors[t] as QuantizedTensor).ints);
    const ints = new Int32Array(gi.length);
    for (let i = 0; i < gi.length; i++) {
      const base = gi[i] as number;
      if (n <= 32) {
        // Insertion sort: fastest for the usual tens of clients.
        for (let k = 0; k < n; k++) {
          const v = ((us[k] as Int32Array)[i] as number) - base;
          let j = k - 1;
          while (j >= 0 && (values[j] as number) > v) {
            values[j + 1] = values[j] as number;
            j--;
          }
          values[j + 1] = v;
        }
      } else {
        for (let k = 0; k < n; k++) values[k] = ((us[k] as Int32Array)[i] as number) - base;
        values.sort(); // typed arrays sort numerically
      }
      ints[i] = base + reduce(values);
    }
    return ints;
  });
  return withInts(global, out);
}

/**
 * round(sum(values[from..to)) / (to - from)), half away from zero, exact. Values are integer deltas
 * (|v| < 2^32), so the Number path holds for up to 2^18 values; beyond that BigInt.
 */
export function roundedMean(values: Float64Array, from: number, to: number): number {
  const count = to - from;
  if (count < 1) throw new AggregationError("roundedMean of no values");
  if (count < 2 ** 18) {
    let sum = 0;
    for (let i = from; i < to; i++) sum += values[i] as number;
    return divRoundNumber(sum, count);
  }
  let sum = 0n;
  for (let i = from; i < to; i++) sum += BigInt(values[i] as number);
  return Number(divRoundBig(sum, BigInt(count)));
}

/**
 * Exact squared L2 distance between two models of the same architecture, as a BigInt. Squares of
 * differences below 2^26 are summed in a Number accumulator that is flushed into the BigInt total
 * before it could reach 2^53; larger differences are squared in BigInt. Same value as summing
 * everything in BigInt, several times faster.
 */
export function squaredDistance(a: CanonicalModel, b: CanonicalModel): bigint {
  const SMALL = 2 ** 26;
  let total = 0n;
  let acc = 0;
  a.tensors.forEach((ta, t) => {
    const x = ta.ints;
    const y = (b.tensors[t] as QuantizedTensor).ints;
    for (let i = 0; i < x.length; i++) {
      const d = (x[i] as number) - (y[i] as number);
      if (d < SMALL && d > -SMALL) {
        acc += d * d; // acc < 2^52 and d*d < 2^52 before the add, so the sum is exact
        if (acc >= EXACT) {
          total += BigInt(acc);
          acc = 0;
        }
      } else {
        const big = BigInt(d);
        total += big * big;
      }
    }
  });
  return total + BigInt(acc);
}

/** Saturates a (rounded) value into the canonical int32 range [-(2^31-1), 2^31-1]. */
export function saturate(v: number): number {
  return Math.min(MAX_INT, Math.max(-MAX_INT, v));
}

/** Round half away from zero of a finite double (for float-computed attack and DP outputs). */
export function roundHalfAway(v: number): number {
  const r = Math.round(Math.abs(v));
  return v < 0 ? -r : r;
}
