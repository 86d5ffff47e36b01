/**
 * The node's Prometheus metrics, in a registry of its own (never prom-client's global one), so that two
 * nodes in one process, or a test beside a node, never count into each other.
 */

import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { OperatorEvent } from "../oracle/operator.ts";
import type { LearningAction } from "./learning.ts";

export interface NodeMetrics {
  registry: Registry;
  httpRequests: Counter<"route" | "status">;
  blobRequests: Counter<"status">;
  bytesServed: Counter;
  operatorEvents: Counter<"type" | "model">;
  oracleAnswered: Counter<"model">;
  learningActions: Counter<"role" | "kind">;
  gasSpent: Counter<"role">;
  blockHeight: Gauge;
  stake: Gauge<"model">;
}

/**
 * Creates the registry. `readBlock` and `readStakes` are asked at every scrape; a chain that does not
 * answer leaves the last values, and /health says so.
 */
export function createNodeMetrics(
  readBlock: () => Promise<bigint>,
  readStakes: () => Promise<{ model: string; stake: bigint }[]>,
): NodeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "ledgermind_node_" });
  const registers = [registry];
  return {
    registry,
    httpRequests: new Counter({
      name: "ledgermind_node_http_requests_total",
      help: "HTTP requests answered, by route and status code",
      labelNames: ["route", "status"],
      registers,
    }),
    blobRequests: new Counter({
      name: "ledgermind_node_blob_requests_total",
      help: "GET and HEAD /blobs/CID answered, by status code",
      labelNames: ["status"],
      registers,
    }),
    bytesServed: new Counter({
      name: "ledgermind_node_blob_bytes_served_total",
      help: "Blob bytes sent to peers",
      registers,
    }),
    operatorEvents: new Counter({
      name: "ledgermind_node_oracle_operator_events_total",
      help: "Oracle operator events (ready, registered, committed, revealed, finalized, settled, missed, error)",
      labelNames: ["type", "model"],
      registers,
    }),
    oracleAnswered: new Counter({
      name: "ledgermind_node_oracle_requests_answered_total",
      help: "Inference requests this node answered (revealed, or proven), by model version",
      labelNames: ["model"],
      registers,
    }),
    learningActions: new Counter({
      name: "ledgermind_node_learning_actions_total",
      help: "Federated-learning actions of this node (commit, publish, scoreCommit, reveal, propose, attest, refuse; the keeper's start, finalize, mine), by role",
      labelNames: ["role", "kind"],
      registers,
    }),
    gasSpent: new Counter({
      name: "ledgermind_node_gas_spent_total",
      help: "Gas of the transactions this node's learning roles sent, by role",
      labelNames: ["role"],
      registers,
    }),
    blockHeight: new Gauge({
      name: "ledgermind_node_chain_block_height",
      help: "The chain's latest block number, read at scrape time",
      registers,
      async collect() {
        try {
          this.set(Number(await readBlock()));
        } catch {
          // The chain did not answer: the last height stays; /health answers 503.
        }
      },
    }),
    stake: new Gauge({
      name: "ledgermind_node_oracle_stake_mind",
      help: "This node's stake as an oracle operator, in MIND, by model version",
      labelNames: ["model"],
      registers,
      async collect() {
        try {
          for (const { model, stake } of await readStakes()) this.set({ model }, Number(stake) / 1e18);
        } catch {
          // As for the block height: the last values stay.
        }
      },
    }),
  };
}

/** Counts one operator event of `model` ("1@1"). */
export function countOperatorEvent(m: NodeMetrics, model: string, e: OperatorEvent): void {
  m.operatorEvents.inc({ type: e.type, model });
  if (e.type === "revealed" || e.type === "proven") m.oracleAnswered.inc({ model });
}

/** Counts one learning action and its gas. */
export function countLearningAction(m: NodeMetrics, a: LearningAction): void {
  if (a.kind === "skip") return;
  m.learningActions.inc({ role: a.role, kind: a.kind });
  if (a.gasUsed > 0n) m.gasSpent.inc({ role: a.role }, Number(a.gasUsed));
}
