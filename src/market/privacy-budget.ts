/**
 * Privacy budgets of compute-to-data jobs: per (dataset, buyer) a total epsilon, spent by each DP training
 * job and refused once exhausted. The accounting is pure; `PrivacyLedger` persists it in the provider's
 * state folder so that a restart does not refill anyone's budget.
 *
 * What a job spends, and why: the provider trains on the whole private dataset, then releases
 * `base + clip(delta, C) + N(0, (sigma C)^2)` (src/learning/privacy.ts, the Gaussian mechanism). Two
 * datasets that differ in one record (added, removed or replaced) give two clipped deltas of norm at most
 * C each, so the released vector's L2 sensitivity is 2C, not C: that is privacy.ts's "replace" adjacency,
 * and the provider draws sigma = gaussianNoiseMultiplier(epsilon, delta, "replace"). One job is then
 * (epsilon, delta)-DP for every record of the dataset (Dwork & Roth 2014, Thm A.1, epsilon < 1), and k jobs
 * for one buyer are (sum of epsilons, k * delta)-DP by basic sequential composition: the budget is a sum of
 * epsilons, with delta fixed per dataset. Basic composition overstates the loss of many small jobs (an RDP
 * accountant would charge roughly sqrt(k) rather than k), so the budget errs on the safe side.
 *
 * Budgets are per buyer: buyers who collude pool their budgets, which a provider cannot prevent by
 * accounting (it may set a per-dataset total as well by giving every buyer a small budget).
 *
 * Epsilons are kept as integers of 1e-6 so that spending and refusing are exact, not float sums.
 */
import { existsSync, readFileSync } from "node:fs";
import type { Address } from "viem";
import { type Adjacency, gaussianNoiseMultiplier } from "../learning/privacy.ts";
import { writeFileDurably } from "../storage/durable-file.ts";

/** The adjacency every compute-to-data job is accounted under: one record replaced (sensitivity 2C). */
export const JOB_ADJACENCY: Adjacency = "replace";
/** Epsilon accounting unit: a millionth. */
export const MICRO = 1_000_000;

/** A dataset's privacy policy. */
export interface DpPolicy {
  /** Total epsilon each buyer may spend on this dataset. */
  epsilonBudget: number;
  /** The delta of every job (at most 1/n of the dataset's records is the usual choice). */
  delta: number;
}

/** Spent epsilon in micro-units, by `ledgerKey(dataset, buyer)`. */
export type BudgetState = Readonly<Record<string, number>>;

/** The job would spend more than the buyer has left: nothing was run. */
export class PrivacyBudgetExhaustedError extends Error {
  override name = "PrivacyBudgetExhaustedError";
  constructor(
    readonly datasetId: bigint,
    readonly buyer: Address,
    readonly spent: number,
    readonly asked: number,
    readonly budget: number,
  ) {
    super(
      `the privacy budget of ${buyer} on dataset ${datasetId} is exhausted: ${spent} of ${budget} epsilon spent, this job asks ${asked}; ask for a smaller epsilon or agree a new budget with the data owner`,
    );
  }
}

export function ledgerKey(datasetId: bigint, buyer: Address): string {
  return `${datasetId}:${buyer.toLowerCase()}`;
}

export function toMicro(epsilon: number): number {
  return Math.round(epsilon * MICRO);
}

/** The noise multiplier a job of `epsilon` draws under `policy` (replace adjacency, see the header). */
export function jobNoiseMultiplier(epsilon: number, policy: DpPolicy): number {
  return gaussianNoiseMultiplier(epsilon, policy.delta, JOB_ADJACENCY);
}

/** Epsilon spent so far by `buyer` on the dataset. */
export function spentOf(state: BudgetState, datasetId: bigint, buyer: Address): number {
  return (state[ledgerKey(datasetId, buyer)] ?? 0) / MICRO;
}

/**
 * The state after `buyer` spends `epsilon` on the dataset.
 * @throws PrivacyBudgetExhaustedError when the spent total would pass the policy's budget
 */
export function spend(
  state: BudgetState,
  datasetId: bigint,
  buyer: Address,
  epsilon: number,
  policy: DpPolicy,
): BudgetState {
  const key = ledgerKey(datasetId, buyer);
  const spent = state[key] ?? 0;
  const asked = toMicro(epsilon);
  if (!(asked > 0)) throw new RangeError(`a job spends a positive epsilon, got ${epsilon}`);
  if (spent + asked > toMicro(policy.epsilonBudget)) {
    throw new PrivacyBudgetExhaustedError(datasetId, buyer, spent / MICRO, epsilon, policy.epsilonBudget);
  }
  return { ...state, [key]: spent + asked };
}

/** The state after a spend is given back (the job failed before releasing anything). */
export function refund(state: BudgetState, datasetId: bigint, buyer: Address, epsilon: number): BudgetState {
  const key = ledgerKey(datasetId, buyer);
  return { ...state, [key]: Math.max(0, (state[key] ?? 0) - toMicro(epsilon)) };
}

/** The budget state in one JSON file, written durably on every change. */
export class PrivacyLedger {
  private state: BudgetState;

  constructor(readonly file: string) {
    this.state = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as BudgetState) : {};
  }

  spent(datasetId: bigint, buyer: Address): number {
    return spentOf(this.state, datasetId, buyer);
  }

  /** Spends, persisted before it returns. @throws PrivacyBudgetExhaustedError */
  spend(datasetId: bigint, buyer: Address, epsilon: number, policy: DpPolicy): void {
    this.save(spend(this.state, datasetId, buyer, epsilon, policy));
  }

  refund(datasetId: bigint, buyer: Address, epsilon: number): void {
    this.save(refund(this.state, datasetId, buyer, epsilon));
  }

  private save(next: BudgetState): void {
    writeFileDurably(this.file, JSON.stringify(next));
    this.state = next;
  }
}
