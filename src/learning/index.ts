/**
 * Federated-learning core (pure, no I/O): aggregation strategies, client-side differential privacy
 * and simulated adversaries.
 */
import { fedAvg } from "./fedavg.ts";
import { fedProx } from "./fedprox.ts";
import { krum, multiKrum } from "./krum.ts";
import { median } from "./median.ts";
import type { Strategy } from "./strategy.ts";
import { trimmedMean } from "./trimmed-mean.ts";

export * from "./adversaries.ts";
export * from "./backdoor.ts";
export * from "./fedavg.ts";
export * from "./fedprox.ts";
export * from "./krum.ts";
export * from "./median.ts";
export * from "./privacy.ts";
export * from "./strategy.ts";
export * from "./trimmed-mean.ts";

export const STRATEGY_NAMES = ["fedavg", "fedprox", "median", "trimmed-mean", "krum", "multi-krum"] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface StrategyOptions {
  /** fedprox: the clients' proximal coefficient. */
  mu?: number;
  /** trimmed-mean: fraction trimmed from each end. */
  beta?: number;
  /** krum, multi-krum: byzantine clients tolerated. */
  f?: number;
  /** multi-krum: updates averaged. */
  m?: number;
}

export function isStrategyName(name: string): name is StrategyName {
  return (STRATEGY_NAMES as readonly string[]).includes(name);
}

/** The strategy of a name; options a strategy does not use are ignored. */
export function strategyByName(name: string, options: StrategyOptions = {}): Strategy {
  if (!isStrategyName(name)) {
    throw new Error(`Unknown strategy "${name}"; expected one of ${STRATEGY_NAMES.join(", ")}`);
  }
  switch (name) {
    case "fedavg":
      return fedAvg();
    case "fedprox":
      return fedProx({ mu: options.mu });
    case "median":
      return median();
    case "trimmed-mean":
      return trimmedMean({ beta: options.beta });
    case "krum":
      return krum({ f: options.f });
    case "multi-krum":
      return multiKrum({ f: options.f, m: options.m });
  }
}
export * from "./aggregator.ts";
export * from "./client.ts";
export * from "./envelope.ts";
export * from "./finalize.ts";
export * from "./protocol.ts";
export * from "./trainer.ts";
export * from "./validator.ts";
