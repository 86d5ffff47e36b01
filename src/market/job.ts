/**
 * The compute-to-data job request (pure, no I/O): what a buyer signs (EIP-712) to have a provider run an
 * algorithm next to a dataset, and how the provider reads it back. The provider checks the signature against
 * its own domain (its chain and its market's address), so a request signed for another market or chain
 * recovers another address and is refused.
 *
 * The training parameters are not signed field by field: the message carries `paramsDigest`, the keccak256
 * of their canonical JSON (`paramsJson`), and the provider recomputes it from the parameters it receives, so
 * none can be changed after signing. The algorithm of a registry model version is
 * `keccak256(abi.encode(uint256 modelId, uint32 version))` (`algorithmId` in protocol.ts), and a request whose algorithm
 * is not that of its own model and version is malformed: the allowed-algorithm check on-chain and the
 * model actually run are then the same thing.
 */
import {
  type Address,
  getAddress,
  type Hex,
  hashTypedData,
  isAddress,
  isHex,
  keccak256,
  recoverTypedDataAddress,
  stringToHex,
  type TypedDataDomain,
} from "viem";
import { z } from "zod";
import type { LocalAccount } from "../chain/accounts.ts";
import { algorithmId, marketDomain } from "./protocol.ts";

export const JOB_TYPES = {
  JobRequest: [
    { name: "datasetId", type: "uint256" },
    { name: "algorithm", type: "bytes32" },
    { name: "kind", type: "string" },
    { name: "modelId", type: "uint256" },
    { name: "version", type: "uint32" },
    { name: "paramsDigest", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "expiresAt", type: "uint64" },
    { name: "buyer", type: "address" },
  ],
} as const;

export type JobKind = "train" | "evaluate";

/** Client-level differential privacy asked for a training job's returned update (see privacy-budget.ts). */
export interface DpParams {
  /** The epsilon this job spends, in (0, 1): the classic Gaussian mechanism's proven range. */
  epsilon: number;
  /** L2 bound on the returned update's delta from the base model, in weight units. */
  clipNorm: number;
}

export interface JobParams {
  epochs: number;
  batch: number;
  lr: number;
  /** Absent: no noise (refused where the dataset requires DP). */
  dp?: DpParams;
}

/** A job request as the buyer writes it, before signing. */
export interface JobRequest {
  datasetId: bigint;
  algorithm: Hex;
  kind: JobKind;
  modelId: bigint;
  version: number;
  params: JobParams;
  nonce: bigint;
  /** Unix seconds after which the provider refuses the request. */
  expiresAt: bigint;
  buyer: Address;
}

export interface SignedJobRequest {
  request: JobRequest;
  signature: Hex;
}

/** The market a job is signed for: the provider's chain and DataMarket address. */
export interface JobDomainInput {
  chainId: number;
  market: Address;
}

/** A request the provider cannot read: the message says which field is wrong. */
export class MalformedJobError extends Error {
  override name = "MalformedJobError";
}

/** The signature does not recover the request's buyer under this provider's domain. */
export class BadJobSignatureError extends Error {
  override name = "BadJobSignatureError";
}

export function jobDomain({ chainId, market }: JobDomainInput): TypedDataDomain {
  return marketDomain(market, chainId);
}

/**
 * The parameters as one canonical JSON text: fixed key order, `dp` null when absent. JavaScript prints a
 * number as its shortest round-trip decimal, so equal numbers always give equal text.
 */
export function paramsJson(params: JobParams): string {
  const { epochs, batch, lr, dp } = params;
  return JSON.stringify({
    epochs,
    batch,
    lr,
    dp: dp === undefined ? null : { epsilon: dp.epsilon, clipNorm: dp.clipNorm },
  });
}

export function paramsDigest(params: JobParams): Hex {
  return keccak256(stringToHex(paramsJson(params)));
}

function typedMessage(request: JobRequest) {
  const { datasetId, algorithm, kind, modelId, version, nonce, expiresAt, buyer } = request;
  return {
    datasetId,
    algorithm,
    kind,
    modelId,
    version,
    paramsDigest: paramsDigest(request.params),
    nonce,
    expiresAt,
    buyer,
  };
}

/** The EIP-712 digest of a request: its id at the provider and the receipt's `requestDigest`. */
export function jobDigest(domain: JobDomainInput, request: JobRequest): Hex {
  return hashTypedData({
    domain: jobDomain(domain),
    types: JOB_TYPES,
    primaryType: "JobRequest",
    message: typedMessage(request),
  });
}

/** Signs a request as its buyer. */
export async function signJob(
  account: LocalAccount,
  domain: JobDomainInput,
  request: JobRequest,
): Promise<SignedJobRequest> {
  if (getAddress(account.address) !== getAddress(request.buyer))
    throw new BadJobSignatureError(
      `the request names buyer ${request.buyer}, not the signer ${account.address}`,
    );
  const signature = await account.signTypedData({
    domain: jobDomain(domain),
    types: JOB_TYPES,
    primaryType: "JobRequest",
    message: typedMessage(request),
  });
  return { request, signature };
}

/**
 * The buyer of a signed request, checked: the signature must recover the address the request names.
 * @throws BadJobSignatureError otherwise (another signer, another market or chain, a changed field)
 */
