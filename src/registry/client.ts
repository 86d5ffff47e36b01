import {
  type Address,
  encodeAbiParameters,
  getAddress,
  type Hex,
  hexToBigInt,
  hexToString,
  keccak256,
  parseEventLogs,
  stringToHex,
  toHex,
  zeroAddress,
} from "viem";
import type { LedgerChain } from "../chain/connect.ts";
import { type Manifest, requireDeployment } from "../chain/deploy.ts";
import { ModelRegistry } from "../chain/generated/contracts.ts";
import { sendAndWait } from "../chain/tx.ts";
import { cidFromDigest, digestFromCid } from "../storage/cid.ts";
import { FIELD_MODULUS } from "../zk/commitment.ts";
import {
  type AttestationMessage,
  attestationDomain,
  type PqKeyPair,
  pqKeyHash,
  signAttestation,
  VERDICTS,
  type VerdictName,
} from "./attestation.ts";

/** Metric values are fixed point on-chain: 1_000_000 means 1.0. */
export const METRIC_SCALE = 1_000_000;
/** The canonical model encoding's format tag (src/ml/encoding.ts). */
export const CANONICAL_FORMAT = "LMQ1";

export class RegistryError extends Error {
  override name = "RegistryError";
}

export interface Registry {
  chain: LedgerChain;
  manifest: Manifest;
  address: Address;
  /** The first block worth scanning for the registry's events. */
  fromBlock: bigint;
}

export async function openRegistry(chain: LedgerChain): Promise<Registry> {
  const manifest = await requireDeployment(chain);
  return {
    chain,
    manifest,
    address: manifest.contracts.ModelRegistry.address,
    fromBlock: BigInt(manifest.contracts.ModelRegistry.block),
  };
}

export interface VersionSpec {
  weightsCid: string;
  format?: string;
  parent?: { modelId: bigint; version: number };
  datasets?: string[];
  metrics?: Record<string, number>;
  trainingRunCid?: string;
  licence?: string;
  modelCardCid?: string;
}

export interface VersionRecord {
  modelId: bigint;
  version: number;
  publisher: Address;
  weightsDigest: Hex;
  weightsCid: string;
  format: string;
  parent?: { modelId: bigint; version: number };
  datasets: string[];
  metrics: Record<string, number>;
  trainingRunCid?: string;
  licence: string;
  modelCardCid?: string;
  createdAt: number;
  deprecated: boolean;
  deprecationReason?: string;
  attestationCount: number;
  /** The version's zk verifier and weights commitment (`setZkVerifier`); absent when it has none. */
  zk?: ZkVerifierRecord;
}

/** A version's verifier of zero-knowledge inference proofs and the Poseidon commitment to its weights. */
export interface ZkVerifierRecord {
  verifier: Address;
  /** A BN254 field element, as 32 bytes. */
  commitment: Hex;
}

export interface AttestationRecord {
  index: number;
  attester: Address;
  verdict: VerdictName | "none";
  claimDigest: Hex;
  claimCid: string;
  createdAt: number;
  message: AttestationMessage;
  ecdsaSignature: Hex;
  pqSignature: Hex;
}

const ZERO = `0x${"0".repeat(64)}` as Hex;

function shortString(text: string, size: 8 | 32, what: string): Hex {
  if (new TextEncoder().encode(text).length > size)
    throw new RegistryError(`${what} "${text}" is longer than ${size} bytes`);
  return stringToHex(text, { size });
}

function fromShortString(hex: Hex): string {
  return hexToString(hex).replace(/\0+$/, "");
}

const optionalDigest = (cid: string | undefined): Hex => (cid ? digestFromCid(cid) : ZERO);
const optionalCid = (digest: Hex): string | undefined =>
  digest === ZERO ? undefined : cidFromDigest(digest);

/** ModelRegistry.VersionInput as viem encodes and decodes it. */
export interface VersionInput {
  weightsDigest: Hex;
  format: Hex;
  parentModel: number;
  parentVersion: number;
  datasets: readonly Hex[];
  metrics: readonly { name: Hex; value: bigint }[];
  trainingRun: Hex;
  licence: Hex;
  modelCard: Hex;
}

