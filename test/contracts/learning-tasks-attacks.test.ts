// The attacks of issue 9 on LearningTasks, each run end to end on the embedded chain: the attacker does
// what the review found it could do, and the test shows that it no longer profits (no honest party loses
// stake, no payout moves to the attacker, nothing stays locked); and issue 10's slashing tiers, where an
// honest update that scores low is excluded, never slashed. Every finalization is also checked against
// the TS mirror (src/learning/finalize.ts), and the contract's books after every attack.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Address, type Hex, parseEther, parseEventLogs, type TransactionReceipt } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { LearningTasks, ModelRegistry } from "../../src/chain/generated/contracts.ts";
import { ContractRefusedError } from "../../src/chain/tx.ts";
import { fetchTrainerUpdate, settlementOf } from "../../src/learning/client.ts";
import { sealUpdate } from "../../src/learning/envelope.ts";
import { contributorsHash, SCORE_EXCLUDED, SCORE_KEPT } from "../../src/learning/finalize.ts";
import { memoryBlobStore } from "../../src/learning/protocol.ts";
import { canonicalOf } from "../../src/learning/simulate.ts";
import { encodeCanonical } from "../../src/ml/encoding.ts";
import { initialWeights } from "../../src/ml/models.ts";
import { sha256Digest } from "../../src/storage/cid.ts";
import {
  type Actor,
  BASE_PARAMS,
  deployLearning,
  devActor,
  digestOf,
  keyActor,
  learningFixture,
  MAX_TX_GAS,
  syntheticScores,
  type TaskParams,
  TRAINER,
  VALIDATOR,
} from "./learning-fixture.ts";

const abi = LearningTasks.abi;
/** The contract's FINALIZE_TIMEOUT. */
const FINALIZE_TIMEOUT = 7_200;
const PHASE = { Finalize: 4, Done: 6, Expired: 7 } as const;
const TRAINER_STAKE = parseEther("10");
const VALIDATOR_STAKE = parseEther("20");

let chain: LedgerChain;
let token: Address;
let registry: Address;
let tasks: Address;
let treasury: Actor;
let owner: Actor;
let stranger: Actor;
const everyone: Actor[] = [];
let modelId: number;

const fx = learningFixture(() => ({ chain, token, registry, tasks }));
const { advanceTo, getRound, getTask, memberOf, send, view } = fx;

async function refused(p: Promise<unknown>, errorName: string, args?: readonly unknown[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ContractRefusedError, `expected ${errorName}, got ${String(err)}`);
    assert.equal(err.errorName, errorName, err.message);
    if (args !== undefined) assert.deepEqual(err.args, args);
    return true;
  });
}

/** A fresh actor per name, funded with ether and MIND and approved, so that no attack shares a member. */
async function actors(names: readonly string[]): Promise<Actor[]> {
  const out = names.map((n) => keyActor(chain, `attack:${n}`));
  await fx.fund(treasury, out, parseEther("1000"));
  everyone.push(...out);
  return out;
}

/**
 * A task on the test model with `trainers`, then `validators`, joined one transaction at a time (so the
 * lists, and the order of a round's scores, are the order given), at the minimum stakes.
 */
async function taskWith(p: Partial<TaskParams>, trainers: Actor[], validators: Actor[]): Promise<bigint> {
  const id = await fx.createTask(owner, { ...BASE_PARAMS, modelId, ...p });
  for (const t of trainers) await send(t, "join", [id, TRAINER, TRAINER_STAKE]);
  for (const v of validators) await send(v, "join", [id, VALIDATOR, VALIDATOR_STAKE]);
  return id;
}

const stakeOf = async (id: bigint, role: number, a: Actor) => (await memberOf(id, role, a)).stake;
const earnedOf = async (id: bigint, role: number, a: Actor) => (await memberOf(id, role, a)).earned;

before(async () => {
  chain = await connect({ ephemeral: true });
  ({ token, registry, tasks } = await deployLearning(chain));
  treasury = devActor(chain, 0, "treasury");
  owner = devActor(chain, 1, "owner");
  stranger = devActor(chain, 2, "stranger");
  everyone.push(treasury, owner, stranger);
  for (let i = 3; i < 20; i++) everyone.push(devActor(chain, i, `dev${i}`));
  await fx.fund(treasury, [owner, stranger], parseEther("100000"));
  modelId = Number(await fx.registerModel(owner, "attacked-model"));
  await fx.registryTx(owner, "setApprovalForAll", [tasks, true]);
});

after(async () => {
  await chain?.close();
});

