// Federated-learning tasks that name DataMarket datasets (issue 13, item 4): trainers need access to each
// dataset to join and at every commit; a trainer whose access ends mid-round takes its stake back and is
// settled as a no-show that loses nothing.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Abi, type Address, keccak256, maxUint256, parseEther, parseEventLogs, stringToHex } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { DataMarket, LearningTasks, MindToken, ModelRegistry } from "../../src/chain/generated/contracts.ts";
import { advanceTime } from "../../src/chain/time.ts";
import { ContractRefusedError, sendAndWait } from "../../src/chain/tx.ts";
import {
  DatasetAccessError,
  joinTask,
  memoryRoleStore,
  openTasks,
  type Signer,
  type Tasks,
  taskDatasets,
} from "../../src/learning/client.ts";
import { memoryBlobStore } from "../../src/learning/protocol.ts";
import { Trainer } from "../../src/learning/trainer.ts";
import { encodeCanonical } from "../../src/ml/encoding.ts";
import { createRng } from "../../src/ml/partition.ts";
import { sha256Digest } from "../../src/storage/cid.ts";
import { randomModel } from "../zk/random-model.ts";
import { bareVersion } from "./bare-version.ts";
import {
  type Actor,
  BASE_PARAMS,
  DATASET_ERRORS,
  deployLearning,
  devActor,
  digestOf,
  keyActor,
  learningFixture,
  TRAINER,
  VALIDATOR,
} from "./learning-fixture.ts";

const TRAINER_STAKE = BASE_PARAMS.minTrainerStake;
const VALIDATOR_STAKE = BASE_PARAMS.minValidatorStake;
const DAY = 86_400;

let chain: LedgerChain;
let token: Address;
let registry: Address;
let tasks: Address;
let market: Address;
let client: Tasks;
let treasury: Actor;
let owner: Actor;
let stranger: Actor;
/** Holds both data NFTs. */
let publisher: Actor;
let modelId: number;
/** For sale, one day per period. */
let forSale: bigint;
/** Not for sale: its owner only grants access. */
let grantOnly: bigint;
const observed = new Set<string>();

const fx = learningFixture(() => ({ chain, token, registry, tasks }));
const { advanceTo, getRound, getTask, memberOf, send, view } = fx;

async function refused(p: Promise<unknown>, errorName: string, args?: readonly unknown[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ContractRefusedError, `expected ${errorName}, got ${String(err)}`);
    assert.equal(err.errorName, errorName, err.message);
    if (args !== undefined) assert.deepEqual(err.args, args);
    observed.add(err.errorName);
    return true;
  });
}

function marketTx(who: Actor, functionName: string, args: readonly unknown[]) {
  return sendAndWait(chain, () =>
    who.wallet.writeContract({
      address: market,
      abi: DataMarket.abi as Abi,
      functionName,
      args,
    } as never),
  );
}

async function publishDataset(label: string, price: bigint): Promise<bigint> {
  const receipt = await marketTx(publisher, "publish", [
    `bafy-${label}`,
    keccak256(stringToHex(label)),
    price,
    BigInt(DAY),
    0,
  ]);
  const [log] = parseEventLogs({ abi: DataMarket.abi, logs: receipt.logs, eventName: "DatasetPublished" });
  if (!log) throw new Error("publish emitted no DatasetPublished");
  return log.args.datasetId;
}

async function now(): Promise<bigint> {
  return (await chain.publicClient.getBlock()).timestamp;
}

const grant = async (to: Actor, datasetId: bigint, days = 30) =>
  marketTx(publisher, "grantAccess", [datasetId, to.address, (await now()) + BigInt(days * DAY)]);

/** Fresh actors, funded with ether and MIND, approved for the task contract and the market. */
async function actors(names: readonly string[]): Promise<Actor[]> {
  const out = names.map((n) => keyActor(chain, `datasets:${n}`));
  await fx.fund(treasury, out, parseEther("1000"));
  for (const a of out)
    await sendAndWait(chain, () =>
      a.wallet.writeContract({
        address: token,
        abi: MindToken.abi,
        functionName: "approve",
        args: [market, maxUint256],
      }),
    );
  return out;
}

/** A hospital (a trainer) and three validators, fresh, named under `tag`. */
async function hospitalAndValidators(tag: string): Promise<[Actor, Actor, Actor, Actor]> {
  return (await actors([`${tag}:hospital`, `${tag}:v1`, `${tag}:v2`, `${tag}:v3`])) as [
    Actor,
    Actor,
    Actor,
    Actor,
  ];
}

async function taskNaming(datasets: readonly bigint[]): Promise<bigint> {
  const id = await fx.createTask(owner, { ...BASE_PARAMS, modelId });
  if (datasets.length > 0) await send(owner, "setDatasets", [id, datasets]);
  return id;
}