/** Converts a version spec to the contract's input: CIDs to digests, names to short strings, metrics to fixed point. */
export function toVersionInput(spec: VersionSpec): VersionInput {
  const metrics = Object.entries(spec.metrics ?? {}).map(([name, value]) => {
    if (!Number.isFinite(value)) throw new RegistryError(`metric ${name} is not a finite number`);
    return { name: shortString(name, 32, "metric name"), value: BigInt(Math.round(value * METRIC_SCALE)) };
  });
  return {
    weightsDigest: digestFromCid(spec.weightsCid),
    format: shortString(spec.format ?? CANONICAL_FORMAT, 8, "format"),
    parentModel: Number(spec.parent?.modelId ?? 0n),
    parentVersion: spec.parent?.version ?? 0,
    datasets: (spec.datasets ?? []).map(digestFromCid),
    metrics,
    trainingRun: optionalDigest(spec.trainingRunCid),
    licence: shortString(spec.licence ?? "", 32, "licence"),
    modelCard: optionalDigest(spec.modelCardCid),
  };
}

function mutableInput(input: VersionInput) {
  return { ...input, datasets: [...input.datasets], metrics: [...input.metrics] };
}

/** Mirrors ModelRegistry.detailsHash. */
export function detailsHash(input: VersionInput): Hex {
  return keccak256(
    encodeAbiParameters(
      [
        { type: "bytes32[]" },
        {
          type: "tuple[]",
          components: [
            { name: "name", type: "bytes32" },
            { name: "value", type: "int256" },
          ],
        },
        { type: "bytes32" },
        { type: "bytes32" },
        { type: "bytes32" },
      ],
      [input.datasets, input.metrics, input.trainingRun, input.licence, input.modelCard],
    ),
  );
}

export async function registerModel(
  reg: Registry,
  name: string,
  account = 0,
): Promise<{ modelId: bigint; gasUsed: bigint }> {
  const receipt = await sendAndWait(reg.chain, () =>
    reg.chain.wallet(account).writeContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "registerModel",
      args: [name],
    }),
  );
  const [log] = parseEventLogs({ abi: ModelRegistry.abi, eventName: "ModelRegistered", logs: receipt.logs });
  if (!log) throw new RegistryError("registerModel emitted no ModelRegistered event");
  return { modelId: log.args.modelId, gasUsed: receipt.gasUsed };
}

export async function addVersion(
  reg: Registry,
  modelId: bigint,
  spec: VersionSpec,
  account = 0,
): Promise<{ version: number; gasUsed: bigint }> {
  await requireModel(reg, modelId);
  const receipt = await sendAndWait(reg.chain, () =>
    reg.chain.wallet(account).writeContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "addVersion",
      args: [modelId, mutableInput(toVersionInput(spec))],
    }),
  );
  const [log] = parseEventLogs({ abi: ModelRegistry.abi, eventName: "VersionAdded", logs: receipt.logs });
  if (!log) throw new RegistryError("addVersion emitted no VersionAdded event");
  return { version: log.args.version, gasUsed: receipt.gasUsed };
}

export async function deprecateVersion(
  reg: Registry,
  modelId: bigint,
  version: number,
  reason: string,
  account = 0,
): Promise<void> {
  await getVersion(reg, modelId, version);
  await sendAndWait(reg.chain, () =>
    reg.chain.wallet(account).writeContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "deprecateVersion",
      args: [modelId, version, reason],
    }),
  );
}

export async function getModel(
  reg: Registry,
  modelId: bigint,
): Promise<{ modelId: bigint; owner: Address; name: string; versionCount: number }> {
  await requireModel(reg, modelId);
  const read = reg.chain.publicClient;
  const [owner, versionCount, logs] = await Promise.all([
    read.readContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "ownerOf",
      args: [modelId],
    }),
    read.readContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "versionCount",
      args: [modelId],
    }),
    read.getContractEvents({
      address: reg.address,
      abi: ModelRegistry.abi,
      eventName: "ModelRegistered",
      args: { modelId },
      fromBlock: reg.fromBlock,
    }),
  ]);
  return { modelId, owner, name: logs[0]?.args.name ?? "", versionCount };
}