describe("LearningTasks attacks (issue 9)", () => {
  it("attack 3, one validator of two settles a round alone and its Sybil trainer takes the pot: no round starts with 2 validators; with 3 the attacker is outvoted", async () => {
    const [h0, h1, sybil, attacker, honest1, honest2] = (await actors([
      "3a:h0",
      "3a:h1",
      "3a:sybil",
      "3a:attacker",
      "3a:honest1",
      "3a:honest2",
    ])) as [Actor, Actor, Actor, Actor, Actor, Actor];
    const id = await taskWith({}, [h0, h1, sybil], [attacker, honest1]);
    // Two validators: a strict majority of stake would be one of them alone.
    await refused(send(owner, "startRound", [id]), "NotEnoughValidators", [id, 2n, 3n]);
    await send(honest2, "join", [id, VALIDATOR, VALIDATOR_STAKE]);
    // The attacker scores the honest updates 0 and its Sybil's junk 10,000; the honest validators score
    // the honest updates well and the junk 0 (evidence of malice: it fails their screens).
    const { round } = await fx.playRound(
      id,
      owner,
      [h0, h1, sybil],
      [attacker, honest1, honest2],
      [
        [0, 0, 10_000],
        [8_000, 7_800, 0],
        [8_100, 7_700, 0],
      ],
    );
    const receipt = await fx.finalizeAndCheck(id, round, stranger);
    const settled = new Map(
      parseEventLogs({ abi, logs: receipt.logs, eventName: "TrainerSettled" }).map((l) => [
        l.args.trainer,
        l.args,
      ]),
    );
    for (const h of [h0, h1]) {
      assert.equal(settled.get(h.address)?.accepted, true, `${h.name} accepted`);
      assert.equal(settled.get(h.address)?.slashed, 0n, `${h.name} not slashed`);
      assert.ok((settled.get(h.address)?.reward ?? 0n) > 0n, `${h.name} paid`);
    }
    assert.equal(settled.get(sybil.address)?.accepted, false);
    assert.equal(settled.get(sybil.address)?.reward, 0n, "the Sybil takes nothing");
    assert.equal(
      await stakeOf(id, TRAINER, sybil),
      TRAINER_STAKE - TRAINER_STAKE / 10n,
      "the Sybil is slashed",
    );
    // The attacker's scores are far from consensus: it earns less than either honest validator.
    const attackerEarned = await earnedOf(id, VALIDATOR, attacker);
    for (const v of [honest1, honest2]) assert.ok(attackerEarned < (await earnedOf(id, VALIDATOR, v)));
    await fx.assertConservation(everyone);
  });

  it("attack 3, four validators split 2-2 and the low pair would win a lower median: the split updates are void, nobody honest is slashed", async () => {
    const [h0, h1, good0, good1, bad0, bad1] = (await actors([
      "3b:h0",
      "3b:h1",
      "3b:good0",
      "3b:good1",
      "3b:bad0",
      "3b:bad1",
    ])) as [Actor, Actor, Actor, Actor, Actor, Actor];
    const id = await taskWith({}, [h0, h1], [good0, good1, bad0, bad1]);
    const [, before] = await getTask(id);
    const { round } = await fx.playRound(
      id,
      owner,
      [h0, h1],
      [good0, good1, bad0, bad1],
      [
        [8_000, 7_900],
        [8_100, 8_000],
        [0, 0],
        [0, 0],
      ],
    );
    const receipt = await fx.finalizeAndCheck(id, round, stranger);
    for (const l of parseEventLogs({ abi, logs: receipt.logs, eventName: "TrainerSettled" })) {
      assert.deepEqual(
        [l.args.committed, l.args.accepted, l.args.reward, l.args.slashed],
        [true, false, 0n, 0n],
      );
    }
    for (const h of [h0, h1]) assert.equal(await stakeOf(id, TRAINER, h), TRAINER_STAKE);
    for (const v of [good0, good1, bad0, bad1])
      assert.equal(await stakeOf(id, VALIDATOR, v), VALIDATOR_STAKE);
    // The attackers gain nothing over the honest pair: the validators' pool is shared equally.
    assert.equal(await earnedOf(id, VALIDATOR, bad0), await earnedOf(id, VALIDATOR, good0));
    // The trainers' pool nobody earned goes back to the task.
    const pool = BASE_PARAMS.rewardPerRound;
    const [, after] = await getTask(id);
    assert.equal(after.poolLeft, before.poolLeft - pool + (pool - (pool * 2_000n) / 10_000n));
    await fx.assertConservation(everyone);
  });

  it("attack 3, one validator of three reveals alone to reject the honest updates: below a majority of the stake the round is not scored; silent stakes are burned, not the creator's", async () => {
    const [h0, h1, attacker, v1, v2] = (await actors([
      "3c:h0",
      "3c:h1",
      "3c:attacker",
      "3c:v1",
      "3c:v2",
    ])) as [Actor, Actor, Actor, Actor, Actor];
    const id = await taskWith({}, [h0, h1], [attacker, v1, v2]);
    const burned = await view<bigint>("burned");
    const [, before] = await getTask(id);
    const { round } = await fx.playRound(id, owner, [h0, h1], [attacker], [[0, 0]]);
    const receipt = await fx.finalizeAndCheck(id, round, stranger);
    const [fin] = parseEventLogs({ abi, logs: receipt.logs, eventName: "RoundFinalized" });
    assert.equal(fin?.args.accepted, 0n);
    for (const h of [h0, h1]) assert.equal(await stakeOf(id, TRAINER, h), TRAINER_STAKE, "not slashed");
    // The two silent validators lose 10 % each, kept by the contract; the creator gets back its pool only.
    const slashes = 2n * (VALIDATOR_STAKE / 10n);
    assert.equal(await view<bigint>("burned"), burned + slashes);
    const [, after] = await getTask(id);
    assert.equal(after.poolLeft, before.poolLeft, "the pool back, and not a wei of the slashes");
    await fx.assertConservation(everyone);
  });

  it("attack 4, two of four validators install a poisoned aggregate with a quorum of 2: below two thirds of the revealed stake it never becomes a version, and the honest proposer keeps its stake", async () => {
    const [h0, h1, honest0, honest1, bad0, bad1] = (await actors([
      "4:h0",
      "4:h1",
      "4:honest0",
      "4:honest1",
      "4:bad0",
      "4:bad1",
    ])) as [Actor, Actor, Actor, Actor, Actor, Actor];
    const id = await taskWith({ quorumBps: 6_667 }, [h0, h1], [honest0, honest1, bad0, bad1]);
    const scores = [8_000, 7_900];
    const { round } = await fx.playRound(
      id,
      owner,
      [h0, h1],
      [honest0, honest1, bad0, bad1],
      [scores, scores, scores, scores],
    );
    await fx.finalizeAndCheck(id, round, stranger);
    const versions = await fx.read(
      chain.publicClient.readContract({
        address: registry,
        abi: ModelRegistry.abi,
        functionName: "versionCount",
        args: [BigInt(modelId)],
      }),
    );
    const good = digestOf("attack4:good");
    const poison = digestOf("attack4:poison");
    const receipts: TransactionReceipt[] = [
      await send(honest0, "proposeAggregate", [id, round, good]),
      await send(bad0, "proposeAggregate", [id, round, poison]),
      await send(bad1, "attestAggregate", [id, round, poison]),
      await send(honest1, "attestAggregate", [id, round, good]),
    ];
    for (const r of receipts) {
      assert.deepEqual(parseEventLogs({ abi, logs: r.logs, eventName: "AggregateAccepted" }), []);
      assert.deepEqual(parseEventLogs({ abi, logs: r.logs, eventName: "ProposerSlashed" }), []);
    }
    const [, , stakes] = await view<readonly [Hex[], Address[], bigint[]]>("getProposals", [id, round]);
    assert.deepEqual(stakes, [2n * VALIDATOR_STAKE, 2n * VALIDATOR_STAKE], "half of 80 each: no quorum");
    const r = await getRound(id, round);
    // Views run at the head: one block past the window's last.
    await advanceTo(BigInt(r.result.finalizedAt) + BigInt(BASE_PARAMS.aggregateWindow) + 1n);
    assert.equal(await view("phaseOf", [id, round]), PHASE.Done);
    assert.equal((await getRound(id, round)).result.aggregated, false);
    const now = await fx.read(
      chain.publicClient.readContract({
        address: registry,
        abi: ModelRegistry.abi,
        functionName: "versionCount",
        args: [BigInt(modelId)],
      }),
    );
    assert.equal(now, versions, "no poisoned version in the registry");
    for (const v of [honest0, honest1]) {
      assert.equal(await stakeOf(id, VALIDATOR, v), VALIDATOR_STAKE, `${v.name} keeps its stake`);
    }
    // Nothing stays locked: the next round starts from the unpoisoned version.
    await fx.startRound(id, owner);
    assert.equal(
      (await getRound(id, round + 1)).state.baseVersion,
      (await getRound(id, round)).state.baseVersion,
    );
    await fx.assertConservation(everyone);
  });

  it("attack 8, two strangers join and exit to use up the member slots: exits free their slots and the task still starts rounds", async () => {
    const [s0, s1, t0, t1, v0, v1, v2] = (await actors([
      "8:s0",
      "8:s1",
      "8:t0",
      "8:t1",
      "8:v0",
      "8:v1",
      "8:v2",
    ])) as [Actor, Actor, Actor, Actor, Actor, Actor, Actor];
    const id = await taskWith({ maxTrainers: 2, maxValidators: 3 }, [], []);
    // Each stranger joins and leaves in both roles, for nothing but gas.
    for (const s of [s0, s1]) {
      await send(s, "join", [id, TRAINER, TRAINER_STAKE]);
      await send(s, "exitTask", [id, TRAINER]);
      await send(s, "join", [id, VALIDATOR, VALIDATOR_STAKE]);
      await send(s, "exitTask", [id, VALIDATOR]);
    }
    assert.deepEqual(await view("trainersOf", [id]), []);
    assert.deepEqual(await view("validatorsOf", [id]), []);
    await fx.joinAll(id, [t0, t1], TRAINER, TRAINER_STAKE);
    await fx.joinAll(id, [v0, v1, v2], VALIDATOR, VALIDATOR_STAKE);
    await refused(send(s0, "join", [id, TRAINER, TRAINER_STAKE]), "TooManyMembers", [id, 2n]);
    // A leaver's slot goes to the last member, so the list stays dense: the order of the next round's scores.
    await send(v0, "exitTask", [id, VALIDATOR]);
    assert.deepEqual(await view("validatorsOf", [id]), [v2.address, v1.address]);
    await send(v0, "join", [id, VALIDATOR, VALIDATOR_STAKE]);
    const { round } = await fx.playRound(
      id,
      owner,
      [t0, t1],
      [v2, v1, v0],
      [
        [8_000, 7_000],
        [8_000, 7_000],
        [8_000, 7_000],
      ],
    );
    await fx.finalizeAndCheck(id, round, stranger);
    assert.equal((await getRound(id, round)).result.accepted, 2);
    await fx.assertConservation(everyone);
  });

  it("attack 9, the creator starts the next round in the block after finalize to keep members in: no round starts for exitWindow blocks, and members leave in them", async () => {
    const [t0, t1, v0, v1, v2] = (await actors(["9a:t0", "9a:t1", "9a:v0", "9a:v1", "9a:v2"])) as [
      Actor,
      Actor,
      Actor,
      Actor,
      Actor,
    ];
    const id = await taskWith({ rounds: 2 }, [t0, t1], [v0, v1, v2]);
    const s = [8_000, 7_000];
    const { round } = await fx.playRound(id, owner, [t0, t1], [v0, v1, v2], [s, s, s]);
    const fin = await fx.finalizeAndCheck(id, round, t0);
    const opensAfter = fin.blockNumber + BigInt(BASE_PARAMS.exitWindow);
    await refused(send(owner, "startRound", [id]), "ExitWindowOpen", [id, round, opensAfter]);
    const stake = await stakeOf(id, TRAINER, t1);
    const earned = await earnedOf(id, TRAINER, t1);
    const exit = await send(t1, "exitTask", [id, TRAINER]);
    assert.ok(exit.blockNumber <= opensAfter, "inside the window");
    const [left] = parseEventLogs({ abi, logs: exit.logs, eventName: "Left" });
    assert.deepEqual([left?.args.stake, left?.args.earned], [stake, earned]);
    await advanceTo(opensAfter - 1n);
    await refused(send(owner, "startRound", [id]), "ExitWindowOpen", [id, round, opensAfter]);
    await advanceTo(opensAfter);
    await send(owner, "startRound", [id]);
    await fx.assertConservation(everyone);
  });

  it("attack 9, nobody finalizes a round to keep the stakes in: after FINALIZE_TIMEOUT the round expires, nobody is slashed and members leave with their whole stake", async () => {
    const [t0, t1, v0, v1, v2] = (await actors(["9b:t0", "9b:t1", "9b:v0", "9b:v1", "9b:v2"])) as [
      Actor,
      Actor,
      Actor,
      Actor,
      Actor,
    ];
    const id = await taskWith({ rounds: 2 }, [t0, t1], [v0, v1, v2]);
    const s = [8_000, 7_000];
    // v2 commits no scores: finalize would slash it; the round expires instead.
    const { round } = await fx.playRound(id, owner, [t0, t1], [v0, v1], [s, s]);
    const r = await getRound(id, round);
    await refused(send(v2, "exitTask", [id, VALIDATOR]), "RoundInProgress", [id, round]);
    const expiry = BigInt(r.state.revealDeadline) + BigInt(FINALIZE_TIMEOUT);
    // Views run at the head.
    await advanceTo(expiry);
    assert.equal(await view("phaseOf", [id, round]), PHASE.Finalize, "the last block to finalize in");
    await advanceTo(expiry + 1n);
    assert.equal(await view("phaseOf", [id, round]), PHASE.Expired);
    await refused(send(stranger, "finalize", [id, round]), "WrongPhase", [
      id,
      round,
      PHASE.Finalize,
      PHASE.Expired,
    ]);
    const [, before] = await getTask(id);
    const exit = await send(v2, "exitTask", [id, VALIDATOR]);
    const [expired] = parseEventLogs({ abi, logs: exit.logs, eventName: "RoundExpired" });
    assert.equal(expired?.args.pool, BASE_PARAMS.rewardPerRound);
    const [left] = parseEventLogs({ abi, logs: exit.logs, eventName: "Left" });
    assert.equal(left?.args.stake, VALIDATOR_STAKE, "the whole stake");
    for (const t of [t0, t1]) {
      const m = await memberOf(id, TRAINER, t);
      assert.equal(m.stake, TRAINER_STAKE);
      await send(t, "exitTask", [id, TRAINER]);
    }
    const [, after] = await getTask(id);
    assert.equal(after.poolLeft, before.poolLeft + BASE_PARAMS.rewardPerRound, "the round's pool back");
    const closed = await getRound(id, round);
    assert.deepEqual([closed.result.expired, closed.result.finalizedAt], [true, Number(expiry)]);
    await fx.assertConservation(everyone);
  });

  it("attack 9, a task with no reward and 2^32 rounds farms no-shows for its creator: such tasks are refused, and no-show slashes are burned, never credited to the creator", async () => {
    for (const [bad, field] of [
      [{ rewardPerRound: 0n }, 5n],
      [{ rounds: 2 ** 32 - 1 }, 6n],
      [{ exitWindow: 0 }, 13n],
    ] as const) {
      await refused(
        fx.read(
          chain.publicClient.simulateContract({
            account: owner.wallet.account,
            address: tasks,
            abi,
            functionName: "createTask",
            args: [{ ...BASE_PARAMS, modelId, ...bad }],
          } as never),
        ),
        "InvalidParams",
        [field],
      );
    }
    const [t0, t1, v0, v1, v2] = (await actors(["9c:t0", "9c:t1", "9c:v0", "9c:v1", "9c:v2"])) as [
      Actor,
      Actor,
      Actor,
      Actor,
      Actor,
    ];
    const id = await taskWith({ rounds: 1 }, [t0, t1], [v0, v1, v2]);
    const burned = await view<bigint>("burned");
    const [, before] = await getTask(id);
    // Nobody commits: both trainers are no-shows; the validators are excused.
    const { round } = await fx.playRound(id, owner, [], [], []);
    await fx.finalizeAndCheck(id, round, stranger);
    const [, after] = await getTask(id);
    assert.equal(after.poolLeft, before.poolLeft, "the creator gets its round's pool back, and nothing more");
    assert.equal(await view<bigint>("burned"), burned + 2n * (TRAINER_STAKE / 10n));
    const owed = await view<bigint>("withdrawable", [owner.address]);
    const close = await send(owner, "closeTask", [id]);
    const [closed] = parseEventLogs({ abi, logs: close.logs, eventName: "TaskClosed" });
    assert.equal(closed?.args.refund, BASE_PARAMS.rewardPerRound);
    assert.equal(await view<bigint>("withdrawable", [owner.address]), owed + BASE_PARAMS.rewardPerRound);
    await fx.assertConservation(everyone);
  });

  it("attack 11, a copier front-runs a trainer's digest to make its commit fail: the victim's commit stands, the copy names its victim, scores 0 and is slashed", async () => {
    const [victim, copier, other, v0, v1, v2] = (await actors([
      "11:victim",
      "11:copier",
      "11:other",
      "11:v0",
      "11:v1",
      "11:v2",
    ])) as [Actor, Actor, Actor, Actor, Actor, Actor];
    const id = await taskWith({}, [victim, copier, other], [v0, v1, v2]);
    const round = await fx.startRound(id, owner);
    const store = memoryBlobStore();
    const model = encodeCanonical(canonicalOf("logreg-784-10", initialWeights("logreg-784-10", 11)));
    const sealed = (trainer: Actor, salt: number) =>
      sealUpdate(
        { contract: tasks, taskId: id, round, trainer: trainer.address },
        salt === 0
          ? model
          : encodeCanonical(canonicalOf("logreg-784-10", initialWeights("logreg-784-10", salt))),
      );
    const victimBytes = sealed(victim, 0);
    const otherBytes = sealed(other, 12);
    const digest = sha256Digest(victimBytes);
    // The copier sees the victim's digest and commits it first.
    await send(copier, "commitUpdate", [id, round, digest, 1_000]);
    await send(victim, "commitUpdate", [id, round, digest, 1_000]);
    await send(other, "commitUpdate", [id, round, sha256Digest(otherBytes), 900]);
    assert.deepEqual(await view("getUpdate", [id, victim.address]), { digest, round, samples: 1_000 });
    const r = await getRound(id, round);
    await advanceTo(r.state.commitDeadline);
    await store.put(victimBytes);
    await store.put(otherBytes);
    // What an honest validator sees: the copy's envelope names the victim, not the copier.
    const [trainers, digests] = await view<readonly [Address[], Hex[], number[]]>("roundUpdates", [
      id,
      round,
    ]);
    const scores: number[] = [];
    for (const [i, trainer] of trainers.entries()) {
      const fetched = await fetchTrainerUpdate(store, digests[i] as Hex, {
        contract: tasks,
        taskId: id,
        round,
        trainer,
      });
      if (trainer === copier.address) assert.match((fetched as { reason: string }).reason, /a copied digest/);
      scores.push("reason" in fetched ? 0 : 8_000);
    }
    assert.deepEqual(scores, [8_000, 0, 8_000]);
    for (const v of [v0, v1, v2]) await fx.commitScoresTx(v, id, round, scores);
    await advanceTo(r.state.scoreDeadline);
    for (const v of [v0, v1, v2]) await fx.revealTx(v, id, round, scores);
    await advanceTo(r.state.revealDeadline);
    const receipt = await fx.finalizeAndCheck(id, round, stranger);
    const settled = new Map(
      parseEventLogs({ abi, logs: receipt.logs, eventName: "TrainerSettled" }).map((l) => [
        l.args.trainer,
        l.args,
      ]),
    );
    assert.equal(settled.get(victim.address)?.accepted, true);
    assert.ok((settled.get(victim.address)?.reward ?? 0n) > 0n, "the victim is paid");
    assert.equal(settled.get(copier.address)?.accepted, false);
    assert.equal(settled.get(copier.address)?.reward, 0n);
    assert.equal(
      await stakeOf(id, TRAINER, copier),
      TRAINER_STAKE - TRAINER_STAKE / 10n,
      "the copier is slashed",
    );
    await fx.assertConservation(everyone);
  });
});

