/**
 * src/learning/finalize.ts against LearningTasks on the embedded chain: the pure mirror on hand-computed
 * cases; random score matrices (seeded, up to 50 trainers x 5 validators) settled by both, which must agree
 * on every tier, acceptance, reward, slash and validator share; and a model-based property test over random
 * sequences of joins, exits, rounds, commits, reveals, finalizations, aggregation votes, claims and
 * withdrawals, in and out of phase, checking every refusal and conserving every token.
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type Account,
  type Address,
  type Chain,
  createWalletClient,
  custom,
  type Hex,
  keccak256,
  maxUint256,
  parseEther,
  parseEventLogs,
  stringToHex,
  type TransactionReceipt,
  type Transport,
  toHex,
  type WalletClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { slashAmount } from "../../src/chain/bps.ts";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll, TOKEN_SUPPLY } from "../../src/chain/deploy.ts";
import { LearningTasks, MindToken, ModelRegistry } from "../../src/chain/generated/contracts.ts";
import { ContractRefusedError, decodeRevert, sendAndWait } from "../../src/chain/tx.ts";
import {
  defaultTaskParams,
  MEMBER_ACTIVE,
  type Member,
  type RoundView,
  settlementInputOf,
  type TaskParams,
  type TaskState,
} from "../../src/learning/client.ts";
import {
  AGREEMENT_GAIN,
  agreementWeight,
  contributorsHash,
  lowerMedian,
  packScores,
  type RoundSettlementInput,
  SCORE_EXCLUDED,
  SCORE_KEPT,
  SCORE_SCALE,
  SettlementInputError,
  scoreCommitment,
  settleRound,
  trainerStatusOf,
  trainingRunOf,
  unpackScores,
  VALIDATOR_SHARE_BPS,
  weightedConsensus,
  ZERO_HASH,
} from "../../src/learning/finalize.ts";
import { createRng, type Rng } from "../../src/ml/partition.ts";
import { bareVersion } from "../contracts/bare-version.ts";

const abi = LearningTasks.abi;
const SEED = Number(process.env.LEARNING_MIRROR_SEED ?? 20_240_917);
const CASES = 24;
const TRAINER = 0;
const VALIDATOR = 1;
const ZERO32 = `0x${"0".repeat(64)}` as Hex;
const addr = (i: number) => `0x${(i + 1).toString(16).padStart(40, "0")}` as Address;

// ---------------------------------------------------------------------------------------------------------
// The mirror alone
// ---------------------------------------------------------------------------------------------------------

describe("finalize mirror (pure)", () => {
  it("lowerMedian takes element (k - 1) / 2: the smaller middle value for even counts", () => {
    assert.equal(lowerMedian([5]), 5);
    assert.equal(lowerMedian([3, 1, 2]), 2);
    assert.equal(lowerMedian([4, 1, 3, 2]), 2);
    assert.equal(lowerMedian([9000, 100]), 100);
    assert.throws(() => lowerMedian([]), SettlementInputError);
  });

  it("packs 16 scores per word, score i in bits 16 * (i % 16) of word i / 16", () => {
    const scores = Array.from({ length: 35 }, (_, i) => (i * 613) % 10_001);
    const words = packScores(scores);
    assert.equal(words.length, 3);
    assert.equal((words[0] as bigint) & 0xffffn, BigInt(scores[0] as number));
    assert.equal(((words[1] as bigint) >> 32n) & 0xffffn, BigInt(scores[18] as number));
    assert.equal((words[2] as bigint) >> 48n, 0n, "lanes past the end are zero");
    assert.deepEqual(unpackScores(words, 35), scores);
    assert.deepEqual(packScores([]), []);
    assert.throws(() => packScores([10_001]), SettlementInputError);
    assert.throws(() => packScores([1.5]), SettlementInputError);
    assert.throws(() => packScores([-1]), SettlementInputError);
  });

  it("weightedConsensus: the least score with a strict stake majority at or below it; an even split is null", () => {
    const v = (score: number, stake: bigint) => ({ score, stake });
    assert.equal(weightedConsensus([v(5, 1n)]), 5);
    assert.equal(weightedConsensus([v(3, 1n), v(1, 1n), v(2, 1n)]), 2);
    // One heavy validator outweighs two light ones.
    assert.equal(weightedConsensus([v(9_000, 5n), v(100, 2n), v(200, 2n)]), 9_000);
    // 1 vs 1 and 2 vs 2 with equal stakes: no strict majority on both sides.
    assert.equal(weightedConsensus([v(0, 1n), v(10_000, 1n)]), null);
    assert.equal(weightedConsensus([v(0, 1n), v(0, 1n), v(10_000, 1n), v(9_000, 1n)]), null);
    // Equal scores on one side of a split are still a split; agreement across the middle is not.
    assert.equal(weightedConsensus([v(7, 1n), v(7, 1n), v(7, 1n), v(8, 1n)]), 7);
    assert.equal(weightedConsensus([v(4, 3n), v(6, 3n)]), null);
    assert.equal(weightedConsensus([v(4, 3n), v(6, 4n)]), 6);
    assert.throws(() => weightedConsensus([]), SettlementInputError);
  });

  it("settles a hand-computed round exactly", () => {
    // Three trainers (c is a no-show), four validators (z silent). Pool 1000: validators' pool 200.
    const s = settleRound({
      trainers: [
        { address: addr(0), stake: 1_000n, digest: keccak256("0x0a") },
        { address: addr(1), stake: 2_000n, digest: keccak256("0x0b") },
        { address: addr(2), stake: 3_001n },
        { address: addr(9), stake: 7n, active: false },
      ],
      validators: [
        { address: addr(3), stake: 500n, scores: [8000, 100] },
        { address: addr(4), stake: 300n, scores: [6000, 300] },
        { address: addr(6), stake: 300n, scores: [7000, 100] },
        { address: addr(5), stake: 999n },
      ],
      pool: 1_000n,
      slashBps: 1_000,
      minScore: 200,
      relativeBps: 5_000,
    });
    // Revealed stake 1100 of 2099 active: scored. Update 0: 6000 (300), 7000 (300), 8000 (500): 600 at or
    // below 7000 is more than half of 1100. Update 1: 100 holds 800. Round median 100; b's 100 is below
    // minScore 200 but above 0: excluded, neither paid nor slashed.
    assert.equal(s.scored, true);
    assert.deepEqual(s.consensus, [7000, 100]);
    assert.equal(s.roundMedian, 100);
    assert.deepEqual(
      s.trainers.map((t) => [t.status, t.score, t.reward, t.slashed]),
      [
        ["accepted", 7000, 1_100n, 0n],
        ["excluded", 100, 0n, 0n],
        ["no-show", 0, 0n, 300n],
      ],
    );
    // Trainers' pot 800 + 300 = 1100, all to a. Distances: x 1000 -> 500 -> weight 8000; y 1000 + 200
    // -> 600 -> 7600; w 0 -> 10000. Validators' pot 200 + 99 = 299; its dust is burned.
    assert.deepEqual(
      s.validators.map((v) => [v.status, v.weight, v.reward, v.slashed]),
      [
        ["revealed", 8000, (299n * 8000n) / 25600n, 0n],
        ["revealed", 7600, (299n * 7600n) / 25600n, 0n],
        ["revealed", 10000, (299n * 10000n) / 25600n, 0n],
        ["silent", 0, 0n, 99n],
      ],
    );
    assert.equal(s.refunded, 0n);
    assert.equal(s.burned, 299n - 93n - 88n - 116n);
    assert.deepEqual(s.accepted, [addr(0)]);
    assert.equal(s.contributorsHash, contributorsHash([addr(0)], [keccak256("0x0a")]));
  });

  it("an even split voids the update: neither paid nor slashed, left out of the median and the distances", () => {
    const trainers = [0, 1].map((i) => ({
      address: addr(i),
      stake: 1_000n,
      digest: keccak256(toHex(i + 1)),
    }));
    // Two against two: the honest pair scores both updates well, the other pair scores update 0 at 0.
    const s = settleRound({
      trainers,
      validators: [
        { address: addr(3), stake: 100n, scores: [8000, 7000] },
        { address: addr(4), stake: 100n, scores: [8000, 7000] },
        { address: addr(5), stake: 100n, scores: [0, 7000] },
        { address: addr(6), stake: 100n, scores: [0, 7000] },
      ],
      pool: 1_000n,
      slashBps: 1_000,
      minScore: 1,
      relativeBps: 5_000,
    });
    assert.deepEqual(s.consensus, [null, 7000]);
    assert.equal(s.roundMedian, 7000);
    assert.deepEqual(
      s.trainers.map((t) => [t.status, t.score, t.reward, t.slashed]),
      [
        ["void", 0, 0n, 0n],
        ["accepted", 7000, 800n, 0n],
      ],
    );
    assert.deepEqual(
      s.validators.map((v) => [v.weight, v.slashed]),
      Array(4).fill([10_000, 0n]),
    );
  });

  it("reveals below a strict majority of the active stake: the round is void for the trainers", () => {
    const s = settleRound({
      trainers: [
        { address: addr(0), stake: 100n, digest: keccak256("0x01") },
        { address: addr(1), stake: 100n },
      ],
      validators: [
        { address: addr(3), stake: 100n, scores: [9000] },
        { address: addr(4), stake: 100n },
      ],
      pool: 10n,
      slashBps: 2_500,
      minScore: 0,
      relativeBps: 0,
    });
    assert.equal(s.scored, false, "half of the stake is no majority");
    assert.deepEqual(
      s.trainers.map((t) => [t.status, t.reward, t.slashed]),
      [
        ["void", 0n, 0n],
        ["no-show", 0n, 25n],
      ],
    );
    assert.deepEqual(
      s.validators.map((v) => [v.status, v.weight, v.reward, v.slashed]),
      [
        ["revealed", 0, 0n, 0n],
        ["silent", 0, 0n, 25n],
      ],
    );
    // Nobody is paid: the pool goes back to the task, the slashes are burned (never the creator's).
    assert.equal(s.refunded, 10n);
    assert.equal(s.burned, 50n);
  });

  it("a void round (no reveals), a round without commits, and a round with nothing accepted", () => {
    const trainers = [
      { address: addr(0), stake: 100n, digest: keccak256("0x01") },
      { address: addr(1), stake: 100n },
    ];
    const validators = [{ address: addr(2), stake: 50n }];
    const common = { pool: 10n, slashBps: 2_500, minScore: 0, relativeBps: 0 };
    const voided = settleRound({ ...common, trainers, validators });
    assert.deepEqual(
      voided.trainers.map((t) => [t.status, t.reward, t.slashed]),
      [
        ["void", 0n, 0n],
        ["no-show", 0n, 25n],
      ],
    );
    assert.deepEqual(
      voided.validators.map((v) => [v.status, v.slashed]),
      [["silent", 12n]],
    );
    assert.equal(voided.refunded, 10n);
    assert.equal(voided.burned, 25n + 12n);
    assert.equal(voided.contributorsHash, ZERO_HASH);

    const empty = settleRound({ ...common, trainers: [{ address: addr(0), stake: 100n }], validators });
    assert.deepEqual(
      empty.validators.map((v) => v.status),
      ["excused"],
    );
    assert.equal(empty.refunded, 10n);
    assert.equal(empty.burned, 25n);

    const rejected = settleRound({
      ...common,
      trainers: [trainers[0] as (typeof trainers)[number]],
      validators: [{ address: addr(2), stake: 50n, scores: [0] }],
    });
    assert.deepEqual(
      rejected.trainers.map((t) => [t.status, t.slashed]),
      [["rejected", 25n]],
    );
    assert.equal(rejected.validators[0]?.reward, 2n + 0n, "the validators' pool, all to the one validator");
    assert.equal(rejected.refunded, 8n);
    assert.equal(rejected.burned, 25n);
    assert.throws(
      () =>
        settleRound({ ...common, trainers, validators: [{ address: addr(2), stake: 1n, scores: [1, 2] }] }),
      SettlementInputError,
    );
  });

  it("a kept update of score 2 (SCORE_KEPT) is accepted but unpaid; a round of only such updates refunds the pool", () => {
    const validators = [{ address: addr(5), stake: 500n, scores: [2, 4, 6] }];
    const trainers = [0, 1, 2].map((i) => ({
      address: addr(i),
      stake: 100n,
      digest: keccak256(toHex(i + 1)),
    }));
    const common = { pool: 1_000n, slashBps: 1_000, minScore: SCORE_KEPT, relativeBps: 0 };
    const paid = settleRound({ ...common, trainers, validators });
    // Pot 800, shared by score above 2: weights 0, 2 and 4.
    assert.deepEqual(
      paid.trainers.map((t) => [t.status, t.score, t.reward, t.slashed]),
      [
        ["accepted", 2, 0n, 0n],
        ["accepted", 4, (800n * 2n) / 6n, 0n],
        ["accepted", 6, (800n * 4n) / 6n, 0n],
      ],
    );
    assert.equal(paid.burned, 800n - (800n * 2n) / 6n - (800n * 4n) / 6n, "the dust");
    assert.equal(paid.refunded, 0n);

    const unpaid = settleRound({
      ...common,
      trainers,
      validators: [{ address: addr(5), stake: 500n, scores: [2, 2, 2] }],
    });
    assert.deepEqual(
      unpaid.trainers.map((t) => [t.status, t.reward, t.slashed]),
      Array(3).fill(["accepted", 0n, 0n]),
    );
    assert.deepEqual(unpaid.accepted, [addr(0), addr(1), addr(2)]);
    assert.equal(unpaid.refunded, 800n, "the trainers' pool goes back: nobody added anything");
    assert.equal(unpaid.burned, 0n);
  });

  it("tiers: 0 is rejected and slashed, 1 (SCORE_EXCLUDED) is excluded even with minScore 0, 2 is kept", () => {
    const trainers = [0, 1, 2].map((i) => ({
      address: addr(i),
      stake: 100n,
      digest: keccak256(toHex(i + 1)),
    }));
    const s = settleRound({
      trainers,
      validators: [{ address: addr(5), stake: 500n, scores: [0, SCORE_EXCLUDED, 10] }],
      pool: 1_000n,
      slashBps: 1_000,
      minScore: 0,
      relativeBps: 0,
    });
    // Pot 800 + the rejected trainer's 10, all to the one update above SCORE_KEPT.
    assert.deepEqual(
      s.trainers.map((t) => [t.status, t.score, t.accepted, t.reward, t.slashed]),
      [
        ["rejected", 0, false, 0n, 10n],
        ["excluded", 1, false, 0n, 0n],
        ["accepted", 10, true, 810n, 0n],
      ],
    );
    assert.deepEqual(s.accepted, [addr(2)]);
    assert.equal(s.contributorsHash, contributorsHash([addr(2)], [trainers[2]?.digest as Hex]));
    // The chain's events carry the same tiers.
    assert.deepEqual(
      s.trainers.map((t) => trainerStatusOf(t)),
      ["rejected", "excluded", "accepted"],
    );
  });

  it("issue 10: the client's default task accepts from SCORE_KEPT with no relative bar; a score of 1 is excluded there", () => {
    const params = defaultTaskParams({ modelId: 1n, baseVersion: 1, rounds: 1, trainers: 2, validators: 3 });
    assert.deepEqual([params.minScore, params.relativeBps], [SCORE_KEPT, 0]);
    const s = settleRound({
      trainers: [0, 1].map((i) => ({ address: addr(i), stake: 1_000n, digest: keccak256(toHex(i + 1)) })),
      validators: [{ address: addr(5), stake: 500n, scores: [SCORE_EXCLUDED, SCORE_KEPT] }],
      pool: params.rewardPerRound,
      slashBps: params.slashBps,
      minScore: params.minScore,
      relativeBps: params.relativeBps,
    });
    assert.deepEqual(
      s.trainers.map((t) => [t.status, t.slashed]),
      [
        ["excluded", 0n],
        ["accepted", 0n],
      ],
    );
  });

  it("weights and slashes", () => {
    assert.equal(agreementWeight(0), 10_000);
    assert.equal(agreementWeight(2_499), 4);
    assert.equal(agreementWeight(2_500), 0);
    assert.equal(agreementWeight(10_000), 0);
    assert.equal(slashAmount(999n, 1_000), 99n);
    assert.equal(slashAmount(5n, 10_000), 5n);
  });
});

// ---------------------------------------------------------------------------------------------------------
// On chain
// ---------------------------------------------------------------------------------------------------------

interface Actor {
  name: string;
  address: Address;
  wallet: WalletClient<Transport, Chain, Account>;
}

let chain: LedgerChain;
let token: Address;
let registry: Address;
let market: Address;
let tasks: Address;
let creator: Actor;
let stranger: Actor;
const T: Actor[] = [];
const V: Actor[] = [];
const everyone: Actor[] = [];
const taskIds: bigint[] = [];
/** Every LearningTasks deployed in this file (the property test runs on a fresh one). */
const deployments: Address[] = [];

