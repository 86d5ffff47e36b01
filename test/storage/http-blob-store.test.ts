/**
 * Fetching content between nodes over real HTTP on 127.0.0.1: honest peers are blob servers; faulty ones
 * are small node:http servers that lie, stall, stream without end or are gone.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type BlobServer, createBlobServer } from "../../src/storage/blob-server.ts";
import { cidOf, InvalidCidError } from "../../src/storage/cid.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import {
  BlobUnavailableError,
  blobUrl,
  describeUnavailable,
  type FetchOptions,
  fetchBlob,
  HttpBlobStore,
  holdersFirst,
  isFaulty,
  isTransient,
  type PeerFault,
} from "../../src/storage/http-blob-store.ts";

const BYTES = new Uint8Array(4096).map((_, i) => (i * 131 + 7) & 0xff);
const CID = cidOf(BYTES);
/** Short enough to keep the suite fast, long enough for a loaded 2-core machine to answer in time. */
// A stall timeout of a second: a shorter one risks firing on an honest peer while a loaded machine pauses
// this process (the test and its servers share it).
const FAST: FetchOptions = { timeoutMs: 10_000, stallTimeoutMs: 1000, retries: 0, retryDelayMs: 10 };

let root: string;
let n = 0;
const freshStore = () => new FsBlobStore(join(root, `store-${n++}`));
let honest: BlobServer;
const closers: (() => Promise<void>)[] = [];

/** A node:http peer answering every request with `handle`; closed after the suite. */
async function peer(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The URL of a port that was just free and is closed now: a peer that vanished. */
async function vanishedPeer(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** Serves BYTES with one byte flipped, as a whole 200 answer. */
const corruptPeer = () =>
  peer((_req, res) => {
    const wrong = BYTES.slice();
    wrong[100] = (wrong[100] as number) ^ 1;
    res.writeHead(200, { "content-length": wrong.length }).end(wrong);
  });

/** Announces the whole blob, sends half of it, then sends nothing more (the connection stays open). */
const stallingPeer = () =>
  peer((_req, res) => {
    res.writeHead(200, { "content-length": BYTES.length });
    res.write(BYTES.subarray(0, BYTES.length / 2));
  });

/** The faults `fetchBlob` reported through onFault, and its options. */
function recorder(extra: FetchOptions = {}): { faults: PeerFault[]; options: FetchOptions } {
  const faults: PeerFault[] = [];
  return { faults, options: { ...FAST, ...extra, onFault: (f) => faults.push(f) } };
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), "ledgermind-http-blobs-"));
  const held = freshStore();
  await held.put(BYTES);
  honest = await createBlobServer(held);
  closers.push(() => honest.close());
});
after(async () => {
  for (const close of closers) await close();
  await rm(root, { recursive: true, force: true });
});

describe("pure parts", () => {
  it("a 404 is not a fault; everything else is", () => {
    assert.equal(isFaulty("not-found"), false);
    for (const kind of ["refused", "disconnected", "stalled", "timeout", "too-large", "corrupt"] as const)
      assert.equal(isFaulty(kind), true, kind);
  });

  it("retries only what may pass: connection trouble, stalls, timeouts, 5xx", () => {
    assert.equal(isTransient("stalled", ""), true);
    assert.equal(isTransient("refused", ""), true);
    assert.equal(isTransient("http-error", "HTTP 503"), true);
    assert.equal(isTransient("http-error", "HTTP 403"), false);
    assert.equal(isTransient("corrupt", ""), false);
    assert.equal(isTransient("too-large", ""), false);
    assert.equal(isTransient("not-found", ""), false);
  });

  it("joins a peer URL and a CID whatever the trailing slashes", () => {
    assert.equal(blobUrl("http://a:1/", "bafk"), "http://a:1/blobs/bafk");
    assert.equal(blobUrl("http://a:1", "bafk"), "http://a:1/blobs/bafk");
  });

  it("the unavailable message is one line naming each peer, its fault and why", () => {
    const line = describeUnavailable(CID, [
      { peer: "http://a", cid: CID, kind: "corrupt", detail: "4096 bytes hashing to 0x12", attempt: 1 },
      { peer: "http://b", cid: CID, kind: "not-found", detail: "HTTP 404", attempt: 1 },
    ]);
    assert.doesNotMatch(line, /\n/);
    assert.match(
      line,
      /from 2 peers: http:\/\/a \(corrupt: 4096 bytes.*\), http:\/\/b \(not-found: HTTP 404\)$/,
    );
    assert.match(describeUnavailable(CID, []), /no peer is known to hold it/);
  });
});