async function requireModel(reg: Registry, modelId: bigint): Promise<void> {
  const count = await reg.chain.publicClient.readContract({
    address: reg.address,
    abi: ModelRegistry.abi,
    functionName: "modelCount",
  });
  if (modelId < 1n || modelId > BigInt(count)) {
    throw new RegistryError(
      `model ${modelId} does not exist on chain ${reg.chain.chainId} (${count} models)`,
    );
  }
}

/**
 * A version's record: the stored fields, plus the lists from its `VersionAdded` log, which are used only
 * after they hash to the stored `detailsHash`.
 */
export async function getVersion(reg: Registry, modelId: bigint, version: number): Promise<VersionRecord> {
  const model = await getModel(reg, modelId);
  if (!Number.isInteger(version) || version < 1 || version > model.versionCount) {
    throw new RegistryError(`model ${modelId} has no version ${version} (it has ${model.versionCount})`);
  }
  const read = reg.chain.publicClient;
  const [stored, added, deprecations, zk] = await Promise.all([
    read.readContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "getVersion",
      args: [modelId, version],
    }),
    read.getContractEvents({
      address: reg.address,
      abi: ModelRegistry.abi,
      eventName: "VersionAdded",
      args: { modelId, version },
      fromBlock: reg.fromBlock,
    }),
    read.getContractEvents({
      address: reg.address,
      abi: ModelRegistry.abi,
      eventName: "VersionDeprecated",
      args: { modelId, version },
      fromBlock: reg.fromBlock,
    }),
    readZkVerifier(reg, modelId, version),
  ]);
  const log = added[0];
  if (!log?.args.input || !log.args.publisher) {
    throw new RegistryError(`the chain returned no VersionAdded log for model ${modelId} version ${version}`);
  }
  const input = log.args.input;
  if (detailsHash(input) !== stored.detailsHash || input.weightsDigest !== stored.weightsDigest) {
    throw new RegistryError(
      `the VersionAdded log of model ${modelId} version ${version} does not match its stored commitment`,
    );
  }
  return {
    modelId,
    version,
    publisher: getAddress(log.args.publisher),
    weightsDigest: stored.weightsDigest,
    weightsCid: cidFromDigest(stored.weightsDigest),
    format: fromShortString(stored.format),
    parent:
      stored.parentModel === 0
        ? undefined
        : { modelId: BigInt(stored.parentModel), version: stored.parentVersion },
    datasets: input.datasets.map(cidFromDigest),
    metrics: Object.fromEntries(
      input.metrics.map((m) => [fromShortString(m.name), Number(m.value) / METRIC_SCALE]),
    ),
    trainingRunCid: optionalCid(input.trainingRun),
    licence: fromShortString(input.licence),
    modelCardCid: optionalCid(input.modelCard),
    createdAt: stored.createdAt,
    deprecated: stored.deprecated,
    deprecationReason: deprecations[0]?.args.reason,
    attestationCount: stored.attestationCount,
    ...(zk ? { zk } : {}),
  };
}

async function readZkVerifier(
  reg: Registry,
  modelId: bigint,
  version: number,
): Promise<ZkVerifierRecord | undefined> {
  const [verifier, commitment] = await reg.chain.publicClient.readContract({
    address: reg.address,
    abi: ModelRegistry.abi,
    functionName: "zkVerifierOf",
    args: [modelId, version],
  });
  return verifier === zeroAddress ? undefined : { verifier, commitment };
}

/**
 * A version's zk verifier and weights commitment, or undefined when it has none.
 *
 * @example
 * const zk = await getZkVerifier(reg, { modelId: 1n, version: 2 });
 */
export async function getZkVerifier(
  reg: Registry,
  { modelId, version }: { modelId: bigint; version: number },
): Promise<ZkVerifierRecord | undefined> {
  await getVersion(reg, modelId, version);
  return readZkVerifier(reg, modelId, version);
}

export interface SetZkVerifierParameters {
  modelId: bigint;
  version: number;
  /** An `IZkInferenceVerifier` contract (deployed: the registry refuses an address without code). */
  verifier: Address;
  /** The Poseidon weights commitment, non-zero and below FIELD_MODULUS. */
  commitment: bigint | Hex;
}