function rpc<R>(method: string, params: unknown[] = []): Promise<R> {
  return chain.publicClient.request({ method, params } as never) as Promise<R>;
}

async function blockNumber(): Promise<number> {
  return Number(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));
}

async function advanceTo(target: number): Promise<void> {
  const now = await blockNumber();
  if (target > now) await rpc("hardhat_mine", [toHex(target - now)]);
}

function keyActor(name: string): Actor {
  const account = privateKeyToAccount(keccak256(stringToHex(`finalize-mirror-test:${name}`)));
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

async function read<R>(p: Promise<R>): Promise<R> {
  try {
    return await p;
  } catch (err) {
    throw decodeRevert(err);
  }
}

function send(who: Actor, functionName: string, args: readonly unknown[]): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    who.wallet.writeContract({ address: tasks, abi, functionName, args } as never),
  );
}

function view<R = unknown>(functionName: string, args: readonly unknown[] = []): Promise<R> {
  return read(
    chain.publicClient.readContract({ address: tasks, abi, functionName, args } as never),
  ) as Promise<R>;
}

const getTask = (id: bigint) => view<readonly [TaskParams, TaskState]>("getTask", [id]);
const getRound = (id: bigint, round: number) => view<RoundView>("getRound", [id, round]);
const memberOf = (id: bigint, role: number, a: Address) => view<Member>("memberOf", [id, role, a]);
const withdrawable = (a: Address) => view<bigint>("withdrawable", [a]);

