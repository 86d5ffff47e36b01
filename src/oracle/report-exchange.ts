/**
 * OCR-style reports between operator processes over HTTP (as Chainlink's Off-Chain Reporting: operators
 * exchange signed observations, a leader proposes one report, its backers sign it, one transaction carries
 * it). Each operator serves, next to its blobs:
 *   - `GET /oracle/whoami`: `{account}`, how a static list of peer URLs becomes an address book;
 *   - `GET /oracle/observations/:requestId`: its signed observation `{requestId, operator, output,
 *     weightsDigest, signature}`, once it has computed the answer. The signature is EIP-712 over
 *     `Observation(uint256 requestId,int256 output,bytes32 weightsDigest)` in the oracle's own domain
 *     (chain id and oracle address), so an observation cannot be replayed on another oracle or chain, and
 *     its type hash differs from the Report's: an observation is never a report signature;
 *   - `POST /oracle/reports/sign` with `{requestId, output, signers}`: its EIP-712 Report signature, given
 *     only when `output` is the output it computed itself (kept in its state file before anything was sent,
 *     so never a second output, also after a restart), the request is open with no reveal and asks for its
 *     weights, and it is itself among the sorted signers.
 *
 * Leader rotation: the leader of request r at attempt k is the operator at index (r + k) mod n of the
 * version's active operators sorted by address; attempt k starts `k * leaderTimeoutMs` after the operator
 * first saw the request, so a dead or faulty leader costs one timeout and the next operator takes over.
 * The leader collects every operator's observation, proposes the output backed by the most stake
 * (`pickReportOutput`: the models are deterministic, so honest operators agree to the bit and this is the
 * median of the honest answers), asks its backers to sign and submits once they pass the contract's
 * thresholds. A leader cannot get a wrong output signed: honest operators sign only their own output.
 *
 * Meanwhile every operator commits as before (a report releases the commits) and holds its reveal for the
 * report window (`OperatorOptions.reportWindowMs`): when no report lands, commit-reveal decides.
 */

import type { FastifyInstance, FastifyReply } from "fastify";
import { type Address, getAddress, type Hex, isAddress, isAddressEqual, recoverTypedDataAddress } from "viem";
import { z } from "zod";
import { ContractRefusedError, decodeRevert } from "../chain/tx.ts";
import { getOracleParams, getRequestStatus, type RequestStatus } from "./client.ts";
import type { InferenceOperator, OperatorEvent } from "./operator.ts";
import {
  hasReportQuorum,
  type ObservedAnswer,
  oracleReader,
  pickReportOutput,
  REPORT_TYPES,
  type ReportDomain,
  reportDomain,
  type SignedReport,
  signReport,
  sortSigners,
  submitSignedReport,
} from "./report.ts";

/** How long an attempt's leader has before the next operator takes over, ms, unless told otherwise. */
export const DEFAULT_LEADER_TIMEOUT_MS = 2_000;
/** How long an operator holds its reveal for a report, ms: three leaders' attempts. */
export const DEFAULT_REPORT_WINDOW_MS = 3 * DEFAULT_LEADER_TIMEOUT_MS;
/** How long a leader waits for one peer's answer, ms. */
export const DEFAULT_PEER_TIMEOUT_MS = 1_500;

export const OBSERVATION_TYPES = {
  Observation: [
    { name: "requestId", type: "uint256" },
    { name: "output", type: "int256" },
    { name: "weightsDigest", type: "bytes32" },
  ],
} as const;

/** Another operator's base URL (`http://host:port`), or undefined when it is not known. */
export type PeerResolver = (operator: Address) => Promise<string | undefined>;

export interface SignedObservation {
  requestId: bigint;
  operator: Address;
  output: bigint;
  weightsDigest: Hex;
  signature: Hex;
}

export interface SignRequest {
  requestId: bigint;
  output: bigint;
  signers: Address[];
}

// ---------------------------------------------------------------------------------------------------------
// Wire format (bigints as decimal strings)
// ---------------------------------------------------------------------------------------------------------

const uint = z
  .string()
  .regex(/^\d{1,78}$/, "expected a decimal integer")
  .transform((s) => BigInt(s));
const int = z
  .string()
  .regex(/^-?\d{1,78}$/, "expected a decimal integer")
  .transform((s) => BigInt(s));
const address = z
  .string()
  .refine((s) => isAddress(s, { strict: false }), "expected an address")
  .transform((s) => getAddress(s));