// Issue 10: on skewed data an honest update can score low at every validator. Only a consensus of 0 (more
// than half of the revealed stake scoring it 0) is evidence that slashes; any other score under the bar
// excludes the update without blame: unpaid, not slashed, not aggregated.
describe("LearningTasks slashing tiers (issue 10)", () => {
  /** The client's reading of a finalization: each trainer's tier, reward and slash, by trainer. */
  const tiersOf = (receipt: TransactionReceipt) =>
    new Map(settlementOf(receipt).trainers.map((t) => [t.address, t]));

  it("issue 10: an honest update that validators exclude (score 1) is unpaid but never slashed", async () => {
    const [h0, skewed, h2, v0, v1, v2] = (await actors([
      "10a:h0",
      "10a:skewed",
      "10a:h2",
      "10a:v0",
      "10a:v1",
      "10a:v2",
    ])) as [Actor, Actor, Actor, Actor, Actor, Actor];
    // The client's defaults: minScore SCORE_KEPT, no relative threshold.
    const id = await taskWith({ minScore: SCORE_KEPT, relativeBps: 0 }, [h0, skewed, h2], [v0, v1, v2]);
    const { round } = await fx.playRound(
      id,
      owner,
      [h0, skewed, h2],
      [v0, v1, v2],
      [
        [8_000, SCORE_EXCLUDED, 7_000],
        [8_100, SCORE_EXCLUDED, 7_200],
        [7_900, SCORE_EXCLUDED, 6_900],
      ],
    );
    const receipt = await fx.finalizeAndCheck(id, round, stranger);
    const tiers = tiersOf(receipt);
    assert.deepEqual(
      [h0, skewed, h2].map((t) => tiers.get(t.address)?.status),
      ["accepted", "excluded", "accepted"],
    );
    const s = tiers.get(skewed.address);
    assert.deepEqual([s?.committed, s?.score, s?.accepted, s?.reward, s?.slashed], [true, 1, false, 0n, 0n]);
    assert.equal(await stakeOf(id, TRAINER, skewed), TRAINER_STAKE, "the excluded trainer keeps its stake");
    assert.equal(await earnedOf(id, TRAINER, skewed), 0n, "and earns nothing");
    for (const h of [h0, h2]) assert.ok((await earnedOf(id, TRAINER, h)) > 0n, `${h.name} paid`);
    // A kept update (SCORE_KEPT) is accepted and unpaid: the pot goes to the updates above it.
    const kept = await fx.playRound(
      id,
      owner,
      [h0, skewed, h2],
      [v0, v1, v2],
      Array(3).fill([8_000, SCORE_KEPT, 7_000]),
    );
    const keptTiers = tiersOf(await fx.finalizeAndCheck(id, kept.round, stranger));
    const k = keptTiers.get(skewed.address);
    assert.deepEqual([k?.status, k?.reward, k?.slashed], ["accepted", 0n, 0n]);
    await fx.assertConservation(everyone);
  });

  it("issue 10: a minority of validator stake scoring an honest update 0 cannot slash it", async () => {
    const [honest, skewed, small0, small1, large] = (await actors([
      "10b:honest",
      "10b:skewed",
      "10b:small0",
      "10b:small1",
      "10b:large",
    ])) as [Actor, Actor, Actor, Actor, Actor];
    const id = await fx.createTask(owner, { ...BASE_PARAMS, modelId, minScore: SCORE_KEPT, relativeBps: 0 });
    for (const t of [honest, skewed]) await send(t, "join", [id, TRAINER, TRAINER_STAKE]);
    // Two validators of three by count, but 40 of 85 MIND of stake: a minority.
    for (const v of [small0, small1]) await send(v, "join", [id, VALIDATOR, VALIDATOR_STAKE]);
    const largeStake = 2n * VALIDATOR_STAKE + parseEther("5");
    await send(large, "join", [id, VALIDATOR, largeStake]);
    const { round } = await fx.playRound(
      id,
      owner,
      [honest, skewed],
      [small0, small1, large],
      [
        [0, 0],
        [0, 0],
        [7_000, SCORE_EXCLUDED],
      ],
    );
    const receipt = await fx.finalizeAndCheck(id, round, stranger);
    const tiers = tiersOf(receipt);
    assert.deepEqual(
      [honest, skewed].map((t) => [tiers.get(t.address)?.status, tiers.get(t.address)?.slashed]),
      [
        ["accepted", 0n],
        ["excluded", 0n],
      ],
    );
    for (const t of [honest, skewed]) assert.equal(await stakeOf(id, TRAINER, t), TRAINER_STAKE);
    assert.ok((await earnedOf(id, TRAINER, honest)) > 0n, "the honest update is paid");
    // The zero-scoring pair is far from consensus and earns less than the validator that held it.
    for (const v of [small0, small1])
      assert.ok((await earnedOf(id, VALIDATOR, v)) < (await earnedOf(id, VALIDATOR, large)));
    // With a strict majority of the stake behind it, a 0 slashes: the large validator joins the zeros.
    const second = await fx.playRound(
      id,
      owner,
      [honest, skewed],
      [small0, small1, large],
      [
        [7_000, 0],
        [7_000, 0],
        [7_000, 0],
      ],
    );
    const rejected = tiersOf(await fx.finalizeAndCheck(id, second.round, stranger)).get(skewed.address);
    assert.deepEqual([rejected?.status, rejected?.slashed], ["rejected", TRAINER_STAKE / 10n]);
    await fx.assertConservation(everyone);
  });

  it("issue 10: relative threshold rejects a low honest score without slashing it", async () => {
    const [h0, h1, low, v0, v1, v2] = (await actors([
      "10c:h0",
      "10c:h1",
      "10c:low",
      "10c:v0",
      "10c:v1",
      "10c:v2",
    ])) as [Actor, Actor, Actor, Actor, Actor, Actor];
    // Half of the round's median (8,000) is the bar: 3,000 falls under it, 4,000 would not.
    const id = await taskWith({ minScore: SCORE_KEPT, relativeBps: 5_000 }, [h0, h1, low], [v0, v1, v2]);
    const { round } = await fx.playRound(
      id,
      owner,
      [h0, h1, low],
      [v0, v1, v2],
      Array(3).fill([8_000, 8_200, 3_000]),
    );
    const receipt = await fx.finalizeAndCheck(id, round, stranger);
    const [fin] = parseEventLogs({ abi, logs: receipt.logs, eventName: "RoundFinalized" });
    assert.equal(fin?.args.roundMedian, 8_000n);
    const l = tiersOf(receipt).get(low.address);
    assert.deepEqual(
      [l?.status, l?.score, l?.accepted, l?.reward, l?.slashed],
      ["excluded", 3_000, false, 0n, 0n],
    );
    assert.equal(await stakeOf(id, TRAINER, low), TRAINER_STAKE, "not slashed");
    // The same bar with minScore: 3,000 under minScore 5,000 is excluded too, never slashed.
    const id2 = await fx.createTask(owner, { ...BASE_PARAMS, modelId, minScore: 5_000, relativeBps: 0 });
    for (const t of [h0, h1, low]) await send(t, "join", [id2, TRAINER, TRAINER_STAKE]);
    for (const v of [v0, v1, v2]) await send(v, "join", [id2, VALIDATOR, VALIDATOR_STAKE]);
    const r2 = await fx.playRound(
      id2,
      owner,
      [h0, h1, low],
      [v0, v1, v2],
      Array(3).fill([8_000, 8_200, 3_000]),
    );
    const l2 = tiersOf(await fx.finalizeAndCheck(id2, r2.round, stranger)).get(low.address);
    assert.deepEqual([l2?.status, l2?.slashed], ["excluded", 0n]);
    await fx.assertConservation(everyone);
  });

  it("issue 10: excluded updates are left out of contributorsHash and the aggregate", async () => {
    const [kept, excluded, poisoned, v0, v1, v2] = (await actors([
      "10d:kept",
      "10d:excluded",
      "10d:poisoned",
      "10d:v0",
      "10d:v1",
      "10d:v2",
    ])) as [Actor, Actor, Actor, Actor, Actor, Actor];
    const id = await taskWith(
      { minScore: SCORE_KEPT, relativeBps: 0, quorumBps: 6_000 },
      [kept, excluded, poisoned],
      [v0, v1, v2],
    );
    const { round } = await fx.playRound(
      id,
      owner,
      [kept, excluded, poisoned],
      [v0, v1, v2],
      Array(3).fill([8_000, SCORE_EXCLUDED, 0]),
    );
    const receipt = await fx.finalizeAndCheck(id, round, stranger);
    const settlement = settlementOf(receipt);
    assert.deepEqual(
      settlement.trainers.map((t) => [t.status, t.slashed > 0n]),
      [
        ["accepted", false],
        ["excluded", false],
        ["rejected", true],
      ],
    );
    // playRound commits digestOf(`${id}:${round}:${i}`) for trainer i.
    const onlyKept = contributorsHash([kept.address], [digestOf(`${id}:${round}:0`)]);
    assert.equal(settlement.contributorsHash, onlyKept);
    assert.equal((await getRound(id, round)).contributorsHash, onlyKept);
    // What an aggregator combines: the accepted updates, which hash to the round's record.
    const accepted = settlement.trainers.filter((t) => t.accepted).map((t) => t.address);
    assert.deepEqual(accepted, [kept.address]);
    // The aggregate that reaches quorum lists only the kept update's hash as its dataset.
    const digest = digestOf("10d:aggregate");
    await send(v0, "proposeAggregate", [id, round, digest]);
    const quorum = await send(v1, "attestAggregate", [id, round, digest]);
    const [done] = parseEventLogs({ abi, logs: quorum.logs, eventName: "AggregateAccepted" });
    assert.equal(done?.args.contributorsHash, onlyKept);
    const [added] = parseEventLogs({ abi: ModelRegistry.abi, logs: quorum.logs, eventName: "VersionAdded" });
    assert.deepEqual(added?.args.input.datasets, [onlyKept]);
    await fx.assertConservation(everyone);
  });
});

