/**
 * The compute-to-data provider: the data owner's service that runs a buyer's signed job next to a private
 * dataset and returns only its result. A request is checked in a fixed order, each refusal with its own
 * HTTP status and nothing run or recorded (no nonce used, no epsilon spent, no receipt):
 *
 *   400 malformed · 401 bad signature · 401 expired · 409 replayed nonce · 404 unknown dataset ·
 *   403 no access (none, expired or revoked: MarketAccess.hasAccess) · 403 disallowed algorithm ·
 *   413 oversized (body over the cap, or more training than the provider runs) ·
 *   403 DP required but not asked, or the privacy budget exhausted
 *
 * An accepted job uses its nonce and spends its epsilon (both persisted) before it is queued, and neither
 * comes back if the job then fails (the buyer signs a new request); jobs run one at a time. A finished job's result is stored by CID in the provider's own result store, its receipt
 * recorded through MarketAccess, and its record kept in the state folder.
 *
 * Nothing here returns rows: the routes are a job's submission, its record and its result, and a result is
 * served only to a buyer of a job that produced it (an EIP-712 `ResultAccess` signature in the headers).
 * The result store must not be one that a blob server serves (the node's `/blobs`), or results would be
 * public by their CID, which every receipt puts on-chain; the private rows must be in no blob store at all.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance, FastifyReply } from "fastify";
import { type Address, getAddress, type Hex, isHex } from "viem";
import type { CanonicalModel } from "../ml/encoding.ts";
import { scratchModels } from "../ml/models.ts";
import { createRng } from "../ml/partition.ts";
import { BlobNotFoundError, type BlobStore } from "../storage/blob-store.ts";
import { canonicalCid, digestFromCid, InvalidCidError, sha256Digest } from "../storage/cid.ts";
import { writeFileDurably } from "../storage/durable-file.ts";
import { type PrivateDataset, runComputeJob } from "./compute.ts";
import {
  BadJobSignatureError,
  type JobDomainInput,
  type JobKind,
  jobDigest,
  jobFromJson,
  MalformedJobError,
  resultAccessSigner,
  type SignedJobRequest,
  verifyJob,
} from "./job.ts";
import { NonceLog, ReplayedNonceError } from "./nonces.ts";
import {
  type DpPolicy,
  jobNoiseMultiplier,
  PrivacyBudgetExhaustedError,
  PrivacyLedger,
} from "./privacy-budget.ts";

/** What the provider asks the chain (implemented by the lead against DataMarket). */
export interface MarketAccess {
  hasAccess(datasetId: bigint, account: `0x${string}`): Promise<boolean>;
  isAllowed(datasetId: bigint, algorithm: `0x${string}`): Promise<boolean>;
  /** Records the receipt on-chain, signed as the provider (the DataMarket's EIP-712 receipt type). */
  recordReceipt(r: {
    datasetId: bigint;
    requestDigest: `0x${string}`;
    algorithm: `0x${string}`;
    resultDigest: `0x${string}`;
    buyer: `0x${string}`;
  }): Promise<{ txHash: `0x${string}` }>;
}

/** The base model of a job: a registry model version's canonical weights. */
export interface ModelSource {
  load(modelId: bigint, version: number): Promise<CanonicalModel>;
}

/** A dataset this provider serves jobs on. */
export interface ProvidedDataset {
  data: PrivateDataset;
  /** Present: every job must be a DP training job, within each buyer's budget. */
  dp?: DpPolicy;
}

/** Defaults: a JSON request is well under 4 KiB. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024;
/** Default cap on the training of one job, in samples seen (epochs x rows): about 8 s of mlp-784-32-10 on 2 cores (bench: 150k in 2.4 s); larger models take longer. */
export const DEFAULT_MAX_SAMPLE_PASSES = 500_000;
/** How long GET /compute/jobs/:id?waitMs= may hold an answer. */
export const MAX_WAIT_MS = 30_000;
/** The furthest ahead a ResultAccess may expire: a leaked header is useless after this. */
export const MAX_RESULT_ACCESS_S = 3_600n;

export interface ComputeProviderOptions {
  domain: JobDomainInput;
  market: MarketAccess;
  models: ModelSource;
  datasets: ReadonlyMap<bigint, ProvidedDataset>;
  /** Where results go: a store of the provider's own that no blob server serves. */
  results: BlobStore;
  /** The provider's state folder: used nonces, privacy budgets, job records. */
  stateDir: string;
  maxSamplePasses?: number;
  /** Unix seconds; default the clock. */
  now?: () => bigint;
  /** Secret seed of each DP job's noise; default 32 fresh random bytes (see privacy.ts on seeds). */
  noiseSeed?: () => string;
}

