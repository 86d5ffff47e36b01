/** The blob server over real HTTP on 127.0.0.1, and its pure range parser. */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type BlobServer, createBlobServer, parseRange } from "../../src/storage/blob-server.ts";
import { cidOf } from "../../src/storage/cid.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";

const BYTES = new Uint8Array(1000).map((_, i) => (i * 31) & 0xff);
const CID = cidOf(BYTES);

let root: string;
let store: FsBlobStore;
let server: BlobServer;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "ledgermind-blob-server-"));
  store = new FsBlobStore(join(root, "blobs"));
  await store.put(BYTES);
  server = await createBlobServer(store, { maxBlobBytes: 2000 });
});
after(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

const get = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);

/** Asserts a one-line JSON error with `status`; returns its message. */
async function assertJsonError(response: Response, status: number): Promise<string> {
  assert.equal(response.status, status);
  const text = await response.text();
  assert.doesNotMatch(text, /\n/);
  const { error } = JSON.parse(text) as { error: string };
  assert.equal(typeof error, "string");
  return error;
}

describe("parseRange", () => {
  it("reads single ranges: closed, open, suffix, clipped to the blob", () => {
    assert.deepEqual(parseRange("bytes=0-9", 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange("bytes=90-", 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange("bytes=-10", 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange("bytes=-500", 100), { start: 0, end: 99 });
    assert.deepEqual(parseRange("bytes=50-500", 100), { start: 50, end: 99 });
  });

  it("ignores what it does not honour: no header, several ranges, malformed, last before first", () => {
    for (const header of [undefined, "bytes=0-1,5-6", "items=0-1", "bytes=x-2", "bytes=-", "bytes=9-3"])
      assert.equal(parseRange(header, 100), "whole", String(header));
  });

  it("calls a range past the end or an empty suffix unsatisfiable", () => {
    assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
    assert.equal(parseRange("bytes=100-200", 100), "unsatisfiable");
    assert.equal(parseRange("bytes=-0", 100), "unsatisfiable");
    assert.equal(parseRange("bytes=-5", 0), "unsatisfiable");
  });
});

describe("blob server", () => {
  it("serves a held blob whole with its CID as ETag and immutable caching", async () => {
    const response = await get(`/blobs/${CID}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/octet-stream");
    assert.equal(response.headers.get("content-length"), "1000");
    assert.equal(response.headers.get("etag"), `"${CID}"`);
    assert.match(response.headers.get("cache-control") ?? "", /immutable/);
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), BYTES);
  });

  it("answers HEAD with the headers of GET and no body", async () => {
    const response = await get(`/blobs/${CID}`, { method: "HEAD" });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-length"), "1000");
    assert.equal(response.headers.get("etag"), `"${CID}"`);
    assert.equal((await response.arrayBuffer()).byteLength, 0);
  });

  it("serves a single byte range as 206 with its Content-Range", async () => {
    const response = await get(`/blobs/${CID}`, { headers: { range: "bytes=100-199" } });
    assert.equal(response.status, 206);
    assert.equal(response.headers.get("content-range"), "bytes 100-199/1000");
    assert.equal(response.headers.get("content-length"), "100");
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), BYTES.subarray(100, 200));
  });

  it("answers 416 with the blob's size for a range past its end", async () => {
    const response = await get(`/blobs/${CID}`, { headers: { range: "bytes=1000-" } });
    assert.equal(response.headers.get("content-range"), "bytes */1000");
    assert.match(await assertJsonError(response, 416), /outside/);
  });

  it("answers 400 with a one-line JSON error for a string that is not a CID", async () => {
    assert.match(await assertJsonError(await get("/blobs/not-a-cid"), 400), /Invalid CID/);
  });

  it("answers 404 for a CID it does not hold, and for any other path, in the same JSON form", async () => {
    const missing = cidOf(new TextEncoder().encode("never stored"));
    assert.match(await assertJsonError(await get(`/blobs/${missing}`), 404), /does not hold/);
    assert.match(await assertJsonError(await get("/elsewhere"), 404), /blobs are at \/blobs\/CID/);
  });

  it("answers 304 without the bytes to a cache that names the CID's ETag", async () => {
    const response = await get(`/blobs/${CID}`, { headers: { "if-none-match": `"other", "${CID}"` } });
    assert.equal(response.status, 304);
    assert.equal(response.headers.get("etag"), `"${CID}"`);
    assert.equal((await response.arrayBuffer()).byteLength, 0);
  });

  it("answers 413 for a blob larger than it serves, without sending it", async () => {
    const big = new Uint8Array(3000).fill(7);
    const cid = await store.put(big);
    assert.match(await assertJsonError(await get(`/blobs/${cid}`), 413), /3000 bytes/);
  });

  it("never serves a copy that fails verification", async () => {
    const bytes = new TextEncoder().encode("to be damaged on disk");
    const cid = await store.put(bytes);
    await writeFile(join(store.dir, cid), "damaged");
    assert.match(await assertJsonError(await get(`/blobs/${cid}`), 500), /fails verification/);
  });

  it("answers 500 in the same one-line JSON form when its store fails", async () => {
    const failing = await createBlobServer({
      put: async () => CID,
      has: async () => true,
      get: async () => {
        throw new Error("EIO: i/o error, read\nsecond line");
      },
    });
    try {
      const error = await assertJsonError(await fetch(`${failing.url}/blobs/${CID}`), 500);
      assert.equal(error, "this node could not read the blob (EIO: i/o error, read)");
    } finally {
      await failing.close();
    }
  });

  it("takes extra routes on the same server, and their hooks see blob requests too", async () => {
    const seen: string[] = [];
    const extended = await createBlobServer(store, {
      routes: (app) => {
        app.addHook("onResponse", async (request, reply) => {
          seen.push(`${request.routeOptions.url} ${reply.statusCode}`);
        });
        app.get("/health", async () => ({ status: "ok" }));
      },
    });
    try {
      assert.deepEqual(await (await fetch(`${extended.url}/health`)).json(), { status: "ok" });
      assert.equal((await fetch(`${extended.url}/blobs/${CID}`)).status, 200);
      assert.deepEqual(seen, ["/health 200", "/blobs/:cid 200"]);
    } finally {
      await extended.close();
    }
  });

  it("refuses a port already in use with the listen error", async () => {
    const port = Number(new URL(server.url).port);
    await assert.rejects(createBlobServer(store, { port }), /EADDRINUSE/);
  });
});
