/**
 * The inference oracle's settlement arithmetic, mirrored from contracts/InferenceOracle.sol with no I/O:
 * stake-weighted aggregation (a median or a label needs more than half of the revealed stake behind it;
 * an even split has no result), deviation, slashing and the fee split. Amounts and outputs are bigints with
 * the contract's integer semantics (floor division).
 */

import { slashAmount } from "../chain/bps.ts";

export type AggregationMode = "median" | "majority";

/** The contract's `Aggregation` enum values. */
export const AGGREGATION_INDEX: Record<AggregationMode, number> = { median: 0, majority: 1 };

export class OracleAggregationError extends Error {
  override name = "OracleAggregationError";
}

/** One revealed answer and the stake behind it. */
export interface WeightedOutput {
  output: bigint;
  weight: bigint;
}

/**
 * The stake-weighted result, or undefined for a split. Median: the value c with more than half of the
 * weight at or below it and more than half at or above it. Majority: the value with more than half of the
 * weight. Either is unique when it exists.
 */
export function aggregate(answers: readonly WeightedOutput[], mode: AggregationMode): bigint | undefined {
  if (answers.length === 0) throw new OracleAggregationError("cannot aggregate zero outputs");
  const total = answers.reduce((s, a) => s + a.weight, 0n);
  if (total === 0n) throw new OracleAggregationError("cannot aggregate zero weight");
  const byValue = new Map<bigint, bigint>();
  for (const a of answers) byValue.set(a.output, (byValue.get(a.output) ?? 0n) + a.weight);
  if (mode === "majority") {
    for (const [value, weight] of byValue) if (weight * 2n > total) return value;
    return undefined;
  }
  const values = [...byValue.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let below = 0n;
  for (const value of values) {
    const run = byValue.get(value) as bigint;
    if ((below + run) * 2n > total) return below * 2n < total ? value : undefined;
    below += run;
  }
  return undefined;
}

/** Whether an answer is slashable: farther than `tolerance` from the median, or any other label. */
export function deviates(output: bigint, result: bigint, tolerance: bigint, mode: AggregationMode): boolean {
  if (mode === "majority") return output !== result;
  const distance = output >= result ? output - result : result - output;
  return distance > tolerance;
}

export interface RevealedAnswer {
  operator: string;
  output: bigint;
}

export interface SettleInput {
  /** Reveals in reveal order. */
  reveals: readonly RevealedAnswer[];
  /** Operators that committed and never revealed, in commit order. */
  committedNotRevealed: readonly string[];
  /**
   * Every involved operator's stake just before settlement, keyed as in `reveals` (any case). Revealers'
   * stakes are also their weights (the contract weighs the stake at reveal time; equal unless slashed since).
   */
  stakes: ReadonlyMap<string, bigint> | Readonly<Record<string, bigint>>;
  fee: bigint;
  tolerance: bigint;
  slashBps: bigint | number;
  mode: AggregationMode;
  /** Fewer reveals fail the request; the contract's `minResponses`. */
  minResponses: number;
  /**
   * The contract's `stakeBase` at finalize: the larger of the version's active stake at request time and
   * then. Revealed stake not above half of it fails the request.
   */
  stakeBase: bigint;
}

export interface Amount {
  operator: string;
  amount: bigint;
}

export interface Settlement {
  status: "finalized" | "failed";
  /**
   * Why a request failed: too few reveals (by count or by stake), a split with no majority of the revealed
   * stake, or a result that operators holding no more than half of the active stake agree with.
   */
  failure?: "too-few-reveals" | "split" | "too-little-agreement";
  /** The aggregated output; undefined when the request failed. */
  result?: bigint;
  /** Agreeing operators, in reveal order. */
  agreeing: string[];
  /** Slashes in the contract's order: deviating revealers (reveal order), then silent ones (commit order). */
  slashed: Amount[];
  /** Fee shares (fee plus slashed stake) credited to agreeing operators, in reveal order. */
  shares: Amount[];
  /** Credited to the requester on failure: the fee and silent operators' slashed stake. */
  requesterCredit: bigint;
  totalSlashed: bigint;
}

function stakeOf(stakes: SettleInput["stakes"], operator: string): bigint {
  const get = (key: string): bigint | undefined =>
    stakes instanceof Map ? stakes.get(key) : (stakes as Record<string, bigint>)[key];
  const stake = get(operator) ?? get(operator.toLowerCase());
  if (stake === undefined) throw new OracleAggregationError(`no stake given for ${operator}`);
  return stake;
}

/** Exactly what `InferenceOracle.finalize` credits and slashes for one request. */
export function settle(input: SettleInput): Settlement {
  const { reveals, committedNotRevealed, stakes, fee, tolerance, slashBps, mode, minResponses } = input;
  const slashed: Amount[] = [];
  const slash = (operator: string) => {
    const amount = slashAmount(stakeOf(stakes, operator), slashBps);
    slashed.push({ operator, amount });
    return amount;
  };
  const fail = (failure: Settlement["failure"]): Settlement => {
    let refund = fee;
    for (const operator of committedNotRevealed) refund += slash(operator);
    return {
      status: "failed",
      failure,
      agreeing: [],
      slashed,
      shares: [],
      requesterCredit: refund,
      totalSlashed: refund - fee,
    };
  };

  const weighted = reveals.map((r) => ({ output: r.output, weight: stakeOf(stakes, r.operator) }));
  const revealedStake = weighted.reduce((s, a) => s + a.weight, 0n);
  if (reveals.length < minResponses || revealedStake * 2n <= input.stakeBase) return fail("too-few-reveals");
  const result = aggregate(weighted, mode);
  if (result === undefined) return fail("split");
  const agreeingStake = weighted
    .filter((a) => !deviates(a.output, result, tolerance, mode))
    .reduce((sum, a) => sum + a.weight, 0n);
  // Agreement is a share of the active stake, not only of the revealed stake: a coalition below half of it
  // must not decide while honest operators miss the window.
  if (agreeingStake * 2n <= input.stakeBase) return fail("too-little-agreement");
  let pot = fee;
  const agreeing: string[] = [];
  for (const r of reveals) {
    if (deviates(r.output, result, tolerance, mode)) pot += slash(r.operator);
    else agreeing.push(r.operator);
  }
  for (const operator of committedNotRevealed) pot += slash(operator);
  const totalSlashed = pot - fee;
  // The result has more than half of the revealed stake behind it, so at least one revealer agrees.
  const count = BigInt(agreeing.length);
  const share = pot / count;
  const remainder = pot - share * count;
  const shares = agreeing.map((operator, i) => ({ operator, amount: share + (i === 0 ? remainder : 0n) }));
  return { status: "finalized", result, agreeing, slashed, shares, requesterCredit: 0n, totalSlashed };
}

/** The fee split of an accepted report: equal shares, the remainder to the first (lowest-address) signer. */
export function reportShares(fee: bigint, signers: readonly string[]): Amount[] {
  if (signers.length === 0) return [];
  const count = BigInt(signers.length);
  const share = fee / count;
  const remainder = fee - share * count;
  return signers.map((operator, i) => ({ operator, amount: share + (i === 0 ? remainder : 0n) }));
}