describe("fetchBlob", () => {
  it("serves and fetches a blob: the bytes come back verified", async () => {
    assert.deepEqual(await fetchBlob(CID, [honest.url], FAST), BYTES);
  });

  it("rejects a string that is not a CID before any request", async () => {
    await assert.rejects(fetchBlob("bafy-nonsense", [honest.url], FAST), InvalidCidError);
  });

  it("skips and reports a peer serving corrupted bytes, and uses an honest peer's copy", async () => {
    const liar = await corruptPeer();
    const { faults, options } = recorder();
    assert.deepEqual(await fetchBlob(CID, [liar, honest.url], options), BYTES);
    assert.equal(faults.length, 1);
    assert.deepEqual(
      { peer: faults[0]?.peer, cid: faults[0]?.cid, kind: faults[0]?.kind },
      { peer: liar, cid: CID, kind: "corrupt" },
    );
  });

  it("aborts a peer that stalls mid-body within the stall timeout and uses the next peer", async () => {
    const staller = await stallingPeer();
    const { faults, options } = recorder();
    const started = performance.now();
    assert.deepEqual(await fetchBlob(CID, [staller, honest.url], options), BYTES);
    const elapsed = performance.now() - started;
    assert.deepEqual(
      faults.map((f) => [f.peer, f.kind]),
      [[staller, "stalled"]],
    );
    // Stall timeout 1 s, far below the 10 s overall timeout: the stall timer is what fired.
    assert.ok(elapsed < 5000, `took ${elapsed} ms`);
  });

  it("falls back from a vanished peer (closed port) and reports it refused", async () => {
    const gone = await vanishedPeer();
    const { faults, options } = recorder();
    assert.deepEqual(await fetchBlob(CID, [gone, honest.url], options), BYTES);
    assert.deepEqual(
      faults.map((f) => [f.peer, f.kind]),
      [[gone, "refused"]],
    );
  });

  it("refuses an oversize blob by its announced content-length", async () => {
    const { faults, options } = recorder({ maxBytes: 1000 });
    const error = await fetchBlob(CID, [honest.url], options).catch((e: unknown) => e);
    assert.ok(error instanceof BlobUnavailableError);
    assert.equal(faults[0]?.kind, "too-large");
    assert.match(faults[0]?.detail ?? "", /4096 bytes announced, more than 1000/);
  });

  it("stops reading an endless stream without content-length at the size cap", async () => {
    let sent = 0;
    let hungUp: () => void = () => {};
    const closed = new Promise<void>((resolve) => {
      hungUp = resolve;
    });
    const endless = await peer((_req, res) => {
      res.writeHead(200); // chunked: no length announced
      const chunk = new Uint8Array(1024);
      const timer = setInterval(() => {
        sent += chunk.length;
        res.write(chunk);
      }, 1);
      res.on("close", () => {
        clearInterval(timer);
        hungUp();
      });
    });
    const { faults, options } = recorder({ maxBytes: 8192 });
    await assert.rejects(fetchBlob(CID, [endless], options), BlobUnavailableError);
    assert.equal(faults[0]?.kind, "too-large");
    assert.match(faults[0]?.detail ?? "", /more than 8192 bytes sent/);
    // The fetcher hung up: the peer's connection closes, well before it could send a megabyte.
    let guard: NodeJS.Timeout | undefined;
    await Promise.race([
      closed,
      new Promise((_, reject) => {
        guard = setTimeout(() => reject(new Error("the connection stayed open")), 5000);
      }),
    ]).finally(() => clearTimeout(guard));
    assert.ok(sent < 1024 * 1024, `the peer sent ${sent} bytes`);
  });

  it("throws BlobUnavailableError naming each peer and why when all fail; a 404 is no fault", async () => {
    const liar = await corruptPeer();
    const staller = await stallingPeer();
    const gone = await vanishedPeer();
    const lacking = await createBlobServer(freshStore());
    closers.push(() => lacking.close());
    const { faults, options } = recorder({ maxBytes: 5000 });
    const error = await fetchBlob(CID, [liar, staller, gone, lacking.url], options).catch((e: unknown) => e);
    assert.ok(error instanceof BlobUnavailableError);
    assert.deepEqual(
      error.failures.map((f) => [f.peer, f.kind]),
      [
        [liar, "corrupt"],
        [staller, "stalled"],
        [gone, "refused"],
        [lacking.url, "not-found"],
      ],
    );
    assert.deepEqual(
      error.faulty.map((f) => f.peer),
      [liar, staller, gone],
    );
    assert.deepEqual(
      faults.map((f) => f.peer),
      [liar, staller, gone],
    );
    assert.doesNotMatch(error.message, /\n/);
    for (const p of [liar, staller, gone, lacking.url]) assert.ok(error.message.includes(p), p);
    assert.match(error.message, /corrupt.*stalled.*refused.*not-found/);
  });

  it("retries a transient failure a bounded number of times, and not a corrupt peer", async () => {
    let calls = 0;
    const flaky = await peer((_req, res) => {
      calls++;
      if (calls < 3) res.writeHead(503).end();
      else res.writeHead(200, { "content-length": BYTES.length }).end(BYTES);
    });
    const { faults, options } = recorder({ retries: 2 });
    assert.deepEqual(await fetchBlob(CID, [flaky], options), BYTES);
    assert.deepEqual(
      faults.map((f) => f.attempt),
      [1, 2],
    );

    let liarCalls = 0;
    const liar = await peer((_req, res) => {
      liarCalls++;
      res.writeHead(200).end("not the content");
    });
    const gone = await vanishedPeer();
    const { faults: all, options: twice } = recorder({ retries: 2 });
    await assert.rejects(fetchBlob(CID, [liar, gone], twice), BlobUnavailableError);
    assert.equal(liarCalls, 1, "a corrupt peer is not asked again");
    assert.deepEqual(
      all.filter((f) => f.peer === gone).map((f) => f.attempt),
      [1, 2, 3],
      "a refused peer is tried 1 + retries times",
    );
  });
});

