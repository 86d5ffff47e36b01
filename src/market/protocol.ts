/**
 * The data market's pure pieces, computed alike by buyers, owners, providers and the contract
 * (contracts/DataMarket.sol): how a sale's cost splits between owner, market and publisher, an algorithm's
 * id, the EIP-712 receipt a provider signs, and the metadata JSON a dataset's CID names. No I/O.
 */
import { type Address, encodeAbiParameters, type Hex, isHex, keccak256 } from "viem";
import { BPS } from "../chain/bps.ts";

/** The contract's caps (tested equal to its constants). */
export const MAX_FEE_BPS = 1_000;
export const MAX_ROYALTY_BPS = 2_000;
export const MAX_PERIOD_SECONDS = 3650 * 86_400;
export const MAX_CID_BYTES = 128;

/** A value out of the market's ranges, before anything is sent. */
export class MarketInputError extends Error {
  override name = "MarketInputError";
}

/** Metadata that is not a dataset's metadata JSON. */
export class InvalidMetadataError extends Error {
  override name = "InvalidMetadataError";
}

/** How a sale's cost is paid out; `ownerShare + fee + royalty === cost`. */
export interface PaymentSplit {
  ownerShare: bigint;
  fee: bigint;
  royalty: bigint;
}

/**
 * The contract's `splitPayment`: the market fee and the publisher's royalty are `cost * bps / 10000`
 * rounded down (no royalty while the publisher still owns the dataset), the current owner gets the rest,
 * so the buyer pays exactly the sum of the three.
 * @throws MarketInputError for a negative cost or a rate above its cap, as the contract refuses them
 * @example splitPayment(1000n, 100, 500, false) // { ownerShare: 940n, fee: 10n, royalty: 50n }
 */
export function splitPayment(
  cost: bigint,
  feeBps: number,
  royaltyBps: number,
  ownerIsPublisher: boolean,
): PaymentSplit {
  if (cost < 0n) throw new MarketInputError(`a cost of ${cost} wei is negative`);
  checkBps(feeBps, MAX_FEE_BPS, "the market fee");
  checkBps(royaltyBps, MAX_ROYALTY_BPS, "the royalty");
  const fee = (cost * BigInt(feeBps)) / BPS;
  const royalty = ownerIsPublisher ? 0n : (cost * BigInt(royaltyBps)) / BPS;
  return { ownerShare: cost - fee - royalty, fee, royalty };
}

function checkBps(bps: number, max: number, what: string): void {
  if (!Number.isInteger(bps) || bps < 0 || bps > max)
    throw new MarketInputError(`${what} must be an integer from 0 to ${max} basis points, got ${bps}`);
}

/** What an algorithm id names: a registry model version, or an algorithm by its digest. */
export type AlgorithmRef = { modelId: bigint; version: number } | { digest: Hex };

/**
 * The bytes32 a dataset allows: `keccak256(abi.encode(modelId, version))` for a registry model version (the
 * contract's `modelAlgorithm`), the digest itself for a plain algorithm.
 * @example algorithmId({ modelId: 1n, version: 2 })
 */
export function algorithmId(ref: AlgorithmRef): Hex {
  if ("digest" in ref) {
    if (!isHex(ref.digest) || ref.digest.length !== 66)
      throw new MarketInputError(
        `an algorithm digest is 32 bytes in hex (0x and 64 digits), got ${ref.digest}`,
      );
    return ref.digest.toLowerCase() as Hex;
  }
  if (!Number.isInteger(ref.version) || ref.version < 1 || ref.version > 0xffff_ffff)
    throw new MarketInputError(`a model version is an integer from 1 to 2^32-1, got ${ref.version}`);
  return keccak256(
    encodeAbiParameters([{ type: "uint256" }, { type: "uint32" }], [ref.modelId, ref.version]),
  );
}

/** What a provider attests for one compute-to-data job. */
export interface ComputeReceipt {
  datasetId: bigint;
  requestDigest: Hex;
  algorithm: Hex;
  resultDigest: Hex;
  buyer: Address;
}

/** The EIP-712 types of a receipt, as the contract hashes them. */
export const RECEIPT_TYPES = {
  ComputeReceipt: [
    { name: "datasetId", type: "uint256" },
    { name: "requestDigest", type: "bytes32" },
    { name: "algorithm", type: "bytes32" },
    { name: "resultDigest", type: "bytes32" },
    { name: "buyer", type: "address" },
  ],
} as const;

