/**
 * Content between nodes: a BlobStore that answers from its local store and otherwise fetches the blob
 * from the peers that hold it, over the wire format of blob-server.ts.
 *
 * A peer is trusted for nothing: every byte is checked against the CID before it is kept or returned,
 * each attempt is bounded in time (overall, and between bytes) and in size, and any failure falls back
 * to the next peer. A peer that serves wrong bytes, stalls, vanishes or sends too much is reported as
 * faulty (so that a node can count that peer's update as a no-show); one that answers 404 merely lacks
 * the blob and is not.
 */

import type { Address } from "viem";
import {
  BlobIntegrityError,
  BlobNotFoundError,
  type BlobStore,
  type GetHint,
  verifyBlob,
} from "./blob-store.ts";
import { canonicalCid } from "./cid.ts";

/** Why one attempt at one peer failed. */
export type FaultKind =
  | "not-found" // 404: the peer does not hold the blob; not a fault
  | "refused" // no connection: the peer is down or gone
  | "disconnected" // the connection broke before the whole blob arrived
  | "stalled" // no bytes for stallTimeoutMs
  | "timeout" // the attempt took longer than timeoutMs
  | "too-large" // larger than maxBytes (announced or counted), or the peer refuses its size (413)
  | "corrupt" // the bytes do not hash to the CID
  | "http-error"; // any other answer than 200

/** One failed attempt: which peer, for which blob, what went wrong. */
export interface PeerFault {
  peer: string;
  cid: string;
  kind: FaultKind;
  /** The specifics, for a person: "no bytes for 300 ms", "HTTP 503". */
  detail: string;
  /** 1 for the first attempt at this peer, 2 for its first retry, ... */
  attempt: number;
}

/** Whether a failure is the peer's fault: everything but not holding the blob. */
export function isFaulty(kind: FaultKind): boolean {
  return kind !== "not-found";
}

/**
 * Whether another attempt at the same peer may succeed. Wrong bytes, a refused size and a 404 are
 * answers; a broken connection, a stall or a 5xx may be a moment's trouble.
 */
export function isTransient(kind: FaultKind, detail: string): boolean {
  if (kind === "http-error") return /^HTTP 5\d\d/.test(detail);
  return kind === "refused" || kind === "disconnected" || kind === "stalled" || kind === "timeout";
}

export interface FetchOptions {
  /** The most one attempt may take, headers and body (default 30 s). */
  timeoutMs?: number;
  /** An attempt that receives no bytes for this long is aborted, also while waiting for headers (default 5 s). */
  stallTimeoutMs?: number;
  /** Blobs larger than this are refused, announced or not (default 256 MiB). */
  maxBytes?: number;
  /** Extra rounds over the peers whose failure may be transient (default 2). */
  retries?: number;
  /** Wait before retry round k: k times this (default 250 ms). */
  retryDelayMs?: number;
  /** Called for every faulty attempt as it happens (never for a 404). */
  onFault?: (fault: PeerFault) => void;
}

const DEFAULTS = {
  timeoutMs: 30_000,
  stallTimeoutMs: 5_000,
  maxBytes: 256 * 1024 * 1024,
  retries: 2,
  retryDelayMs: 250,
} as const;

/** No peer delivered the blob. `failures` holds the last failure of each peer tried, in order. */
export class BlobUnavailableError extends Error {
  override name = "BlobUnavailableError";
  constructor(
    readonly cid: string,
    readonly failures: readonly PeerFault[],
  ) {
    super(describeUnavailable(cid, failures));
  }
  /** The peers at fault (a 404 is not a fault). */
  get faulty(): PeerFault[] {
    return this.failures.filter((f) => isFaulty(f.kind));
  }
}

/** BlobUnavailableError's one line. Pure. */
export function describeUnavailable(cid: string, failures: readonly PeerFault[]): string {
  if (failures.length === 0) return `Blob ${cid} is not held here and no peer is known to hold it`;
  const each = failures.map((f) => `${f.peer} (${f.kind}: ${f.detail})`).join(", ");
  const peers = failures.length === 1 ? "1 peer" : `${failures.length} peers`;
  return `Blob ${cid} could not be fetched from ${peers}: ${each}`;
}

/** The URL of `cid` on a peer whose base URL is `peer` (a trailing slash or not). Pure. */
export function blobUrl(peer: string, cid: string): string {
  return `${peer.replace(/\/+$/, "")}/blobs/${cid}`;
}

/** An attempt's failure, thrown inside `fetchFromPeer` and turned into a PeerFault by its caller. */
class AttemptFailed extends Error {
  constructor(
    readonly kind: FaultKind,
    readonly detail: string,
  ) {
    super(`${kind}: ${detail}`);
  }
}