describe("holdersFirst", () => {
  it("puts the peers that hold the blob first, then those that did not answer, then those without it", async () => {
    const empty = await createBlobServer(freshStore());
    closers.push(() => empty.close());
    const gone = await vanishedPeer();
    const order = await holdersFirst(CID, [empty.url, gone, honest.url]);
    assert.equal(order[0], honest.url);
    assert.deepEqual([...order].sort(), [empty.url, gone, honest.url].sort(), "nobody dropped");
    assert.deepEqual(await holdersFirst(CID, [empty.url, gone]), [gone, empty.url], "no holder: all answers");
    assert.deepEqual(await holdersFirst(CID, [empty.url]), [empty.url], "one peer: nothing to ask");
  });

  it("a holder's answer settles it: a peer too busy to answer does not hold up the fetch", {
    timeout: 20_000,
  }, async () => {
    // Answers nothing until the suite closes it: a node whose event loop is held by a long computation. The
    // probe timeout is far beyond the test's: only the holder's answer can settle it.
    const busy = await peer(() => {});
    const order = await holdersFirst(CID, [busy, honest.url], 600_000);
    assert.deepEqual(order, [honest.url, busy], "the holder first; the silent peer kept, after it");
  });

  it("the store asks the holder after one round of HEAD requests, never a GET to a peer without it", async () => {
    const asked: string[] = [];
    const without = await peer((req, res) => {
      asked.push(req.method ?? "");
      res.writeHead(404).end();
    });
    const store = new HttpBlobStore(freshStore(), {
      ...FAST,
      peers: [without, without.replace(/\/$/, ""), honest.url],
    });
    assert.deepEqual(await store.get(CID), BYTES);
    assert.deepEqual(asked, ["HEAD"], "the peer without it was asked once, by HEAD (the duplicate dropped)");
  });
});