/**
 * Gives a version its zk verifier and weights commitment, once and for good (the model's owner, or an
 * account it approved). Refuses locally what the contract would refuse: a version that already has one, a
 * commitment outside the field, a verifier without code.
 *
 * @param reg The registry.
 * @param params The version, the verifier contract and the commitment.
 * @param account The dev account that sends it.
 * @returns The transaction's gas.
 * @example
 * await setZkVerifier(reg, { modelId: 1n, version: 2, verifier, commitment: 123n }, 0);
 */
export async function setZkVerifier(
  reg: Registry,
  params: SetZkVerifierParameters,
  account = 0,
): Promise<{ gasUsed: bigint }> {
  const { modelId, version, verifier } = params;
  const value = typeof params.commitment === "bigint" ? params.commitment : hexToBigInt(params.commitment);
  if (value <= 0n || value >= FIELD_MODULUS)
    throw new RegistryError(
      `the weights commitment ${value} is not a non-zero element of the BN254 scalar field (below ${FIELD_MODULUS})`,
    );
  const existing = await getZkVerifier(reg, { modelId, version });
  if (existing)
    throw new RegistryError(
      `model ${modelId} version ${version} already has the zk verifier ${existing.verifier}; it is set once per version`,
    );
  const code = await reg.chain.publicClient.getCode({ address: verifier });
  if (!code || code === "0x")
    throw new RegistryError(
      `${verifier} holds no contract code on chain ${reg.chain.chainId}; deploy the verifier first`,
    );
  const receipt = await sendAndWait(reg.chain, () =>
    reg.chain.wallet(account).writeContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "setZkVerifier",
      args: [modelId, version, verifier, toHex(value, { size: 32 })],
    }),
  );
  return { gasUsed: receipt.gasUsed };
}

/** The version and its ancestors, newest first, following parents across models. */
export async function getLineage(reg: Registry, modelId: bigint, version: number): Promise<VersionRecord[]> {
  const chain: VersionRecord[] = [];
  let next: { modelId: bigint; version: number } | undefined = { modelId, version };
  while (next) {
    const record: VersionRecord = await getVersion(reg, next.modelId, next.version);
    chain.push(record);
    next = record.parent;
  }
  return chain;
}

/** The ML-DSA public key an attester bound, read from its `PqKeyBound` log and checked against storage. */
export async function getPqPublicKey(reg: Registry, attester: Address): Promise<Hex | undefined> {
  const read = reg.chain.publicClient;
  const [hash, logs] = await Promise.all([
    read.readContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "pqKeyHash",
      args: [attester],
    }),
    read.getContractEvents({
      address: reg.address,
      abi: ModelRegistry.abi,
      eventName: "PqKeyBound",
      args: { attester },
      fromBlock: reg.fromBlock,
    }),
  ]);
  const key = logs.map((l) => l.args.publicKey).find((k): k is Hex => !!k && keccak256(k) === hash);
  return hash === ZERO ? undefined : key;
}

/** Binds the account's ML-DSA key unless it is bound already; a different bound key is an error. */
export async function ensurePqKeyBound(reg: Registry, pqKey: PqKeyPair, account = 0): Promise<void> {
  const address = reg.chain.wallet(account).account.address;
  const bound = await reg.chain.publicClient.readContract({
    address: reg.address,
    abi: ModelRegistry.abi,
    functionName: "pqKeyHash",
    args: [address],
  });
  if (bound === pqKeyHash(pqKey.publicKey)) return;
  if (bound !== ZERO) {
    throw new RegistryError(
      `${address} bound a different ML-DSA key on-chain: use that key (LEDGERMIND_MLDSA_SEED)`,
    );
  }
  await sendAndWait(reg.chain, () =>
    reg.chain.wallet(account).writeContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "bindPqKey",
      args: [toHex(pqKey.publicKey)],
    }),
  );
}

