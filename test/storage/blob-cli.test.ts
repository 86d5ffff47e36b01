/**
 * `blob serve` and `blob fetch` as separate CLI processes: one data folder serves, another fetches, and a
 * fetch from no working peer ends with one line and exit 1.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cidOf } from "../../src/storage/cid.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import { assertOk, assertOneLineError, type CliProcess, cli, spawnCli } from "../cli/cli-process.ts";

const BYTES = new TextEncoder().encode("an update committed on-chain, served by its trainer's node\n");
const CID = cidOf(BYTES);

let root: string;
let server: CliProcess;
let url: string;
let serverOut = "";

before(async () => {
  root = await mkdtemp(join(tmpdir(), "ledgermind-blob-cli-"));
  // The serving node's folder is filled directly: `blob put` has its own tests, and each process costs seconds.
  await new FsBlobStore(join(root, "serving", "blobs")).put(BYTES);
  server = spawnCli(["blob", "serve", "--port", "0"], { dataDir: join(root, "serving") });
  server.stdout.on("data", (c: Buffer) => {
    serverOut += c.toString();
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = /on (http:\/\/127\.0\.0\.1:\d+); stop with Ctrl-C\n/.exec(serverOut);
    if (m) {
      url = m[1] as string;
      break;
    }
    if (server.exitCode !== null || Date.now() > deadline)
      assert.fail(`blob serve did not start:\n${serverOut}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});
after(async () => {
  if (server.exitCode === null) server.kill("SIGKILL");
  await rm(root, { recursive: true, force: true });
});

describe("blob serve and blob fetch between processes", () => {
  it("fetch copies a served blob into another data folder, verified, and writes it out", async () => {
    const out = join(root, "copy.bin");
    const r = await cli(["blob", "fetch", CID, "--from", url, "--out", out], {
      dataDir: join(root, "fetching"),
    });
    assert.equal(assertOk(r), `${CID} -> ${out} (${BYTES.length} bytes)\n`);
    assert.deepEqual(new Uint8Array(await readFile(out)), BYTES);
    assert.deepEqual(await new FsBlobStore(join(root, "fetching", "blobs")).get(CID), BYTES);
  });

  it("a fetch no peer can answer prints one line naming each peer and why, exit 1", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const gone = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const missing = cidOf(new TextEncoder().encode("held by nobody"));
    const r = await cli(["blob", "fetch", missing, "--from", `${gone},${url}`, "--retries", "0"], {
      dataDir: join(root, "failing"),
    });
    const line = assertOneLineError(r, /could not be fetched from 2 peers/, 1);
    assert.ok(line.includes(`${gone} (refused:`), line);
    assert.ok(line.includes(`${url} (not-found: HTTP 404)`), line);
    assert.equal(r.stdout, "");
  });

  it("a --from that is not an http(s) URL is a usage error, exit 2", async () => {
    const r = await cli(["blob", "fetch", CID, "--from", "ftp://peer"], { dataDir: join(root, "failing") });
    assertOneLineError(r, /--from takes http\(s\) URLs/, 2);
  });

  it("serve stops cleanly on SIGTERM, exit 0", async () => {
    const code = await new Promise<number | null>((resolve) => {
      server.once("exit", (c) => resolve(c));
      server.kill("SIGTERM");
    });
    assert.equal(code, 0);
  });
});
