/**
 * The node's learning roles. `keeperMove` directly (pure), then a federated task run by six nodes in this
 * process on one anvil, each with its own account, folder, HTTP server and data part: a keeper (the
 * creator, holding the initial weights), two trainers, three validators (one also aggregating). They share
 * nothing but the chain and each other's blobs over HTTP, found through the endpoints they announce
 * on-chain (no static peers).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { connect } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { type DevNode, startDevNode } from "../../src/chain/devnode.ts";
import {
  getRound,
  getTask,
  MEMBER_ACTIVE,
  memberOf,
  openTasks,
  type RoundInfo,
  type RoundSnapshot,
} from "../../src/learning/client.ts";
import { createFederatedTask } from "../../src/learning/protocol.ts";
import { federatedData } from "../../src/learning/simulate.ts";
import type { Dataset } from "../../src/ml/partition.ts";
import { parseNodeConfig } from "../../src/node/config.ts";
import { type KeeperView, keeperMove } from "../../src/node/learning.ts";
import { type RunningNode, startNode } from "../../src/node/node.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";

const params = {
  rounds: 2,
  exitWindow: 5,
  rewardPerRound: 100n,
} as RoundSnapshot["params"];
const state = {
  closed: false,
  roundCount: 1,
  poolLeft: 100n,
  activeTrainers: 2,
  activeValidators: 3,
} as RoundSnapshot["state"];
const info = (phase: RoundInfo["phase"], over: Partial<RoundInfo> = {}): RoundInfo =>
  ({
    phase,
    commits: 0,
    scoreCommits: 0,
    reveals: 0,
    commitDeadline: 20n,
    scoreDeadline: 30n,
    revealDeadline: 40n,
    finalizedAt: 0n,
    ...over,
  }) as RoundInfo;
const snap = (over: Partial<RoundSnapshot>): RoundSnapshot => ({
  taskId: 1n,
  params,
  state,
  round: 1,
  head: 10n,
  ...over,
});
const dev: KeeperView = { devChain: true, idleMs: 0, blockTimeMs: 1000, minTrainers: 1, minValidators: 3 };

describe("keeperMove", () => {
  it("starts the first round once enough members joined, and waits for them", () => {
    assert.deepEqual(keeperMove(snap({ round: 0, state: { ...state, roundCount: 0 } }), dev), {
      kind: "start",
    });
    const few = snap({ round: 0, state: { ...state, roundCount: 0, activeValidators: 2 } });
    assert.deepEqual(keeperMove(few, dev), { kind: "wait" });
  });

  it("closes a window at once when every active member acted in it, not before", () => {
    assert.deepEqual(keeperMove(snap({ info: info("Commit", { commits: 2 }) }), dev), {
      kind: "mine",
      blocks: 11n,
      why: "every trainer committed",
    });
    assert.deepEqual(keeperMove(snap({ info: info("Commit", { commits: 1 }) }), dev), { kind: "wait" });
    assert.deepEqual(keeperMove(snap({ info: info("ScoreCommit", { scoreCommits: 3 }) }), dev).kind, "mine");
    assert.deepEqual(keeperMove(snap({ info: info("Reveal", { reveals: 2 }) }), dev), { kind: "wait" });
  });

  it("a silent member (a crashed node) costs its window: one block per idle block time", () => {
    const idle = { ...dev, idleMs: 1000 };
    assert.deepEqual(keeperMove(snap({ info: info("Commit", { commits: 1 }) }), idle), {
      kind: "mine",
      blocks: 1n,
      why: "commit window",
    });
  });

  it("finalizes, then waits out the exit window before the next round; finishes after the last", () => {
    assert.deepEqual(keeperMove(snap({ info: info("Finalize") }), dev), { kind: "finalize", round: 1 });
    const done = info("Done", { finalizedAt: 8n });
    assert.deepEqual(keeperMove(snap({ info: done }), dev), { kind: "mine", blocks: 4n, why: "exit window" });
    assert.deepEqual(keeperMove(snap({ info: done, head: 14n }), dev), { kind: "start" });
    const last = snap({ info: done, head: 14n, state: { ...state, roundCount: 2 } });
    assert.deepEqual(keeperMove(last, dev), { kind: "finished" });
  });

  it("never mines on a chain whose blocks come on their own", () => {
    const live = { ...dev, devChain: false, idleMs: 60_000 };
    assert.deepEqual(keeperMove(snap({ info: info("Commit", { commits: 2 }) }), live), { kind: "wait" });
    assert.deepEqual(keeperMove(snap({ info: info("Reveal") }), live), { kind: "wait" });
    assert.deepEqual(keeperMove(snap({ info: info("Done", { finalizedAt: 8n }) }), live), { kind: "wait" });
  });
});

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-node-learning-"));
let chainNode: DevNode;

before(async () => {
  chainNode = await startDevNode({ port: 0 });
});

after(async () => {
  await chainNode?.stop();
  rmSync(TMP, { recursive: true, force: true });
});

const SPLIT_OPTIONS = {
  clients: 2,
  validators: 3,
  alpha: 1,
  seed: 3,
  samplesPerClient: 300,
  validatorSamples: 200,
};
/** SPLIT_OPTIONS in YAML, left open for the member's index. */
const SPLIT = `{ ${Object.entries(SPLIT_OPTIONS)
  .map(([k, v]) => `${k}: ${v}`)
  .join(", ")}`;