function balanceOf(a: Address): Promise<bigint> {
  return chain.publicClient.readContract({
    address: token,
    abi: MindToken.abi,
    functionName: "balanceOf",
    args: [a],
  });
}

async function createTask(p: TaskParams): Promise<bigint> {
  const receipt = await send(creator, "createTask", [p]);
  const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "TaskCreated" });
  assert.ok(log);
  taskIds.push(log.args.taskId);
  return log.args.taskId;
}

/** The mirror's input, read from the chain just before `finalize` (as every role reads it). */
const mirrorInput = (id: bigint, round: number): Promise<RoundSettlementInput> =>
  settlementInputOf({ chain, address: tasks, token, registry, fromBlock: 0n }, id, round);

/** Finalizes on chain and checks events, member records, the round and the pool against the mirror. */
async function finalizeAndCheck(id: bigint, round: number, by: Actor = stranger) {
  const input = await mirrorInput(id, round);
  const expected = settleRound(input);
  const [, stateBefore] = await getTask(id);
  const burnedBefore = await view<bigint>("burned");
  const receipt = await send(by, "finalize", [id, round]);
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
    "trainers: acceptance, rewards, slashes",
  );
  // The tier a client reads from each event is the mirror's (a rejection whose slash rounds to 0 reads void).
  assert.deepEqual(
    trainerLogs.map((l) => trainerStatusOf({ ...l.args, score: Number(l.args.score) })),
    expected.trainers.map((t) => (t.status === "rejected" && t.slashed === 0n ? "void" : t.status)),
    "trainers' tiers",
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
    "validators: weights, shares, slashes",
  );
  const [fin] = parseEventLogs({ abi, logs: receipt.logs, eventName: "RoundFinalized" });
  assert.ok(fin);
  assert.deepEqual(
    [
      fin.args.updates,
      fin.args.accepted,
      fin.args.roundMedian,
      fin.args.contributorsHash,
      fin.args.refunded,
      fin.args.burned,
    ],
    [
      BigInt(expected.updates),
      BigInt(expected.accepted.length),
      BigInt(expected.roundMedian),
      expected.contributorsHash,
      expected.refunded,
      expected.burned,
    ],
    "round outcome",
  );
  for (const t of expected.trainers) {
    const was = input.trainers.find((x) => x.address === t.address);
    const now = await memberOf(id, TRAINER, t.address);
    assert.equal(now.stake, (was?.stake as bigint) - t.slashed, `stake of ${t.address}`);
  }
  for (const v of expected.validators) {
    const was = input.validators.find((x) => x.address === v.address);
    assert.equal((await memberOf(id, VALIDATOR, v.address)).stake, (was?.stake as bigint) - v.slashed);
  }
  const [, stateAfter] = await getTask(id);
  assert.equal(stateAfter.poolLeft, stateBefore.poolLeft + expected.refunded, "the refund to the pool");
  assert.equal(await view<bigint>("burned"), burnedBefore + expected.burned, "the burned amount");
  return { receipt, expected, input };
}

