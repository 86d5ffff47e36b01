/**
 * The node: one participant as one long-running process. It connects to a shared chain with its own
 * account, keeps its own blob store and state in its own folder, runs the roles its config names (the
 * learning roles of learning.ts: trainer, validator, aggregator, keeper; the oracle operator, one per
 * model version; the compute-to-data provider of provider.ts) and serves, on one HTTP port, its blobs to
 * other nodes (`/blobs/CID`), `/health`, Prometheus `/metrics` and, as a provider, `/compute/*`. Every event is one JSON line on the logger. An
 * oracle node also serves the report routes (report-exchange.ts) and answers by signed reports exchanged
 * with the other operators it finds in the node directory (or its static peers), commit-reveal being the
 * fallback.
 *
 * It composes what the CLI commands use, and holds no protocol logic: the operators are exactly those of
 * `oracle serve` (same state files, so either resumes the other's work on the same folder), and the blob
 * server is `blob serve`'s. Blobs this node lacks (a model's weights) are fetched from its configured
 * peers and from the nodes that the accounts holding them announced in the node directory (for a model
 * version: its model's owner and its operators), every byte checked against the CID, and kept. On start
 * the node announces its own URL there, unless the directory already holds it.
 */

import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { type Address, isAddressEqual } from "viem";
import { connect, type LedgerChain } from "../chain/connect.ts";
import { requireDeployment } from "../chain/deploy.ts";
import { InferenceOracle, ModelRegistry } from "../chain/generated/contracts.ts";
import { type ComputeProvider, computeRoutes } from "../market/provider.ts";
import { type Oracle, openOracle, operatorsOf } from "../oracle/client.ts";
import {
  formatOperatorEvent,
  fundStake,
  type OperatorEvent,
  operatorStateFile,
  type RunningOperator,
  startOperator,
} from "../oracle/operator.ts";
import {
  type PeerResolver,
  ReportExchange,
  reportRoutes,
  staticPeerResolver,
} from "../oracle/report-exchange.ts";
import { type BlobServer, createBlobServer } from "../storage/blob-server.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { FsBlobStore } from "../storage/fs-blob-store.ts";
import { HttpBlobStore } from "../storage/http-blob-store.ts";
import { operatorZkOptions, readZkSecretFile } from "../zk/secret.ts";
import type { NodeConfig } from "./config.ts";
import {
  announceEndpoint,
  type Directory,
  directoryEndpoints,
  directoryPeers,
  endpointOf,
  openDirectory,
} from "./directory.ts";
import { type RunningLearning, startLearningRoles } from "./learning.ts";
import { countLearningAction, countOperatorEvent, createNodeMetrics, type NodeMetrics } from "./metrics.ts";
import { startProviderRole } from "./provider.ts";

/** How long /health waits for the chain before answering 503, and /metrics before leaving a value as it was. */
export const HEALTH_CHAIN_TIMEOUT_MS = 2_000;

export interface StartNodeOptions {
  config: NodeConfig;
  /** Where every event goes, one JSON object a line. */
  logger: Logger;
  /** Where the keys come from (LEDGERMIND_KEYS); default the process's environment. */
  env?: NodeJS.ProcessEnv;
}

export interface RunningNode {
  /** The base URL of the node's HTTP server. */
  url: string;
  /** The URL other nodes reach this one at, as announced in the node directory. */
  publicUrl: string;
  chainId: number;
  /**
   * A blob store for content that `accounts` hold: this node's own, backed by its configured peers and by
   * the nodes those accounts announced (asked again at most every few seconds). For the roles, which know
   * whose content they need (a round's trainers, an aggregator).
   */
  storeFor(accounts: () => Promise<readonly Address[]>): BlobStore;
  /** Stops the roles after their step in progress (state kept in the folder), then the HTTP server. */
  stop(): Promise<void>;
}

/** `1@2`, as in the config and the CLI. */
const modelRef = (m: { modelId: bigint; version: number }) => `${m.modelId}@${m.version}`;

/** The salt of version `m` among the node's zk secret files, when it proves for that version. */
function zkSecretOf(files: readonly string[] | undefined, m: { modelId: bigint; version: number }) {
  for (const file of files ?? []) {
    const secret = readZkSecretFile(file);
    if (secret.modelId === String(m.modelId) && secret.version === m.version)
      return operatorZkOptions(secret);
  }
  return {};
}