/** The innermost cause's code or message: undici wraps "ECONNREFUSED" in a bare "fetch failed". */
function causeOf(error: unknown): string {
  let e: unknown = error;
  while (e instanceof Error && e.cause !== undefined) e = e.cause;
  if (e instanceof Error) return (e as NodeJS.ErrnoException).code ?? e.message.split("\n")[0] ?? e.name;
  return String(e);
}

/** One attempt at one peer: the verified bytes, or AttemptFailed. `cid` is canonical. */
async function fetchFromPeer(
  cid: string,
  peer: string,
  o: Required<Omit<FetchOptions, "onFault">>,
): Promise<Uint8Array> {
  const controller = new AbortController();
  // The first failure wins: aborting makes fetch and the reader throw too, and that must not hide why.
  let failure: AttemptFailed | undefined;
  const abort = (kind: FaultKind, detail: string) => {
    failure ??= new AttemptFailed(kind, detail);
    controller.abort(failure);
  };
  const overall = setTimeout(() => abort("timeout", `no whole answer within ${o.timeoutMs} ms`), o.timeoutMs);
  let stall: NodeJS.Timeout | undefined;
  const armStall = () => {
    clearTimeout(stall);
    stall = setTimeout(() => abort("stalled", `no bytes for ${o.stallTimeoutMs} ms`), o.stallTimeoutMs);
  };
  const failed = (error: unknown, kind: FaultKind) => failure ?? new AttemptFailed(kind, causeOf(error));
  try {
    armStall();
    let response: Response;
    try {
      // A redirect could point anywhere; a peer serves its own blobs or fails.
      response = await fetch(blobUrl(peer, cid), { signal: controller.signal, redirect: "manual" });
    } catch (error) {
      throw failed(error, "refused");
    }
    if (response.status === 404) throw new AttemptFailed("not-found", "HTTP 404");
    if (response.status === 413) throw new AttemptFailed("too-large", "the peer refuses to serve its size");
    if (response.status !== 200) throw new AttemptFailed("http-error", `HTTP ${response.status}`);
    const announced = response.headers.get("content-length");
    if (announced !== null && Number(announced) > o.maxBytes) {
      throw new AttemptFailed("too-large", `${announced} bytes announced, more than ${o.maxBytes}`);
    }
    if (response.body === null) throw new AttemptFailed("http-error", "HTTP 200 without a body");
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = response.body.getReader();
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (error) {
        throw failed(error, "disconnected");
      }
      if (next.done) break;
      armStall();
      total += next.value.length;
      // Counted as it arrives: without a content-length, a peer could otherwise stream without end.
      if (total > o.maxBytes) throw new AttemptFailed("too-large", `more than ${o.maxBytes} bytes sent`);
      chunks.push(next.value);
    }
    const bytes = concat(chunks, total);
    try {
      return verifyBlob(cid, bytes);
    } catch (error) {
      if (error instanceof BlobIntegrityError)
        throw new AttemptFailed("corrupt", `${total} bytes hashing to ${error.actualDigest}`);
      throw error;
    }
  } finally {
    clearTimeout(overall);
    clearTimeout(stall);
    // Releases the connection of an answer not read to its end (an error status, a refused size).
    controller.abort();
  }
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** How long `holdersFirst` waits for a peer's answer to HEAD, ms. */
export const PROBE_TIMEOUT_MS = 1_000;

/**
 * `peers` reordered for fetching `cid`, after one parallel round of HEAD requests: those that answered 200
 * first, then those that have not answered (yet, or in `probeTimeoutMs`), then those that answered 404 (or
 * anything else), each group in the given order. It settles as soon as one peer answers 200, and drops the
 * requests still out: a peer busy computing (a validator scoring, whose event loop is held) would otherwise
 * delay every fetch by the slowest answer, where a round's validators ask every member's node for each
 * update and only its trainer holds it. Nothing is dropped from the list, and every byte is still verified
 * when fetched.
 */
export async function holdersFirst(
  cid: string,
  peers: readonly string[],
  probeTimeoutMs = PROBE_TIMEOUT_MS,
): Promise<string[]> {
  if (peers.length < 2) return [...peers];
  const HOLDS = 0;
  const SILENT = 1;
  const LACKS = 2;
  const answers = peers.map(() => SILENT);
  const stop = new AbortController();
  const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(probeTimeoutMs)]);
  await new Promise<void>((resolve) => {
    let left = peers.length;
    peers.forEach(async (peer, i) => {
      try {
        const response = await fetch(blobUrl(peer, cid), { method: "HEAD", redirect: "manual", signal });
        answers[i] = response.status === 200 ? HOLDS : LACKS;
      } catch {
        // no answer: SILENT
      }
      if (answers[i] === HOLDS || --left === 0) resolve();
    });
  });
  stop.abort();
  return [HOLDS, SILENT, LACKS].flatMap((rank) => peers.filter((_, i) => answers[i] === rank));
}

