/**
 * Report mode (as Chainlink OCR): operators compute the answer off-chain, agree on the signer list, each
 * signs the EIP-712 `Report(uint256 requestId,int256 output,bytes32 weightsDigest,address[] signers)`, and
 * anyone submits it before the first reveal. The contract accepts it only when the signers hold more than
 * two thirds of the version's active stake (and number at least `minResponses`). The signer list is signed,
 * so nobody can resubmit a subset of the signatures to drop signers from the fee. One transaction instead of
 * a commit and a reveal per operator; no slashing (operators that signed another output are left out).
 */
import type { Address, Hex } from "viem";
import type { LocalAccount } from "../chain/accounts.ts";
import { InferenceOracle } from "../chain/generated/contracts.ts";
import { sendAndWait } from "../chain/tx.ts";
import {
  asOracle,
  getLoggedRequest,
  getOracleParams,
  getRequestStatus,
  inputOf,
  type Oracle,
  OracleError,
  type OracleTarget,
} from "./client.ts";
import type { InferenceOperator } from "./operator.ts";

export const REPORT_TYPES = {
  Report: [
    { name: "requestId", type: "uint256" },
    { name: "output", type: "int256" },
    { name: "weightsDigest", type: "bytes32" },
    { name: "signers", type: "address[]" },
  ],
} as const;

/** The oracle's EIP-712 domain (`EIP712("Ledgermind InferenceOracle", "1")`). */
export interface ReportDomain {
  name: string;
  version: string;
  chainId: number;
  verifyingContract: Address;
}

export function reportDomain(oracle: Oracle): ReportDomain {
  return {
    name: "Ledgermind InferenceOracle",
    version: "1",
    chainId: oracle.chain.chainId,
    verifyingContract: oracle.address,
  };
}

export interface SignedReport {
  signer: Address;
  /** 65 bytes r, s, v (low s, as the contract requires). */
  signature: Hex;
}

