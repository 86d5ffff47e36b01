/**
 * FedAvg (McMahan et al. 2017): the sample-weighted mean of the clients' models.
 *
 *   next = global + round( sum_k n_k (w_k - global) / sum_k n_k )
 *
 * per coordinate, in exact integer arithmetic, rounding half away from zero once (see strategy.ts).
 * Not robust: one client can move the mean arbitrarily far, and sample counts are the clients' own
 * claims, so an attacker can also inflate its weight. Use median, trimmed mean or Krum when clients
 * may be byzantine.
 */
import type { CanonicalModel } from "../ml/encoding.ts";
import { type ClientUpdate, prepareUpdates, type Strategy, weightedMeanOfDeltas } from "./strategy.ts";

export function fedAvgAggregate(global: CanonicalModel, updates: readonly ClientUpdate[]): CanonicalModel {
  const sorted = prepareUpdates(global, updates);
  return weightedMeanOfDeltas(
    global,
    sorted.map((u) => u.model),
    sorted.map((u) => u.samples),
  );
}

export function fedAvg(): Strategy {
  return { name: "fedavg", aggregate: fedAvgAggregate };
}