export async function verifyJob(domain: JobDomainInput, signed: SignedJobRequest): Promise<Address> {
  let signer: Address;
  try {
    signer = await recoverTypedDataAddress({
      domain: jobDomain(domain),
      types: JOB_TYPES,
      primaryType: "JobRequest",
      message: typedMessage(signed.request),
      signature: signed.signature,
    });
  } catch (error) {
    throw new BadJobSignatureError(
      `the signature cannot be read (${(error as Error).message.split("\n")[0]}); sign the request with signJob`,
    );
  }
  if (getAddress(signer) !== getAddress(signed.request.buyer)) {
    throw new BadJobSignatureError(
      `the signature is not the buyer's ${signed.request.buyer} for market ${domain.market} on chain ${domain.chainId}; sign it with the buyer's key for this market`,
    );
  }
  return getAddress(signed.request.buyer);
}

const UINT64_MAX = 2n ** 64n - 1n;
const UINT256_MAX = 2n ** 256n - 1n;
const uint = (max: bigint) =>
  z
    .string()
    .regex(/^\d{1,78}$/, "expected a decimal integer in a string")
    .transform((s) => BigInt(s))
    .refine((v) => v <= max, "out of range");
const positiveInt = z.number().int().positive();

const wireSchema = z.strictObject({
  request: z.strictObject({
    datasetId: uint(UINT256_MAX),
    algorithm: z.string().refine((s) => isHex(s) && s.length === 66, "expected a bytes32 as 0x and 64 hex"),
    kind: z.enum(["train", "evaluate"]),
    modelId: uint(UINT256_MAX),
    version: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1),
    params: z.strictObject({
      epochs: positiveInt,
      batch: positiveInt,
      lr: z.number().positive().finite(),
      dp: z
        .strictObject({
          epsilon: z.number().gt(0).lt(1),
          clipNorm: z.number().positive().finite(),
        })
        .optional(),
    }),
    nonce: uint(UINT256_MAX),
    expiresAt: uint(UINT64_MAX),
    buyer: z.string().refine((s) => isAddress(s, { strict: false }), "expected an address"),
  }),
  signature: z.string().refine((s) => isHex(s), "expected 0x and hex"),
});

/** A signed request as JSON: integers beyond 2^53 as decimal strings. */
export function jobToJson(signed: SignedJobRequest): unknown {
  const r = signed.request;
  return {
    request: {
      datasetId: r.datasetId.toString(),
      algorithm: r.algorithm,
      kind: r.kind,
      modelId: r.modelId.toString(),
      version: r.version,
      params:
        r.params.dp === undefined
          ? { epochs: r.params.epochs, batch: r.params.batch, lr: r.params.lr }
          : r.params,
      nonce: r.nonce.toString(),
      expiresAt: r.expiresAt.toString(),
      buyer: r.buyer,
    },
    signature: signed.signature,
  };
}

/**
 * Reads a signed request from its JSON, checking every field's form and that the algorithm is the model
 * version's (not the signature: see verifyJob).
 * @throws MalformedJobError naming the first field that is wrong
 */
export function jobFromJson(raw: unknown): SignedJobRequest {
  const parsed = wireSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MalformedJobError(`${issue?.path.join(".") || "body"}: ${issue?.message}`);
  }
  const { request: r, signature } = parsed.data;
  const algorithm = r.algorithm.toLowerCase() as Hex;
  const request: JobRequest = {
    datasetId: r.datasetId,
    algorithm,
    kind: r.kind,
    modelId: r.modelId,
    version: r.version,
    params:
      r.params.dp === undefined
        ? { epochs: r.params.epochs, batch: r.params.batch, lr: r.params.lr }
        : r.params,
    nonce: r.nonce,
    expiresAt: r.expiresAt,
    buyer: getAddress(r.buyer),
  };
  if (algorithm !== algorithmId({ modelId: request.modelId, version: request.version })) {
    throw new MalformedJobError(
      `request.algorithm: ${algorithm} is not model ${request.modelId} version ${request.version}'s algorithm ${algorithmId({ modelId: request.modelId, version: request.version })}`,
    );
  }
  return { request, signature: signature as Hex };
}

export const RESULT_ACCESS_TYPES = {
  ResultAccess: [
    { name: "resultDigest", type: "bytes32" },
    { name: "expiresAt", type: "uint64" },
  ],
} as const;

/** What a buyer signs to fetch its result: valid until `expiresAt` (unix seconds), for this result only. */
export interface ResultAccess {
  resultDigest: Hex;
  expiresAt: bigint;
}

export async function signResultAccess(
  account: LocalAccount,
  domain: JobDomainInput,
  access: ResultAccess,
): Promise<Hex> {
  return account.signTypedData({
    domain: jobDomain(domain),
    types: RESULT_ACCESS_TYPES,
    primaryType: "ResultAccess",
    message: access,
  });
}

/** The signer of a result access, or undefined when the signature cannot be read. */
export async function resultAccessSigner(
  domain: JobDomainInput,
  access: ResultAccess,
  signature: Hex,
): Promise<Address | undefined> {
  try {
    return await recoverTypedDataAddress({
      domain: jobDomain(domain),
      types: RESULT_ACCESS_TYPES,
      primaryType: "ResultAccess",
      message: access,
      signature,
    });
  } catch {
    return undefined;
  }
}
