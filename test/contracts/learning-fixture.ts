// LearningTasks on an embedded chain, shared by test/contracts/learning-tasks.test.ts,
// test/contracts/learning-tasks-attacks.test.ts and bench/fl-gas.bench.ts: actors with deterministic keys, funded and approved; tasks; rounds driven phase by
// phase with synthetic update digests and score vectors; mined blocks to move the windows on.

import assert from "node:assert/strict";
import {
  type Abi,
  type Account,
  type Address,
  type Chain,
  createWalletClient,
  custom,
  keccak256,
  maxUint256,
  parseEther,
  parseEventLogs,
  parseGwei,
  stringToHex,
  type TransactionReceipt,
  type Transport,
  toHex,
  type WalletClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { LedgerChain } from "../../src/chain/connect.ts";
import { deployAll, TOKEN_SUPPLY } from "../../src/chain/deploy.ts";
import { LearningTasks, MindToken, ModelRegistry } from "../../src/chain/generated/contracts.ts";
import { decodeRevert, sendAndWait } from "../../src/chain/tx.ts";
import {
  joinReceipts,
  type Member,
  type RoundView,
  settlementInputOf,
  type TaskParams,
  type TaskState,
} from "../../src/learning/client.ts";
import { packScores, scoreCommitment, scorePages, settleRound } from "../../src/learning/finalize.ts";
import { bareVersion } from "./bare-version.ts";

export type { Member, RoundView, TaskParams, TaskState };

const abi = LearningTasks.abi;
export const TRAINER = 0;
export const VALIDATOR = 1;

export interface Actor {
  name: string;
  address: Address;
  wallet: WalletClient<Transport, Chain, Account>;
}

/**
 * A small task on model 1, version 1: three rounds, six trainers, four validators, an aggregate quorum of
 * 60 % of the revealed stake (two of three equal revealers, not two of four), the shortest exit window.
 */
export const BASE_PARAMS: TaskParams = {
  modelId: 1,
  baseVersion: 1,
  format: stringToHex("LMQ1", { size: 8 }),
  licence: stringToHex("MIT", { size: 32 }),
  rewardPerRound: parseEther("100"),
  rounds: 3,
  minTrainerStake: parseEther("10"),
  minValidatorStake: parseEther("20"),
  commitWindow: 30,
  scoreWindow: 20,
  revealWindow: 20,
  aggregateWindow: 20,
  exitWindow: 5,
  slashBps: 1_000,
  minScore: 100,
  relativeBps: 5_000,
  quorumBps: 6_000,
  maxTrainers: 6,
  maxValidators: 4,
};

/**
 * The refusals of tasks that name datasets: observed by learning-tasks-datasets.test.ts, which needs the
 * DataMarket, so learning-tasks.test.ts leaves them to it.
 */
export const DATASET_ERRORS = [
  "AccessNotLost",
  "DatasetAccessRequired",
  "DatasetsFixed",
  "DuplicateDataset",
  "InvalidDatasetCount",
  "NotTaskDataset",
  "UnknownDataset",
] as const;

/** The contracts a fixture talks to. */
export interface LearningEnv {
  chain: LedgerChain;
  token: Address;
  registry: Address;
  tasks: Address;
}

/** Deploys every contract on `chain`: the addresses a fixture talks to, and the DataMarket tasks may name. */
export async function deployLearning(chain: LedgerChain): Promise<LearningEnv & { market: Address }> {
  const { contracts } = await deployAll(chain);
  return {
    chain,
    token: contracts.MindToken.address,
    registry: contracts.ModelRegistry.address,
    tasks: contracts.LearningTasks.address,
    market: contracts.DataMarket.address,
  };
}

/** Development account `i`: the embedded chain funds it with ether. */
export function devActor(chain: LedgerChain, i: number, name: string): Actor {
  const wallet = chain.wallet(i);
  return { name, address: wallet.account.address, wallet };
}

/** An account whose key derives from `name`: as many as a test needs, the same on every run. */
export function keyActor(chain: LedgerChain, name: string): Actor {
  const account = privateKeyToAccount(keccak256(stringToHex(`learning-tasks-test:${name}`)));
  const transport = custom(
    { request: (args) => chain.publicClient.request(args as never) },
    { retryCount: 0 },
  );
  return {
    name,
    address: account.address,
    wallet: createWalletClient({ account, chain: chain.chain, transport }),
  };
}

export const digestOf = (label: string) => keccak256(stringToHex(`update:${label}`));
export const saltOf = (who: Actor, id: bigint, round: number) =>
  keccak256(stringToHex(`salt:${who.name}:${id}:${round}`));
/** Validator `v`'s commitment to packed `words`, salted with `saltOf`. */
const commitmentOf = (v: Actor, id: bigint, round: number, words: readonly bigint[]) =>
  scoreCommitment(id, round, v.address, words, saltOf(v, id, round));

/**
 * Realistic scores, one vector per validator: honest updates around 0.8; one in five poisoned, scored 0 (so
 * rejected and slashed) by all validators but the last, which scores it a little; validators differ a little.
 */
export function syntheticScores(validators: number, updates: number): number[][] {
  return Array.from({ length: validators }, (_, j) =>
    Array.from({ length: updates }, (_, i) =>
      i % 5 === 4 ? (j === validators - 1 ? 150 : 0) : 7_800 + ((i * 131 + j * 977) % 600),
    ),
  );
}

/** One transaction of a batch: explicit gas, since the batch's state is not mined when it is sent. */
interface Call {
  who: Actor;
  address: Address;
  abi: Abi;
  functionName: string;
  args: readonly unknown[];
  gas: bigint;
}

/** The receipts of one round driven to the end of its reveal window; finalizing is the caller's. */
export interface PlayedRound {
  round: number;
  start: TransactionReceipt;
  commits: TransactionReceipt[];
  scoreCommits: TransactionReceipt[];
  reveals: TransactionReceipt[];
}

/** Ether each funded actor holds for gas. */
const ACTOR_ETHER = parseEther("1000");
/**
 * Fee caps of batched transactions: far above the base fee, which rises by at most an eighth per full
 * block, so that no transaction of a batch is priced out of its block.
 */
const MAX_FEE = parseGwei("100");
const PRIORITY_FEE = parseGwei("1");
// Gas limits of batched transactions, well above what they use: a block takes transactions by their limits.
const TRANSFER_GAS = 120_000n;
const APPROVE_GAS = 100_000n;
const JOIN_GAS = 300_000n;
const COMMIT_GAS = 150_000n;
const SCORE_COMMIT_GAS = 150_000n;
const CLAIM_GAS = 100_000n;
/** A reveal page of `words` packed words: a fresh slot per word, and the checks of its 16 scores. */
const revealGas = (words: number) => 300_000n + 32_000n * BigInt(words);
/** No transaction of a round may need more (issue 9): the chains here do not enforce it, so tests assert it. */
export const MAX_TX_GAS = 10_000_000n;

/**
 * Helpers over the contracts that `env` returns when they run: a test binds them before its `before` hook
 * has deployed anything.
 */
export function learningFixture(env: () => LearningEnv) {
  function rpc<R>(method: string, params: unknown[] = []): Promise<R> {
    return env().chain.publicClient.request({ method, params } as never) as Promise<R>;
  }

  async function blockNumber(): Promise<number> {
    return Number(await env().chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  }

  /** Mines until the latest block is `target`: the next transaction lands in block `target + 1`. */
  async function advanceTo(target: number | bigint): Promise<void> {
    const now = await blockNumber();
    const t = Number(target);
    if (t > now) await rpc("hardhat_mine", [toHex(t - now)]);
  }

  /** A read whose revert becomes `ContractRefusedError`. */
  async function read<R>(p: Promise<R>): Promise<R> {
    try {
      return await p;
    } catch (err) {
      throw decodeRevert(err);
    }
  }

  function send(who: Actor, functionName: string, args: readonly unknown[]) {
    const { chain, tasks } = env();
    return sendAndWait(chain, () =>
      who.wallet.writeContract({ address: tasks, abi, functionName, args } as never),
    );
  }

  function view<R = unknown>(functionName: string, args: readonly unknown[] = []): Promise<R> {
    const { chain, tasks } = env();
    return read(
      chain.publicClient.readContract({ address: tasks, abi, functionName, args } as never),
    ) as Promise<R>;
  }

  function registryTx(who: Actor, functionName: string, args: readonly unknown[]) {
    const { chain, registry } = env();
    return sendAndWait(chain, () =>
      who.wallet.writeContract({ address: registry, abi: ModelRegistry.abi, functionName, args } as never),
    );
  }

  const taskCall = (who: Actor, functionName: string, args: readonly unknown[], gas: bigint): Call => ({
    who,
    address: env().tasks,
    abi,
    functionName,
    args,
    gas,
  });

  const getTask = (id: bigint) => view<readonly [TaskParams, TaskState]>("getTask", [id]);
  const getRound = (id: bigint, round: number) => view<RoundView>("getRound", [id, round]);
  const memberOf = (id: bigint, role: number, a: Actor | Address) =>
    view<Member>("memberOf", [id, role, typeof a === "string" ? a : a.address]);

  /**
   * Sends `calls` with automining off, as many to a block as the block gas limit takes, and mines each
   * block: a thousand transactions cost a few blocks instead of a thousand round trips. One sender's calls
   * are numbered in order.
   */
  async function batch(calls: readonly Call[]): Promise<TransactionReceipt[]> {
    const { publicClient } = env().chain;
    const limit = (await publicClient.getBlock()).gasLimit;
    const nonces = new Map<Address, number>();
    for (const address of new Set(calls.map((c) => c.who.address))) {
      nonces.set(address, await publicClient.getTransactionCount({ address }));
    }
    const nextNonce = (address: Address) => {
      const nonce = nonces.get(address) as number;
      nonces.set(address, nonce + 1);
      return nonce;
    };
    const receipts: TransactionReceipt[] = [];
    await rpc("evm_setAutomine", [false]);
    try {
      for (let from = 0; from < calls.length; ) {
        let to = from;
        for (let gas = 0n; to < calls.length && gas + (calls[to] as Call).gas <= limit; to++) {
          gas += (calls[to] as Call).gas;
        }
        if (to === from) throw new Error(`${calls[from]?.functionName} asks for more than a block's gas`);
        const block = calls.slice(from, to);
        const hashes = await Promise.all(
          block.map((c) =>
            c.who.wallet.writeContract({
              address: c.address,
              abi: c.abi,
              functionName: c.functionName,
              args: c.args,
              gas: c.gas,
              nonce: nextNonce(c.who.address),
              maxFeePerGas: MAX_FEE,
              maxPriorityFeePerGas: PRIORITY_FEE,
            } as never),
          ),
        );
        await rpc("evm_mine");
        const mined = await Promise.all(hashes.map((hash) => publicClient.getTransactionReceipt({ hash })));
        for (const [i, r] of mined.entries()) {
          if (r.status !== "success" || r.blockNumber !== mined[0]?.blockNumber) {
            throw new Error(`batched ${block[i]?.functionName} by ${block[i]?.who.name}: ${r.status}`);
          }
        }
        receipts.push(...mined);
        from = to;
      }
    } finally {
      await rpc("evm_setAutomine", [true]);
    }
    return receipts;
  }

  /** Ether for gas, `mind` from `treasury`, and an unlimited MIND approval for the task contract. */
  async function fund(treasury: Actor, actors: readonly Actor[], mind: bigint): Promise<void> {
    const { token, tasks } = env();
    await Promise.all(actors.map((a) => rpc("hardhat_setBalance", [a.address, toHex(ACTOR_ETHER)])));
    const tokenCall = (who: Actor, functionName: string, args: readonly unknown[], gas: bigint): Call => ({
      who,
      address: token,
      abi: MindToken.abi,
      functionName,
      args,
      gas,
    });
    await batch([
      ...actors.map((a) => tokenCall(treasury, "transfer", [a.address, mind], TRANSFER_GAS)),
      ...actors.map((a) => tokenCall(a, "approve", [tasks, maxUint256], APPROVE_GAS)),
    ]);
  }

  async function registerModel(who: Actor, name: string): Promise<bigint> {
    const receipt = await registryTx(who, "registerModel", [name]);
    const [log] = parseEventLogs({
      abi: ModelRegistry.abi,
      logs: receipt.logs,
      eventName: "ModelRegistered",
    });
    if (!log) throw new Error("registerModel emitted no ModelRegistered");
    await registryTx(who, "addVersion", [log.args.modelId, bareVersion(`${name}:v1`)]);
    return log.args.modelId;
  }

  async function createTask(who: Actor, p: TaskParams): Promise<bigint> {
    const receipt = await send(who, "createTask", [p]);
    const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "TaskCreated" });
    if (!log) throw new Error("createTask emitted no TaskCreated");
    return log.args.taskId;
  }

  function roundStarted(receipt: TransactionReceipt): number {
    const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "RoundStarted" });
    if (!log) throw new Error("startRound emitted no RoundStarted");
    return log.args.round;
  }

  /** Mines past the exit window of task `id`'s latest round, if it has one: a round may start then. */
  async function waitOutExitWindow(id: bigint): Promise<void> {
    const [params, state] = await getTask(id);
    if (state.roundCount === 0) return;
    const { result } = await getRound(id, state.roundCount);
    if (result.finalizedAt > 0) await advanceTo(BigInt(result.finalizedAt) + BigInt(params.exitWindow));
  }

  /** Starts the next round of task `id` once the previous round's exit window is over. */
  async function startRound(id: bigint, who: Actor): Promise<number> {
    await waitOutExitWindow(id);
    return roundStarted(await send(who, "startRound", [id]));
  }

  /** Every actor joins task `id` in `role` with `stake`. */
  function joinAll(id: bigint, actors: readonly Actor[], role: number, stake: bigint) {
    return batch(actors.map((a) => taskCall(a, "join", [id, role, stake], JOIN_GAS)));
  }

  function commitScoresTx(v: Actor, id: bigint, round: number, scores: number[] | bigint[]) {
    const words = typeof scores[0] === "bigint" ? (scores as bigint[]) : packScores(scores as number[]);
    return send(v, "commitScores", [id, round, commitmentOf(v, id, round, words)]);
  }

  function revealTx(v: Actor, id: bigint, round: number, scores: number[]) {
    return send(v, "revealScores", [id, round, packScores(scores), saltOf(v, id, round)]);
  }

  /**
   * Starts a round of task `id` and drives it to the end of its reveal window: every trainer commits a
   * synthetic update, then validator j commits and reveals `scores[j]`, each phase batched into as few
   * blocks as the block gas limit allows.
   */
  async function playRound(
    id: bigint,
    creator: Actor,
    trainers: readonly Actor[],
    validators: readonly Actor[],
    scores: readonly number[][],
  ): Promise<PlayedRound> {
    await waitOutExitWindow(id);
    const start = await send(creator, "startRound", [id]);
    const round = roundStarted(start);
    const r = await getRound(id, round);
    const commits = await batch(
      trainers.map((a, i) =>
        taskCall(a, "commitUpdate", [id, round, digestOf(`${id}:${round}:${i}`), 1_000 + i], COMMIT_GAS),
      ),
    );
    await advanceTo(r.state.commitDeadline);
    const words = scores.map((s) => packScores(s));
    const scoreCommits = await batch(
      validators.map((v, j) =>
        taskCall(
          v,
          "commitScores",
          [id, round, commitmentOf(v, id, round, words[j] as bigint[])],
          SCORE_COMMIT_GAS,
        ),
      ),
    );
    await advanceTo(r.state.scoreDeadline);
    // Every validator's page p, then p + 1: a reveal is checked page by page.
    const pages = words.map((w) => scorePages(w));
    const reveals: TransactionReceipt[] = [];
    for (let p = 0; p < (pages[0]?.length ?? 0); p++) {
      reveals.push(
        ...(await batch(
          validators.map((v, j) => {
            const page = pages[j]?.[p] as bigint[];
            return taskCall(
              v,
              "revealScores",
              [id, round, page, saltOf(v, id, round)],
              revealGas(page.length),
            );
          }),
        )),
      );
    }
    await advanceTo(r.state.revealDeadline);
    return { round, start, commits, scoreCommits, reveals };
  }

  function balanceOf(a: Address): Promise<bigint> {
    const { chain, token } = env();
    return chain.publicClient.readContract({
      address: token,
      abi: MindToken.abi,
      functionName: "balanceOf",
      args: [a],
    });
  }

  /**
   * Sends `finalize` for round `round` of task `id` until it settles, asserting each step's gas is below
   * MAX_TX_GAS; returns the last step's receipt with the steps' gas summed and logs joined (`steps` receipts).
   */
  async function finalizeAll(
    id: bigint,
    round: number,
    who: Actor,
    onStep?: (step: TransactionReceipt) => Promise<void>,
  ): Promise<TransactionReceipt & { steps: TransactionReceipt[] }> {
    const steps: TransactionReceipt[] = [];
    for (;;) {
      const receipt = await send(who, "finalize", [id, round]);
      assert.ok(receipt.gasUsed < MAX_TX_GAS, `finalize step ${steps.length} used ${receipt.gasUsed} gas`);
      steps.push(receipt);
      if (parseEventLogs({ abi, logs: receipt.logs, eventName: "RoundFinalized" }).length > 0) {
        return { ...joinReceipts(steps), steps };
      }
      await onStep?.(receipt);
    }
  }

  /**
   * Finalizes round `round` of task `id` (sent by `who`, step by step, `onStep` after each step but the
   * last) and checks every event, member record, the refund
   * to the task's pool and the burned amount against the TS mirror, whose input is read just before.
   */
  async function finalizeAndCheck(
    id: bigint,
    round: number,
    who: Actor,
    onStep?: (step: TransactionReceipt) => Promise<void>,
  ): Promise<TransactionReceipt & { steps: TransactionReceipt[] }> {
    const { chain, tasks, token, registry } = env();
    const input = await settlementInputOf(
      { chain, address: tasks, token, registry, fromBlock: 0n },
      id,
      round,
    );
    const expected = settleRound(input);
    const before = new Map<string, Member>();
    for (const t of input.trainers) before.set(`t${t.address}`, await memberOf(id, TRAINER, t.address));
    for (const v of input.validators) before.set(`v${v.address}`, await memberOf(id, VALIDATOR, v.address));
    const [, stateBefore] = await getTask(id);
    const burnedBefore = await view<bigint>("burned");
    const receipt = await finalizeAll(id, round, who, onStep);

    const trainerLogs = parseEventLogs({ abi, logs: receipt.logs, eventName: "TrainerSettled" });
    assert.deepEqual(
      trainerLogs.map((l) => [
        l.args.trainer,
        l.args.committed,
        Number(l.args.score),
        l.args.accepted,
        l.args.reward,
        l.args.slashed,
      ]),
      expected.trainers.map((t) => [t.address, t.committed, t.score, t.accepted, t.reward, t.slashed]),
      "TrainerSettled events",
    );
    const validatorLogs = parseEventLogs({ abi, logs: receipt.logs, eventName: "ValidatorSettled" });
    assert.deepEqual(
      validatorLogs.map((l) => [
        l.args.validator,
        l.args.revealed,
        Number(l.args.weight),
        l.args.reward,
        l.args.slashed,
      ]),
      expected.validators.map((v) => [v.address, v.revealed, v.weight, v.reward, v.slashed]),
      "ValidatorSettled events",
    );
    const [fin] = parseEventLogs({ abi, logs: receipt.logs, eventName: "RoundFinalized" });
    assert.ok(fin);
    assert.equal(fin.args.updates, BigInt(expected.updates));
    assert.equal(fin.args.accepted, BigInt(expected.accepted.length));
    assert.equal(fin.args.roundMedian, BigInt(expected.roundMedian));
    assert.equal(fin.args.contributorsHash, expected.contributorsHash);
    assert.equal(fin.args.refunded, expected.refunded);
    assert.equal(fin.args.burned, expected.burned);
    for (const t of expected.trainers) {
      const was = before.get(`t${t.address}`) as Member;
      const now = await memberOf(id, TRAINER, t.address);
      assert.equal(now.stake, was.stake - t.slashed, `stake of ${t.address}`);
      assert.equal(now.earned, was.earned + t.reward, `earned of ${t.address}`);
    }
    for (const v of expected.validators) {
      const was = before.get(`v${v.address}`) as Member;
      const now = await memberOf(id, VALIDATOR, v.address);
      assert.equal(now.stake, was.stake - v.slashed);
      assert.equal(now.earned, was.earned + v.reward);
    }
    const [, stateAfter] = await getTask(id);
    assert.equal(stateAfter.poolLeft, stateBefore.poolLeft + expected.refunded, "the refund to the pool");
    assert.equal(await view<bigint>("burned"), burnedBefore + expected.burned, "the burned amount");
    const r = await getRound(id, round);
    assert.equal(r.state.finalized, true);
    assert.equal(r.result.accepted, expected.accepted.length);
    assert.equal(r.contributorsHash, expected.contributorsHash);
    return receipt;
  }

  /**
   * The contract holds exactly what it owes plus what it burned: the withdrawable balances of `accounts`
   * (who must be the only ones with any), members' stakes and unclaimed rewards, the tasks' unassigned
   * pools and the pools of open rounds. With `supply`, `accounts` and the contract hold all MIND.
   */
  async function assertConservation(accounts: readonly Actor[], supply = true): Promise<void> {
    const { tasks } = env();
    let owed = await view<bigint>("burned");
    for (const a of accounts) owed += await view<bigint>("withdrawable", [a.address]);
    const taskCount = await view<bigint>("taskCount");
    for (let id = 1n; id <= taskCount; id++) {
      const [, state] = await getTask(id);
      owed += state.poolLeft;
      for (const [role, list] of [
        [TRAINER, "trainersOf"],
        [VALIDATOR, "validatorsOf"],
      ] as const) {
        for (const a of await view<Address[]>(list, [id])) {
          const m = await memberOf(id, role, a);
          owed += m.stake + m.earned;
        }
      }
      if (state.roundCount > 0) {
        const r = await getRound(id, state.roundCount);
        if (!r.state.finalized) owed += r.result.pool;
      }
    }
    assert.equal(await balanceOf(tasks), owed, "the contract holds exactly what it owes and burned");
    if (!supply) return;
    let total = await balanceOf(tasks);
    for (const a of accounts) total += await balanceOf(a.address);
    assert.equal(total, TOKEN_SUPPLY, "no MIND created or lost");
  }

  /** Every trainer with a reward in task `id` claims it. */
  async function claimAll(id: bigint, trainers: readonly Actor[]): Promise<TransactionReceipt[]> {
    const members = await Promise.all(trainers.map((a) => memberOf(id, TRAINER, a)));
    const earning = trainers.filter((_, i) => (members[i] as Member).earned > 0n);
    return batch(earning.map((a) => taskCall(a, "claim", [id, TRAINER], CLAIM_GAS)));
  }

  return {
    blockNumber,
    advanceTo,
    read,
    send,
    view,
    registryTx,
    getTask,
    getRound,
    memberOf,
    fund,
    registerModel,
    createTask,
    startRound,
    waitOutExitWindow,
    joinAll,
    commitScoresTx,
    revealTx,
    playRound,
    claimAll,
    balanceOf,
    finalizeAndCheck,
    finalizeAll,
    assertConservation,
  };
}

export type LearningFixture = ReturnType<typeof learningFixture>;
