/**
 * Serves a node's blobs over HTTP so that other nodes can fetch what it committed to: `GET` and `HEAD
 * /blobs/CID`, with single byte ranges. Every answer comes from the store's `get`, which verifies the
 * digest, so a corrupt copy on this node's disk is never sent on as if it were the content.
 *
 * The wire format is what a fetcher relies on (see http-blob-store.ts): 200 or 206 with the bytes, 404
 * when this node does not hold the CID, 413 when the blob is larger than this node serves, 400 for a
 * string that is not a CID, each error a one-line JSON object `{"error": "..."}`.
 */

import type { AddressInfo } from "node:net";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { BlobIntegrityError, BlobNotFoundError, type BlobStore } from "./blob-store.ts";
import { canonicalCid, InvalidCidError } from "./cid.ts";

/** The largest blob a node serves unless told otherwise: well above a model update (hundreds of KiB). */
export const DEFAULT_MAX_SERVED_BYTES = 256 * 1024 * 1024;

export interface BlobServerOptions {
  /** Address to listen on (default 127.0.0.1: a node exposes itself only when told to). */
  host?: string;
  /** Port to listen on; 0 (the default) takes any free port, read back from `url`. */
  port?: number;
  /** Blobs larger than this are answered 413, never read out. */
  maxBlobBytes?: number;
  /**
   * Adds routes and hooks on the same server before the blob route (a node's /health and /metrics). Hooks
   * added here also see every blob request.
   */
  routes?: (app: FastifyInstance) => void;
}

export interface BlobServer {
  /** The base URL peers fetch from: `${url}/blobs/CID`. */
  url: string;
  close(): Promise<void>;
}

/** One satisfiable byte range, both ends inclusive, as in the Content-Range header. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * What a Range header asks of a blob of `size` bytes: the whole blob (no header, or one this server
 * ignores), one range, or nothing it can satisfy (416). Only a single `bytes=` range is honoured; several
 * ranges or a malformed header are ignored, which RFC 9110 allows, and the whole blob is sent. Pure.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | "whole" | "unsatisfiable" {
  if (header === undefined) return "whole";
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return "whole";
  const [first, last] = [m[1] as string, m[2] as string];
  if (first === "") {
    // A suffix range: the last n bytes.
    const n = Number(last);
    if (n === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  // last < first makes the header invalid (ignored); checked before the size, which would otherwise
  // turn an open range past the end into an invalid one.
  if (last !== "" && Number(last) < start) return "whole";
  if (start >= size) return "unsatisfiable";
  return { start, end: last === "" ? size - 1 : Math.min(Number(last), size - 1) };
}

/** A one-line JSON error, the form every non-2xx answer takes. */
function fail(reply: FastifyReply, status: number, error: string): FastifyReply {
  return reply.code(status).type("application/json").send(JSON.stringify({ error }));
}

/** Starts serving `store` and resolves once it listens. */
export async function createBlobServer(store: BlobStore, opts: BlobServerOptions = {}): Promise<BlobServer> {
  const { host = "127.0.0.1", port = 0, maxBlobBytes = DEFAULT_MAX_SERVED_BYTES } = opts;
  // HEAD is fastify's automatic HEAD route over this GET: same handler, same headers, no body.
  const app = Fastify({ logger: false, exposeHeadRoutes: true });

  // Every error in the one form a fetcher reads, including fastify's own and a failing disk.
  app.setNotFoundHandler((request, reply) =>
    fail(reply, 404, `no such resource ${request.method} ${request.url}; blobs are at /blobs/CID`),
  );
  app.setErrorHandler((error, _request, reply) => {
    const message = error instanceof Error ? error.message : String(error);
    return fail(reply, 500, `this node could not read the blob (${message.split("\n")[0]})`);
  });
  opts.routes?.(app);

  app.get<{ Params: { cid: string } }>("/blobs/:cid", async (request, reply) => {
    let cid: string;
    try {
      cid = canonicalCid(request.params.cid);
    } catch (error) {
      if (error instanceof InvalidCidError) return fail(reply, 400, error.message);
      throw error;
    }
    let bytes: Uint8Array;
    try {
      bytes = await store.get(cid);
    } catch (error) {
      if (error instanceof BlobNotFoundError) return fail(reply, 404, `this node does not hold ${cid}`);
      // This node's own copy is damaged: say so rather than send bytes that are not the content.
      if (error instanceof BlobIntegrityError)
        return fail(reply, 500, `this node's copy of ${cid} fails verification`);
      throw error;
    }
    if (bytes.length > maxBlobBytes) {
      return fail(
        reply,
        413,
        `${cid} is ${bytes.length} bytes, more than this node serves (${maxBlobBytes})`,
      );
    }
    const etag = `"${cid}"`;
    // A cache that holds the content already only needs to hear that it is still the content.
    if (request.headers["if-none-match"]?.split(/\s*,\s*/).includes(etag))
      return reply.code(304).header("etag", etag).send();
    const range = parseRange(request.headers.range, bytes.length);
    if (range === "unsatisfiable") {
      reply.header("content-range", `bytes */${bytes.length}`);
      return fail(reply, 416, `range ${request.headers.range} is outside ${cid} (${bytes.length} bytes)`);
    }
    // The CID names the content, so the answer never changes: cache it forever, validate by the CID.
    reply
      .header("etag", etag)
      .header("cache-control", "public, max-age=31536000, immutable")
      .header("accept-ranges", "bytes")
      .type("application/octet-stream");
    if (range === "whole") return reply.code(200).header("content-length", bytes.length).send(bytes);
    const part = bytes.subarray(range.start, range.end + 1);
    return reply
      .code(206)
      .header("content-range", `bytes ${range.start}-${range.end}/${bytes.length}`)
      .header("content-length", part.length)
      .send(part);
  });

  try {
    await app.listen({ host, port });
  } catch (error) {
    // A port in use leaves a half-made server behind; free it before saying so.
    await app.close();
    throw error;
  }
  const address = app.server.address() as AddressInfo;
  const hostPart = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { url: `http://${hostPart}:${address.port}`, close: () => app.close() };
}
