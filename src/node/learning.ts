/**
 * The node's federated-learning roles: trainer, validator, aggregator and keeper of a LearningTasks task,
 * each doing its part of every round from the chain's state alone, in this process, with this node's key,
 * data and folder. The roles are the step machines `fl simulate --protocol` drives in one process
 * (src/learning/trainer.ts, validator.ts, aggregator.ts): here each runs in its own node, reads the chain
 * on a timer, keeps what it must not lose in its own folder (so a restarted node resumes its round), and
 * gets the others' updates and aggregates over HTTP by digest (the node's blob store).
 *
 * The keeper is the task's creator. It starts rounds and finalizes them; on a development chain, where
 * blocks come only with transactions, it is also the block clock of the task's windows (`keeperMove`).
 */

import { join } from "node:path";
import type { Logger } from "pino";
import type { Address } from "viem";
import { isDevChain } from "../chain/accounts.ts";
import type { LedgerChain } from "../chain/connect.ts";
import { mineBlocks } from "../chain/time.ts";
import { mindBalance, transferMind } from "../chain/token.ts";
import { attackByName } from "../learning/adversaries.ts";
import { Aggregator } from "../learning/aggregator.ts";
import {
  fileRoleStore,
  finalizeRound,
  getRound,
  getTask,
  joinTask,
  MEMBER_ACTIVE,
  type MemberRole,
  MIN_VALIDATORS,
  memberOf,
  openTasks,
  type RoleAction,
  type RoundSnapshot,
  snapshotOf,
  startRound,
  type Tasks,
  trainersOf,
  validatorsOf,
} from "../learning/client.ts";
import { loadRows } from "../learning/data-source.ts";
import { datasetEvaluator, trainLocal, validatorScoring } from "../learning/simulate.ts";
import { Trainer } from "../learning/trainer.ts";
import { Validator } from "../learning/validator.ts";
import { initBackend } from "../ml/backend.ts";
import type { CanonicalModel } from "../ml/encoding.ts";
import { scratchModels } from "../ml/models.ts";
import { createRng } from "../ml/partition.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import type { DataSourceConfig, KeeperRoleConfig, NodeConfig } from "./config.ts";

/** What the keeper does next; `keeperMove` decides it from a snapshot, and nothing else. */
export type KeeperMove =
  | { kind: "start" }
  | { kind: "finalize"; round: number }
  | { kind: "mine"; blocks: bigint; why: string }
  | { kind: "wait" }
  | { kind: "finished" };

export interface KeeperView {
  /** Whether the chain mines only on demand (a development chain): then the keeper closes windows. */
  devChain: boolean;
  /** Milliseconds since the chain's head last changed. */
  idleMs: number;
  blockTimeMs: number;
  /** Least active trainers and validators before a round starts. */
  minTrainers: number;
  minValidators: number;
}

/**
 * The keeper's decision. Rounds start once the previous one settled and its exit window passed, with
 * enough members. On a development chain a window is closed at once when every active member has acted in
 * it (nobody is left to wait for), else by one block whenever the chain has been idle for a block time, so
 * that a member that went silent (a crashed node) delays the round by its window only, as on a real chain.
 */
export function keeperMove(snap: RoundSnapshot, view: KeeperView): KeeperMove {
  const { state, params, info, head } = snap;
  const tick = (why: string): KeeperMove =>
    view.devChain && view.idleMs >= view.blockTimeMs ? { kind: "mine", blocks: 1n, why } : { kind: "wait" };
  const closeAt = (deadline: bigint, why: string): KeeperMove =>
    view.devChain ? { kind: "mine", blocks: deadline + 1n - head, why } : { kind: "wait" };
  const phase = info?.phase ?? "None";
  switch (phase) {
    case "None":
    case "Done":
    case "Expired": {
      if (state.closed || state.roundCount >= params.rounds || state.poolLeft < params.rewardPerRound)
        return { kind: "finished" };
      if (state.activeTrainers < view.minTrainers || state.activeValidators < view.minValidators)
        return tick("waiting for members");
      const opensAfter = info ? info.finalizedAt + BigInt(params.exitWindow) : 0n;
      if (info && head <= opensAfter) return closeAt(opensAfter, "exit window");
      return { kind: "start" };
    }
    case "Commit":
      return info && info.commits >= state.activeTrainers
        ? closeAt(info.commitDeadline, "every trainer committed")
        : tick("commit window");
    case "ScoreCommit":
      return info && info.scoreCommits >= state.activeValidators
        ? closeAt(info.scoreDeadline, "every validator scored")
        : tick("score window");
    case "Reveal":
      return info && info.reveals >= state.activeValidators
        ? closeAt(info.revealDeadline, "every validator revealed")
        : tick("reveal window");
    case "Finalize":
      return { kind: "finalize", round: snap.round };
    case "Aggregate":
      return tick("aggregate window");
  }
}

