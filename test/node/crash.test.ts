/**
 * kill -9 of a node mid-round, for each learning role. One task of three rounds on one anvil; the three
 * victims run as `ledgermind node` processes (a trainer, a validator, the aggregator, itself a validator),
 * the rest (the keeper, two trainers, a validator) in this process.
 *  - Round 1: the trainer's node is killed as the round opens; the round settles without it, the node
 *    restarts on its folder and takes part in round 2.
 *  - Round 2: a validator's node is killed as reveals open and restarts at once; it resumes from its
 *    folder (its salt kept) and reveals: nobody is slashed.
 *  - Round 3: the aggregator's node is killed once the round is finalized and restarts at once; it
 *    proposes from its folder and the round aggregates.
 * Throughout, nobody honest is slashed for another node's crash, and no content is lost or duplicated:
 * each trainer commits at most once a round, and every digest the restarted trainer committed is a blob
 * its own node holds.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import type { Hex } from "viem";
import { connect } from "../../src/chain/connect.ts";
import { deployAll, manifestPath } from "../../src/chain/deploy.ts";
import { type DevNode, startDevNode } from "../../src/chain/devnode.ts";
import { LearningTasks } from "../../src/chain/generated/contracts.ts";
import {
  getRound,
  getTask,
  MEMBER_ACTIVE,
  memberOf,
  openTasks,
  type Phase,
} from "../../src/learning/client.ts";
import { createFederatedTask } from "../../src/learning/protocol.ts";
import { parseNodeConfig } from "../../src/node/config.ts";
import { devnetWindows } from "../../src/node/devnet.ts";
import { freePort } from "../../src/node/free-port.ts";
import { type RunningNode, startNode } from "../../src/node/node.ts";
import { lastLogLine, type NodeProcess, startNodeProcess } from "../../src/node/process.ts";
import { cidFromDigest, sha256Digest } from "../../src/storage/cid.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-node-crash-"));
let chainNode: DevNode;

before(async () => {
  chainNode = await startDevNode({ port: 0 });
});

after(async () => {
  await chainNode?.stop();
  rmSync(TMP, { recursive: true, force: true });
});

/**
 * The devnet's windows, with 300 more blocks (90 s of the keeper's 300 ms clock) to reveal and to
 * aggregate: a node restarted in those phases must start (load MNIST, tfjs), fetch and recompute before
 * they close, and on a loaded machine (CI runs two such files at once) 60 more blocks were not enough. A
 * round where everyone acted ends at once, so the slack costs nothing then.
 */
const base = devnetWindows(3);
const crashWindows = {
  ...base,
  revealWindow: (base.revealWindow ?? 0) + 300,
  aggregateWindow: (base.aggregateWindow ?? 0) + 300,
};

const SPLIT = "{ clients: 3, validators: 3, alpha: 1, seed: 5, samplesPerClient: 300, validatorSamples: 200";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a node whose supervisor dies", { timeout: 120_000 }, () => {
  it("stops cleanly when the pipe from the process that started it closes (that process killed with SIGKILL)", async () => {
    const chain = await connect({ rpc: chainNode.url, dataDir: join(TMP, "supervised") });
    try {
      await deployAll(chain);
      const port = await freePort();
      const file = join(TMP, "supervised.yaml");
      writeFileSync(
        file,
        `dataDir: supervised\nchain: { rpc: ${chainNode.url}, deployment: ${manifestPath(chain)} }\nhttp: { port: ${port} }\n`,
      );
      const log = join(TMP, "supervised.log");
      const node = await startNodeProcess({
        name: "supervised",
        config: file,
        url: `http://127.0.0.1:${port}`,
        log,
      });
      // What the kernel does to the pipe when its holder dies, however it dies.
      node.child.stdin?.destroy();
      await node.exited;
      assert.equal(node.child.exitCode, 0, lastLogLine(log));
      assert.equal(lastLogLine(log), "stopped");
    } finally {
      await chain.close();
    }
  });
});

