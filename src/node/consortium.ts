/**
 * The pieces of a consortium on one machine, shared by the devnet and the demo: a development chain (anvil,
 * as `ledgermind chain` runs it) or a chain that already runs, with the Ledgermind contracts deployed; node
 * configs written and `ledgermind node` processes started from them; rounds of a federated task followed
 * from the chain; and everything started stopped again, also when the run fails or is interrupted.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type LedgerChain } from "../chain/connect.ts";
import { deployAll, manifestPath, NotDeployedError, requireDeployment } from "../chain/deploy.ts";
import { type DevNode, startDevNode } from "../chain/devnode.ts";
import { getRound, getTask, type RoundInfo, type Tasks } from "../learning/client.ts";
import { freePort } from "./free-port.ts";
import { lastLogLine, type NodeProcess, startNodeProcess } from "./process.ts";

/** A consortium run failed: a node stopped on its own, a round did not settle, or it was interrupted. */
export class ConsortiumError extends Error {
  override name = "ConsortiumError";
}

/** One node to start: its name (also its files' stem: `NAME.yaml`, `NAME.log`, folder `NAME`), account and roles. */
export interface NodeSpec {
  name: string;
  account: number;
  /** The `roles:` mapping's lines, indented by two spaces. */
  roles: string;
  /** Other top-level config lines (`learningPollMs: 200`). */
  extra?: string[];
}

export interface ConsortiumNode extends NodeProcess {
  name: string;
  account: number;
}

/** Throws the interruption error once `signal` is aborted. */
export function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new ConsortiumError(`interrupted: every process ${what} started was stopped`);
}

/**
 * A chain the consortium shares, with the contracts deployed (by account 0 when they are not), and the
 * node processes started on it. `close` stops every node, then the chain if it started one.
 */
export class Consortium {
  /** Every node started, in the order they were started, killed ones included. */
  readonly nodes: ConsortiumNode[] = [];
  /** Nodes stopped or killed on purpose: not an error when they are gone. */
  private readonly stopped = new Set<ConsortiumNode>();

  private constructor(
    readonly dir: string,
    /** The chain's JSON-RPC URL, as the nodes reach it. */
    readonly rpc: string,
    /** Account 0 (the deployer, owner of what the run sets up) connected to the chain. */
    readonly creator: LedgerChain,
    /** The deployment manifest the nodes install. */
    readonly deployment: string,
    private readonly devChain: DevNode | undefined,
    /** `interrupted: every process WHAT started was stopped`. */
    private readonly what: string,
    /** Aborted on Ctrl-C: the run stops, and `close` stops everything it started. */
    readonly signal: AbortSignal | undefined,
  ) {}

  /**
   * Starts a development chain unless `rpc` names one, connects account 0 with its data in `creatorDir`
   * (or `dataDir` for `rpc`, where its deployment manifest is) and deploys the contracts where they are not.
   * Nothing is left running when it throws.
   */
  static async open(o: {
    dir: string;
    rpc?: string;
    dataDir?: string;
    /** Account 0's folder in `dir`: its data and blobs, as its node's (default node-0). */
    creatorDir?: string;
    what: string;
    log: (line: string) => void;
    signal?: AbortSignal;
  }): Promise<Consortium> {
    mkdirSync(o.dir, { recursive: true });
    let devChain: DevNode | undefined;
    let creator: LedgerChain | undefined;
    try {
      let rpc = o.rpc;
      if (!rpc) {
        devChain = await startDevNode({ port: 0 });
        rpc = devChain.url;
        o.log(`development chain on ${rpc}`);
      }
      const creatorDir = join(o.dir, o.creatorDir ?? "node-0");
      creator = await connect({ rpc, dataDir: o.rpc && o.dataDir ? o.dataDir : creatorDir });
      try {
        await requireDeployment(creator);
      } catch (error) {
        if (!(error instanceof NotDeployedError)) throw error;
        await deployAll(creator);
        o.log("deployed the Ledgermind contracts");
      }
      const consortium = new Consortium(
        o.dir,
        rpc,
        creator,
        manifestPath(creator),
        devChain,
        o.what,
        o.signal,
      );
      consortium.checkAborted();
      return consortium;
    } catch (error) {
      await creator?.close();
      await devChain?.stop();
      throw error;
    }
  }

  checkAborted(): void {
    checkAborted(this.signal, this.what);
  }