/** Addresses in the contract's order: ascending; an address twice is refused. */
export function sortSigners(signers: readonly Address[]): Address[] {
  const sorted = [...signers].sort((a, b) => {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
  for (let i = 1; i < sorted.length; i++) {
    if (BigInt(sorted[i] as Address) === BigInt(sorted[i - 1] as Address))
      throw new OracleError(`${sorted[i]} signed twice`);
  }
  return sorted;
}

/**
 * Signs a report with a local account. `signers` is the whole signer list the report will be submitted
 * with (the account among them); it is signed in ascending order, as the contract rebuilds it.
 */
export async function signReport(
  account: LocalAccount,
  domain: ReportDomain,
  requestId: bigint,
  output: bigint,
  weightsDigest: Hex,
  signers: readonly Address[],
): Promise<SignedReport> {
  const signature = await account.signTypedData({
    domain,
    types: REPORT_TYPES,
    primaryType: "Report",
    message: { requestId, output, weightsDigest, signers: sortSigners(signers) },
  });
  return { signer: account.address, signature };
}

/** Signatures in the contract's order: ascending signer address; a signer twice is refused. */
export function sortBySigner(signatures: readonly SignedReport[]): SignedReport[] {
  const order = sortSigners(signatures.map((s) => s.signer));
  return order.map((signer) => signatures.find((s) => BigInt(s.signer) === BigInt(signer)) as SignedReport);
}

/** Submits `output` with the signatures (sorted here, with their signer list) from configured account `account`. */
export async function submitSignedReport(
  target: OracleTarget,
  requestId: bigint,
  output: bigint,
  signatures: readonly SignedReport[],
  account = 0,
): Promise<{ gasUsed: bigint; blockNumber: bigint; signers: Address[] }> {
  const oracle = await asOracle(target);
  const sorted = sortBySigner(signatures);
  const signers = sorted.map((s) => s.signer);
  const receipt = await sendAndWait(oracle.chain, () =>
    oracle.chain.wallet(account).writeContract({
      address: oracle.address,
      abi: InferenceOracle.abi,
      functionName: "submitReport",
      args: [requestId, output, signers, sorted.map((s) => s.signature)],
    }),
  );
  return { gasUsed: receipt.gasUsed, blockNumber: receipt.blockNumber, signers };
}

/** One operator's answer and its stake, as a report round weighs them. */
export interface ObservedAnswer {
  operator: Address;
  output: bigint;
  stake: bigint;
}

/** The output a report round proposes, its backers (sorted, the signer list) and whether they suffice. */
export interface ReportChoice {
  output: bigint;
  signers: Address[];
  stake: bigint;
  /** Whether the backers pass the contract's thresholds (`hasReportQuorum`). */
  quorum: boolean;
  /** Every distinct output's backing, for messages. */
  groups: { output: bigint; count: number; stake: bigint }[];
}

/** The contract's report thresholds: more than 2/3 of `base` (the request's `stakeBase`), and `minResponses` signers. */
export function hasReportQuorum(stake: bigint, signers: number, base: bigint, minResponses: number): boolean {
  return signers >= minResponses && stake * 3n > base * 2n;
}

/**
 * The output backed by the most stake (the smallest on a tie, so that every leader picks the same one).
 * The models are deterministic fixed-point programs, so honest operators give the same output to the bit:
 * the stake-heaviest output is then the median (and the mode) of the honest answers, and a deviating
 * operator only ever backs an output of its own. Undefined when nothing was observed. Pure.
 */
export function pickReportOutput(
  observed: readonly ObservedAnswer[],
  base: bigint,
  minResponses: number,
): ReportChoice | undefined {
  const byOutput = new Map<bigint, { signers: Address[]; stake: bigint }>();
  for (const o of observed) {
    const group = byOutput.get(o.output) ?? { signers: [], stake: 0n };
    group.signers.push(o.operator);
    group.stake += o.stake;
    byOutput.set(o.output, group);
  }
  let best: [bigint, { signers: Address[]; stake: bigint }] | undefined;
  for (const entry of byOutput) {
    if (!best || entry[1].stake > best[1].stake || (entry[1].stake === best[1].stake && entry[0] < best[0]))
      best = entry;
  }
  if (!best) return undefined;
  const [output, group] = best;
  return {
    output,
    signers: sortSigners(group.signers),
    stake: group.stake,
    quorum: hasReportQuorum(group.stake, group.signers.length, base, minResponses),
    groups: [...byOutput].map(([out, g]) => ({ output: out, count: g.signers.length, stake: g.stake })),
  };
}

export interface ReportOutcome {
  requestId: bigint;
  output: bigint;
  signers: Address[];
  /** Operators whose answer differed from the submitted one (or whose weights are not the request's). */
  leftOut: { operator: Address; output?: bigint; reason: string }[];
  gasUsed: bigint;
  blockNumber: bigint;
}

/** A view of the oracle by name, for the few reads whose result the caller types itself. */
export function oracleReader(
  oracle: Oracle,
): (functionName: string, args: readonly unknown[]) => Promise<unknown> {
  return (functionName, args) =>
    oracle.chain.publicClient.readContract({
      address: oracle.address,
      abi: InferenceOracle.abi,
      functionName,
      args,
    } as never) as Promise<unknown>;
}

/**
 * In-process report round: each operator computes its answer to the logged input; the output backed by the
 * most stake (the smallest on a tie) is signed by its backers over their sorted list and submitted, by
 * `submitter` (an account index; default the first operator's account), if its backers hold more than two
 * thirds of the version's active stake and number at least `minResponses`, as the contract demands.
 */
export async function fulfilWithReport(opts: {
  operators: readonly InferenceOperator[];
  requestId: bigint;
  submitter?: number;
}): Promise<ReportOutcome> {
  const first = opts.operators[0];
  if (!first) throw new OracleError("no operators");
  const oracle = first.oracle;
  const { requestId } = opts;
  const [status, logged, params] = await Promise.all([
    getRequestStatus(oracle, requestId),
    getLoggedRequest(oracle, requestId),
    getOracleParams(oracle),
  ]);
  if (status.state !== "open") throw new OracleError(`request ${requestId} is ${status.state}, not open`);
  if (status.reveals > 0)
    throw new OracleError(`request ${requestId} already has reveals: reports are accepted only before them`);
  const read = oracleReader(oracle);
  const base = (await read("stakeBase", [requestId])) as bigint;
  const leftOut: ReportOutcome["leftOut"] = [];
  const observed: ObservedAnswer[] = [];
  const byAddress = new Map<Address, InferenceOperator>();
  for (const op of opts.operators) {
    if (
      op.modelId !== status.modelId ||
      op.version !== status.version ||
      op.weightsDigest !== status.weightsDigest
    ) {
      leftOut.push({ operator: op.address, reason: "serves another model version or other weights" });
      continue;
    }
    const info = (await read("operatorInfo", [status.modelId, status.version, op.address])) as {
      stake: bigint;
    };
    if (info.stake < params.minStake) {
      leftOut.push({ operator: op.address, reason: "stake below the oracle's minimum" });
      continue;
    }
    byAddress.set(op.address, op);
    observed.push({
      operator: op.address,
      output: op.answer(await inputOf(logged, op.store)),
      stake: info.stake,
    });
  }
  const choice = pickReportOutput(observed, base, params.minResponses);
  if (!choice?.quorum)
    throw new OracleError(
      `no output has signers holding more than 2/3 of the active stake ${base} and at least ${params.minResponses} of them (${choice?.groups.map((g) => `${g.count} holding ${g.stake}`).join(", ") || "none"})`,
    );
  const { output, signers } = choice;
  for (const o of observed) {
    if (o.output !== output)
      leftOut.push({ operator: o.operator, output: o.output, reason: "signed another output" });
  }
  const domain = reportDomain(oracle);
  const signatures = await Promise.all(
    signers.map((signer) =>
      signReport(
        (byAddress.get(signer) as InferenceOperator).account,
        domain,
        requestId,
        output,
        status.weightsDigest,
        signers,
      ),
    ),
  );
  const submitter = opts.submitter ?? first.accountIndex;
  const sent = await submitSignedReport(oracle, requestId, output, signatures, submitter);
  return { requestId, output, leftOut, ...sent };
}