const hex = (bytes: number) =>
  z
    .string()
    .regex(new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`), `expected ${bytes} bytes of hex`)
    .transform((s) => s as Hex);

export const observationSchema = z.strictObject({
  requestId: uint,
  operator: address,
  output: int,
  weightsDigest: hex(32),
  signature: hex(65),
});

export const signRequestSchema = z.strictObject({
  requestId: uint,
  output: int,
  // The contract's operator cap is far below this; a longer list is noise, refused before any work.
  signers: z.array(address).min(1).max(256),
});

const signResponseSchema = z.strictObject({ requestId: uint, operator: address, signature: hex(65) });

const whoamiSchema = z.object({ account: address });

const json = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === "bigint" ? v.toString() : v]));

// ---------------------------------------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------------------------------------

/** The attempt under way `elapsedMs` after the request was seen: one per `leaderTimeoutMs`. Pure. */
export function attemptAt(elapsedMs: number, leaderTimeoutMs: number): number {
  return Math.max(0, Math.floor(elapsedMs / leaderTimeoutMs));
}

/** The leader of request `requestId` at `attempt`: index (r + k) mod n of the operators sorted by address. */
export function leaderOf(requestId: bigint, attempt: number, operators: readonly Address[]): Address {
  const sorted = sortSigners(operators);
  if (sorted.length === 0) throw new ReportExchangeError("no operators to lead");
  return sorted[Number((requestId + BigInt(attempt)) % BigInt(sorted.length))] as Address;
}

/** A sign request refused: the HTTP status and the one line said. */
export interface Refusal {
  status: number;
  error: string;
}

/**
 * Whether an operator signs `request`, given what it computed itself (`own`, undefined when it has not)
 * and the request's on-chain state. Pure: the rules an honest operator follows, in the order it checks.
 */
export function refusalOf(
  self: Address,
  own: { output: bigint; weightsDigest: Hex } | undefined,
  status: Pick<RequestStatus, "state" | "reveals" | "weightsDigest"> | undefined,
  request: SignRequest,
): Refusal | undefined {
  const id = request.requestId;
  if (!status) return { status: 404, error: `request ${id} does not exist` };
  if (status.state !== "open")
    return { status: 409, error: `request ${id} is ${status.state}: nothing to sign` };
  if (status.reveals > 0)
    return { status: 409, error: `request ${id} has reveals: the contract no longer takes a report` };
  if (!own) return { status: 404, error: `this operator has no answer to request ${id} (yet, or any more)` };
  if (status.weightsDigest !== own.weightsDigest)
    return {
      status: 409,
      error: `request ${id} asks for weights ${status.weightsDigest}, not this operator's`,
    };
  if (request.output !== own.output)
    return {
      status: 409,
      error: `output ${request.output} is not this operator's answer to request ${id}: it signs only what it computed`,
    };
  if (!request.signers.some((s) => isAddressEqual(s, self)))
    return { status: 400, error: `${self} is not among the signers` };
  let sorted: Address[];
  try {
    sorted = sortSigners(request.signers);
  } catch (error) {
    return { status: 400, error: (error as Error).message };
  }
  if (sorted.some((s, i) => !isAddressEqual(s, request.signers[i] as Address)))
    return { status: 400, error: "signers must be sorted by ascending address, as the contract takes them" };
  return undefined;
}

export class ReportExchangeError extends Error {
  override name = "ReportExchangeError";
}

// ---------------------------------------------------------------------------------------------------------
// The exchange
// ---------------------------------------------------------------------------------------------------------

export interface ReportExchangeOptions {
  operator: InferenceOperator;
  /** Where the other operators are. */
  peers: PeerResolver;
  /** See DEFAULT_LEADER_TIMEOUT_MS. */
  leaderTimeoutMs?: number;
  /** See DEFAULT_PEER_TIMEOUT_MS. */
  peerTimeoutMs?: number;
  /** ms since the epoch (default `Date.now`); the operator's clock, for the same `seenAt`. */
  now?: () => number;
}

type Outcome = { kind: "reported" | "settled" } | { kind: "unreported"; reason: string };

/** One operator's side of the report protocol: what it serves (`observation`, `sign`) and how it leads. */
export class ReportExchange {
  readonly operator: InferenceOperator;
  readonly domain: ReportDomain;
  private readonly peers: PeerResolver;
  private readonly leaderTimeoutMs: number;
  private readonly peerTimeoutMs: number;
  private readonly now: () => number;
  /** Requests this operator no longer leads (reported, settled, reveals started). */
  private readonly finished = new Set<bigint>();
  /** The last attempt a failure was logged for, per request: one line per attempt, not per poll. */
  private readonly told = new Map<bigint, number>();
  private readonly observations = new Map<bigint, SignedObservation>();