/**
 * Contract holdings equal what it owes (withdrawable balances of `accounts`, who are the only ones with any,
 * stakes, unclaimed rewards, pools), and, with `supply`, all MIND is where it should be.
 */
async function assertConservation(accounts: readonly Actor[] = everyone, supply = true): Promise<void> {
  // Burned MIND stays in the contract: it is owed to nobody but must be there.
  let owed = await view<bigint>("burned");
  for (const a of accounts) owed += await withdrawable(a.address);
  for (const id of taskIds) {
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
  const held = await balanceOf(tasks);
  assert.equal(held, owed, "the contract holds exactly what it owes");
  if (!supply) return;
  let total = 0n;
  for (const at of deployments) total += await balanceOf(at);
  for (const a of everyone) total += await balanceOf(a.address);
  assert.equal(total, TOKEN_SUPPLY, "no MIND created or lost");
}

/** Deploys a LearningTasks contract that `actors` may pull MIND for and that may extend model 1. */
async function deployTasks(actors: readonly Actor[]): Promise<Address> {
  const deployed = await sendAndWait(chain, () =>
    chain
      .wallet(0)
      .deployContract({ abi, bytecode: LearningTasks.bytecode, args: [token, registry, market] }),
  );
  const at = deployed.contractAddress as Address;
  deployments.push(at);
  for (const a of actors) {
    await sendAndWait(chain, () =>
      a.wallet.writeContract({
        address: token,
        abi: MindToken.abi,
        functionName: "approve",
        args: [at, maxUint256],
      }),
    );
  }
  await sendAndWait(chain, () =>
    creator.wallet.writeContract({
      address: registry,
      abi: ModelRegistry.abi,
      functionName: "setApprovalForAll",
      args: [at, true],
    }),
  );
  return at;
}

before(async () => {
  chain = await connect({ ephemeral: true });
  const manifest = await deployAll(chain);
  token = manifest.contracts.MindToken.address;
  registry = manifest.contracts.ModelRegistry.address;
  market = manifest.contracts.DataMarket.address;
  const treasury = chain.wallet(0);
  const dev = (i: number, name: string): Actor => ({
    name,
    address: chain.wallet(i).account.address,
    wallet: chain.wallet(i),
  });
  for (let i = 0; i < 20; i++) everyone.push(dev(i, `dev${i}`));
  creator = everyone[1] as Actor;
  stranger = everyone[2] as Actor;
  for (let i = 0; i < 50; i++) T.push(keyActor(`t${i}`));
  for (let i = 0; i < 5; i++) V.push(keyActor(`v${i}`));
  for (const a of [...T, ...V]) {
    everyone.push(a);
    await rpc("hardhat_setBalance", [a.address, toHex(parseEther("1000"))]);
  }
  for (const a of [...T, ...V, creator, stranger]) {
    await sendAndWait(chain, () =>
      treasury.writeContract({
        address: token,
        abi: MindToken.abi,
        functionName: "transfer",
        args: [a.address, parseEther("1000000")],
      }),
    );
  }
  const reg = (functionName: string, args: readonly unknown[]) =>
    sendAndWait(chain, () =>
      creator.wallet.writeContract({
        address: registry,
        abi: ModelRegistry.abi,
        functionName,
        args,
      } as never),
    );
  await reg("registerModel", ["mirror-model"]);
  await reg("addVersion", [1n, bareVersion("mirror:v1")]);
  tasks = await deployTasks([...T, ...V, creator, stranger]);
});

after(async () => {
  await chain?.close();
});

const BASE: TaskParams = {
  modelId: 1,
  baseVersion: 1,
  format: stringToHex("LMQ1", { size: 8 }),
  licence: ZERO32,
  rewardPerRound: parseEther("100"),
  rounds: 8,
  minTrainerStake: parseEther("5"),
  minValidatorStake: parseEther("5"),
  commitWindow: 60,
  scoreWindow: 8,
  revealWindow: 8,
  aggregateWindow: 4,
  exitWindow: 5,
  slashBps: 1_000,
  minScore: 0,
  relativeBps: 5_000,
  quorumBps: 6_000,
  maxTrainers: 50,
  maxValidators: 5,
};

describe("finalize mirror: helpers agree with the contract", () => {
  it("scoreCommitment, trainingRunOf and the constants of the settlement", async () => {
    const words = packScores([1, 10_000, 0, 4_321]);
    const salt = keccak256("0x5a17");
    assert.equal(
      await view("scoreCommitment", [7n, 3, (V[0] as Actor).address, words, salt]),
      scoreCommitment(7n, 3, (V[0] as Actor).address, words, salt),
    );
    assert.equal(await view("trainingRunOf", [0x1234n, 77]), trainingRunOf(tasks, 0x1234n, 77));
    const constants = { SCORE_EXCLUDED, SCORE_KEPT, SCORE_SCALE, AGREEMENT_GAIN, VALIDATOR_SHARE_BPS };
    for (const [name, value] of Object.entries(constants)) {
      assert.equal(await view(name, []), BigInt(value), name);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Random score matrices, settled by the contract and by the mirror
// ---------------------------------------------------------------------------------------------------------

interface Setup {
  id: bigint;
  trainers: Actor[];
  validators: Actor[];
}

type Mode = "full" | "random" | "no-commits" | "no-reveals" | "even";

interface Case {
  setup: Setup;
  mode: Mode;
  /** Per trainer of the setup: commits? */
  commits: boolean[];
  /** Per validator: "reveal", "commit-only" (silent after committing) or "absent". */
  validators: ("reveal" | "commit-only" | "absent")[];
  /** Per revealing validator (setup order), one score per committed update. */
  scores: number[][];
}

function pick<X>(r: Rng, xs: readonly X[]): X {
  return xs[r.int(xs.length)] as X;
}

function shuffle<X>(r: Rng, xs: readonly X[]): X[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [out[i], out[j]] = [out[j] as X, out[i] as X];
  }
  return out;
}

/** Scores of one validator for the round's updates, given each update's kind and the validator's behaviour. */
function scoreMatrix(r: Rng, n: number, k: number): number[][] {
  const kinds = Array.from({ length: n }, () =>
    pick(r, ["honest", "honest", "honest", "poison", "free", "excluded", "kept", "top"]),
  );
  const base = kinds.map((kind) =>
    kind === "honest"
      ? 6_000 + r.int(3_500)
      : kind === "poison"
        ? r.int(800)
        : kind === "free"
          ? 0
          : kind === "excluded"
            ? SCORE_EXCLUDED
            : kind === "kept"
              ? SCORE_KEPT
              : 10_000,
  );
  return Array.from({ length: k }, () => {
    const behaviour = pick(r, ["honest", "honest", "honest", "noisy", "random", "lazy", "inverted"]);
    return base.map((b) => {
      const clamp = (x: number) => Math.max(0, Math.min(10_000, Math.round(x)));
      switch (behaviour) {
        case "honest":
          // Honest validators agree exactly on the tiers: rejected (0), excluded (1), kept for no value (2).
          return b <= SCORE_KEPT ? b : clamp(b + r.int(401) - 200);
        case "noisy":
          return clamp(b + r.int(3_001) - 1_500);
        case "random":
          return r.int(10_001);
        case "lazy":
          return 5_000;
        default:
          return 10_000 - b;
      }
    });
  });
}

interface CaseOutcome {
  n: number;
  revealed: number;
  accepted: number;
  excluded: number;
  rejected: number;
}

async function runCase(c: Case, seedTag: string): Promise<CaseOutcome> {
  const { id, trainers, validators } = c.setup;
  const [params, state] = await getTask(id);
  if (state.roundCount > 0) {
    const last = await getRound(id, state.roundCount);
    await advanceTo(last.result.finalizedAt + params.exitWindow);
  }
  const started = await send(creator, "startRound", [id]);
  const [log] = parseEventLogs({ abi, logs: started.logs, eventName: "RoundStarted" });
  assert.ok(log);
  const round = log.args.round;
  const r = await getRound(id, round);
  let n = 0;
  for (const [i, t] of trainers.entries()) {
    if (!c.commits[i]) continue;
    // A trainer slashed below the minimum cannot commit: it is a no-show this round.
    if ((await memberOf(id, TRAINER, t.address)).stake < params.minTrainerStake) continue;
    await send(t, "commitUpdate", [
      id,
      round,
      keccak256(stringToHex(`${seedTag}:${id}:${round}:${i}`)),
      1 + i,
    ]);
    n += 1;
  }
  await advanceTo(r.state.commitDeadline);
  const salt = (v: Actor) => keccak256(stringToHex(`${seedTag}:salt:${v.name}:${id}:${round}`));
  const revealing: { v: Actor; words: bigint[] }[] = [];
  if (n > 0) {
    let k = 0;
    for (const [j, v] of validators.entries()) {
      const plan = c.validators[j];
      if (plan === "absent") continue;
      if ((await memberOf(id, VALIDATOR, v.address)).stake < params.minValidatorStake) continue;
      const scores = (c.scores[k++] as number[]).slice(0, n);
      const words = packScores(scores);
      await send(v, "commitScores", [id, round, scoreCommitment(id, round, v.address, words, salt(v))]);
      if (plan === "reveal") revealing.push({ v, words });
    }
  }
  await advanceTo(r.state.scoreDeadline);
  for (const { v, words } of revealing) await send(v, "revealScores", [id, round, words, salt(v)]);
  await advanceTo(r.state.revealDeadline);
  const { expected } = await finalizeAndCheck(id, round);
  const tier = (status: string) => expected.trainers.filter((t) => t.status === status).length;
  return {
    n,
    revealed: expected.revealed,
    accepted: expected.accepted.length,
    excluded: tier("excluded"),
    rejected: tier("rejected"),
  };
}

describe("finalize mirror vs LearningTasks.finalize on random score matrices", () => {
  const setups: Setup[] = [];

  it(`agrees on ${CASES} seeded cases, up to 50 trainers x 5 validators (seed ${SEED})`, async () => {
    const r = createRng(SEED);
    const shapes: [number, number][] = [
      [50, 5],
      [23, 4],
      [9, 3],
      [3, 3],
      [14, 5],
    ];
    for (const [s, [nt, nv]] of shapes.entries()) {
      const p: TaskParams = {
        ...BASE,
        rewardPerRound: parseEther(String(1 + r.int(500))) + BigInt(r.int(1_000_003)),
        slashBps: pick(r, [0, 700, 1_000, 2_500, 10_000]),
        minScore: pick(r, [0, 500, 2_000]),
        relativeBps: pick(r, [0, 3_000, 5_000, 8_000, 10_000]),
      };
      if (s === 0) Object.assign(p, { slashBps: 1_000, minScore: 0, relativeBps: 5_000 });
      const id = await createTask(p);
      const trainers = s === 0 ? [...T] : shuffle(r, T).slice(0, nt);
      const validators = V.slice(0, nv);
      for (const t of trainers) {
        await send(t, "join", [
          id,
          TRAINER,
          parseEther(String(5 + r.int(500))) + BigInt(r.int(1_000_000_007)),
        ]);
      }
      for (const v of validators)
        await send(v, "join", [id, VALIDATOR, parseEther(String(5 + r.int(2_000)))]);
      setups.push({ id, trainers, validators });
    }

    const tally = {
      maxN: 0,
      maxRevealed: 0,
      noCommits: 0,
      void: 0,
      even: 0,
      rejected: 0,
      accepted: 0,
      excludedTier: 0,
      rejectedTier: 0,
    };
    for (let k = 0; k < CASES; k++) {
      const mode: Mode =
        k === 0 ? "full" : k === 1 ? "no-commits" : k === 2 ? "no-reveals" : k === 3 ? "even" : "random";
      const setup = setups[k === 0 ? 0 : k % setups.length] as Setup;
      const nt = setup.trainers.length;
      const nv = setup.validators.length;
      const commitRate = mode === "full" ? 1 : pick(r, [0.95, 0.8, 0.5, 0.2]);
      const commits = Array.from({ length: nt }, () => mode !== "no-commits" && r.next() < commitRate);
      const plans = Array.from({ length: nv }, (_, j) => {
        if (mode === "full") return "reveal" as const;
        if (mode === "no-reveals") return j % 2 === 0 ? ("commit-only" as const) : ("absent" as const);
        if (mode === "even") return j < nv - (nv % 2) ? ("reveal" as const) : ("absent" as const);
        const x = r.next();
        return x < 0.75 ? ("reveal" as const) : x < 0.9 ? ("commit-only" as const) : ("absent" as const);
      });
      const c: Case = { setup, mode, commits, validators: plans, scores: scoreMatrix(r, nt, nv) };
      let out: CaseOutcome;
      try {
        out = await runCase(c, `case${k}`);
        await assertConservation();
      } catch (err) {
        const detail = JSON.stringify({ k, mode, task: String(setup.id), commits, plans, scores: c.scores });
        throw new Error(`case ${k} (seed ${SEED}) failed: ${detail}`, { cause: err });
      }
      tally.maxN = Math.max(tally.maxN, out.n);
      tally.maxRevealed = Math.max(tally.maxRevealed, out.revealed);
      if (out.n === 0) tally.noCommits += 1;
      if (out.n > 0 && out.revealed === 0) tally.void += 1;
      if (out.revealed > 0 && out.revealed % 2 === 0) tally.even += 1;
      if (out.accepted < out.n && out.revealed > 0) tally.rejected += 1;
      if (out.accepted > 0) tally.accepted += 1;
      tally.excludedTier += out.excluded;
      tally.rejectedTier += out.rejected;
    }
    assert.equal(tally.maxN, 50, "a case with 50 updates");
    assert.equal(tally.maxRevealed, 5, "a case with 5 revealing validators");
    assert.ok(tally.noCommits >= 1 && tally.void >= 1 && tally.even >= 1, JSON.stringify(tally));
    assert.ok(tally.rejected >= 5 && tally.accepted >= 5, JSON.stringify(tally));
    assert.ok(tally.excludedTier >= 5 && tally.rejectedTier >= 5, `every tier met: ${JSON.stringify(tally)}`);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Property test: random sequences of actions, in and out of phase, against an independent model of the rules
// ---------------------------------------------------------------------------------------------------------

const PHASE = {
  None: 0,
  Commit: 1,
  ScoreCommit: 2,
  Reveal: 3,
  Finalize: 4,
  Aggregate: 5,
  Done: 6,
  Expired: 7,
} as const;
/** The contract's FINALIZE_TIMEOUT: blocks after the reveal deadline before an unfinalized round expires. */
const FINALIZE_TIMEOUT = 7_200;
/** The contract's MIN_VALIDATORS: a round starts with no fewer. */
const MIN_VALIDATORS = 3;

/** A round's phase at block `b`, recomputed from its record (the contract's `_phase`, independently). */
function phaseAt(r: RoundView, round: number, latest: number, aggregateWindow: number, b: number): number {
  if (r.state.commitDeadline === 0) return PHASE.None;
  if (!r.state.finalized) {
    if (b <= r.state.commitDeadline) return PHASE.Commit;
    if (b <= r.state.scoreDeadline) return PHASE.ScoreCommit;
    if (b <= r.state.revealDeadline) return PHASE.Reveal;
    return b <= r.state.revealDeadline + FINALIZE_TIMEOUT ? PHASE.Finalize : PHASE.Expired;
  }
  if (r.result.expired) return PHASE.Expired;
  if (
    round === latest &&
    !r.result.aggregated &&
    r.result.accepted !== 0 &&
    b <= r.result.finalizedAt + aggregateWindow
  ) {
    return PHASE.Aggregate;
  }
  return PHASE.Done;
}

interface Ledger {
  /** MIND each actor moved into the contract (stakes, funding) and got out of it (withdrawals). */
  deposited: Map<Address, bigint>;
  withdrawn: Map<Address, bigint>;
  /** Credits to withdrawable balances, from events: exits, claims, closing refunds. */
  credited: Map<Address, bigint>;
  walletStart: Map<Address, bigint>;
  /** Withdrawable balances when the sequence started (earlier sequences' leftovers). */
  owedStart: Map<Address, bigint>;
}

/** The accounts of the property test: six would-be trainers, four would-be validators, the creator, a stranger. */
const CAST = (): Actor[] => [...T.slice(40, 46), ...V.slice(0, 4), creator, stranger];

const add = (m: Map<Address, bigint>, a: Address, v: bigint) => m.set(a, (m.get(a) ?? 0n) + v);

async function propertyRun(seed: number, steps: number): Promise<Record<string, number>> {
  const r = createRng(seed);
  const p: TaskParams = {
    ...BASE,
    rewardPerRound: parseEther("10") + BigInt(r.int(999_999)),
    rounds: 4,
    minTrainerStake: parseEther("10"),
    minValidatorStake: parseEther("10"),
    commitWindow: 8,
    scoreWindow: 6,
    revealWindow: 6,
    aggregateWindow: 6,
    exitWindow: 5,
    slashBps: pick(r, [1_000, 3_000]),
    quorumBps: pick(r, [5_001, 6_667, 10_000]),
    maxTrainers: 4,
    maxValidators: 3,
  };
  const ledger: Ledger = {
    deposited: new Map(),
    withdrawn: new Map(),
    credited: new Map(),
    walletStart: new Map(),
    owedStart: new Map(),
  };
  const cast = CAST();
  for (const a of cast) {
    ledger.walletStart.set(a.address, await balanceOf(a.address));
    ledger.owedStart.set(a.address, await withdrawable(a.address));
  }
  const votes = new Set<string>();
  let id = await createTask(p);
  add(ledger.deposited, creator.address, p.rewardPerRound * BigInt(p.rounds));
  const revealed = new Set<string>();
  const trainerPool = T.slice(40, 46);
  const validatorPool = V.slice(0, 4);
  const secrets = new Map<string, { words: bigint[]; salt: Hex }>();
  const stats: Record<string, number> = {};
  let digestCounter = 0;
  const usedDigests: Hex[] = [];

  for (let step = 0; step < steps; step++) {
    let [, st] = await getTask(id);
    if (st.closed) {
      // The creator opens a new task: the sequence goes on with fresh rounds (and the members' old stakes).
      id = await createTask(p);
      add(ledger.deposited, creator.address, p.rewardPerRound * BigInt(p.rounds));
      [, st] = await getTask(id);
    }
    const latest = st.roundCount;
    const next = (await blockNumber()) + 1;
    const cur = latest > 0 ? await getRound(id, latest) : undefined;
    const phase = cur ? phaseAt(cur, latest, latest, p.aggregateWindow, next) : PHASE.None;
    // An expired round does not hold anyone: the next join, exit, close or start closes it.
    const open = cur !== undefined && !cur.state.finalized && phase !== PHASE.Expired;
    // Mostly members (and, in the reveal phase, validators that committed); sometimes anyone.
    const members = async (pool: Actor[], role: number) => {
      const out: Actor[] = [];
      for (const a of pool) if ((await memberOf(id, role, a.address)).status === MEMBER_ACTIVE) out.push(a);
      return out;
    };
    let activeV = await members(validatorPool, VALIDATOR);
    const key = (a: Actor) => `${id}:${latest}:${a.address}`;
    let activeT = await members(trainerPool, TRAINER);
    if (phase === PHASE.Commit) {
      const fresh = [];
      for (const a of activeT)
        if ((await memberOf(id, TRAINER, a.address)).commitRound !== latest) fresh.push(a);
      activeT = fresh;
    }
    if (phase === PHASE.ScoreCommit) activeV = activeV.filter((v) => !secrets.has(key(v)));
    if (phase === PHASE.Reveal) activeV = activeV.filter((v) => secrets.has(key(v)) && !revealed.has(key(v)));
    if (phase === PHASE.Aggregate) activeV = activeV.filter((v) => revealed.has(key(v)));
    const trainer =
      r.next() < 0.9 && activeT.length > 0 ? pick(r, activeT) : pick(r, [...trainerPool, stranger]);
    const validator =
      r.next() < 0.9 && activeV.length > 0 ? pick(r, activeV) : pick(r, [...validatorPool, stranger]);
    const tm = await memberOf(id, TRAINER, trainer.address);
    const vm = await memberOf(id, VALIDATOR, validator.address);
    // Mostly actions of the current phase; any action now and then, in or out of its phase.
    const byPhase: Record<number, string[]> = {
      [PHASE.None]: ["join", "join", "start", "start"],
      [PHASE.Commit]: ["commit", "commit", "commit", "commit", "mine"],
      [PHASE.ScoreCommit]: ["scores", "scores", "scores", "scores", "mine"],
      [PHASE.Reveal]: ["reveal", "reveal", "reveal", "reveal", "mine"],
      [PHASE.Finalize]: ["finalize", "finalize"],
      [PHASE.Aggregate]: ["propose", "attest", "attest", "attest", "exit"],
      [PHASE.Done]: ["start", "start", "start", "join", "exit", "claim", "withdraw", "close"],
      [PHASE.Expired]: ["exit", "join", "start"],
    };
    const all = [
      "join",
      "exit",
      "claim",
      "withdraw",
      "start",
      "commit",
      "scores",
      "reveal",
      "finalize",
      "propose",
      "attest",
      "mine",
      "close",
    ];
    const action = r.next() < 0.8 ? pick(r, byPhase[phase] as string[]) : pick(r, all);
    stats[action] = (stats[action] ?? 0) + 1;
    const round = latest === 0 || r.next() < 0.05 ? latest + 1 : latest;
    const roundKnown = round >= 1 && round <= latest;
    const rPhase = roundKnown && cur ? phase : PHASE.None;
    let expect: string | undefined;
    let run: () => Promise<TransactionReceipt>;

    const requirePhase = (want: number): string | undefined => {
      if (!roundKnown) return "UnknownRound";
      if (rPhase !== want) return "WrongPhase";
      return undefined;
    };

    switch (action) {
      case "mine": {
        const k = 1 + r.int(4);
        await rpc("hardhat_mine", [toHex(k)]);
        continue;
      }
      case "join": {
        // Validators more often while fewer than MIN_VALIDATORS are active, or rounds would rarely start.
        const role = r.next() < (activeV.length < MIN_VALIDATORS ? 0.25 : 0.5) ? TRAINER : VALIDATOR;
        // Mostly accounts that are not members yet (any of them now and then: top-ups, conflicts, strangers).
        const pool = role === TRAINER ? trainerPool : validatorPool;
        const outside = pool.filter((a) => !(role === TRAINER ? activeT : activeV).includes(a));
        const who =
          r.next() < 0.7 && outside.length > 0
            ? pick(r, outside)
            : pick(r, [...trainerPool, ...validatorPool, stranger]);
        const m = await memberOf(id, role, who.address);
        const other = await memberOf(id, role === TRAINER ? VALIDATOR : TRAINER, who.address);
        const min = role === TRAINER ? p.minTrainerStake : p.minValidatorStake;
        const amount = pick(r, [min - 1n, min, min * 2n + BigInt(r.int(1000))]);
        const list = await view<Address[]>(role === TRAINER ? "trainersOf" : "validatorsOf", [id]);
        const cap = role === TRAINER ? p.maxTrainers : p.maxValidators;
        if (st.closed) expect = "TaskAlreadyClosed";
        else if (open) expect = "RoundInProgress";
        else if (other.status === MEMBER_ACTIVE) expect = "RoleConflict";
        else if (amount === 0n || m.stake + amount < min) expect = "StakeTooLow";
        else if (m.status !== MEMBER_ACTIVE && list.length >= cap) expect = "TooManyMembers";
        run = async () => {
          const receipt = await send(who, "join", [id, role, amount]);
          add(ledger.deposited, who.address, amount);
          return receipt;
        };
        break;
      }
      case "exit": {
        const role = r.next() < 0.5 ? TRAINER : VALIDATOR;
        const who = role === TRAINER ? trainer : validator;
        const m = role === TRAINER ? tm : vm;
        let proposedPending = false;
        if (role === VALIDATOR && cur && phase === PHASE.Aggregate) {
          const [, proposers] = await view<readonly [Hex[], Address[], bigint[]]>("getProposals", [
            id,
            latest,
          ]);
          proposedPending = proposers.includes(who.address);
        }
        if (open) expect = "RoundInProgress";
        else if (m.status !== MEMBER_ACTIVE) expect = role === TRAINER ? "NotTrainer" : "NotValidator";
        else if (proposedPending) expect = "ProposalPending";
        run = () => send(who, "exitTask", [id, role]);
        break;
      }
      case "claim": {
        const role = r.next() < 0.5 ? TRAINER : VALIDATOR;
        const who = role === TRAINER ? trainer : validator;
        const m = role === TRAINER ? tm : vm;
        if (m.earned === 0n) expect = "NothingToClaim";
        run = () => send(who, "claim", [id, role]);
        break;
      }
      case "withdraw": {
        const who = pick(r, cast);
        const owed = await withdrawable(who.address);
        if (owed === 0n) expect = "NothingToWithdraw";
        run = async () => {
          const receipt = await send(who, "withdraw", []);
          add(ledger.withdrawn, who.address, owed);
          return receipt;
        };
        break;
      }
      case "start":
      case "close": {
        const who = r.next() < 0.85 ? creator : stranger;
        if (who !== creator) expect = "NotTaskCreator";
        else if (st.closed) expect = "TaskAlreadyClosed";
        else if (open) expect = "RoundInProgress";
        else if (action === "start") {
          if (st.roundCount >= p.rounds) expect = "NoRoundsLeft";
          else if (cur && next <= cur.result.finalizedAt + p.exitWindow) expect = "ExitWindowOpen";
          else if (st.activeTrainers === 0) expect = "NotEnoughTrainers";
          else if (st.activeValidators < MIN_VALIDATORS) expect = "NotEnoughValidators";
        }
        // Close rarely before the last round: it ends the task (the sequence goes on with a new one).
        if (action === "close" && expect === undefined && st.roundCount < p.rounds && r.next() < 0.8)
          continue;
        run = () => send(who, action === "start" ? "startRound" : "closeTask", [id]);
        break;
      }
      case "commit": {
        // Now and then another trainer's digest: digests are keyed by trainer, so a copy is no refusal.
        const copy = usedDigests.length > 0 && r.next() < 0.15;
        const digest = copy
          ? pick(r, usedDigests)
          : keccak256(stringToHex(`prop:${seed}:${digestCounter++}`));
        expect = requirePhase(PHASE.Commit);
        if (!expect) {
          if (tm.status !== MEMBER_ACTIVE) expect = "NotTrainer";
          else if (tm.commitRound === round) expect = "AlreadyCommitted";
          else if (tm.stake < p.minTrainerStake) expect = "StakeTooLow";
        }
        run = async () => {
          const receipt = await send(trainer, "commitUpdate", [id, round, digest, 1 + r.int(1000)]);
          usedDigests.push(digest);
          return receipt;
        };
        break;
      }
      case "scores": {
        expect = requirePhase(PHASE.ScoreCommit);
        const commits = cur?.state.commits ?? 0;
        const words = packScores(Array.from({ length: commits }, () => r.int(10_001)));
        const salt = keccak256(stringToHex(`prop-salt:${seed}:${step}`));
        if (!expect) {
          if (vm.status !== MEMBER_ACTIVE) expect = "NotValidator";
          else if (vm.stake < p.minValidatorStake) expect = "StakeTooLow";
          else if (commits === 0) expect = "NothingToScore";
          else if (secrets.has(`${id}:${round}:${validator.address}`)) expect = "AlreadyCommitted";
        }
        run = async () => {
          const receipt = await send(validator, "commitScores", [
            id,
            round,
            scoreCommitment(id, round, validator.address, words, salt),
          ]);
          secrets.set(`${id}:${round}:${validator.address}`, { words, salt });
          return receipt;
        };
        break;
      }
      case "reveal": {
        expect = requirePhase(PHASE.Reveal);
        const secret = secrets.get(`${id}:${round}:${validator.address}`);
        const wrong = r.next() < 0.15;
        const words = secret?.words ?? packScores(Array.from({ length: cur?.state.commits ?? 0 }, () => 1));
        const salt = wrong || !secret ? keccak256("0xbad5a1") : secret.salt;
        if (!expect) {
          const revealed = (await view<number[]>("getScores", [id, round, validator.address])).length > 0;
          if (!secret) expect = "NoCommit";
          else if (revealed) expect = "AlreadyRevealed";
          else if (wrong) expect = "RevealMismatch";
        }
        run = async () => {
          const receipt = await send(validator, "revealScores", [id, round, words, salt]);
          revealed.add(`${id}:${round}:${validator.address}`);
          return receipt;
        };
        break;
      }
      case "finalize": {
        expect = requirePhase(PHASE.Finalize);
        // A refused finalization has nothing to compare; an accepted one is checked against the mirror.
        run = async () =>
          expect
            ? send(pick(r, cast), "finalize", [id, round])
            : (await finalizeAndCheck(id, round, pick(r, cast))).receipt;
        break;
      }
      case "propose":
      case "attest": {
        expect = requirePhase(PHASE.Aggregate);
        const [digests] = roundKnown
          ? await view<readonly [Hex[], Address[], bigint[]]>("getProposals", [id, round])
          : [[] as Hex[]];
        const fresh = keccak256(stringToHex(`agg:${seed}:${step}`));
        const digest =
          action === "attest"
            ? r.next() < 0.85 && digests.length > 0
              ? pick(r, digests)
              : fresh
            : r.next() < 0.15 && digests.length > 0
              ? pick(r, digests)
              : fresh;
        if (!expect) {
          const voted = votes.has(`${id}:${round}:${validator.address}`);
          if (action === "propose" && digests.includes(digest)) expect = "AlreadyProposed";
          else if (action === "attest" && !digests.includes(digest)) expect = "UnknownProposal";
          else if (vm.status !== MEMBER_ACTIVE) expect = "NotValidator";
          else if (!revealed.has(`${id}:${round}:${validator.address}`)) expect = "DidNotReveal";
          else if (voted) expect = "AlreadyVoted";
        }
        run = async () => {
          const receipt = await send(
            validator,
            action === "propose" ? "proposeAggregate" : "attestAggregate",
            [id, round, digest],
          );
          votes.add(`${id}:${round}:${validator.address}`);
          return receipt;
        };
        break;
      }
      default:
        throw new Error(`unknown action ${action}`);
    }

    const label = `step ${step} (seed ${seed}): ${action} in phase ${phase}`;
    if (expect) {
      await assert.rejects(run(), (err: unknown) => {
        assert.ok(err instanceof ContractRefusedError, `${label}: expected ${expect}, got ${String(err)}`);
        assert.equal(err.errorName, expect, `${label}: expected ${expect}, got ${err.message}`);
        return true;
      });
      stats[`refused:${expect}`] = (stats[`refused:${expect}`] ?? 0) + 1;
    } else {
      let receipt: TransactionReceipt;
      try {
        receipt = await run();
      } catch (err) {
        throw new Error(`${label}: expected success`, { cause: err });
      }
      stats[`ok:${action}`] = (stats[`ok:${action}`] ?? 0) + 1;
      for (const log of parseEventLogs({ abi, logs: receipt.logs })) {
        if (log.eventName === "Left")
          add(ledger.credited, log.args.account, log.args.stake + log.args.earned);
        if (log.eventName === "Claimed") add(ledger.credited, log.args.account, log.args.amount);
        if (log.eventName === "TaskClosed") add(ledger.credited, creator.address, log.args.refund);
      }
    }
    await assertConservation(cast, false);
    // Nothing paid twice: every account's withdrawable balance is its credits less its withdrawals, and its
    // wallet moved by exactly its withdrawals less its deposits.
    for (const a of cast) {
      const credited = ledger.credited.get(a.address) ?? 0n;
      const withdrawn = ledger.withdrawn.get(a.address) ?? 0n;
      const owedStart = ledger.owedStart.get(a.address) as bigint;
      assert.equal(
        await withdrawable(a.address),
        owedStart + credited - withdrawn,
        `${label}: owed to ${a.name}`,
      );
      assert.equal(
        await balanceOf(a.address),
        (ledger.walletStart.get(a.address) as bigint) - (ledger.deposited.get(a.address) ?? 0n) + withdrawn,
        `${label}: wallet of ${a.name}`,
      );
    }
  }
  await assertConservation(cast, true);
  return stats;
}

describe("property: random sequences of actions conserve tokens, pay once, and keep to their phases", () => {
  before(async () => {
    // A fresh contract, so that the check after every step sums only this test's tasks and accounts.
    tasks = await deployTasks(CAST());
    taskIds.length = 0;
  });

  it("3 seeded sequences of 200 steps", async () => {
    const totals: Record<string, number> = {};
    for (const seed of [SEED, SEED + 1, SEED + 2]) {
      const stats = await propertyRun(seed, 200);
      for (const [k, v] of Object.entries(stats)) totals[k] = (totals[k] ?? 0) + v;
    }
    console.log("property-test actions:", JSON.stringify(totals));
    for (const k of [
      "ok:join",
      "ok:start",
      "ok:commit",
      "ok:scores",
      "ok:reveal",
      "ok:finalize",
      "refused:WrongPhase",
    ]) {
      assert.ok((totals[k] ?? 0) > 0, `no ${k} in the sequences: ${JSON.stringify(totals)}`);
    }
  });
});