describe("LearningTasks attack 1 at the limits (issue 9)", () => {
  const N = 1_000;
  const K = 32;
  let id: bigint;
  let trainers: Actor[];
  let validators: Actor[];
  const largest = (rs: readonly TransactionReceipt[]) => Math.max(...rs.map((r) => Number(r.gasUsed)));
  /**
   * Scores that make every update's consensus as costly as it gets: validator j scores below validator j - 1,
   * so each column's keys arrive in descending order and the insertion sort shifts every one; one update in
   * seven is split evenly (void), and the rest spread over the whole scale.
   */
  const costliest = () =>
    Array.from({ length: K }, (_, j) =>
      Array.from({ length: N }, (_, i) =>
        i % 7 === 3 ? (j < K / 2 ? 9_000 : 1_000) : 9_900 - 300 * j - (i % 13),
      ),
    );

  before(async () => {
    trainers = Array.from({ length: N }, (_, i) => keyActor(chain, `limit:t${i}`));
    validators = Array.from({ length: K }, (_, j) => keyActor(chain, `limit:v${j}`));
    await fx.fund(treasury, [...trainers, ...validators], parseEther("100"));
    id = await fx.createTask(owner, {
      ...BASE_PARAMS,
      modelId,
      rounds: 3,
      maxTrainers: N,
      maxValidators: K,
      commitWindow: 200,
      scoreWindow: 20,
      revealWindow: 40,
    });
    await fx.joinAll(id, trainers, TRAINER, TRAINER_STAKE);
    await fx.joinAll(id, validators, VALIDATOR, VALIDATOR_STAKE);
  });

  it("attack 1, outsiders fill a task so that finalize needs more gas than a transaction may use and every stake freezes: with 1,000 trainers and 32 validators scoring in the costliest order every transaction stays under 10M gas and the round settles in steps exactly as the mirror says", async () => {
    const played = await fx.playRound(id, owner, trainers, validators, costliest());
    const fin = await fx.finalizeAndCheck(id, played.round, stranger);
    const round = [played.start, ...played.commits, ...played.scoreCommits, ...played.reveals, ...fin.steps];
    console.log(
      `${N} trainers x ${K} validators: reveal ${largest(played.reveals)}, ${fin.steps.length} finalize steps, ` +
        `largest step ${largest(fin.steps)}, sum ${fin.gasUsed}; largest transaction ${largest(round)}; ` +
        `steps (M gas): ${fin.steps.map((r) => (Number(r.gasUsed) / 1e6).toFixed(2)).join(" ")}`,
    );
    for (const r of round) assert.ok(r.gasUsed < MAX_TX_GAS, `a transaction used ${r.gasUsed} gas`);
    assert.ok(largest(round) < Number(MAX_TX_GAS));
    assert.ok(fin.steps.length > 1, "the round took more than one step");
    assert.equal((await getRound(id, played.round)).phase, PHASE.Done);
    await fx.assertConservation(everyone.concat(trainers, validators), false);
  });

  it("attack 1, nobody finishes a finalization that was started: before any member is written the round still expires and slashes nobody; once the settle pass has begun it cannot expire and a stranger finishes it", async () => {
    // Round 2: one step (consensus only), then silence until the timeout: the round expires untouched.
    const second = await fx.playRound(id, owner, trainers, validators, costliest());
    const step = await send(stranger, "finalize", [id, second.round]);
    assert.equal(parseEventLogs({ abi, logs: step.logs, eventName: "TrainerSettled" }).length, 0);
    const books = () =>
      Promise.all(
        [...trainers.slice(0, 20), ...validators].map(async (a) => {
          const m = await memberOf(id, trainers.includes(a) ? TRAINER : VALIDATOR, a.address);
          return [m.stake, m.earned];
        }),
      );
    const before2 = await books();
    const r2 = await getRound(id, second.round);
    await advanceTo(BigInt(r2.state.revealDeadline) + BigInt(FINALIZE_TIMEOUT) + 1n);
    assert.equal(await view("phaseOf", [id, second.round]), PHASE.Expired);
    await refused(send(stranger, "finalize", [id, second.round]), "WrongPhase", [
      id,
      second.round,
      PHASE.Finalize,
      PHASE.Expired,
    ]);
    // Round 3 starts (expiring round 2 first, whose exit window counts from its expiry): nobody was slashed
    // or paid by the half-done finalization.
    await advanceTo(BigInt(r2.state.revealDeadline) + BigInt(FINALIZE_TIMEOUT + BASE_PARAMS.exitWindow));
    const third = await fx.playRound(id, owner, trainers, validators, costliest());
    assert.equal((await getRound(id, second.round)).result.expired, true);
    assert.deepEqual(await books(), before2);

    // Round 3: steps until the settle pass has written members, then the timeout passes: still Finalize,
    // nobody may leave a half-settled round, and the stranger's remaining steps settle it as the mirror says.
    let tested = false;
    await fx.finalizeAndCheck(id, third.round, stranger, async (receipt) => {
      if (tested || parseEventLogs({ abi, logs: receipt.logs, eventName: "TrainerSettled" }).length === 0)
        return;
      tested = true;
      const r3 = await getRound(id, third.round);
      await advanceTo(BigInt(r3.state.revealDeadline) + BigInt(FINALIZE_TIMEOUT) + 1n);
      assert.equal(await view("phaseOf", [id, third.round]), PHASE.Finalize);
      await refused(send(trainers[0] as Actor, "exitTask", [id, TRAINER]), "RoundInProgress", [
        id,
        third.round,
      ]);
    });
    assert.ok(tested, "the settle pass took more than one step");
    assert.equal((await getRound(id, third.round)).result.expired, false);
    await fx.assertConservation(everyone.concat(trainers, validators), false);
  });
});

