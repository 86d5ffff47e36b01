/**
 * FedProx (Li et al. 2020). The server side is exactly FedAvg (same bytes); the difference is on the
 * clients: each adds the proximal term mu/2 * ||w - w_global||^2 to its local loss, which keeps local
 * models near the global one when client data are heterogeneous (non-IID) or clients do different
 * amounts of local work. `trainModel` in ../ml/train.ts implements it: pass the options returned by
 * `clientTrainOptions(global)` (proximalMu and the global weights as floats).
 *
 * The mu a task announces to its trainers: DEFAULT_PROXIMAL_MU = 0.01. The paper searched
 * mu in {0.001, 0.01, 0.1, 1} and the best value depended on the dataset (0.001 to 1); 0.01 is a mild
 * pull that costs nothing on near-IID data with one or two local epochs. Raise it (0.1 to 1) for
 * strongly non-IID partitions (Dirichlet alpha <= 0.3) or many local epochs; mu = 0 is plain FedAvg.
 */
import { type CanonicalModel, type ModelTensor, toFloatTensors } from "../ml/encoding.ts";
import { fedAvgAggregate } from "./fedavg.ts";
import type { Strategy } from "./strategy.ts";

export const DEFAULT_PROXIMAL_MU = 0.01;

export interface FedProxOptions {
  /** Proximal coefficient the clients should use; default DEFAULT_PROXIMAL_MU. */
  mu?: number;
}

export interface FedProxStrategy extends Strategy {
  /** The mu clients must train with. */
  readonly proximalMu: number;
  /** Options to spread into `trainModel(model, data, { ...these, epochs, ... })` on a client. */
  clientTrainOptions(global: CanonicalModel): { proximalMu: number; globalWeights: ModelTensor[] };
}

export function fedProx(options: FedProxOptions = {}): FedProxStrategy {
  const mu = options.mu ?? DEFAULT_PROXIMAL_MU;
  if (!(mu >= 0) || !Number.isFinite(mu)) throw new RangeError(`fedProx: mu must be >= 0, got ${mu}`);
  return {
    name: "fedprox",
    proximalMu: mu,
    aggregate: fedAvgAggregate,
    clientTrainOptions: (global) => ({ proximalMu: mu, globalWeights: toFloatTensors(global) }),
  };
}
