import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { base58btc } from "multiformats/bases/base58";
import { CID } from "multiformats/cid";
import { BlobIntegrityError, BlobNotFoundError, verifyBlob } from "../../src/storage/blob-store.ts";
import { cidOf, digestFromCid, InvalidCidError, sha256Digest } from "../../src/storage/cid.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);

let root: string;
let n = 0;
/** A fresh store in a folder that does not exist yet, so every test also covers creation on demand. */
const freshStore = () => new FsBlobStore(join(root, `store-${n++}`, "nested"));

before(async () => {
  root = await mkdtemp(join(tmpdir(), "ledgermind-blobs-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("FsBlobStore", () => {
  it("round-trips bytes and returns their CID", async () => {
    const store = freshStore();
    const bytes = new Uint8Array(100_000).map((_, i) => (i * 7919) & 0xff);
    const cid = await store.put(bytes);
    assert.equal(cid, cidOf(bytes));
    assert.equal(await store.has(cid), true);
    const back = await store.get(cid);
    assert.deepEqual(back, bytes);
    assert.equal(Object.getPrototypeOf(back), Uint8Array.prototype);
  });

  it("round-trips the empty blob", async () => {
    const store = freshStore();
    const cid = await store.put(new Uint8Array());
    assert.equal((await store.get(cid)).length, 0);
  });

  it("put is idempotent: one file, same CID, no temp files left", async () => {
    const store = freshStore();
    const bytes = utf8("same content");
    const first = await store.put(bytes);
    const second = await store.put(bytes.slice());
    const concurrent = await Promise.all([store.put(bytes), store.put(bytes), store.put(bytes)]);
    assert.equal(second, first);
    assert.deepEqual(concurrent, [first, first, first]);
    assert.deepEqual(await readdir(store.dir), [first]);
  });

  it("stores different content under different files", async () => {
    const store = freshStore();
    const a = await store.put(utf8("a"));
    const b = await store.put(utf8("b"));
    assert.notEqual(a, b);
    assert.deepEqual((await readdir(store.dir)).sort(), [a, b].sort());
    assert.deepEqual(await store.get(a), utf8("a"));
    assert.deepEqual(await store.get(b), utf8("b"));
  });

  it("throws BlobIntegrityError for a file tampered with on disk, naming the actual digest", async () => {
    const store = freshStore();
    const cid = await store.put(utf8("the real weights"));
    const forged = utf8("the forged weights");
    await writeFile(join(store.dir, cid), forged);
    await assert.rejects(store.get(cid), (error: unknown) => {
      assert.ok(error instanceof BlobIntegrityError);
      assert.equal(error.name, "BlobIntegrityError");
      assert.equal(error.cid, cid);
      assert.equal(error.actualDigest, sha256Digest(forged));
      assert.match(error.message, new RegExp(digestFromCid(cid)));
      return true;
    });
  });

  it("throws BlobIntegrityError for a truncated file", async () => {
    const store = freshStore();
    const bytes = utf8("0123456789");
    const cid = await store.put(bytes);
    await writeFile(join(store.dir, cid), bytes.subarray(0, 5));
    await assert.rejects(store.get(cid), BlobIntegrityError);
  });

  it("put repairs a corrupt copy instead of trusting it", async () => {
    const store = freshStore();
    const bytes = utf8("precious");
    const cid = await store.put(bytes);
    await writeFile(join(store.dir, cid), utf8("garbage"));
    assert.equal(await store.put(bytes), cid);
    assert.deepEqual(await store.get(cid), bytes);
  });

  it("throws BlobNotFoundError for an unknown CID, also before the folder exists", async () => {
    const store = freshStore();
    const cid = cidOf(utf8("never stored"));
    assert.equal(await store.has(cid), false);
    await assert.rejects(store.get(cid), (e: unknown) => e instanceof BlobNotFoundError && e.cid === cid);
    await store.put(utf8("something else"));
    assert.equal(await store.has(cid), false);
    await assert.rejects(store.get(cid), BlobNotFoundError);
  });

  it("throws InvalidCidError for malformed or foreign CIDs, from get and has", async () => {
    const store = freshStore();
    await store.put(utf8("x"));
    for (const bad of ["", "nope", "../../etc/passwd", `${cidOf(utf8("x"))}/../x`]) {
      await assert.rejects(store.get(bad), InvalidCidError);
      await assert.rejects(store.has(bad), InvalidCidError);
    }
  });

  it("finds a blob under another multibase spelling of its CID", async () => {
    const store = freshStore();
    const bytes = utf8("spelled differently");
    const cid = await store.put(bytes);
    const b58 = CID.parse(cid).toString(base58btc);
    assert.equal(await store.has(b58), true);
    assert.deepEqual(await store.get(b58), bytes);
  });

  it("writes exactly the bytes given", async () => {
    const store = freshStore();
    const bytes = new Uint8Array([0, 255, 1, 254, 0]);
    const cid = await store.put(bytes);
    assert.deepEqual(new Uint8Array(await readFile(join(store.dir, cid))), bytes);
  });
});

describe("verifyBlob", () => {
  it("returns matching bytes and rejects any other", () => {
    const bytes = utf8("v");
    const cid = cidOf(bytes);
    assert.equal(verifyBlob(cid, bytes), bytes);
    assert.throws(() => verifyBlob(cid, utf8("w")), BlobIntegrityError);
    assert.throws(() => verifyBlob("bogus", bytes), InvalidCidError);
  });
});
