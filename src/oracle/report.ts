/**
 * Report mode: operators compute the answer off-chain, each signs the EIP-712
 * `Report(uint256 requestId,int256 output,bytes32 weightsDigest)`, and anyone submits one output with a
 * quorum of signatures, sorted by signer as the contract demands. One transaction instead of a commit and
 * a reveal per operator; no slashing (operators that signed another output are simply left out).
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

/** Signs a report with a local account. */
export async function signReport(
  account: LocalAccount,
  domain: ReportDomain,
  requestId: bigint,
  output: bigint,
  weightsDigest: Hex,
): Promise<SignedReport> {
  const signature = await account.signTypedData({
    domain,
    types: REPORT_TYPES,
    primaryType: "Report",
    message: { requestId, output, weightsDigest },
  });
  return { signer: account.address, signature };
}

/** Signatures in the contract's order: ascending signer address; a signer twice is refused. */
export function sortBySigner(signatures: readonly SignedReport[]): SignedReport[] {
  const sorted = [...signatures].sort((a, b) => {
    const x = BigInt(a.signer);
    const y = BigInt(b.signer);
    return x < y ? -1 : x > y ? 1 : 0;
  });
  for (let i = 1; i < sorted.length; i++) {
    if (BigInt((sorted[i] as SignedReport).signer) === BigInt((sorted[i - 1] as SignedReport).signer))
      throw new OracleError(`${(sorted[i] as SignedReport).signer} signed twice`);
  }
  return sorted;
}

/** Submits `output` with the signatures (sorted here) from configured account `account`. */
export async function submitSignedReport(
  target: OracleTarget,
  requestId: bigint,
  output: bigint,
  signatures: readonly SignedReport[],
  account = 0,
): Promise<{ gasUsed: bigint; blockNumber: bigint; signers: Address[] }> {
  const oracle = await asOracle(target);
  const sorted = sortBySigner(signatures);
  const receipt = await sendAndWait(
    oracle.chain,
    oracle.chain.wallet(account).writeContract({
      address: oracle.address,
      abi: InferenceOracle.abi,
      functionName: "submitReport",
      args: [requestId, output, sorted.map((s) => s.signature)],
    }),
  );
  return { gasUsed: receipt.gasUsed, blockNumber: receipt.blockNumber, signers: sorted.map((s) => s.signer) };
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

/**
 * In-process report round: each operator computes its answer to the logged input and signs it; the
 * output with the most signers (the smallest on a tie) is submitted, by `submitter` (an account index;
 * default the first operator's account), if it reaches the oracle's quorum (`minResponses`).
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
  const domain = reportDomain(oracle);
  const leftOut: ReportOutcome["leftOut"] = [];
  const byOutput = new Map<bigint, SignedReport[]>();
  for (const op of opts.operators) {
    if (
      op.modelId !== status.modelId ||
      op.version !== status.version ||
      op.weightsDigest !== status.weightsDigest
    ) {
      leftOut.push({ operator: op.address, reason: "serves another model version or other weights" });
      continue;
    }
    const output = op.answer(await inputOf(logged, op.store));
    const signed = await signReport(op.account, domain, requestId, output, status.weightsDigest);
    byOutput.set(output, [...(byOutput.get(output) ?? []), signed]);
  }
  let best: [bigint, SignedReport[]] | undefined;
  for (const entry of byOutput) {
    if (
      !best ||
      entry[1].length > best[1].length ||
      (entry[1].length === best[1].length && entry[0] < best[0])
    )
      best = entry;
  }
  if (!best || best[1].length < params.minResponses)
    throw new OracleError(
      `no output has the quorum of ${params.minResponses} signers (${[...byOutput.values()].map((s) => s.length).join(", ") || "none"})`,
    );
  const [output, signatures] = best;
  for (const [other, signed] of byOutput) {
    if (other !== output)
      for (const s of signed)
        leftOut.push({ operator: s.signer, output: other, reason: "signed another output" });
  }
  const submitter = opts.submitter ?? first.accountIndex;
  const sent = await submitSignedReport(oracle, requestId, output, signatures, submitter);
  return { requestId, output, leftOut, ...sent };
}