/**
 * The DataMarket's EIP-712 domain (its constructor's `EIP712("Ledgermind DataMarket", "1")`): what a buyer
 * signs for a job and a provider for a receipt is bound to one market on one chain.
 */
export function marketDomain(market: Address, chainId: number) {
  return { name: "Ledgermind DataMarket", version: "1", chainId, verifyingContract: market } as const;
}

/**
 * The typed data a provider signs for a receipt (viem's `signTypedData`, `verifyTypedData` and
 * `hashTypedData` take it as is): bound to one market on one chain, so it cannot be replayed elsewhere.
 */
export function receiptTypedData(market: Address, chainId: number, receipt: ComputeReceipt) {
  return {
    domain: marketDomain(market, chainId),
    types: RECEIPT_TYPES,
    primaryType: "ComputeReceipt" as const,
    message: receipt,
  };
}

/** The metadata JSON a dataset's CID names. */
export interface DatasetMetadata {
  format: "ledgermind.dataset/1";
  name: string;
  description: string;
  /** Column (or field) names to their types. */
  schema: Record<string, string>;
  /** An SPDX identifier or a licence's name. */
  licence: string;
  size: { rows: number; bytes: number };
  /** The sha256 digest of a public sample of the data, if one is published. */
  sampleDigest?: Hex;
  /** Present when every job must be differentially private: each buyer's budget. */
  privacyBudget?: { epsilon: number; delta: number };
}

/** Bytes to store for a dataset's metadata: canonical JSON (keys in the order above), one line. */
export function encodeMetadata(metadata: DatasetMetadata): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(parseMetadataObject(metadata)));
}

/**
 * Reads and checks a dataset's metadata bytes.
 * @throws InvalidMetadataError naming the first field that is missing or wrong
 */
export function parseMetadata(bytes: Uint8Array): DatasetMetadata {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new InvalidMetadataError(`dataset metadata is not UTF-8 JSON: ${(cause as Error).message}`);
  }
  return parseMetadataObject(value);
}

function parseMetadataObject(value: unknown): DatasetMetadata {
  const fail = (field: string, rule: string): never => {
    throw new InvalidMetadataError(`dataset metadata: ${field} ${rule}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value))
    fail("the whole", "must be an object");
  const m = value as Record<string, unknown>;
  if (m.format !== "ledgermind.dataset/1") fail("format", 'must be "ledgermind.dataset/1"');
  for (const field of ["name", "description", "licence"] as const)
    if (typeof m[field] !== "string" || (field !== "description" && m[field] === ""))
      fail(field, "must be a string (name and licence not empty)");
  const schema = m.schema;
  if (
    typeof schema !== "object" ||
    schema === null ||
    Array.isArray(schema) ||
    Object.values(schema).some((t) => typeof t !== "string")
  )
    fail("schema", "must map field names to type names");
  const size = m.size as Record<string, unknown> | undefined;
  const count = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (typeof size !== "object" || size === null || !count(size.rows) || !count(size.bytes))
    fail("size", "must be { rows, bytes }, non-negative integers");
  if (m.sampleDigest !== undefined && !(isHex(m.sampleDigest) && m.sampleDigest.length === 66))
    fail("sampleDigest", "must be a 32-byte hex digest");
  const budget = m.privacyBudget as Record<string, unknown> | undefined;
  if (
    budget !== undefined &&
    (typeof budget !== "object" ||
      budget === null ||
      !(typeof budget.epsilon === "number" && budget.epsilon > 0 && Number.isFinite(budget.epsilon)) ||
      !(typeof budget.delta === "number" && budget.delta >= 0 && budget.delta < 1))
  )
    fail("privacyBudget", "must be { epsilon > 0, 0 <= delta < 1 }");
  const s = size as { rows: number; bytes: number };
  return {
    format: "ledgermind.dataset/1",
    name: m.name as string,
    description: m.description as string,
    schema: { ...(schema as Record<string, string>) },
    licence: m.licence as string,
    size: { rows: s.rows, bytes: s.bytes },
    ...(m.sampleDigest !== undefined ? { sampleDigest: m.sampleDigest as Hex } : {}),
    ...(budget !== undefined
      ? { privacyBudget: { epsilon: budget.epsilon as number, delta: budget.delta as number } }
      : {}),
  };
}