  /**
   * Writes each node's config and starts them: the first alone (with `firstAlone`: it holds what the others
   * fetch as they start), then the rest at once. Resolves once every one answers /health; a node that
   * fails to start fails the call (those started are stopped by `close`).
   */
  async start(specs: readonly NodeSpec[], o: { firstAlone?: boolean } = {}): Promise<ConsortiumNode[]> {
    const ports = await Promise.all(specs.map(() => freePort()));
    const launch = async (spec: NodeSpec, port: number): Promise<ConsortiumNode> => {
      const file = join(this.dir, `${spec.name}.yaml`);
      writeFileSync(
        file,
        [
          `dataDir: ${spec.name}`,
          `chain: { rpc: ${this.rpc}, deployment: ${JSON.stringify(this.deployment)} }`,
          `account: ${spec.account}`,
          `http: { port: ${port} }`,
          ...(spec.extra ?? []),
          "roles:",
          spec.roles,
          "",
        ].join("\n"),
      );
      const started = await startNodeProcess({
        name: spec.name.replace("-", " "),
        config: file,
        url: `http://127.0.0.1:${port}`,
        log: join(this.dir, `${spec.name}.log`),
        signal: this.signal,
      });
      const node = Object.assign(started, { name: spec.name, account: spec.account });
      this.nodes.push(node);
      return node;
    };
    const out: ConsortiumNode[] = [];
    let rest = specs.map((spec, i) => ({ spec, port: ports[i] as number }));
    if (o.firstAlone && rest[0]) {
      out.push(await launch(rest[0].spec, rest[0].port));
      rest = rest.slice(1);
    }
    const started = await Promise.allSettled(rest.map((r) => launch(r.spec, r.port)));
    for (const r of started) if (r.status === "fulfilled") out.push(r.value);
    for (const r of started) if (r.status === "rejected") throw r.reason;
    return out;
  }

  /** Kills a node outright (SIGKILL, as a crash): its going is expected from now on. */
  async kill(node: ConsortiumNode): Promise<void> {
    this.stopped.add(node);
    node.child.kill("SIGKILL");
    await node.exited;
  }

  /** Stops nodes (SIGTERM) that the run no longer needs: their going is expected from now on. */
  async stop(nodes: readonly ConsortiumNode[]): Promise<void> {
    for (const n of nodes) this.stopped.add(n);
    await Promise.all(nodes.map((n) => n.stop()));
  }

  /** Throws when the run was interrupted, or when a node it did not stop has stopped (with its log's last line). */
  checkNodes(): void {
    this.checkAborted();
    for (const n of this.nodes)
      if (n.done && !this.stopped.has(n))
        throw new ConsortiumError(
          `${n.name.replace("-", " ")} stopped: ${lastLogLine(n.log)} (see ${n.log})`,
        );
  }

  /** Stops every node, then the chain connection, then the development chain if this started one. */
  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    await this.creator.close();
    await this.devChain?.stop();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows a federated task's rounds from the chain until `rounds` have settled (Done or Expired), calling
 * `onSettled` with each one's record and the seconds from seeing it start to seeing it settled (polled every
 * 100 ms). Throws when a node stops, the run is interrupted, or a round takes more than `roundTimeoutMs`.
 */
export async function followRounds(o: {
  consortium: Consortium;
  tasks: Tasks;
  taskId: bigint;
  rounds: number;
  roundTimeoutMs?: number;
  onSettled: (round: number, info: RoundInfo, seconds: number) => Promise<void>;
}): Promise<void> {
  const deadline = Date.now() + (o.roundTimeoutMs ?? 120_000) * o.rounds;
  const startedAt = new Map<number, number>();
  let settled = 0;
  while (settled < o.rounds) {
    o.consortium.checkNodes();
    const { state } = await getTask(o.tasks, o.taskId);
    const next = settled + 1;
    if (state.roundCount >= next) {
      if (!startedAt.has(next)) startedAt.set(next, performance.now());
      const info = await getRound(o.tasks, o.taskId, next);
      if (info.phase === "Done" || info.phase === "Expired") {
        await o.onSettled(next, info, (performance.now() - (startedAt.get(next) ?? 0)) / 1000);
        settled = next;
        continue;
      }
    }
    if (Date.now() > deadline)
      throw new ConsortiumError(
        `round ${next} did not settle in time (see the node logs in ${o.consortium.dir})`,
      );
    await sleep(100);
  }
}

/** The blob bytes a node has served, from its Prometheus metrics. */
export async function servedBytes(node: Pick<ConsortiumNode, "name" | "url" | "log">): Promise<number> {
  let text: string;
  try {
    const res = await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    text = await res.text();
  } catch (error) {
    throw new ConsortiumError(
      `${node.name.replace("-", " ")} did not answer for its metrics (${(error as Error).message}): ${lastLogLine(node.log)} (see ${node.log})`,
    );
  }
  const line = text.split("\n").find((l) => l.startsWith("ledgermind_node_blob_bytes_served_total "));
  return line ? Number(line.split(" ")[1]) : 0;
}
