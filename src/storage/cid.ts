/**
 * Content addresses. Every blob is named by a CID v1 with the raw codec (0x55) and a sha256 multihash,
 * so the 32-byte digest kept on-chain (bytes32) and the CID string are two spellings of one thing and
 * convert both ways without a lookup.
 *
 * Hashing is done synchronously with @noble/hashes: the multiformats hasher is typed as possibly
 * asynchronous, and a synchronous `cidOf` keeps callers (encoders, the store) free of needless awaits.
 * The test suite checks the result against multiformats' own hasher.
 */

import { createHash } from "node:crypto";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import * as Digest from "multiformats/hashes/digest";
import type { Hex } from "viem";

/** Multicodec code of sha2-256 in a multihash. */
export const SHA256_CODE = 0x12;
/** Multicodec code of the raw codec: the CID names the bytes themselves, not a structure in them. */
export const RAW_CODE = raw.code;

export class InvalidCidError extends Error {
  override name = "InvalidCidError";
  constructor(
    readonly cid: string,
    readonly reason: string,
  ) {
    super(`Invalid CID ${JSON.stringify(cid)}: ${reason}; expected a CIDv1 raw (0x55) sha2-256 CID`);
  }
}

export class InvalidDigestError extends Error {
  override name = "InvalidDigestError";
  constructor(readonly digest: string) {
    super(
      `Invalid sha256 digest ${JSON.stringify(digest)}: expected 0x followed by 64 hex characters (32 bytes)`,
    );
  }
}

const DIGEST_PATTERN = /^0x[0-9a-fA-F]{64}$/;

/**
 * sha256 of `bytes` as lowercase 0x-hex, the form stored on-chain as bytes32. Node's native hash: model
 * updates are hundreds of kilobytes, hashed by every party that touches them.
 */
export function sha256Digest(bytes: Uint8Array): Hex {
  return `0x${createHash("sha256").update(bytes).digest("hex")}`;
}

/**
 * The canonical CID string (base32, "bafkrei...") for a sha256 digest. Upper-case hex is accepted
 * because it names the same digest; anything that is not exactly 32 bytes is rejected so that a
 * truncated digest can never produce a CID that looks valid.
 */
export function cidFromDigest(digest: Hex): string {
  if (typeof digest !== "string" || !DIGEST_PATTERN.test(digest))
    throw new InvalidDigestError(String(digest));
  const multihash = Digest.create(SHA256_CODE, hexToBytes(digest.slice(2)));
  return CID.createV1(RAW_CODE, multihash).toString();
}

/**
 * The sha256 digest named by a CID. Only the one kind of CID this system produces is accepted: a
 * dag-pb or sha512 CID might be perfectly valid elsewhere, but its digest is not something `get` can
 * verify against sha256 of the bytes, so letting it through would disable the integrity check.
 */
export function digestFromCid(cid: string): Hex {
  if (typeof cid !== "string" || cid.length === 0)
    throw new InvalidCidError(String(cid), "empty or not a string");
  let parsed: CID;
  try {
    parsed = CID.parse(cid);
  } catch (error) {
    throw new InvalidCidError(cid, `malformed (${error instanceof Error ? error.message : String(error)})`);
  }
  if (parsed.version !== 1) throw new InvalidCidError(cid, `version is ${parsed.version}, not 1`);
  if (parsed.code !== RAW_CODE) {
    throw new InvalidCidError(cid, `codec is 0x${parsed.code.toString(16)}, not raw (0x55)`);
  }
  if (parsed.multihash.code !== SHA256_CODE) {
    throw new InvalidCidError(cid, `hash is 0x${parsed.multihash.code.toString(16)}, not sha2-256 (0x12)`);
  }
  if (parsed.multihash.size !== 32 || parsed.multihash.digest.length !== 32) {
    throw new InvalidCidError(cid, `sha2-256 digest is ${parsed.multihash.digest.length} bytes, not 32`);
  }
  return `0x${bytesToHex(parsed.multihash.digest)}`;
}

/**
 * The canonical spelling of a CID. The same CID can be written in several multibases (base32,
 * base58btc, ...); storage keys and on-chain strings must use one spelling or equal content would
 * look different.
 */
export function canonicalCid(cid: string): string {
  return cidFromDigest(digestFromCid(cid));
}

/** The CID of `bytes`. */
export function cidOf(bytes: Uint8Array): string {
  return cidFromDigest(sha256Digest(bytes));
}