  constructor(opts: ReportExchangeOptions) {
    this.operator = opts.operator;
    this.domain = reportDomain(opts.operator.oracle);
    this.peers = opts.peers;
    this.leaderTimeoutMs = opts.leaderTimeoutMs ?? DEFAULT_LEADER_TIMEOUT_MS;
    this.peerTimeoutMs = opts.peerTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS;
    this.now = opts.now ?? Date.now;
  }

  /** This operator's signed observation of a request it tracks and has answered; undefined otherwise. */
  async observation(requestId: bigint): Promise<SignedObservation | undefined> {
    const own = this.operator.observed(requestId);
    if (!own) return undefined;
    const cached = this.observations.get(requestId);
    if (cached?.output === own.output) return cached;
    const message = { requestId, output: own.output, weightsDigest: this.operator.weightsDigest };
    const signature = await this.operator.account.signTypedData({
      domain: this.domain,
      types: OBSERVATION_TYPES,
      primaryType: "Observation",
      message,
    });
    const signed = { ...message, operator: this.operator.address, signature };
    this.observations.set(requestId, signed);
    return signed;
  }

  /** Signs the report `request` proposes, or says why not (`refusalOf`). */
  async sign(request: SignRequest): Promise<SignedReport | Refusal> {
    let status: RequestStatus | undefined;
    try {
      status = await getRequestStatus(this.operator.oracle, request.requestId);
    } catch (error) {
      if (!/does not exist/.test((error as Error).message)) throw error;
    }
    const own = this.operator.observed(request.requestId);
    const refusal = refusalOf(
      this.operator.address,
      own && { output: own.output, weightsDigest: this.operator.weightsDigest },
      status,
      request,
    );
    if (refusal) return refusal;
    const signed = await signReport(
      this.operator.account,
      this.domain,
      request.requestId,
      request.output,
      this.operator.weightsDigest,
      request.signers,
    );
    this.operator.log({
      type: "signed",
      operator: this.operator.address,
      requestId: request.requestId,
      output: request.output,
      signers: request.signers,
    });
    return signed;
  }

  /**
   * Leads every tracked request whose current attempt this operator leads: collects, asks, submits.
   * Returns the events (a submitted report; a failed attempt, once per attempt).
   */
  async lead(): Promise<OperatorEvent[]> {
    const events: OperatorEvent[] = [];
    for (const { requestId, seenAt } of this.operator.tracked()) {
      if (this.finished.has(requestId) || !this.operator.observed(requestId)) continue;
      const attempt = attemptAt(this.now() - seenAt, this.leaderTimeoutMs);
      const outcome = await this.leadOne(requestId, attempt, events);
      if (outcome === undefined) continue;
      if (outcome.kind !== "unreported") {
        this.finished.add(requestId);
        this.told.delete(requestId);
      } else if (this.told.get(requestId) !== attempt) {
        this.told.set(requestId, attempt);
        events.push({
          type: "unreported",
          operator: this.operator.address,
          requestId,
          attempt,
          reason: outcome.reason,
        });
      }
    }
    return events;
  }