/** Trainer `index`'s shard of SPLIT as a CSV file (label, then 784 pixels 0..255); its path. */
function writeShardCsv(index: number): string {
  const shard = federatedData(SPLIT_OPTIONS).clients[index] as Dataset;
  const width = shard.x.length / shard.n;
  const rows = [`label,${Array.from({ length: width }, (_, j) => `p${j}`).join(",")}`];
  for (let r = 0; r < shard.n; r++)
    rows.push(
      [
        shard.y[r],
        ...Array.from(shard.x.subarray(r * width, (r + 1) * width), (v) => Math.round(v * 255)),
      ].join(","),
    );
  const path = join(TMP, `hospital-${index}.csv`);
  writeFileSync(path, `${rows.join("\n")}\n`);
  return path;
}

describe("nodes run a federated task together", { timeout: 240_000 }, () => {
  it("two trainers (one reading its own CSV file), three validators and a keeper, each its own node: both rounds aggregate, nobody slashed", async () => {
    const chain = await connect({ rpc: chainNode.url, dataDir: join(TMP, "keeper") });
    const nodes: RunningNode[] = [];
    try {
      await deployAll(chain);
      const tasks = await openTasks(chain);
      // The creator's initial weights sit in the keeper node's own folder, which serves them.
      const { taskId } = await createFederatedTask(tasks, new FsBlobStore(join(TMP, "keeper", "blobs")), {
        architecture: "logreg-784-10",
        seed: 3,
        rounds: 2,
        trainers: 2,
        validators: 3,
      });
      const roles = [
        `keeper: { task: ${taskId}, blockTimeMs: 300 }`,
        `trainer: { task: ${taskId}, fundFrom: 0, data: { mnist: ${SPLIT}, index: 0 } } }`,
        // The second hospital's records are a file of its own: its shard of the split, written as CSV.
        `trainer: { task: ${taskId}, fundFrom: 0, data: { csv: { path: ${writeShardCsv(1)}, divideBy: 255 } } }`,
        `validator: { task: ${taskId}, fundFrom: 0, data: { mnist: ${SPLIT}, index: 0 } } }\n  aggregator: { task: ${taskId} }`,
        `validator: { task: ${taskId}, fundFrom: 0, data: { mnist: ${SPLIT}, index: 1 } } }`,
        `validator: { task: ${taskId}, fundFrom: 0, data: { mnist: ${SPLIT}, index: 2 } } }`,
      ];
      const logger = pino({ level: "warn" });
      for (const [i, role] of roles.entries()) {
        const dir = i === 0 ? "keeper" : `node-${i}`;
        const config = parseNodeConfig(
          [
            `dataDir: ${dir}`,
            `chain: { rpc: ${chainNode.url}, deployment: keeper/deployments/1337.json }`,
            `account: ${i}`,
            "http: { port: 0 }",
            "learningPollMs: 100",
            `roles:\n  ${role}`,
          ].join("\n"),
          join(TMP, "node.yaml"),
        );
        nodes.push(await startNode({ config, logger }));
      }
      const deadline = Date.now() + 200_000;
      for (;;) {
        const { state } = await getTask(tasks, taskId);
        const last = state.roundCount === 2 ? await getRound(tasks, taskId, 2) : undefined;
        if (last && (last.phase === "Done" || last.phase === "Expired")) break;
        assert.ok(Date.now() < deadline, `the task did not finish: ${state.roundCount} rounds started`);
        await new Promise((r) => setTimeout(r, 250));
      }
      for (const round of [1, 2]) {
        const r = await getRound(tasks, taskId, round);
        assert.equal(r.commits, 2, `round ${round}: both trainers committed`);
        assert.equal(r.reveals, 3, `round ${round}: every validator revealed`);
        assert.equal(r.accepted, 2, `round ${round}: both updates accepted`);
        assert.ok(r.aggregated, `round ${round}: the aggregate became a version`);
      }
      for (let i = 1; i <= 5; i++) {
        const address = chain.wallet(i).account.address;
        const role = i <= 2 ? "trainer" : "validator";
        const member = await memberOf(tasks, taskId, role, address);
        assert.equal(member.status, MEMBER_ACTIVE);
        assert.ok(member.earned > 0n, `${role} ${address} was paid`);
      }
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
      await chain.close();
    }
  });
});