/** One thing a learning role did: a role step's action, or the keeper's start, finalize or block. */
export interface LearningAction {
  role: RoleAction["role"] | "keeper";
  kind: RoleAction["kind"] | "start" | "finalize" | "mine";
  round: number;
  gasUsed: bigint;
  reason?: string;
}

export interface LearningRolesOptions {
  chain: LedgerChain;
  config: NodeConfig;
  /** The node's blob store, fetching what it lacks from these accounts' announced nodes (and static peers). */
  storeFor: (accounts: () => Promise<readonly Address[]>) => BlobStore;
  logger: Logger;
  /** Counts every action (and its gas) of every role. */
  onAction?: (action: LearningAction) => void;
}

export interface RunningLearning {
  /** Stops after the step in progress; every role's state stays in its folder. */
  stop(): Promise<void>;
}

interface Stepper {
  step(snap: RoundSnapshot): Promise<LearningAction[]>;
}

/** Joins `role` of the task with `stake` (default twice the task's minimum) unless already active. */
async function ensureMember(
  tasks: Tasks,
  taskId: bigint,
  role: MemberRole,
  account: number,
  stake: bigint | undefined,
  fundFrom: number | undefined,
): Promise<boolean> {
  const address = tasks.chain.wallet(account).account.address;
  const member = await memberOf(tasks, taskId, role, address);
  if (member.status === MEMBER_ACTIVE) return false;
  const snap = await snapshotOf(tasks, taskId);
  const minimum = role === "trainer" ? snap.params.minTrainerStake : snap.params.minValidatorStake;
  const amount = stake ?? 2n * minimum;
  if (fundFrom !== undefined) {
    const balance = await mindBalance(tasks.chain, address);
    if (balance < amount) await transferMind(tasks.chain, address, amount - balance, fundFrom);
  }
  await joinTask(tasks, taskId, role, amount, account);
  return true;
}