  /** One attempt at one request; undefined when another operator leads it. */
  private async leadOne(
    requestId: bigint,
    attempt: number,
    events: OperatorEvent[],
  ): Promise<Outcome | undefined> {
    const op = this.operator;
    const oracle = op.oracle;
    const status = await getRequestStatus(oracle, requestId);
    if (status.state !== "open" || status.reveals > 0) return { kind: "settled" };
    const read = oracleReader(oracle);
    const params = await getOracleParams(oracle);
    const listed = (await read("operatorsOf", [op.modelId, op.version])) as Address[];
    const stakes = new Map<Address, bigint>();
    for (const a of listed) {
      const info = (await read("operatorInfo", [op.modelId, op.version, a])) as { stake: bigint };
      if (info.stake >= params.minStake) stakes.set(getAddress(a), info.stake);
    }
    if (stakes.size === 0) return { kind: "unreported", reason: "the version has no active operator" };
    if (!isAddressEqual(leaderOf(requestId, attempt, [...stakes.keys()]), op.address)) return undefined;
    const base = (await read("stakeBase", [requestId])) as bigint;

    const observed: ObservedAnswer[] = [];
    await Promise.all(
      [...stakes].map(async ([operator, stake]) => {
        const o = await this.observationOf(operator, requestId, status.weightsDigest);
        if (o) observed.push({ operator, output: o.output, stake });
      }),
    );
    const choice = pickReportOutput(observed, base, params.minResponses);
    if (!choice?.quorum)
      return {
        kind: "unreported",
        reason: `no output is backed by more than 2/3 of the stake ${base} and ${params.minResponses} operators (${observed.length} of ${stakes.size} observations${choice ? `; ${choice.groups.map((g) => `${g.count} holding ${g.stake}`).join(", ")}` : ""})`,
      };

    // Ask the backers; whoever does not sign is dropped and the rest asked again over the smaller list
    // (the list is signed), while they still pass the thresholds.
    let signers = choice.signers;
    for (;;) {
      const signatures = await Promise.all(
        signers.map((s) =>
          this.signatureOf(s, { requestId, output: choice.output, signers }, status.weightsDigest),
        ),
      );
      const signed = signatures.filter((s): s is SignedReport => s !== undefined);
      if (signed.length === signers.length) {
        try {
          const sent = await submitSignedReport(oracle, requestId, choice.output, signed, op.accountIndex);
          events.push({
            type: "reported",
            operator: op.address,
            requestId,
            output: choice.output,
            signers: sent.signers,
            attempt,
            gasUsed: sent.gasUsed,
            block: sent.blockNumber,
          });
          return { kind: "reported" };
        } catch (error) {
          const refused = decodeRevert(error);
          // Another leader's report, or the first reveal, came first.
          if (
            refused instanceof ContractRefusedError &&
            ["RequestClosed", "ReportAfterReveal"].includes(refused.errorName)
          )
            return { kind: "settled" };
          throw error;
        }
      }
      const kept = signers.filter((_, i) => signatures[i] !== undefined);
      const stake = kept.reduce((sum, s) => sum + (stakes.get(s) ?? 0n), 0n);
      if (!hasReportQuorum(stake, kept.length, base, params.minResponses))
        return {
          kind: "unreported",
          reason: `${signed.length} of ${signers.length} backers of ${choice.output} signed, holding ${stake} of ${base}: too few`,
        };
      signers = kept;
    }
  }

  /** `operator`'s observation, verified (its own signature, this request, these weights); undefined if none. */
  private async observationOf(
    operator: Address,
    requestId: bigint,
    weightsDigest: Hex,
  ): Promise<SignedObservation | undefined> {
    if (isAddressEqual(operator, this.operator.address)) return this.observation(requestId);
    const body = await this.ask(operator, `/oracle/observations/${requestId}`);
    const parsed = observationSchema.safeParse(body);
    if (!parsed.success) return undefined;
    const o = parsed.data;
    if (
      o.requestId !== requestId ||
      o.weightsDigest !== weightsDigest ||
      !isAddressEqual(o.operator, operator)
    )
      return undefined;
    const signer = await recoverTypedDataAddress({
      domain: this.domain,
      types: OBSERVATION_TYPES,
      primaryType: "Observation",
      message: { requestId, output: o.output, weightsDigest },
      signature: o.signature,
    }).catch(() => undefined);
    return signer && isAddressEqual(signer, operator) ? o : undefined;
  }

  /** `signer`'s Report signature for `request`, verified before it goes into a transaction; undefined if none. */
  private async signatureOf(
    signer: Address,
    request: SignRequest,
    weightsDigest: Hex,
  ): Promise<SignedReport | undefined> {
    if (isAddressEqual(signer, this.operator.address)) {
      const own = await this.sign(request);
      return "signature" in own ? own : undefined;
    }
    const body = await this.ask(signer, "/oracle/reports/sign", json({ ...request }));
    const parsed = signResponseSchema.safeParse(body);
    if (!parsed.success || parsed.data.requestId !== request.requestId) return undefined;
    const recovered = await recoverTypedDataAddress({
      domain: this.domain,
      types: REPORT_TYPES,
      primaryType: "Report",
      message: { ...request, weightsDigest, signers: request.signers },
      signature: parsed.data.signature,
    }).catch(() => undefined);
    if (!recovered || !isAddressEqual(recovered, signer)) return undefined;
    return { signer, signature: parsed.data.signature };
  }