describe("a node killed mid-round", { timeout: 400_000 }, () => {
  it("kill -9 of a trainer, a validator and the aggregator: each round settles, the node resumes, nobody honest is slashed", async () => {
    const chain = await connect({ rpc: chainNode.url, dataDir: join(TMP, "keeper") });
    const inProcess: RunningNode[] = [];
    const processes = new Map<string, NodeProcess>();
    try {
      await deployAll(chain);
      const tasks = await openTasks(chain);
      const { taskId, params } = await createFederatedTask(
        tasks,
        new FsBlobStore(join(TMP, "keeper", "blobs")),
        {
          architecture: "logreg-784-10",
          seed: 5,
          rounds: 3,
          trainers: 3,
          validators: 3,
          params: crashWindows,
        },
      );
      const deployment = manifestPath(chain);
      const configText = (dir: string, account: number, port: number, roles: string) =>
        [
          `dataDir: ${dir}`,
          `chain: { rpc: ${chainNode.url}, deployment: ${deployment} }`,
          `account: ${account}`,
          `http: { port: ${port} }`,
          "fetch: { stallTimeoutMs: 1000, retries: 1 }",
          "learningPollMs: 100",
          `roles:\n${roles}`,
        ].join("\n");
      const trainer = (index: number) =>
        `  trainer: { task: ${taskId}, fundFrom: 0, data: { mnist: ${SPLIT}, index: ${index} } } }`;
      const validator = (index: number) =>
        `  validator: { task: ${taskId}, fundFrom: 0, data: { mnist: ${SPLIT}, index: ${index} } } }`;
      const logger = pino({ level: "warn" });
      const local = async (dir: string, account: number, roles: string) =>
        inProcess.push(
          await startNode({
            config: parseNodeConfig(configText(dir, account, 0, roles), join(TMP, "x.yaml")),
            logger,
          }),
        );
      // The victims: processes that can be killed, each with a config file and a fixed port to restart on.
      const victims = {
        trainer: { account: 1, roles: trainer(0) },
        validator: { account: 5, roles: validator(1) },
        aggregator: { account: 4, roles: `${validator(0)}\n  aggregator: { task: ${taskId} }` },
      };
      const start = async (name: keyof typeof victims) => {
        const port = await freePort();
        const file = join(TMP, `${name}.yaml`);
        writeFileSync(file, configText(name, victims[name].account, port, victims[name].roles));
        const node = await startNodeProcess({
          name,
          config: file,
          url: `http://127.0.0.1:${port}`,
          log: join(TMP, `${name}.log`),
        });
        processes.set(name, node);
      };
      const kill = async (name: keyof typeof victims) => {
        const node = processes.get(name) as NodeProcess;
        node.child.kill("SIGKILL");
        await node.exited;
      };
      const waitFor = async (what: string, ok: () => Promise<boolean>) => {
        const deadline = Date.now() + 120_000;
        while (!(await ok())) {
          assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
          await sleep(50);
        }
      };
      // A round's record is read while it is the latest; once the next one started, it settled.
      const phaseOf = async (round: number): Promise<Phase> => {
        const { state } = await getTask(tasks, taskId);
        if (state.roundCount < round) return "None";
        return state.roundCount > round ? "Done" : (await getRound(tasks, taskId, round)).phase;
      };
      // Every round's commits, from the events (the contract lists only the latest round's).
      const committed = async (round: number) =>
        (
          await chain.publicClient.getContractEvents({
            address: tasks.address,
            abi: LearningTasks.abi,
            eventName: "UpdateCommitted",
            args: { taskId, round },
            fromBlock: 0n,
          })
        ).map((l) => ({ trainer: (l.args.trainer as string).toLowerCase(), digest: l.args.digest as Hex }));
      // The settlement of a round: its finalization event.
      const finalized = async (round: number) => {
        const [log] = await chain.publicClient.getContractEvents({
          address: tasks.address,
          abi: LearningTasks.abi,
          eventName: "RoundFinalized",
          args: { taskId, round },
          fromBlock: 0n,
        });
        return log?.args;
      };
      const aggregated = async (round: number) =>
        (
          await chain.publicClient.getContractEvents({
            address: tasks.address,
            abi: LearningTasks.abi,
            eventName: "AggregateAccepted",
            args: { taskId, round },
            fromBlock: 0n,
          })
        ).length === 1;
      const settled = (round: number) => async () => ["Done", "Expired"].includes(await phaseOf(round));
      // Why a round was not aggregated, for the failure message: its phase, its votes on chain, and what each
      // node process logged last.
      const story = async (round: number) => {
        const votes = await Promise.all(
          (["ScoresRevealed", "AggregateProposed", "AggregateAttested"] as const).map(async (eventName) => {
            const logs = await chain.publicClient.getContractEvents({
              address: tasks.address,
              abi: LearningTasks.abi,
              eventName,
              args: { taskId, round },
              fromBlock: 0n,
            });
            const by = logs.map((l) => {
              const a = l.args as { validator?: string; proposer?: string };
              return `${a.validator ?? a.proposer}@${l.blockNumber}`;
            });
            return `${eventName}: ${by.join(", ") || "none"}`;
          }),
        );
        const logged = [...processes.keys()].map((name) => {
          let lines: string[] = [];
          try {
            lines = readFileSync(join(TMP, `${name}.log`), "utf8")
              .trim()
              .split("\n");
          } catch {
            // A process never started has no log.
          }
          return `${name}.log, its last lines:\n  ${lines.slice(-10).join("\n  ")}`;
        });
        return [`round ${round}: phase ${await phaseOf(round)}`, ...votes, ...logged].join("\n");
      };
      const assertAggregated = async (round: number, what: string) => {
        if (!(await aggregated(round))) assert.fail(`${what}\n${await story(round)}`);
      };

      await local("keeper", 0, `  keeper: { task: ${taskId}, blockTimeMs: 300, minTrainers: 3 }`);
      await local("trainer-1", 2, trainer(1));
      await local("trainer-2", 3, trainer(2));
      await local("validator-2", 6, validator(2));
      await Promise.all([start("trainer"), start("validator"), start("aggregator")]);
      const address = (account: number) => chain.wallet(account).account.address;
      const stakes = async () =>
        Promise.all(
          [1, 2, 3]
            .map((a) => memberOf(tasks, taskId, "trainer", address(a)))
            .concat([4, 5, 6].map((a) => memberOf(tasks, taskId, "validator", address(a)))),
        );
      const initial = await stakes();

      // Round 1: the trainer dies as the round opens.
      await waitFor("round 1 to open", async () => (await phaseOf(1)) === "Commit");
      await kill("trainer");
      await waitFor("round 1 to settle", settled(1));
      await assertAggregated(1, "round 1 aggregated without the dead trainer");
      assert.ok(Number((await finalized(1))?.accepted) >= 2, "both live trainers accepted");
      await start("trainer");

      // Round 2: a validator dies as reveals open, and comes straight back.
      await waitFor("round 2's reveals", async () => (await phaseOf(2)) === "Reveal");
      await kill("validator");
      await start("validator");
      await waitFor("round 2 to settle", settled(2));
      const revealed = await chain.publicClient.getContractEvents({
        address: tasks.address,
        abi: LearningTasks.abi,
        eventName: "ScoresRevealed",
        args: { taskId, round: 2, validator: address(5) },
        fromBlock: 0n,
      });
      assert.equal(revealed.length, 1, "the restarted validator revealed");
      await assertAggregated(2, "round 2 aggregated with the restarted validator's vote");
      assert.ok(
        (await committed(2)).some((u) => u.trainer === address(1).toLowerCase()),
        "the restarted trainer rejoined in round 2",
      );
      assert.equal(Number((await finalized(2))?.accepted), 3, "its update was accepted");

      // Round 3: the aggregator dies once the round is finalized, and comes straight back.
      await waitFor("round 3's aggregation", async () => (await phaseOf(3)) === "Aggregate");
      await kill("aggregator");
      await start("aggregator");
      await waitFor("round 3 to settle", settled(3));
      await assertAggregated(3, "the restarted aggregator proposed");

      // Nobody honest lost stake; the trainer that died in round 1 lost at most that round's slash.
      const final = await stakes();
      const slash = (stake: bigint) => (stake * BigInt(params.slashBps)) / 10_000n;
      for (const [k, m] of final.entries()) {
        assert.equal(m.status, MEMBER_ACTIVE);
        const before = initial[k]?.stake ?? 0n;
        if (k === 0) assert.ok(m.stake >= before - slash(before), "the dead trainer: at most one slash");
        else assert.equal(m.stake, before, `member ${k} kept its whole stake`);
      }
      // Each trainer at most once a round, and the restarted trainer's node holds every digest it committed.
      // Published bytes sit in its blob store; bytes it committed but never published (it died first, in
      // round 1) sit in its role folder, written before the commit.
      const own = new FsBlobStore(join(TMP, "trainer", "blobs"));
      const learning = join(TMP, "trainer", "learning");
      const kept = new Set(
        readdirSync(learning, { recursive: true, encoding: "utf8" })
          .filter((f) => f.endsWith(".bin"))
          .map((f) => sha256Digest(new Uint8Array(readFileSync(join(learning, f))))),
      );
      for (const round of [1, 2, 3]) {
        const updates = await committed(round);
        const trainers = updates.map((u) => u.trainer);
        assert.equal(new Set(trainers).size, trainers.length, `round ${round}: one update per trainer`);
        for (const u of updates)
          if (u.trainer === address(1).toLowerCase())
            assert.ok(
              (await own.has(cidFromDigest(u.digest))) || kept.has(u.digest.toLowerCase() as Hex),
              `round ${round}: its committed bytes are kept`,
            );
      }
    } finally {
      await Promise.all([...processes.values()].map((p) => p.stop()));
      await Promise.all(inProcess.map((n) => n.stop()));
      await chain.close();
    }
  });
});