export async function attest(
  reg: Registry,
  opts: {
    modelId: bigint;
    version: number;
    claimCid: string;
    verdict: VerdictName;
    pqKey: PqKeyPair;
    account?: number;
  },
): Promise<{ index: number; gasUsed: bigint }> {
  const account = opts.account ?? 0;
  const wallet = reg.chain.wallet(account);
  const record = await getVersion(reg, opts.modelId, opts.version);
  await ensurePqKeyBound(reg, opts.pqKey, account);
  const nonce = await reg.chain.publicClient.readContract({
    address: reg.address,
    abi: ModelRegistry.abi,
    functionName: "nonces",
    args: [wallet.account.address],
  });
  const message: AttestationMessage = {
    attester: wallet.account.address,
    modelId: opts.modelId,
    version: opts.version,
    weightsDigest: record.weightsDigest,
    claimDigest: digestFromCid(opts.claimCid),
    verdict: VERDICTS[opts.verdict],
    pqKeyHash: pqKeyHash(opts.pqKey.publicKey),
    nonce,
  };
  const domain = attestationDomain(reg.chain.chainId, reg.address);
  const { ecdsaSignature, pqSignature } = await signAttestation({
    account: reg.chain.accounts[account] as NonNullable<(typeof reg.chain.accounts)[number]>,
    pqKey: opts.pqKey,
    domain,
    message,
  });
  return submitAttestation(reg, message, ecdsaSignature, pqSignature, account);
}

/** Submits an attestation signed elsewhere; any account may relay it. */
export async function submitAttestation(
  reg: Registry,
  message: AttestationMessage,
  ecdsaSignature: Hex,
  pqSignature: Hex,
  account = 0,
): Promise<{ index: number; gasUsed: bigint }> {
  const receipt = await sendAndWait(reg.chain, () =>
    reg.chain.wallet(account).writeContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "attest",
      args: [
        {
          attester: message.attester,
          modelId: message.modelId,
          version: message.version,
          claimDigest: message.claimDigest,
          verdict: message.verdict,
        },
        ecdsaSignature,
        pqSignature,
      ],
    }),
  );
  const [log] = parseEventLogs({ abi: ModelRegistry.abi, eventName: "Attested", logs: receipt.logs });
  if (!log) throw new RegistryError("attest emitted no Attested event");
  return { index: log.args.index, gasUsed: receipt.gasUsed };
}

/** Every attestation of a version, from its logs, each checked against the stored record. */
export async function listAttestations(reg: Registry, record: VersionRecord): Promise<AttestationRecord[]> {
  const read = reg.chain.publicClient;
  const logs = await read.getContractEvents({
    address: reg.address,
    abi: ModelRegistry.abi,
    eventName: "Attested",
    args: { modelId: record.modelId, version: record.version },
    fromBlock: reg.fromBlock,
  });
  const out: AttestationRecord[] = [];
  for (const log of logs) {
    const { input, index, nonce, ecdsaSignature, pqSignature, attester } = log.args;
    if (
      !input ||
      index === undefined ||
      nonce === undefined ||
      !ecdsaSignature ||
      !pqSignature ||
      !attester
    ) {
      throw new RegistryError("the chain returned an incomplete Attested log");
    }
    const stored = await read.readContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "getAttestation",
      args: [record.modelId, record.version, index],
    });
    if (keccak256(pqSignature) !== stored.pqSignatureHash || stored.claimDigest !== input.claimDigest) {
      throw new RegistryError(`attestation #${index} in the log does not match its stored record`);
    }
    const keyHash = await read.readContract({
      address: reg.address,
      abi: ModelRegistry.abi,
      functionName: "pqKeyHash",
      args: [attester],
    });
    out.push({
      index,
      attester: getAddress(attester),
      verdict: verdictNameOf(stored.verdict),
      claimDigest: stored.claimDigest,
      claimCid: cidFromDigest(stored.claimDigest),
      createdAt: stored.createdAt,
      message: {
        attester: getAddress(attester),
        modelId: record.modelId,
        version: record.version,
        weightsDigest: record.weightsDigest,
        claimDigest: input.claimDigest,
        verdict: input.verdict,
        pqKeyHash: keyHash,
        nonce,
      },
      ecdsaSignature,
      pqSignature,
    });
  }
  return out;
}

function verdictNameOf(code: number): VerdictName | "none" {
  const entry = Object.entries(VERDICTS).find(([, v]) => v === code);
  return (entry?.[0] as VerdictName | undefined) ?? "none";
}
