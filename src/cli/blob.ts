import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { createBlobServer, DEFAULT_MAX_SERVED_BYTES } from "../storage/blob-server.ts";
import { HttpBlobStore } from "../storage/http-blob-store.ts";
import {
  blobStore,
  collect,
  emit,
  type GlobalOptions,
  globalOptions,
  parseInteger,
  UsageError,
} from "./context.ts";
import { readInputFile } from "./files.ts";

/** `--from URL[,URL...]` (or `option`), repeatable: the peers' base URLs, checked before any request. */
export function parsePeers(values: readonly string[], option = "--from"): string[] {
  const peers = values.flatMap((v) => v.split(",")).map((p) => p.trim());
  for (const peer of peers) {
    if (!/^https?:\/\/[^\s/]+/.test(peer))
      throw new UsageError(`${option} takes http(s) URLs (for example http://127.0.0.1:8600), got "${peer}"`);
  }
  return peers;
}

/** Writes fetched or stored bytes to --out (saying so) or to standard output. */
async function output(opts: GlobalOptions, cid: string, bytes: Uint8Array, out?: string): Promise<void> {
  if (out) {
    await writeFile(out, bytes);
    emit(opts, { cid, out, bytes: bytes.length }, () => [`${cid} -> ${out} (${bytes.length} bytes)`]);
  } else {
    process.stdout.write(bytes);
  }
}

export function registerBlobCommands(program: Command): void {
  const blob = program.command("blob").description("content-addressed storage: CID v1, raw, sha256");
  blob
    .command("put <FILE>")
    .description("store a file and print its CID")
    .action(async (file: string, _o, cmd: Command) => {
      const opts = globalOptions(cmd);
      const bytes = await readInputFile(file);
      const cid = await blobStore(opts).put(bytes);
      emit(opts, { cid, bytes: bytes.length }, () => [cid]);
    });
  blob
    .command("get <CID>")
    .description("fetch content by CID, verified against its digest")
    .option("-o, --out <FILE>", "write to a file instead of standard output")
    .action(async (cid: string, o: { out?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const bytes = await blobStore(opts).get(cid);
      await output(opts, cid, bytes, o.out);
    });
  blob
    .command("serve")
    .description("serve this data folder's blobs to other nodes over HTTP (GET /blobs/CID) until stopped")
    .option("--port <PORT>", "port to listen on, 0 for any free port", "8600")
    .option("--host <HOST>", "address to listen on", "127.0.0.1")
    .option("--max-bytes <BYTES>", "largest blob served", String(DEFAULT_MAX_SERVED_BYTES))
    .action(async (o: { port: string; host: string; maxBytes: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const store = blobStore(opts);
      const server = await createBlobServer(store, {
        host: o.host,
        port: parseInteger(o.port, "--port", 0, 65535),
        maxBlobBytes: parseInteger(o.maxBytes, "--max-bytes", 0),
      });
      emit(opts, { url: server.url, dir: store.dir }, () => [
        `serving the blobs of ${store.dir} on ${server.url}; stop with Ctrl-C`,
      ]);
      // Listening on SIGINT too keeps main's Ctrl-C handler from exiting 130 mid-answer: stop, then exit 0.
      const signals = ["SIGINT", "SIGTERM"] as const;
      let stop = () => {};
      await new Promise<void>((resolve) => {
        stop = resolve;
        for (const signal of signals) process.on(signal, stop);
      });
      for (const signal of signals) process.off(signal, stop);
      await server.close();
    });
  blob
    .command("fetch <CID>")
    .description("fetch content by CID from other nodes, verified, and keep it in this data folder")
    .requiredOption(
      "--from <URL>",
      "a peer's URL; several comma-separated or repeated, tried in order",
      collect,
    )
    .option("-o, --out <FILE>", "write to a file instead of standard output")
    .option("--timeout <MS>", "the most one attempt at one peer may take", "30000")
    .option("--stall-timeout <MS>", "give up on a peer that sends no bytes for this long", "5000")
    .option("--max-bytes <BYTES>", "refuse a larger blob", String(DEFAULT_MAX_SERVED_BYTES))
    .option("--retries <N>", "extra rounds over peers that failed in a way that may pass", "2")
    .action(
      async (
        cid: string,
        o: {
          from: string[];
          out?: string;
          timeout: string;
          stallTimeout: string;
          maxBytes: string;
          retries: string;
        },
        cmd: Command,
      ) => {
        const opts = globalOptions(cmd);
        const store = new HttpBlobStore(blobStore(opts), {
          peers: parsePeers(o.from),
          timeoutMs: parseInteger(o.timeout, "--timeout", 1),
          stallTimeoutMs: parseInteger(o.stallTimeout, "--stall-timeout", 1),
          maxBytes: parseInteger(o.maxBytes, "--max-bytes", 0),
          retries: parseInteger(o.retries, "--retries", 0, 10),
        });
        await output(opts, cid, await store.get(cid), o.out);
      },
    );
}
