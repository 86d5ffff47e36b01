/**
 * The node: one participant as one long-running process. It connects to a shared chain with its own
 * account, keeps its own blob store and state in its own folder, runs the roles its config names (today:
 * the oracle operator, one per model version) and serves, on one HTTP port, its blobs to other nodes
 * (`/blobs/CID`), `/health` and Prometheus `/metrics`. Every event is one JSON line on the logger. An
 * oracle node with peers also serves the report routes (report-exchange.ts) and answers by signed reports,
 * commit-reveal being the fallback.
 *
 * It composes what the CLI commands use, and holds no protocol logic: the operators are exactly those of
 * `oracle serve` (same state files, so either resumes the other's work on the same folder), and the blob
 * server is `blob serve`'s. Blobs this node lacks (a model's weights) are fetched from its configured
 * peers, every byte checked against the CID, and kept.
 */

import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { connect, type LedgerChain } from "../chain/connect.ts";
import { requireDeployment } from "../chain/deploy.ts";
import { InferenceOracle } from "../chain/generated/contracts.ts";
import { openOracle } from "../oracle/client.ts";
import {
  formatOperatorEvent,
  fundStake,
  type OperatorEvent,
  operatorStateFile,
  type RunningOperator,
  startOperator,
} from "../oracle/operator.ts";
import { ReportExchange, reportRoutes, staticPeerResolver } from "../oracle/report-exchange.ts";
import { type BlobServer, createBlobServer } from "../storage/blob-server.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { FsBlobStore } from "../storage/fs-blob-store.ts";
import { HttpBlobStore } from "../storage/http-blob-store.ts";
import type { NodeConfig } from "./config.ts";
import { countOperatorEvent, createNodeMetrics, type NodeMetrics } from "./metrics.ts";

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
  chainId: number;
  /** Stops the operators after their step in progress (state files kept), then the HTTP server. */
  stop(): Promise<void>;
}

/** `1@2`, as in the config and the CLI. */
const modelRef = (m: { modelId: bigint; version: number }) => `${m.modelId}@${m.version}`;

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
  const local = new FsBlobStore(join(config.dataDir, "blobs"));
  const store: BlobStore =
    config.peers.length > 0 ? new HttpBlobStore(local, { peers: config.peers }) : local;
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
  const reports = oracle !== undefined && config.peers.length > 0;
  const peers = staticPeerResolver(config.peers);
  let server: BlobServer | undefined;
  const stopAll = async () => {
    await Promise.all(operators.map((o) => o.stop()));
    await server?.close();
    await chain.close();
  };
  try {
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
            store,
            modelId: m.modelId,
            version: m.version,
            stake: oracle?.stake,
            stateFile: operatorStateFile(config.dataDir, chain, address, m.modelId, m.version),
            log,
            pollMs: oracle?.pollMs,
            ...(reports ? { reportWindowMs: oracle.reportWindowMs } : {}),
          },
          reports
            ? (operator) => {
                const x = new ReportExchange({ operator, peers, leaderTimeoutMs: oracle.leaderTimeoutMs });
                exchanges.push(x);
                return () => x.lead();
              }
            : undefined,
        ),
      );
    }
    const status = () => ({
      chainId: chain.chainId,
      account: address,
      roles,
      models: models.map(modelRef),
      uptimeS: Math.round((Date.now() - started) / 1000),
    });
    server = await createBlobServer(local, {
      host: config.http.host,
      port: config.http.port,
      routes: (app) => {
        operationsRoutes(app, chain, metrics, status);
        if (exchanges.length > 0) reportRoutes(app, exchanges);
      },
    });
  } catch (error) {
    await stopAll();
    throw error;
  }
  const url = server.url;
  logger.info(
    {
      url,
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
    chainId: chain.chainId,
    stop() {
      stopping ??= stopAll().then(() =>
        logger.info({ uptimeS: Math.round((Date.now() - started) / 1000) }, "stopped"),
      );
      return stopping;
    },
  };
}
