/**
 * The one interface every storage backend (folder, HTTP between nodes, IPFS later) implements. The
 * contract that matters is on `get`: the bytes returned always hash to the CID asked for. Callers may
 * therefore treat anything `get` returns as the content the chain committed to, whatever backend or
 * peer it came from.
 */

import type { Address, Hex } from "viem";
import { digestFromCid, sha256Digest } from "./cid.ts";

export interface BlobStore {
  /** Stores `bytes` and returns their CID. Storing the same bytes twice is harmless. */
  put(bytes: Uint8Array): Promise<string>;
  /**
   * The bytes named by `cid`, verified against it. `hint` names who should hold them (an update's
   * trainer): a store that fetches from other nodes asks those first; a local store ignores it.
   * @throws InvalidCidError if `cid` is not a CIDv1 raw sha256 CID
   * @throws BlobNotFoundError if the store does not hold it
   * @throws BlobIntegrityError if what the store holds does not hash to `cid`
   */
  get(cid: string, hint?: GetHint): Promise<Uint8Array>;
  /** Whether the store holds something under `cid` (presence only; `get` is what verifies). */
  has(cid: string): Promise<boolean>;
}

/** Who is expected to hold a blob: the accounts that published it. */
export interface GetHint {
  holders: readonly Address[];
}

export class BlobNotFoundError extends Error {
  override name = "BlobNotFoundError";
  constructor(readonly cid: string) {
    super(`Blob ${cid} not found in the store; put it first or fetch it from a node that has it`);
  }
}

export class BlobIntegrityError extends Error {
  override name = "BlobIntegrityError";
  constructor(
    readonly cid: string,
    readonly actualDigest: Hex,
  ) {
    super(
      `Blob ${cid} failed verification: its content hashes to ${actualDigest}, not ${digestFromCid(cid)}; the stored copy is corrupt or substituted, delete it and fetch it again`,
    );
  }
}

/**
 * Returns `bytes` if they hash to `cid`, else throws BlobIntegrityError. Shared by every backend so
 * the check cannot be forgotten or done differently in one of them.
 */
export function verifyBlob(cid: string, bytes: Uint8Array): Uint8Array {
  const expected = digestFromCid(cid);
  const actual = sha256Digest(bytes);
  if (actual !== expected) throw new BlobIntegrityError(cid, actual);
  return bytes;
}