before(async () => {
  chain = await connect({ ephemeral: true });
  ({ token, registry, tasks, market } = await deployLearning(chain));
  client = await openTasks(chain);
  treasury = devActor(chain, 0, "treasury");
  owner = devActor(chain, 1, "owner");
  stranger = devActor(chain, 2, "stranger");
  await fx.fund(treasury, [owner, stranger], parseEther("100000"));
  modelId = Number(await fx.registerModel(owner, "data-bound-model"));
  await fx.registryTx(owner, "setApprovalForAll", [tasks, true]);
  [publisher] = (await actors(["publisher"])) as [Actor];
  forSale = await publishDataset("hospital-a", parseEther("1"));
  grantOnly = await publishDataset("patients-b", 0n);
});

after(async () => {
  await chain?.close();
});

describe("LearningTasks datasets (issue 13, item 4)", { concurrency: false }, () => {
  it("setDatasets: the creator names 1 to 4 distinct published datasets, once, before the first round", async () => {
    const id = await taskNaming([]);
    await refused(send(stranger, "setDatasets", [id, [forSale]]), "NotTaskCreator");
    await refused(send(owner, "setDatasets", [id, []]), "InvalidDatasetCount", [0n, 4n]);
    await refused(send(owner, "setDatasets", [id, [1n, 2n, 3n, 4n, 5n]]), "InvalidDatasetCount", [5n, 4n]);
    await refused(send(owner, "setDatasets", [id, [forSale, 999n]]), "UnknownDataset", [999n]);
    await refused(send(owner, "setDatasets", [id, [0n]]), "UnknownDataset", [0n]);
    await refused(send(owner, "setDatasets", [id, [forSale, forSale]]), "DuplicateDataset", [forSale]);
    assert.deepEqual(await taskDatasets(client, id), []);

    const receipt = await send(owner, "setDatasets", [id, [forSale, grantOnly]]);
    const [log] = parseEventLogs({
      abi: LearningTasks.abi,
      logs: receipt.logs,
      eventName: "TaskDatasetsSet",
    });
    assert.deepEqual(log?.args, { taskId: id, datasetIds: [forSale, grantOnly] });
    assert.deepEqual(await taskDatasets(client, id), [forSale, grantOnly]);
    const [, state] = await getTask(id);
    assert.equal(state.datasets, 2);
    await refused(send(owner, "setDatasets", [id, [forSale]]), "DatasetsFixed", [id]);
  });

  it("a trainer without access is refused by the client before sending and by the contract; bought access, a grant and the data NFT's owner join; validators need none", async () => {
    const [nobody, buyer, grantee, validator] = (await actors([
      "join:nobody",
      "join:buyer",
      "join:grantee",
      "join:validator",
    ])) as [Actor, Actor, Actor, Actor];
    const id = await taskNaming([forSale, grantOnly]);

    const nonce = await chain.publicClient.getTransactionCount({ address: nobody.address });
    await assert.rejects(
      joinTask(client, id, "trainer", TRAINER_STAKE, nobody.wallet.account as never),
      (err: unknown) => {
        assert.ok(err instanceof DatasetAccessError, String(err));
        assert.equal(err.datasetId, forSale);
        assert.match(err.message, new RegExp(`ledgermind data buy ${forSale}`));
        return true;
      },
    );
    assert.equal(await chain.publicClient.getTransactionCount({ address: nobody.address }), nonce);
    await refused(send(nobody, "join", [id, TRAINER, TRAINER_STAKE]), "DatasetAccessRequired", [
      id,
      forSale,
      nobody.address,
    ]);

    // Access to one dataset of two is not enough: the refusal names the missing one.
    await marketTx(buyer, "buyAccess", [forSale, 1, maxUint256]);
    await refused(send(buyer, "join", [id, TRAINER, TRAINER_STAKE]), "DatasetAccessRequired", [
      id,
      grantOnly,
      buyer.address,
    ]);
    await grant(buyer, grantOnly);
    await joinTask(client, id, "trainer", TRAINER_STAKE, buyer.wallet.account as never);

    await grant(grantee, forSale);
    await grant(grantee, grantOnly);
    await send(grantee, "join", [id, TRAINER, TRAINER_STAKE]);
    await send(publisher, "join", [id, TRAINER, TRAINER_STAKE]);
    await send(validator, "join", [id, VALIDATOR, VALIDATOR_STAKE]);
    for (const a of [buyer, grantee, publisher]) assert.equal((await memberOf(id, TRAINER, a)).status, 1);
    assert.equal((await memberOf(id, VALIDATOR, validator)).status, 1);
    assert.equal((await memberOf(id, TRAINER, nobody)).status, 0);
  });

  it("revoked consent, still training: the revoked trainer's commit is refused; it takes its stake back mid-round, is settled as a no-show that loses nothing, and leaves", async () => {
    const [grantee, v1, v2, v3] = (await actors([
      "revoke:grantee",
      "revoke:v1",
      "revoke:v2",
      "revoke:v3",
    ])) as [Actor, Actor, Actor, Actor];
    const id = await taskNaming([grantOnly]);
    await grant(grantee, grantOnly);
    await send(grantee, "join", [id, TRAINER, TRAINER_STAKE]);
    await send(publisher, "join", [id, TRAINER, TRAINER_STAKE]);
    for (const v of [v1, v2, v3]) await send(v, "join", [id, VALIDATOR, VALIDATOR_STAKE]);
    const heldBefore = (await fx.balanceOf(grantee.address)) + TRAINER_STAKE;

    const round = await fx.startRound(id, owner);
    const r = await getRound(id, round);
    assert.equal(r.state.datasets, 1);
    await marketTx(publisher, "revokeAccess", [grantOnly, grantee.address]);
    await refused(
      send(grantee, "commitUpdate", [id, round, digestOf("revoked"), 100]),
      "DatasetAccessRequired",
      [id, grantOnly, grantee.address],
    );
    // Only a trainer that really lost access, to a dataset the task names, takes its stake out mid-round.
    await refused(send(publisher, "releaseStakeWithoutAccess", [id, grantOnly]), "AccessNotLost", [
      id,
      grantOnly,
      publisher.address,
    ]);
    await send(publisher, "commitUpdate", [id, round, digestOf("owner"), 100]);
    await refused(send(grantee, "releaseStakeWithoutAccess", [id, forSale]), "NotTaskDataset", [id, forSale]);
    const receipt = await send(grantee, "releaseStakeWithoutAccess", [id, grantOnly]);
    const [log] = parseEventLogs({ abi: LearningTasks.abi, logs: receipt.logs, eventName: "StakeReleased" });
    assert.deepEqual(log?.args, {
      taskId: id,
      trainer: grantee.address,
      datasetId: grantOnly,
      stake: TRAINER_STAKE,
    });
    assert.equal((await memberOf(id, TRAINER, grantee)).stake, 0n);
    assert.equal(await view<bigint>("withdrawable", [grantee.address]), TRAINER_STAKE);
    await refused(send(grantee, "releaseStakeWithoutAccess", [id, grantOnly]), "NothingToWithdraw");

    await advanceTo(r.state.commitDeadline);
    for (const v of [v1, v2, v3]) await fx.commitScoresTx(v, id, round, [8_000]);
    await advanceTo(r.state.scoreDeadline);
    for (const v of [v1, v2, v3]) await fx.revealTx(v, id, round, [8_000]);
    await advanceTo(r.state.revealDeadline);
    // The mirror agrees: the released trainer is a no-show slashed nothing.
    const settled = await fx.finalizeAndCheck(id, round, stranger);
    const mine = parseEventLogs({
      abi: LearningTasks.abi,
      logs: settled.logs,
      eventName: "TrainerSettled",
    }).find((l) => l.args.trainer === grantee.address);
    assert.equal(mine?.args.committed, false);
    assert.equal(mine?.args.slashed, 0n);

    await send(grantee, "exitTask", [id, TRAINER]);
    await send(grantee, "withdraw", []);
    assert.equal(await fx.balanceOf(grantee.address), heldBefore, "the whole stake came back");
    await fx.assertConservation([grantee, publisher, v1, v2, v3], false);
  });

  it("a hospital's trainer role whose consent was revoked takes its stake back instead of training: its absence costs nothing", async () => {
    const [hospital, v1, v2, v3] = await hospitalAndValidators("role");
    const id = await taskNaming([grantOnly]);
    await grant(hospital, grantOnly);
    await send(hospital, "join", [id, TRAINER, TRAINER_STAKE]);
    for (const v of [v1, v2, v3]) await send(v, "join", [id, VALIDATOR, VALIDATOR_STAKE]);
    await fx.startRound(id, owner);
    await marketTx(publisher, "revokeAccess", [grantOnly, hospital.address]);
    let trained = false;
    const trainer = new Trainer({
      tasks: client,
      taskId: id,
      signer: hospital.wallet.account as Signer,
      store: memoryBlobStore(),
      own: memoryRoleStore(),
      samples: 100,
      produce: async () => {
        trained = true;
        throw new Error("trained without access");
      },
    });
    const [refusal, ...more] = (await trainer.step()).actions;
    assert.equal(trained, false, "nothing is trained on records it may no longer use");
    assert.deepEqual(more, []);
    assert.equal(refusal?.kind, "refuse");
    assert.match(
      refusal?.reason ?? "",
      new RegExp(`^no access to dataset ${grantOnly}: its stake was released, so its absence costs nothing$`),
    );
    assert.ok((refusal?.gasUsed ?? 0n) > 0n, "the release was sent");
    assert.equal((await memberOf(id, TRAINER, hospital)).stake, 0n);
    assert.equal(await view<bigint>("withdrawable", [hospital.address]), TRAINER_STAKE);
    assert.deepEqual((await trainer.step()).actions, [], "once released, it waits out the round");
  });

  it("consent revoked while the hospital's trainer role trains: the refused commit releases its stake", async () => {
    const [hospital, v1, v2, v3] = await hospitalAndValidators("train");
    // A model whose version 1 has real weights in the store: the trainer fetches its base before training.
    const store = memoryBlobStore();
    const bytes = encodeCanonical(randomModel("logreg-4-2", 16, createRng("revoked-while-training"), false));
    await store.put(bytes);
    const registered = await fx.registryTx(owner, "registerModel", ["data-bound-weights"]);
    const [made] = parseEventLogs({
      abi: ModelRegistry.abi,
      logs: registered.logs,
      eventName: "ModelRegistered",
    });
    await fx.registryTx(owner, "addVersion", [
      made?.args.modelId,
      { ...bareVersion("data-bound-weights:v1"), weightsDigest: sha256Digest(bytes) },
    ]);
    const id = await fx.createTask(owner, { ...BASE_PARAMS, modelId: Number(made?.args.modelId) });
    await send(owner, "setDatasets", [id, [grantOnly]]);
    await grant(hospital, grantOnly);
    await send(hospital, "join", [id, TRAINER, TRAINER_STAKE]);
    for (const v of [v1, v2, v3]) await send(v, "join", [id, VALIDATOR, VALIDATOR_STAKE]);
    await fx.startRound(id, owner);
    const trainer = new Trainer({
      tasks: client,
      taskId: id,
      signer: hospital.wallet.account as Signer,
      store,
      own: memoryRoleStore(),
      samples: 100,
      produce: async ({ base }) => {
        await marketTx(publisher, "revokeAccess", [grantOnly, hospital.address]);
        return base;
      },
    });
    const [refusal, ...more] = (await trainer.step()).actions;
    assert.deepEqual(more, []);
    assert.equal(refusal?.kind, "refuse");
    assert.match(refusal?.reason ?? "", /: its stake was released, so its absence costs nothing$/);
    assert.equal((await memberOf(id, TRAINER, hospital)).commitRound, 0, "nothing was committed");
    assert.equal((await memberOf(id, TRAINER, hospital)).stake, 0n);
    assert.equal(await view<bigint>("withdrawable", [hospital.address]), TRAINER_STAKE);
  });

  it("access that expires mid-round refuses the commit; an update committed before it expired stands", async () => {
    const [early, late] = (await actors(["expiry:early", "expiry:late"])) as [Actor, Actor];
    const id = await taskNaming([forSale]);
    for (const a of [early, late]) {
      await marketTx(a, "buyAccess", [forSale, 1, maxUint256]);
      await send(a, "join", [id, TRAINER, TRAINER_STAKE]);
    }
    const validators = await actors(["expiry:v1", "expiry:v2", "expiry:v3"]);
    for (const v of validators) await send(v, "join", [id, VALIDATOR, VALIDATOR_STAKE]);
    const round = await fx.startRound(id, owner);
    await send(early, "commitUpdate", [id, round, digestOf("early"), 100]);
    await advanceTime(chain, 2 * DAY);
    await refused(send(late, "commitUpdate", [id, round, digestOf("late"), 100]), "DatasetAccessRequired", [
      id,
      forSale,
      late.address,
    ]);
    // Its data was used while it had access: the committed update is scored, its stake stays at risk.
    await refused(send(early, "releaseStakeWithoutAccess", [id, forSale]), "AlreadyCommitted", [
      id,
      round,
      early.address,
    ]);
    await send(late, "releaseStakeWithoutAccess", [id, forSale]);
    assert.equal((await memberOf(id, TRAINER, late)).stake, 0n);
    assert.equal((await memberOf(id, TRAINER, early)).stake, TRAINER_STAKE);
  });

  it("a task naming no dataset checks nothing: a trainer without any access joins, and has no dataset to release its stake over", async () => {
    const [plain] = (await actors(["plain"])) as [Actor];
    const id = await taskNaming([]);
    await send(plain, "join", [id, TRAINER, TRAINER_STAKE]);
    await refused(send(plain, "releaseStakeWithoutAccess", [id, forSale]), "NotTaskDataset", [id, forSale]);
  });

  it("every refusal this feature declares was observed", () => {
    assert.deepEqual(
      DATASET_ERRORS.filter((e) => !observed.has(e)),
      [],
    );
  });
});