describe("HttpBlobStore", () => {
  it("lands the fetched blob in the local store, verified, and answers locally afterwards", async () => {
    const local = freshStore();
    let lookups = 0;
    const store = new HttpBlobStore(local, {
      ...FAST,
      peers: (cid) => {
        lookups++;
        assert.equal(cid, CID);
        return [honest.url];
      },
    });
    assert.equal(await local.has(CID), false);
    assert.deepEqual(await store.get(CID), BYTES);
    assert.deepEqual(await local.get(CID), BYTES);
    assert.deepEqual(await store.get(CID), BYTES);
    assert.equal(lookups, 1, "the second get is answered locally");
  });

  it("fetches again over a local copy that fails verification", async () => {
    const local = freshStore();
    await local.put(BYTES);
    await writeFile(join(local.dir, CID), "damaged");
    const store = new HttpBlobStore(local, { ...FAST, peers: [honest.url] });
    assert.deepEqual(await store.get(CID), BYTES);
    assert.deepEqual(await local.get(CID), BYTES);
  });

  it("shares one fetch between concurrent gets of a CID", async () => {
    let requests = 0;
    const counting = await peer((_req, res) => {
      requests++;
      res.writeHead(200, { "content-length": BYTES.length }).end(BYTES);
    });
    const store = new HttpBlobStore(freshStore(), { ...FAST, peers: [counting] });
    const all = await Promise.all([store.get(CID), store.get(CID), store.get(CID)]);
    for (const bytes of all) assert.deepEqual(bytes, BYTES);
    assert.equal(requests, 1);
  });

  it("keeps nothing when every peer fails", async () => {
    const local = freshStore();
    const liar = await corruptPeer();
    const store = new HttpBlobStore(local, { ...FAST, peers: [liar] });
    await assert.rejects(store.get(CID), BlobUnavailableError);
    assert.equal(await local.has(CID), false);
  });

  it("asks an async peer lookup at every fetch and keeps none of its answers", async () => {
    const gone = await vanishedPeer();
    let answer = [gone];
    let lookups = 0;
    const store = new HttpBlobStore(freshStore(), {
      ...FAST,
      peers: async () => {
        lookups++;
        await new Promise((resolve) => setTimeout(resolve, 5));
        return answer;
      },
    });
    await assert.rejects(
      store.get(CID),
      (err: unknown) => err instanceof BlobUnavailableError && err.faulty[0]?.peer === gone,
    );
    answer = [gone, honest.url];
    assert.deepEqual(await store.get(CID), BYTES, "the second fetch asked again and found the new peer");
    assert.equal(lookups, 2);
  });

  it("with no peer known, says so", async () => {
    const store = new HttpBlobStore(freshStore(), { ...FAST, peers: [] });
    await assert.rejects(store.get(CID), /no peer is known to hold it/);
  });

  it("asks the holders a get names first, with no request to any other peer", async () => {
    const asked: string[] = [];
    const other = await peer((req, res) => {
      asked.push(req.method ?? "");
      res.writeHead(404).end();
    });
    const named: string[][] = [];
    const store = new HttpBlobStore(freshStore(), {
      ...FAST,
      peers: [other, honest.url],
      peersOf: async (accounts) => {
        named.push([...accounts]);
        return [honest.url];
      },
    });
    const trainer = "0x00000000000000000000000000000000000000aa";
    assert.deepEqual(await store.get(CID, { holders: [trainer] }), BYTES);
    assert.deepEqual(named, [[trainer]]);
    assert.deepEqual(asked, [], "the other peer was not even probed");
  });

  it("falls back to the other peers when the named holder fails, and names everyone when all do", async () => {
    const liar = await corruptPeer();
    const faults: PeerFault[] = [];
    const holders = { holders: ["0x00000000000000000000000000000000000000aa" as const] };
    const store = new HttpBlobStore(freshStore(), {
      ...FAST,
      onFault: (f) => faults.push(f),
      peers: [liar, honest.url],
      peersOf: async () => [liar],
    });
    assert.deepEqual(await store.get(CID, holders), BYTES, "an honest copy from the others");
    assert.deepEqual(
      faults.map((f) => [f.peer, f.kind]),
      [[liar, "corrupt"]],
      "the liar was asked once, as the named holder",
    );

    const gone = await vanishedPeer();
    const failing = new HttpBlobStore(freshStore(), { ...FAST, peers: [gone], peersOf: async () => [liar] });
    await assert.rejects(
      failing.get(CID, holders),
      (err: unknown) =>
        err instanceof BlobUnavailableError &&
        err.faulty.map((f) => f.peer).join(" ") === `${liar} ${gone}` &&
        /from 2 peers/.test(err.message),
    );
  });
});
