/**
 * The inference oracle's settlement arithmetic, mirrored from contracts/InferenceOracle.sol with no I/O:
 * aggregation (lower median, or majority with ties to the smallest value), deviation, slashing and the
 * fee split. Amounts and outputs are bigints with the contract's integer semantics (floor division).
 */

import { slashAmount } from "../chain/bps.ts";

export type AggregationMode = "median" | "majority";

/** The contract's `Aggregation` enum values. */
export const AGGREGATION_INDEX: Record<AggregationMode, number> = { median: 0, majority: 1 };

export class OracleAggregationError extends Error {
  override name = "OracleAggregationError";
}

const ascending = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** The lower median (index `(n - 1) / 2` of the sorted values) or the most frequent value, smallest on ties. */
export function aggregate(outputs: readonly bigint[], mode: AggregationMode): bigint {
  if (outputs.length === 0) throw new OracleAggregationError("cannot aggregate zero outputs");
  const sorted = [...outputs].sort(ascending);
  if (mode === "median") return sorted[(sorted.length - 1) >> 1] as bigint;
  let best = sorted[0] as bigint;
  let bestCount = 0;
  let run = 0;
  for (let i = 0; i < sorted.length; i++) {
    run = i > 0 && sorted[i] === sorted[i - 1] ? run + 1 : 1;
    if (run > bestCount) {
      bestCount = run;
      best = sorted[i] as bigint;
    }
  }
  return best;
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
  /** Every involved operator's stake just before settlement, keyed as in `reveals` (any case). */
  stakes: ReadonlyMap<string, bigint> | Readonly<Record<string, bigint>>;
  fee: bigint;
  tolerance: bigint;
  slashBps: bigint | number;
  mode: AggregationMode;
  /** Fewer reveals fail the request; the contract's `minResponses`. */
  minResponses: number;
}

export interface Amount {
  operator: string;
  amount: bigint;
}

export interface Settlement {
  status: "finalized" | "failed";
  /** The aggregated output; undefined when the request failed. */
  result?: bigint;
  /** Agreeing operators, in reveal order. */
  agreeing: string[];
  /** Slashes in the contract's order: deviating revealers (reveal order), then silent ones (commit order). */
  slashed: Amount[];
  /** Fee shares (fee plus slashed stake) credited to agreeing operators, in reveal order. */
  shares: Amount[];
  /** Credited to the requester: the refund and silent operators' stake on failure, or all when none agree. */
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

  if (reveals.length < minResponses) {
    let refund = fee;
    for (const operator of committedNotRevealed) refund += slash(operator);
    return {
      status: "failed",
      agreeing: [],
      slashed,
      shares: [],
      requesterCredit: refund,
      totalSlashed: refund - fee,
    };
  }

  const result = aggregate(
    reveals.map((r) => r.output),
    mode,
  );
  let pot = fee;
  const agreeing: string[] = [];
  for (const r of reveals) {
    if (deviates(r.output, result, tolerance, mode)) pot += slash(r.operator);
    else agreeing.push(r.operator);
  }
  for (const operator of committedNotRevealed) pot += slash(operator);
  const totalSlashed = pot - fee;

  if (agreeing.length === 0) {
    return { status: "finalized", result, agreeing, slashed, shares: [], requesterCredit: pot, totalSlashed };
  }
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
