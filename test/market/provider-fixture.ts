/**
 * A compute-to-data provider on a real HTTP server on 127.0.0.1, mounted as a node mounts it (beside the
 * node's blob routes), with real MNIST shards, real training and real signatures. Only the chain is
 * stood in for: `InMemoryMarket` plays the DataMarket contract, which another branch builds, through the
 * same MarketAccess interface the lead implements against it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Address, type Hex, keccak256, stringToHex } from "viem";
import { devAccounts, type LocalAccount } from "../../src/chain/accounts.ts";
import { canonicalOf } from "../../src/learning/simulate.ts";
import type { PrivateDataset } from "../../src/market/compute.ts";
import { type JobParams, type JobRequest, jobToJson, signJob } from "../../src/market/job.ts";
import type { DpPolicy } from "../../src/market/privacy-budget.ts";
import { privateRows } from "../../src/market/private-data.ts";
import { algorithmId } from "../../src/market/protocol.ts";
import {
  ComputeProvider,
  computeRoutes,
  type MarketAccess,
  type ModelSource,
  type ProvidedDataset,
} from "../../src/market/provider.ts";
import { initBackend } from "../../src/ml/backend.ts";
import type { CanonicalModel } from "../../src/ml/encoding.ts";
import { initialWeights } from "../../src/ml/models.ts";
import { createBlobServer } from "../../src/storage/blob-server.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";

export type Receipt = Parameters<MarketAccess["recordReceipt"]>[0];

/** Stands in for the DataMarket contract: grants with expiry, revocation, allowed algorithms, receipts. */
export class InMemoryMarket implements MarketAccess {
  private readonly grants = new Map<string, bigint>();
  private readonly allowed = new Set<string>();
  readonly receipts: Receipt[] = [];
  /** Makes recordReceipt fail, as a reverted or unsent transaction would. */
  failReceipts = false;

  constructor(private readonly now: () => bigint) {}

  grant(datasetId: bigint, account: Address, until: bigint): void {
    this.grants.set(`${datasetId}:${account.toLowerCase()}`, until);
  }
  revoke(datasetId: bigint, account: Address): void {
    this.grants.delete(`${datasetId}:${account.toLowerCase()}`);
  }
  allow(datasetId: bigint, algorithm: Hex): void {
    this.allowed.add(`${datasetId}:${algorithm}`);
  }
  async hasAccess(datasetId: bigint, account: Address): Promise<boolean> {
    const until = this.grants.get(`${datasetId}:${account.toLowerCase()}`);
    return until !== undefined && until > this.now();
  }
  async isAllowed(datasetId: bigint, algorithm: Hex): Promise<boolean> {
    return this.allowed.has(`${datasetId}:${algorithm}`);
  }
  async recordReceipt(r: Receipt): Promise<{ txHash: Hex }> {
    if (this.failReceipts) throw new Error("the receipt transaction reverted");
    this.receipts.push(r);
    return { txHash: keccak256(stringToHex(`receipt ${this.receipts.length}`)) };
  }
}

export const ARCHITECTURE = "mlp-784-32-10";
export const MODEL = { modelId: 7n, version: 1 };
export const ALGORITHM = algorithmId({ modelId: MODEL.modelId, version: MODEL.version });
export const PLAIN_DATASET = 1n;
export const DP_DATASET = 2n;
export const DP_POLICY: DpPolicy = { epsilonBudget: 1, delta: 1e-5 };

/** The registry model version jobs train: deterministic initial weights, as `model register` would publish. */
export const baseModel = (): CanonicalModel => canonicalOf(ARCHITECTURE, initialWeights(ARCHITECTURE, 7));

export const inMemoryModels = (): ModelSource => ({
  async load(modelId, version) {
    if (modelId !== MODEL.modelId || version !== MODEL.version)
      throw new Error(`no model ${modelId} version ${version} in the test registry`);
    return baseModel();
  },
});

/** Client `index`'s shard of a small MNIST split: 200 digits on average. */
export const shard = (index: number): PrivateDataset =>
  privateRows({ mnist: { clients: 10, validators: 1, alpha: 100, seed: 13, samplesPerClient: 200, index } });

export interface ProviderFixture {
  url: string;
  provider: ComputeProvider;
  market: InMemoryMarket;
  stateDir: string;
  domain: { chainId: number; market: Address };
  buyer: LocalAccount;
  stranger: LocalAccount;
  clock: { now: bigint };
  /** A request by `buyer` (or `over.buyer`) with a fresh nonce, signed by `signer` (default the buyer). */
  sign(over?: Partial<JobRequest>, signer?: LocalAccount): Promise<unknown>;
  /** Posts a body (JSON-encoded unless a string) to /compute/jobs. */
  post(body: unknown): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Stops the server and the provider; `keepState` leaves the state folder for a restart. */
  close(keepState?: boolean): Promise<void>;
}

export const TRAIN: JobParams = { epochs: 2, batch: 32, lr: 0.1 };

let nonce = 1_000n;

export async function startProvider(
  options: { stateDir?: string; datasets?: Map<bigint, ProvidedDataset>; maxSamplePasses?: number } = {},
): Promise<ProviderFixture> {
  await initBackend();
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), "ledgermind-provider-"));
  // The real time: the buyer's client dates its result access by its own clock.
  const clock = { now: BigInt(Math.floor(Date.now() / 1000)) };
  const market = new InMemoryMarket(() => clock.now);
  const domain = { chainId: 31337, market: "0x5FbDB2315678afecb367f032d93F642f64180aa3" as Address };
  const [, buyer, stranger] = devAccounts(3) as [LocalAccount, LocalAccount, LocalAccount];
  const datasets =
    options.datasets ??
    new Map<bigint, ProvidedDataset>([
      [PLAIN_DATASET, { data: shard(0) }],
      [DP_DATASET, { data: shard(1), dp: DP_POLICY }],
    ]);
  for (const id of datasets.keys()) {
    market.grant(id, buyer.address, clock.now + 3_600n);
    market.allow(id, ALGORITHM);
  }
  const provider = new ComputeProvider({
    domain,
    market,
    models: inMemoryModels(),
    datasets,
    results: new FsBlobStore(join(stateDir, "results")),
    stateDir,
    now: () => clock.now,
    ...(options.maxSamplePasses === undefined ? {} : { maxSamplePasses: options.maxSamplePasses }),
  });
  // Mounted as a node mounts it: the node's own (public) blob store is served beside it.
  const server = await createBlobServer(new FsBlobStore(join(stateDir, "node-blobs")), {
    routes: (app) => computeRoutes(app, provider),
  });
  return {
    url: server.url,
    provider,
    market,
    stateDir,
    domain,
    buyer,
    stranger,
    clock,
    async sign(over = {}, signer) {
      const request: JobRequest = {
        datasetId: PLAIN_DATASET,
        algorithm: ALGORITHM,
        kind: "train",
        ...MODEL,
        params: TRAIN,
        nonce: nonce++,
        expiresAt: clock.now + 600n,
        buyer: buyer.address,
        ...over,
      };
      const account = signer ?? (request.buyer === stranger.address ? stranger : buyer);
      // signJob refuses a buyer other than the signer: a forgery is signed as the signer, then altered.
      const signed = await signJob(account, domain, { ...request, buyer: account.address });
      return jobToJson({ ...signed, request: { ...signed.request, buyer: request.buyer } });
    },
    async post(body) {
      const response = await fetch(`${server.url}/compute/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    },
    async close(keepState = false) {
      await server.close();
      await provider.close();
      if (!keepState) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