/** An operator event as log fields: bigints as decimal strings, so that the line is plain JSON. */
function eventFields(e: OperatorEvent): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(e).map(([k, v]) => [k === "type" ? "event" : k, typeof v === "bigint" ? v.toString() : v]),
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Who holds a model version's weights: its model's owner, who published them, and its operators. */
async function versionHolders(oracle: Oracle, modelId: bigint, version: number): Promise<Address[]> {
  const [owner, operators] = await Promise.all([
    oracle.chain.publicClient.readContract({
      address: oracle.registry,
      abi: ModelRegistry.abi,
      functionName: "ownerOf",
      args: [modelId],
    }),
    operatorsOf(oracle, modelId, version),
  ]);
  return [owner, ...operators];
}

/**
 * Announces `url` as this node's, unless the directory already holds exactly it: a restart costs no gas.
 * @returns whether a transaction was sent
 */
async function ensureAnnounced(
  directory: Directory,
  account: number,
  address: Address,
  url: string,
): Promise<boolean> {
  if ((await endpointOf(directory, address)) === url) return false;
  await announceEndpoint(directory, url, account);
  return true;
}

/** Puts the configured deployment manifest where every command looks for it, unless one is there. */
function installDeployment(config: NodeConfig, chain: LedgerChain): void {
  const target = join(config.dataDir, "deployments", `${chain.manifestKey}.json`);
  if (config.chain.deployment === undefined || existsSync(target)) return;
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(config.chain.deployment, target);
}

/** The node's own routes and the hook that counts every answer, blobs included. */
function operationsRoutes(
  app: FastifyInstance,
  chain: LedgerChain,
  metrics: NodeMetrics,
  status: () => Record<string, unknown>,
  ready: () => boolean,
): void {
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    const code = String(reply.statusCode);
    metrics.httpRequests.inc({ route, status: code });
    if (route !== "/blobs/:cid") return;
    metrics.blobRequests.inc({ status: code });
    if (request.method === "GET" && (reply.statusCode === 200 || reply.statusCode === 206))
      metrics.bytesServed.inc(Number(reply.getHeader("content-length") ?? 0));
  });
  app.get("/health", async (_request, reply) => {
    // Served while its roles start (other nodes may need its blobs to start theirs), but not yet healthy.
    if (!ready()) return reply.code(503).send({ status: "starting", ...status() });
    try {
      const block = await withTimeout(
        chain.publicClient.getBlockNumber({ cacheTime: 0 }),
        HEALTH_CHAIN_TIMEOUT_MS,
        "the chain's block number",
      );
      return reply.send({ status: "ok", blockNumber: Number(block), ...status() });
    } catch (error) {
      const message = (error as Error).message.split("\n")[0];
      return reply
        .code(503)
        .send({ status: "unavailable", error: `the chain does not answer: ${message}`, ...status() });
    }
  });
  app.get("/metrics", async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
}

/**
 * Starts the node: connects, checks the deployment and the account, starts every configured role, then
 * serves. Resolves once it serves (after the "serving" log line); rejects, with nothing left running,
 * when any part cannot start.
 */