export type JobStatus = "running" | "done" | "failed";

export interface JobRecord {
  /** The request's EIP-712 digest. */
  id: Hex;
  datasetId: string;
  buyer: Address;
  kind: JobKind;
  algorithm: Hex;
  status: JobStatus;
  resultCid?: string;
  resultDigest?: Hex;
  receiptTx?: Hex;
  /** What the job spent and the noise it drew, for a DP job. */
  dp?: { epsilon: number; delta: number; clipNorm: number; noiseMultiplier: number };
  error?: string;
}

/** A refusal: the HTTP status and the one-line reason; nothing was run or recorded. */
export class JobRefusedError extends Error {
  override name = "JobRefusedError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const nowSeconds = () => BigInt(Math.floor(Date.now() / 1000));

export class ComputeProvider {
  private readonly nonces: NonceLog;
  private readonly budgets: PrivacyLedger;
  private readonly jobs = new Map<Hex, JobRecord>();
  private readonly finished = new Map<Hex, Promise<void>>();
  private readonly scratch = scratchModels();
  /** Jobs run one after another: training uses every core it gets. */
  private queue: Promise<void> = Promise.resolve();
  private readonly now: () => bigint;

  constructor(readonly options: ComputeProviderOptions) {
    this.now = options.now ?? nowSeconds;
    this.nonces = new NonceLog(join(options.stateDir, "nonces.log"));
    this.budgets = new PrivacyLedger(join(options.stateDir, "privacy-budgets.json"));
    const dir = this.jobsDir();
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir).filter((n) => n.endsWith(".json"))) {
      const record = JSON.parse(readFileSync(join(dir, name), "utf8")) as JobRecord;
      // A job cut short by a restart released nothing; its nonce stays used and its epsilon spent.
      if (record.status === "running")
        Object.assign(record, { status: "failed", error: "the provider stopped before the job finished" });
      this.jobs.set(record.id, record);
    }
  }

  /** Epsilon `buyer` has spent on the dataset. */
  spent(datasetId: bigint, buyer: Address): number {
    return this.budgets.spent(datasetId, buyer);
  }

  /**
   * Checks a signed request (its JSON) and queues its job.
   * @returns the job's record, running
   * @throws JobRefusedError with the status of the first check that fails
   */
  async submit(body: unknown): Promise<JobRecord> {
    const { domain, market } = this.options;
    let signed: SignedJobRequest;
    try {
      signed = jobFromJson(body);
    } catch (error) {
      if (error instanceof MalformedJobError)
        throw new JobRefusedError(400, `malformed request: ${error.message}`);
      throw error;
    }
    const { request } = signed;
    let buyer: Address;
    try {
      buyer = await verifyJob(domain, signed);
    } catch (error) {
      if (error instanceof BadJobSignatureError)
        throw new JobRefusedError(401, `bad signature: ${error.message}`);
      throw error;
    }
    if (request.expiresAt <= this.now())
      throw new JobRefusedError(401, `the request expired at ${request.expiresAt}; sign a new one`);
    if (this.nonces.has(buyer, request.nonce))
      throw new JobRefusedError(409, new ReplayedNonceError(buyer, request.nonce).message);
    const dataset = this.options.datasets.get(request.datasetId);
    if (!dataset) throw new JobRefusedError(404, `this provider holds no dataset ${request.datasetId}`);
    if (!(await market.hasAccess(request.datasetId, buyer))) {
      throw new JobRefusedError(
        403,
        `${buyer} has no access to dataset ${request.datasetId} (never bought or granted, expired or revoked); buy access or ask the owner for a grant`,
      );
    }
    if (!(await market.isAllowed(request.datasetId, request.algorithm))) {
      throw new JobRefusedError(
        403,
        `algorithm ${request.algorithm} (model ${request.modelId} version ${request.version}) is not allowed on dataset ${request.datasetId}`,
      );
    }
    const maxPasses = this.options.maxSamplePasses ?? DEFAULT_MAX_SAMPLE_PASSES;
    const passes = (request.kind === "train" ? request.params.epochs : 1) * dataset.data.samples;
    if (passes > maxPasses) {
      throw new JobRefusedError(
        413,
        `the job would train on ${passes} samples (${request.params.epochs} epochs x ${dataset.data.samples} rows), more than this provider's ${maxPasses}; ask for fewer epochs`,
      );
    }
    const { dp: policy } = dataset;
    const dp = request.params.dp;
    if (policy && (request.kind !== "train" || dp === undefined)) {
      throw new JobRefusedError(
        403,
        `dataset ${request.datasetId} releases only differentially private training results: send a train job with params.dp (epsilon, clipNorm)`,
      );
    }
    // From here on nothing awaits until the job is queued, so concurrent requests cannot both pass.
    if (policy && dp) {
      try {
        this.budgets.spend(request.datasetId, buyer, dp.epsilon, policy);
      } catch (error) {
        if (error instanceof PrivacyBudgetExhaustedError) throw new JobRefusedError(403, error.message);
        throw error;
      }
    }
    try {
      this.nonces.use(buyer, request.nonce);
    } catch (error) {
      if (policy && dp) this.budgets.refund(request.datasetId, buyer, dp.epsilon);
      if (error instanceof ReplayedNonceError) throw new JobRefusedError(409, error.message);
      throw error;
    }
    const record: JobRecord = {
      id: jobDigest(domain, request),
      datasetId: request.datasetId.toString(),
      buyer,
      kind: request.kind,
      algorithm: request.algorithm,
      status: "running",
      ...(policy && dp
        ? {
            dp: {
              epsilon: dp.epsilon,
              delta: policy.delta,
              clipNorm: dp.clipNorm,
              noiseMultiplier: jobNoiseMultiplier(dp.epsilon, policy),
            },
          }
        : {}),
    };
    this.save(record);
    const run = this.queue.then(() => this.run(record, signed, dataset));
    // A job whose record cannot be written must not stop the jobs queued after it.
    this.queue = run.catch(() => undefined);
    this.finished.set(record.id, run);
    return { ...record };
  }

  /** A job's record, or undefined if this provider never accepted it. */
  job(id: Hex): JobRecord | undefined {
    const record = this.jobs.get(id);
    return record && { ...record };
  }

  /** The record once the job has finished, or as it is after `ms`. */
  async wait(id: Hex, ms: number): Promise<JobRecord | undefined> {
    const done = this.finished.get(id);
    if (done && this.jobs.get(id)?.status === "running") {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
      clearTimeout(timer);
    }
    return this.job(id);
  }

  /**
   * A result's bytes, for a buyer of a job that produced it, who signed a `ResultAccess` for it.
   * @throws JobRefusedError 400 (not a CID, a bad header), 401 (expired or unreadable signature), 404
   */
  async result(
    cid: string,
    expiresAt: string | undefined,
    signature: string | undefined,
  ): Promise<Uint8Array> {
    let digest: Hex;
    try {
      digest = digestFromCid(canonicalCid(cid));
    } catch (error) {
      if (error instanceof InvalidCidError) throw new JobRefusedError(400, error.message);
      throw error;
    }
    if (
      expiresAt === undefined ||
      !/^\d{1,20}$/.test(expiresAt) ||
      signature === undefined ||
      !isHex(signature)
    ) {
      throw new JobRefusedError(
        401,
        "a result is served only to its buyer: send x-ledgermind-expires and x-ledgermind-signature (a ResultAccess signed with signResultAccess)",
      );
    }
    const expires = BigInt(expiresAt);
    const now = this.now();
    if (expires <= now || expires > now + MAX_RESULT_ACCESS_S)
      throw new JobRefusedError(
        401,
        `the result access must expire within ${MAX_RESULT_ACCESS_S} s from now`,
      );
    const signer = await resultAccessSigner(
      this.options.domain,
      { resultDigest: digest, expiresAt: expires },
      signature,
    );
    const buyers = [...this.jobs.values()].filter((j) => j.status === "done" && j.resultDigest === digest);
    // The same answer for a result that does not exist and one of another buyer: a CID reveals nothing.
    if (!signer || !buyers.some((j) => j.buyer === getAddress(signer)))
      throw new JobRefusedError(404, `no result ${cid} of a job of the signer at this provider`);
    try {
      return await this.options.results.get(cid);
    } catch (error) {
      if (error instanceof BlobNotFoundError)
        throw new JobRefusedError(404, `result ${cid} is no longer stored`);
      throw error;
    }
  }

  /** Waits for the queued jobs, then frees the scratch models. */
  async close(): Promise<void> {
    await this.queue;
    this.scratch.dispose();
  }

  private async run(record: JobRecord, signed: SignedJobRequest, dataset: ProvidedDataset): Promise<void> {
    const { request } = signed;
    try {
      const base = await this.options.models.load(request.modelId, request.version);
      const noise = record.dp && {
        noiseMultiplier: record.dp.noiseMultiplier,
        clipNorm: record.dp.clipNorm,
        rng: createRng(this.options.noiseSeed?.() ?? randomBytes(32).toString("hex")),
      };
      const { bytes } = await runComputeJob({
        model: this.scratch.of(base.architecture),
        base,
        data: dataset.data.rows(),
        kind: request.kind,
        params: request.params,
        seed: record.id,
        ...(noise ? { noise } : {}),
      });
      const resultDigest = sha256Digest(bytes);
      const resultCid = await this.options.results.put(bytes);
      Object.assign(record, { resultCid, resultDigest });
      const { txHash } = await this.options.market.recordReceipt({
        datasetId: request.datasetId,
        requestDigest: record.id,
        algorithm: request.algorithm,
        resultDigest,
        buyer: record.buyer,
      });
      Object.assign(record, { status: "done", receiptTx: txHash });
    } catch (error) {
      // The result (if any) stays stored, but without a receipt it is not released.
      Object.assign(record, { status: "failed", error: (error as Error).message.split("\n")[0] });
    }
    this.save(record);
  }

  private jobsDir(): string {
    return join(this.options.stateDir, "jobs");
  }

  private save(record: JobRecord): void {
    writeFileDurably(join(this.jobsDir(), `${record.id}.json`), JSON.stringify(record));
    this.jobs.set(record.id, record);
  }
}