  /** A peer's JSON answer (GET, or POST of `body`); undefined when it is unknown, down, slow or says no. */
  private async ask(operator: Address, path: string, body?: unknown): Promise<unknown> {
    const base = await this.peers(operator);
    if (!base) return undefined;
    try {
      const res = await fetch(`${base}${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.peerTimeoutMs),
      });
      if (!res.ok) {
        await res.body?.cancel();
        return undefined;
      }
      return await res.json();
    } catch {
      return undefined;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------------------

function fail(reply: FastifyReply, status: number, error: string): FastifyReply {
  return reply.code(status).type("application/json").send(JSON.stringify({ error }));
}

/**
 * Adds the report routes to a node's or `oracle serve`'s server (`createBlobServer`'s `routes`). Several
 * exchanges (one per model version a node operates, one account) answer together: a request belongs to
 * the one that tracks it. Bodies are parsed here, not by fastify, so that every error is the server's
 * one-line JSON with a 4xx.
 */
export function reportRoutes(
  app: FastifyInstance,
  exchanges: ReportExchange | readonly ReportExchange[],
): void {
  // Read at each request: a node mounts its routes before its operators (and their exchanges) start.
  const all = Array.isArray(exchanges) ? exchanges : [exchanges as ReportExchange];
  const owner = (requestId: bigint) => all.find((x) => x.operator.observed(requestId) !== undefined);
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "string", bodyLimit: 64 * 1024 }, (_req, text, done) =>
      done(null, text),
    );
    scope.setErrorHandler((error, _request, reply) => {
      const status = (error as { statusCode?: number }).statusCode;
      const line = (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
      return status && status >= 400 && status < 500 ? fail(reply, status, line) : fail(reply, 500, line);
    });
    scope.get("/oracle/whoami", async (_request, reply) => reply.send({ account: all[0]?.operator.address }));
    scope.get<{ Params: { requestId: string } }>(
      "/oracle/observations/:requestId",
      async (request, reply) => {
        const id = uint.safeParse(request.params.requestId);
        if (!id.success) return fail(reply, 400, `"${request.params.requestId}" is not a request id`);
        const o = await owner(id.data)?.observation(id.data);
        if (!o)
          return fail(reply, 404, `this operator has no answer to request ${id.data} (yet, or any more)`);
        return reply.send(json({ ...o }));
      },
    );
    scope.post("/oracle/reports/sign", async (request, reply) => {
      let raw: unknown;
      try {
        raw = JSON.parse(String(request.body ?? ""));
      } catch {
        return fail(reply, 400, "the body is not JSON: expected {requestId, output, signers}");
      }
      const parsed = signRequestSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return fail(reply, 400, `${issue?.path.join(".") || "body"}: ${issue?.message}`);
      }
      const exchange = owner(parsed.data.requestId) ?? all[0];
      if (!exchange) return fail(reply, 404, "this server operates no model version");
      const result = await exchange.sign(parsed.data);
      if ("error" in result) return fail(reply, result.status, result.error);
      return reply.send(
        json({ requestId: parsed.data.requestId, operator: result.signer, signature: result.signature }),
      );
    });
  });
}

/**
 * A resolver from a static list of peer base URLs: asks each one's `/oracle/whoami` and maps its account to
 * its URL. Peers that did not answer (not started yet) are asked again, at most every `retryMs`.
 */
export function staticPeerResolver(
  urls: readonly string[],
  opts: { timeoutMs?: number; retryMs?: number } = {},
): PeerResolver {
  const { timeoutMs = DEFAULT_PEER_TIMEOUT_MS, retryMs = 1_000 } = opts;
  const known = new Map<string, string>();
  const unresolved = new Set(urls.map((u) => u.replace(/\/+$/, "")));
  let lastTry = Number.NEGATIVE_INFINITY;
  let pending: Promise<void> | undefined;
  const refresh = async () => {
    await Promise.all(
      [...unresolved].map(async (url) => {
        try {
          const res = await fetch(`${url}/oracle/whoami`, { signal: AbortSignal.timeout(timeoutMs) });
          const who = whoamiSchema.safeParse(res.ok ? await res.json() : undefined);
          if (!who.success) return;
          known.set(who.data.account.toLowerCase(), url);
          unresolved.delete(url);
        } catch {
          // Down or not an operator yet: asked again on a later miss.
        }
      }),
    );
  };
  return async (operator) => {
    const hit = known.get(operator.toLowerCase());
    if (hit || unresolved.size === 0 || Date.now() - lastTry < retryMs) return hit;
    lastTry = Date.now();
    pending ??= refresh().finally(() => {
      pending = undefined;
    });
    await pending;
    return known.get(operator.toLowerCase());
  };
}