export async function startNode({ config, logger, env }: StartNodeOptions): Promise<RunningNode> {
  const started = Date.now();
  mkdirSync(config.dataDir, { recursive: true });
  const chain = await connect({ rpc: config.chain.rpc, dataDir: config.dataDir, env });
  installDeployment(config, chain);
  await requireDeployment(chain);
  const address = chain.wallet(config.account).account.address;
  const directory = await openDirectory(chain);
  const local = new FsBlobStore(join(config.dataDir, "blobs"));
  // The node's own entry is left out: it holds nothing it would fetch from itself.
  const others = (accounts: readonly Address[]) => accounts.filter((a) => !isAddressEqual(a, address));
  const endpoints = directoryEndpoints(directory);
  const storeFor = (accounts: () => Promise<readonly Address[]>): BlobStore => {
    const announced = directoryPeers(directory, async () => others(await accounts()));
    return new HttpBlobStore(local, {
      ...config.fetch,
      peers: async () => [...new Set([...config.peers, ...(await announced())])],
      peersOf: (holders) => endpoints(others(holders)),
    });
  };
  const oracle = config.roles.oracle;
  const models = oracle?.models ?? [];
  const roles = Object.keys(config.roles);

  // A stalled chain must not stall a scrape: each read gets the health check's time, no more.
  const metrics = createNodeMetrics(
    () => withTimeout(chain.publicClient.getBlockNumber(), HEALTH_CHAIN_TIMEOUT_MS, "the block number"),
    async () => {
      const target = await openOracle(chain);
      const reads = Promise.all(
        models.map(async (m) => {
          const info = await chain.publicClient.readContract({
            address: target.address,
            abi: InferenceOracle.abi,
            functionName: "operatorInfo",
            args: [m.modelId, m.version, address],
          });
          return { model: modelRef(m), stake: info.stake };
        }),
      );
      return withTimeout(reads, HEALTH_CHAIN_TIMEOUT_MS, "the stakes");
    },
  );

  const operators: RunningOperator[] = [];
  const exchanges: ReportExchange[] = [];
  const staticPeers = staticPeerResolver(config.peers);
  // The other operators' report routes: where they announced themselves, else among the static peers.
  const operatorUrl: PeerResolver = async (operator) =>
    (await endpointOf(directory, operator)) ?? (await staticPeers(operator));
  let learning: RunningLearning | undefined;
  let compute: ComputeProvider | undefined;
  let server: BlobServer | undefined;
  let publicUrl = "";
  let announced = false;
  let ready = false;
  const stopAll = async () => {
    await Promise.all([...operators.map((o) => o.stop()), learning?.stop(), compute?.close()]);
    await server?.close();
    await chain.close();
  };
  try {
    const status = () => ({
      chainId: chain.chainId,
      account: address,
      roles,
      models: models.map(modelRef),
      uptimeS: Math.round((Date.now() - started) / 1000),
    });
    const provider = config.roles.provider;
    if (provider)
      compute = await startProviderRole({ chain, config: { ...config, roles: { provider } }, storeFor });
    // Served and announced before the roles start: other nodes may need its blobs (a model's weights, the
    // initial model) to start their own roles.
    server = await createBlobServer(local, {
      host: config.http.host,
      port: config.http.port,
      routes: (app) => {
        operationsRoutes(app, chain, metrics, status, () => ready);
        if (oracle) reportRoutes(app, exchanges);
        if (compute) computeRoutes(app, compute);
      },
    });
    publicUrl = config.http.publicUrl ?? server.url;
    announced = await ensureAnnounced(directory, config.account, address, publicUrl);
    const versionOracle = await openOracle(chain);
    for (const m of models) {
      const model = modelRef(m);
      if (oracle?.fundFrom !== undefined)
        await fundStake(chain, config.account, oracle.fundFrom, m.modelId, m.version, oracle.stake);
      const log = (e: OperatorEvent) => {
        countOperatorEvent(metrics, model, e);
        const level = e.type === "error" ? "error" : e.type === "missed" ? "warn" : "info";
        logger[level]({ role: "oracle", model, ...eventFields(e) }, formatOperatorEvent(e));
      };
      operators.push(
        await startOperator(
          {
            chain,
            account: config.account,
            store: storeFor(() => versionHolders(versionOracle, m.modelId, m.version)),
            modelId: m.modelId,
            version: m.version,
            stake: oracle?.stake,
            stateFile: operatorStateFile(config.dataDir, chain, address, m.modelId, m.version),
            log,
            pollMs: oracle?.pollMs,
            mine: oracle?.mine,
            reportWindowMs: oracle?.reportWindowMs,
            faultyOffset: oracle?.faultyOffset,
            ...zkSecretOf(oracle?.zkSaltFiles, m),
          },
          (operator) => {
            const exchange = new ReportExchange({
              operator,
              peers: operatorUrl,
              leaderTimeoutMs: oracle?.leaderTimeoutMs,
            });
            exchanges.push(exchange);
            return () => exchange.lead();
          },
        ),
      );
    }
    learning = await startLearningRoles({
      chain,
      config,
      storeFor,
      logger,
      onAction: (a) => countLearningAction(metrics, a),
    });
    ready = true;
  } catch (error) {
    await stopAll();
    throw error;
  }
  const url = server.url;
  logger.info(
    {
      url,
      publicUrl,
      announced,
      chainId: chain.chainId,
      account: address,
      roles,
      models: models.map(modelRef),
      dataDir: config.dataDir,
    },
    `serving on ${url}`,
  );
  let stopping: Promise<void> | undefined;
  return {
    url,
    publicUrl,
    chainId: chain.chainId,
    storeFor,
    stop() {
      stopping ??= stopAll().then(() =>
        logger.info({ uptimeS: Math.round((Date.now() - started) / 1000) }, "stopped"),
      );
      return stopping;
    },
  };
}