describe("LearningTasks attack 1, reveals past one page (issue 9)", () => {
  it("attack 1, outsiders fill a task so that one reveal needs more gas than a transaction may use: with 4,100 trainers each validator reveals in two pages under 10M gas, the pages store every score and the round settles as the mirror says", async () => {
    const n = 4_100;
    const trainers = Array.from({ length: n }, (_, i) => keyActor(chain, `pages:t${i}`));
    const validators = Array.from({ length: 3 }, (_, j) => keyActor(chain, `pages:v${j}`));
    await fx.fund(treasury, [...trainers, ...validators], parseEther("100"));
    const id = await fx.createTask(owner, {
      ...BASE_PARAMS,
      modelId,
      rounds: 1,
      maxTrainers: n,
      maxValidators: 3,
      commitWindow: 400,
      scoreWindow: 10,
      revealWindow: 20,
    });
    await fx.joinAll(id, trainers, TRAINER, TRAINER_STAKE);
    await fx.joinAll(id, validators, VALIDATOR, VALIDATOR_STAKE);
    const scores = syntheticScores(3, n);
    const played = await fx.playRound(id, owner, trainers, validators, scores);
    assert.equal(played.reveals.length, 6, "two pages per validator");
    for (const r of played.reveals) assert.ok(r.gasUsed < MAX_TX_GAS, `a reveal page used ${r.gasUsed} gas`);
    for (const [j, v] of validators.entries()) {
      assert.equal(await view("revealProgress", [id, played.round, v.address]), 256n);
      assert.deepEqual(await view("getScores", [id, played.round, v.address]), scores[j]);
    }
    const fin = await fx.finalizeAndCheck(id, played.round, stranger);
    for (const r of fin.steps) assert.ok(r.gasUsed < MAX_TX_GAS);
    console.log(
      `${n} trainers x 3 validators: reveal pages ${played.reveals.map((r) => r.gasUsed).join(", ")}; ` +
        `${fin.steps.length} finalize steps, largest ${Math.max(...fin.steps.map((r) => Number(r.gasUsed)))}`,
    );
    everyone.push(...trainers, ...validators);
    await fx.assertConservation(everyone, false);
  });
});