/**
 * The blob named by `cid`, fetched from the first of `peers` that delivers it intact. Peers are tried in
 * order; those whose failure may be transient are tried again in up to `retries` further rounds.
 * @throws InvalidCidError before any request if `cid` is not a CID
 * @throws BlobUnavailableError naming each peer and why, when none delivers
 */
export async function fetchBlob(
  cid: string,
  peers: readonly string[],
  options: FetchOptions = {},
): Promise<Uint8Array> {
  const canonical = canonicalCid(cid);
  const { onFault, ...rest } = options;
  const o = { ...DEFAULTS, ...rest };
  const last = new Map<string, PeerFault>();
  let pending = [...new Set(peers)];
  for (let round = 0; round <= o.retries && pending.length > 0; round++) {
    if (round > 0) await new Promise((resolve) => setTimeout(resolve, o.retryDelayMs * round));
    const again: string[] = [];
    for (const peer of pending) {
      try {
        return await fetchFromPeer(canonical, peer, o);
      } catch (error) {
        if (!(error instanceof AttemptFailed)) throw error;
        const fault: PeerFault = {
          peer,
          cid: canonical,
          kind: error.kind,
          detail: error.detail,
          attempt: round + 1,
        };
        last.set(peer, fault);
        if (isFaulty(fault.kind)) onFault?.(fault);
        if (isTransient(fault.kind, fault.detail)) again.push(peer);
      }
    }
    pending = again;
  }
  throw new BlobUnavailableError(canonical, [...last.values()]);
}

export interface HttpBlobStoreOptions extends FetchOptions {
  /** The peers to ask for a CID: a fixed list, or a lookup (the nodes that announced it). */
  peers: readonly string[] | ((cid: string) => readonly string[] | Promise<readonly string[]>);
  /**
   * The URLs of the accounts a get's hint names. Those peers are asked first, without the round of HEAD
   * requests to every peer (`holdersFirst`), which costs one request per member for each blob; the other
   * peers are asked only if none of them delivers.
   */
  peersOf?: (accounts: readonly Address[]) => Promise<readonly string[]>;
}

/**
 * A local store backed by peers: `get` answers from `local`, else fetches from the peers, keeps the
 * verified bytes in `local` and returns them. A local copy that fails verification is fetched again
 * (the local `put` replaces it). `put` and `has` are the local store's: a node announces only what it
 * holds.
 */
export class HttpBlobStore implements BlobStore {
  /** Concurrent gets of one CID share one fetch: the validators of a round all want the same updates. */
  private readonly inFlight = new Map<string, Promise<Uint8Array>>();

  constructor(
    readonly local: BlobStore,
    readonly options: HttpBlobStoreOptions,
  ) {}

  put(bytes: Uint8Array): Promise<string> {
    return this.local.put(bytes);
  }

  has(cid: string): Promise<boolean> {
    return this.local.has(cid);
  }

  async get(cid: string, hint?: GetHint): Promise<Uint8Array> {
    const canonical = canonicalCid(cid);
    try {
      return await this.local.get(canonical);
    } catch (error) {
      if (!(error instanceof BlobNotFoundError || error instanceof BlobIntegrityError)) throw error;
    }
    const running = this.inFlight.get(canonical);
    if (running) return running;
    const fetching = this.fetchAndKeep(canonical, hint).finally(() => this.inFlight.delete(canonical));
    this.inFlight.set(canonical, fetching);
    return fetching;
  }

  private async fetchAndKeep(cid: string, hint: GetHint | undefined): Promise<Uint8Array> {
    const { peers, peersOf, ...fetchOptions } = this.options;
    const named = hint && peersOf ? [...new Set(await peersOf(hint.holders))] : [];
    let namedFailures: readonly PeerFault[] = [];
    let bytes: Uint8Array | undefined;
    if (named.length > 0) {
      try {
        bytes = await fetchBlob(cid, named, fetchOptions);
      } catch (error) {
        if (!(error instanceof BlobUnavailableError)) throw error;
        namedFailures = error.failures;
      }
    }
    if (bytes === undefined) {
      const known = typeof peers === "function" ? await peers(cid) : peers;
      const others = [...new Set(known)].filter((peer) => !named.includes(peer));
      try {
        bytes = await fetchBlob(cid, await holdersFirst(cid, others), fetchOptions);
      } catch (error) {
        // The one line names every peer asked, the named holders included.
        if (error instanceof BlobUnavailableError && namedFailures.length > 0)
          throw new BlobUnavailableError(cid, [...namedFailures, ...error.failures]);
        throw error;
      }
    }
    await this.local.put(bytes);
    return bytes;
  }
}
