/**
 * BlobStore on a local folder: one file per blob, named by its canonical CID.
 *
 * File names come only from `canonicalCid`, whose base32 alphabet is [a-z2-7], so a caller-supplied
 * CID can never name a path outside the folder.
 */

import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { BlobNotFoundError, type BlobStore, verifyBlob } from "./blob-store.ts";
import { canonicalCid, cidOf, digestFromCid, sha256Digest } from "./cid.ts";

export class FsBlobStore implements BlobStore {
  constructor(readonly dir: string) {}

  async put(bytes: Uint8Array): Promise<string> {
    const cid = cidOf(bytes);
    const path = this.pathOf(cid);
    // Content addressing makes a second put of the same bytes a no-op, but only if what is already
    // there is intact: a corrupt copy is replaced rather than trusted, so put also repairs.
    const existing = await readIfExists(path);
    if (existing !== undefined && sha256Digest(existing) === digestFromCid(cid)) return cid;

    await mkdir(this.dir, { recursive: true });
    // Write to a unique temp file in the same folder, flush, then rename: rename within one
    // filesystem is atomic, so a reader (or a crash) sees either no file or the whole blob, never a
    // prefix. Concurrent puts of the same bytes each rename a complete copy; the last one wins.
    const temp = join(this.dir, `.${cid}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    const handle = await open(temp, "wx");
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await unlink(temp).catch(() => {});
      throw error;
    }
    await handle.close();
    try {
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    return cid;
  }

  async get(cid: string): Promise<Uint8Array> {
    const path = this.pathOf(cid);
    const bytes = await readIfExists(path);
    if (bytes === undefined) throw new BlobNotFoundError(cid);
    return verifyBlob(cid, bytes);
  }

  async has(cid: string): Promise<boolean> {
    const path = this.pathOf(cid);
    try {
      return (await stat(path)).isFile();
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** Validates `cid` (InvalidCidError) and maps every spelling of it to the one file. */
  private pathOf(cid: string): string {
    return join(this.dir, canonicalCid(cid));
  }
}

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    const buffer = await readFile(path);
    // A plain Uint8Array, not a Buffer: callers compare and slice it as bytes, and Buffer's
    // different slice semantics and pooled backing store have surprised people before.
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

function isNotFound(error: unknown): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    "code" in error &&
    (error.code === "ENOENT" || error.code === "ENOTDIR")
  );
}
