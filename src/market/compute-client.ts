/**
 * The buyer's side of compute-to-data: submits a signed job to a provider, waits for it, fetches the result
 * with a signed `ResultAccess` and checks every byte against the digest the provider reported (and recorded
 * in the receipt), so a provider cannot hand over other bytes than those it answers for on-chain.
 */
import { randomBytes } from "node:crypto";
import type { LocalAccount } from "../chain/accounts.ts";
import { cidFromDigest, sha256Digest } from "../storage/cid.ts";
import {
  type JobDomainInput,
  type JobKind,
  type JobParams,
  type JobRequest,
  jobToJson,
  type SignedJobRequest,
  signJob,
  signResultAccess,
} from "./job.ts";
import { algorithmId } from "./protocol.ts";
import type { JobRecord } from "./provider.ts";

/** The provider refused the request or failed the job: `status` is the HTTP status (0: the job failed). */
export class ComputeJobError extends Error {
  override name = "ComputeJobError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface SubmitJobOptions {
  /** The buyer's account: signs the result access. */
  account: LocalAccount;
  /** The provider's market, as the job was signed for. */
  domain: JobDomainInput;
  /** Give up waiting after this (default 10 minutes). */
  timeoutMs?: number;
}

export interface SubmitJobResult {
  job: JobRecord;
  /** The result's bytes, verified against `job.resultDigest`. */
  bytes: Uint8Array;
}

/** How long one poll asks the provider to hold its answer. */
const POLL_WAIT_MS = 10_000;

async function errorOf(response: Response): Promise<ComputeJobError> {
  const text = await response.text();
  let message = text;
  try {
    message = (JSON.parse(text) as { error?: string }).error ?? text;
  } catch {}
  return new ComputeJobError(response.status, `the provider answered ${response.status}: ${message}`);
}

/**
 * Runs a signed job at the provider at `url` and returns its verified result.
 * @throws ComputeJobError when the provider refuses the job, the job fails, or the result does not match
 * @example
 * const signed = await signJob(buyer, domain, request);
 * const { job, bytes } = await submitJob(providerUrl, signed, { account: buyer, domain });
 */
export async function submitJob(
  url: string,
  signed: SignedJobRequest,
  options: SubmitJobOptions,
): Promise<SubmitJobResult> {
  const deadline = Date.now() + (options.timeoutMs ?? 600_000);
  const posted = await fetch(`${url}/compute/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(jobToJson(signed)),
  });
  if (posted.status !== 202) throw await errorOf(posted);
  let job = (await posted.json()) as JobRecord;
  while (job.status === "running") {
    const left = deadline - Date.now();
    if (left <= 0)
      throw new ComputeJobError(0, `job ${job.id} still runs after the timeout; ask again later`);
    const polled = await fetch(`${url}/compute/jobs/${job.id}?waitMs=${Math.min(POLL_WAIT_MS, left)}`);
    if (!polled.ok) throw await errorOf(polled);
    job = (await polled.json()) as JobRecord;
  }
  if (job.status !== "done" || !job.resultDigest)
    throw new ComputeJobError(0, `job ${job.id} failed at the provider: ${job.error ?? "no reason given"}`);
  const cid = cidFromDigest(job.resultDigest);
  const expiresAt = BigInt(Math.floor(Date.now() / 1000) + 300);
  const signature = await signResultAccess(options.account, options.domain, {
    resultDigest: job.resultDigest,
    expiresAt,
  });
  const fetched = await fetch(`${url}/compute/results/${cid}`, {
    headers: { "x-ledgermind-expires": expiresAt.toString(), "x-ledgermind-signature": signature },
  });
  if (!fetched.ok) throw await errorOf(fetched);
  const bytes = new Uint8Array(await fetched.arrayBuffer());
  if (sha256Digest(bytes) !== job.resultDigest) {
    throw new ComputeJobError(
      0,
      `the provider sent bytes that hash to ${sha256Digest(bytes)}, not the result digest ${job.resultDigest} of job ${job.id}`,
    );
  }
  return { job, bytes };
}

/** What a buyer asks of a provider: a registry model version run on one of its datasets. */
export interface ComputeJobAsk {
  datasetId: bigint;
  model: { modelId: bigint; version: number };
  kind: JobKind;
  params: JobParams;
  /** How long the signed request stays valid, seconds (default 600). */
  validForS?: number;
}

/**
 * Signs `ask` as the buyer (a fresh random nonce) and runs it at the provider at `url`: `submitJob` of the
 * request it builds.
 */
export async function computeJob(
  url: string,
  ask: ComputeJobAsk,
  options: SubmitJobOptions,
): Promise<SubmitJobResult & { signed: SignedJobRequest }> {
  const request: JobRequest = {
    datasetId: ask.datasetId,
    algorithm: algorithmId(ask.model),
    kind: ask.kind,
    modelId: ask.model.modelId,
    version: ask.model.version,
    params: ask.params,
    nonce: BigInt(`0x${randomBytes(16).toString("hex")}`),
    expiresAt: BigInt(Math.floor(Date.now() / 1000) + (ask.validForS ?? 600)),
    buyer: options.account.address,
  };
  const signed = await signJob(options.account, options.domain, request);
  return { ...(await submitJob(url, signed, options)), signed };
}