/** What seeds a trainer's training and attacks: its place in the split, or its address for its own data. */
function trainingSeed(source: DataSourceConfig, address: Address, round: number): string {
  return "mnist" in source
    ? `${source.mnist.seed}/${round}/${source.mnist.index}`
    : `${address.toLowerCase()}/${round}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Joins the configured tasks and starts every learning role of the config on a timer. Resolves once the
 * node is a member of each task; undefined when the config names no learning role.
 */
export async function startLearningRoles(o: LearningRolesOptions): Promise<RunningLearning | undefined> {
  const { chain, config, logger } = o;
  const { trainer, validator, aggregator, keeper } = config.roles;
  if (!trainer && !validator && !aggregator && !keeper) return undefined;
  await initBackend();
  const tasks = await openTasks(chain);
  const account = config.account;
  const address: Address = chain.wallet(account).account.address;
  const roleDir = (name: string, task: bigint) =>
    join(config.dataDir, "learning", `${chain.manifestKey}-${address.toLowerCase()}`, `${name}-${task}`);
  const scratch = scratchModels();
  // A task's content is held by its members and its creator (the initial weights).
  const storeOf = (task: bigint) =>
    o.storeFor(async () => {
      const [{ state }, trainers, validators] = await Promise.all([
        getTask(tasks, task),
        trainersOf(tasks, task),
        validatorsOf(tasks, task),
      ]);
      return [state.creator, ...trainers, ...validators];
    });
  const steppers = new Map<bigint, Stepper[]>();
  const add = (task: bigint, s: Stepper) => steppers.set(task, [...(steppers.get(task) ?? []), s]);

  if (trainer) {
    const shard = loadRows(trainer.data, "trainer");
    if (await ensureMember(tasks, trainer.task, "trainer", account, trainer.stake, trainer.fundFrom))
      logger.info({ role: "trainer", task: String(trainer.task), samples: shard.n }, "joined as a trainer");
    const attack = trainer.attack === undefined ? undefined : attackByName(trainer.attack);
    const data = attack ? attack.poisonData(shard) : shard;
    const train = (base: CanonicalModel, round: number) =>
      trainLocal(scratch.of(base.architecture), base, data, {
        ...trainer.training,
        seed: trainingSeed(trainer.data, address, round),
      });
    if (attack) logger.warn({ role: "trainer", attack: attack.name }, `this trainer attacks: ${attack.name}`);
    const role = new Trainer({
      tasks,
      taskId: trainer.task,
      signer: account,
      store: storeOf(trainer.task),
      own: fileRoleStore(roleDir("trainer", trainer.task)),
      samples: Math.max(1, shard.n),
      produce: async ({ base, round }) => {
        if (!attack) return train(base, round);
        const own = attack.trains ? await train(base, round) : undefined;
        const rng = createRng(`${trainingSeed(trainer.data, address, round)}/${attack.name}`);
        return attack.craft({ global: base, ...(own ? { own } : {}), rng });
      },
    });
    add(trainer.task, { step: async (snap) => (await role.step(snap)).actions });
  }
  if (validator) {
    const shard = loadRows(validator.data, "validator");
    if (await ensureMember(tasks, validator.task, "validator", account, validator.stake, validator.fundFrom))
      logger.info(
        { role: "validator", task: String(validator.task), samples: shard.n },
        "joined as a validator",
      );
    const role = new Validator({
      tasks,
      taskId: validator.task,
      signer: account,
      store: storeOf(validator.task),
      own: fileRoleStore(roleDir("validator", validator.task)),
      strategy: validator.strategy,
      evaluate: (model) => datasetEvaluator(scratch.of(model.architecture), shard)(model),
      scoring: validatorScoring(shard),
    });
    // The aggregator proposes before its own validator attests, as in one process.
    if (aggregator) {
      const proposer = new Aggregator({
        tasks,
        taskId: aggregator.task,
        signer: account,
        store: storeOf(aggregator.task),
        own: fileRoleStore(roleDir("aggregator", aggregator.task)),
        strategy: validator.strategy,
      });
      add(aggregator.task, { step: async (snap) => (await proposer.step(snap)).actions });
    }
    add(validator.task, { step: async (snap) => (await role.step(snap)).actions });
  }
  if (keeper) add(keeper.task, keeperStepper(tasks, keeper, account, logger));

  let stopped = false;
  const loops = [...steppers].map(async ([taskId, roles]) => {
    while (!stopped) {
      // After an action the state has moved: look again at once instead of waiting a poll.
      let acted = false;
      try {
        const snap = await snapshotOf(tasks, taskId);
        for (const r of roles) {
          if (stopped) break;
          for (const action of await r.step(snap)) {
            o.onAction?.(action);
            if (action.kind !== "skip" && action.kind !== "refuse") acted = true;
            // The keeper logs its own lines, with what it read; skips and blocks are not news.
            if (action.role === "keeper" || action.kind === "skip") continue;
            const level = action.kind === "refuse" ? "warn" : "info";
            logger[level](
              {
                role: action.role,
                task: String(taskId),
                round: action.round,
                action: action.kind,
                gasUsed: String(action.gasUsed),
                ...(action.reason === undefined ? {} : { reason: action.reason }),
              },
              `${action.role} ${action.kind} in round ${action.round}${action.reason ? `: ${action.reason}` : ""}`,
            );
          }
        }
      } catch (error) {
        // A failed read or send is retried at the next tick from the chain's state: steps are idempotent.
        logger.error(
          { task: String(taskId), error: (error as Error).message.split("\n")[0] },
          "learning step failed",
        );
      }
      if (!acted) await sleep(config.learningPollMs);
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      scratch.dispose();
    },
  };
}

/** The keeper as a stepper: applies `keeperMove`, measuring the chain's idleness itself. */
function keeperStepper(tasks: Tasks, keeper: KeeperRoleConfig, account: number, logger: Logger): Stepper {
  const chain = tasks.chain;
  const taskId = keeper.task;
  const devChain = isDevChain(chain.chainId);
  let lastHead = -1n;
  let headSince = Date.now();
  let finished = false;
  return {
    async step(snap) {
      if (snap.head !== lastHead) {
        lastHead = snap.head;
        headSince = Date.now();
      }
      const move = keeperMove(snap, {
        devChain,
        idleMs: Date.now() - headSince,
        blockTimeMs: keeper.blockTimeMs,
        minTrainers: keeper.minTrainers,
        minValidators: MIN_VALIDATORS,
      });
      switch (move.kind) {
        case "start": {
          const { round, receipt } = await startRound(tasks, taskId, account);
          const info = await getRound(tasks, taskId, round);
          logger.info(
            { role: "keeper", task: String(taskId), round, commitDeadline: String(info.commitDeadline) },
            `round ${round} started`,
          );
          return [{ role: "keeper", kind: "start", round, gasUsed: receipt.gasUsed }];
        }
        case "finalize": {
          const receipt = await finalizeRound(tasks, taskId, move.round, account);
          const info = await getRound(tasks, taskId, move.round);
          logger.info(
            { role: "keeper", task: String(taskId), round: move.round, accepted: info.accepted },
            `round ${move.round} finalized: ${info.accepted} updates accepted`,
          );
          return [{ role: "keeper", kind: "finalize", round: move.round, gasUsed: receipt.gasUsed }];
        }
        case "mine": {
          // Another process may have mined since the snapshot: blocks counted from an old head would
          // overshoot into the next window.
          const head = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
          if (head !== snap.head) return [];
          await mineBlocks(chain, move.blocks);
          return [{ role: "keeper", kind: "mine", round: snap.round, gasUsed: 0n, reason: move.why }];
        }
        case "finished":
          if (!finished) {
            finished = true;
            logger.info(
              { role: "keeper", task: String(taskId), rounds: snap.state.roundCount },
              "task finished",
            );
          }
          return [];
        case "wait":
          return [];
      }
    },
  };
}
