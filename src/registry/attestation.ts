import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import {
  type Address,
  bytesToHex,
  type Hex,
  hashTypedData,
  hexToBytes,
  isAddressEqual,
  keccak256,
  recoverTypedDataAddress,
  type TypedDataDomain,
} from "viem";
import type { LocalAccount } from "../chain/accounts.ts";

/** Verdicts as the contract numbers them. */
export const VERDICTS = { pass: 1, fail: 2, inconclusive: 3 } as const;
export type VerdictName = keyof typeof VERDICTS;

export function verdictName(code: number): VerdictName | "none" {
  const found = Object.entries(VERDICTS).find(([, v]) => v === code);
  return (found?.[0] as VerdictName | undefined) ?? "none";
}

/** Mirrors ModelRegistry.ATTESTATION_TYPEHASH: change both or neither. */
export const ATTESTATION_TYPES = {
  Attestation: [
    { name: "attester", type: "address" },
    { name: "modelId", type: "uint256" },
    { name: "version", type: "uint32" },
    { name: "weightsDigest", type: "bytes32" },
    { name: "claimDigest", type: "bytes32" },
    { name: "verdict", type: "uint8" },
    { name: "pqKeyHash", type: "bytes32" },
    { name: "nonce", type: "uint256" },
  ],
} as const;

export interface AttestationMessage {
  attester: Address;
  modelId: bigint;
  version: number;
  weightsDigest: Hex;
  claimDigest: Hex;
  verdict: number;
  pqKeyHash: Hex;
  nonce: bigint;
}

/** ML-DSA signatures carry this context string, so they cannot be replayed as any other Ledgermind message. */
const PQ_CONTEXT = new TextEncoder().encode("ledgermind/attestation/1");

export const PQ_PUBLIC_KEY_BYTES = 1952;
export const PQ_SIGNATURE_BYTES = 3309;

export function attestationDomain(chainId: number, registry: Address): TypedDataDomain {
  return { name: "Ledgermind ModelRegistry", version: "1", chainId, verifyingContract: registry };
}

/** The EIP-712 digest that both signatures sign. */
export function attestationDigest(domain: TypedDataDomain, message: AttestationMessage): Hex {
  return hashTypedData({ domain, types: ATTESTATION_TYPES, primaryType: "Attestation", message });
}

export interface PqKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** ML-DSA-65 keys from a 32-byte seed. The seed must be independent of the ECDSA key, or a break of one breaks both. */
export function pqKeygen(seed: Uint8Array): PqKeyPair {
  return ml_dsa65.keygen(seed);
}

export function pqKeyHash(publicKey: Uint8Array): Hex {
  return keccak256(publicKey);
}

export async function signAttestation(opts: {
  account: LocalAccount;
  pqKey: PqKeyPair;
  domain: TypedDataDomain;
  message: AttestationMessage;
}): Promise<{ ecdsaSignature: Hex; pqSignature: Hex }> {
  const ecdsaSignature = await opts.account.signTypedData({
    domain: opts.domain,
    types: ATTESTATION_TYPES,
    primaryType: "Attestation",
    message: opts.message,
  });
  const digest = hexToBytes(attestationDigest(opts.domain, opts.message));
  const pqSignature = bytesToHex(ml_dsa65.sign(digest, opts.pqKey.secretKey, { context: PQ_CONTEXT }));
  return { ecdsaSignature, pqSignature };
}

export interface SignatureCheck {
  ecdsa: { ok: true } | { ok: false; reason: string };
  pq: { ok: true } | { ok: false; reason: string };
}

/**
 * Checks both signatures of an attestation from the record alone: ECDSA must recover the attester, and
 * ML-DSA must verify under the public key whose hash the attester bound on-chain.
 */
export async function checkAttestationSignatures(opts: {
  domain: TypedDataDomain;
  message: AttestationMessage;
  ecdsaSignature: Hex;
  pqSignature: Hex;
  pqPublicKey: Hex | undefined;
}): Promise<SignatureCheck> {
  const { message } = opts;
  let ecdsa: SignatureCheck["ecdsa"];
  try {
    const signer = await recoverTypedDataAddress({
      domain: opts.domain,
      types: ATTESTATION_TYPES,
      primaryType: "Attestation",
      message,
      signature: opts.ecdsaSignature,
    });
    ecdsa = isAddressEqual(signer, message.attester)
      ? { ok: true }
      : { ok: false, reason: `ECDSA signature recovers ${signer}, not the attester ${message.attester}` };
  } catch {
    ecdsa = { ok: false, reason: "ECDSA signature is malformed" };
  }
  let pq: SignatureCheck["pq"];
  if (!opts.pqPublicKey) {
    pq = { ok: false, reason: `attester ${message.attester} bound no ML-DSA public key` };
  } else if (keccak256(opts.pqPublicKey) !== message.pqKeyHash) {
    pq = { ok: false, reason: "ML-DSA public key does not match the hash bound on-chain" };
  } else {
    const digest = hexToBytes(attestationDigest(opts.domain, message));
    let valid = false;
    try {
      valid = ml_dsa65.verify(hexToBytes(opts.pqSignature), digest, hexToBytes(opts.pqPublicKey), {
        context: PQ_CONTEXT,
      });
    } catch {
      valid = false;
    }
    pq = valid ? { ok: true } : { ok: false, reason: "ML-DSA-65 signature does not verify" };
  }
  return { ecdsa, pq };
}