function fail(reply: FastifyReply, status: number, error: string): FastifyReply {
  return reply.code(status).type("application/json").send(JSON.stringify({ error }));
}

export interface ComputeRoutesOptions {
  /** Bodies over this are answered 413 unread (default DEFAULT_MAX_BODY_BYTES). */
  maxBodyBytes?: number;
}

/**
 * Adds the provider's routes to a server (a node's, through `createBlobServer`'s `routes`):
 * `POST /compute/jobs` (202 and the job's record), `GET /compute/jobs/:id[?waitMs=]` and
 * `GET /compute/results/:cid` (the buyer's, see ComputeProvider.result). Every error is one line of JSON.
 */
export function computeRoutes(
  app: FastifyInstance,
  provider: ComputeProvider,
  opts: ComputeRoutesOptions = {},
): void {
  const bodyLimit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "string", bodyLimit }, (_req, text, done) => done(null, text));
    scope.setErrorHandler((error, _request, reply) => {
      const status = (error as { statusCode?: number }).statusCode;
      if (error instanceof JobRefusedError) return fail(reply, error.status, error.message);
      if (status === 413)
        return fail(reply, 413, `the request is larger than this provider reads (${bodyLimit} bytes)`);
      const line = (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
      return status && status >= 400 && status < 500 ? fail(reply, status, line) : fail(reply, 500, line);
    });
    scope.post("/compute/jobs", async (request, reply) => {
      let body: unknown;
      try {
        body = JSON.parse(String(request.body ?? ""));
      } catch {
        return fail(
          reply,
          400,
          "malformed request: the body is not JSON; send a signed job request (jobToJson)",
        );
      }
      const record = await provider.submit(body);
      return reply.code(202).send(record);
    });
    scope.get<{ Params: { id: string }; Querystring: { waitMs?: string } }>(
      "/compute/jobs/:id",
      async (request, reply) => {
        const { id } = request.params;
        if (!isHex(id) || id.length !== 66)
          return fail(reply, 400, `"${id}" is not a job id (a 32-byte hex digest)`);
        const waitMs = Math.min(Number(request.query.waitMs ?? 0) || 0, MAX_WAIT_MS);
        const record = await provider.wait(id.toLowerCase() as Hex, waitMs);
        if (!record) return fail(reply, 404, `this provider has no job ${id}`);
        return reply.send(record);
      },
    );
    scope.get<{ Params: { cid: string } }>("/compute/results/:cid", async (request, reply) => {
      const header = (name: string) => {
        const v = request.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      const bytes = await provider.result(
        request.params.cid,
        header("x-ledgermind-expires"),
        header("x-ledgermind-signature"),
      );
      return reply.type("application/octet-stream").send(Buffer.from(bytes));
    });
  });
}
