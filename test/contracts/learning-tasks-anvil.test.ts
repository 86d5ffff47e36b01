// Issue 9, case 1 on a real node: anvil (the node `ledgermind chain` runs) enforces its block gas limit,
// which the embedded EVM's tests cannot show. A 1,000-trainer round must settle there, step by step.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseEther, type TransactionReceipt } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { type DevNode, startDevNode } from "../../src/chain/devnode.ts";
import { getSettlement, roundUpdates, settlementOf } from "../../src/learning/client.ts";
import { contributorsHash } from "../../src/learning/finalize.ts";
import {
  BASE_PARAMS,
  deployLearning,
  devActor,
  keyActor,
  learningFixture,
  MAX_TX_GAS,
  syntheticScores,
  TRAINER,
  VALIDATOR,
} from "./learning-fixture.ts";

const TRAINERS = 1_000;
const VALIDATORS = 3;

let node: DevNode;
let chain: LedgerChain;

before(async () => {
  node = await startDevNode({ port: 0 });
  chain = await connect({ rpc: node.url, ephemeral: true });
});

after(async () => {
  await chain?.close();
  await node?.stop();
});

describe("LearningTasks on anvil (issue 9)", () => {
  it("attack 1 on a node that enforces its block gas limit: a 1,000-trainer round settles in bounded steps, every transaction under 10M gas", async () => {
    const env = await deployLearning(chain);
    const fx = learningFixture(() => env);
    const treasury = devActor(chain, 0, "treasury");
    const owner = devActor(chain, 1, "owner");
    const trainers = Array.from({ length: TRAINERS }, (_, i) => keyActor(chain, `anvil-t${i}`));
    const validators = Array.from({ length: VALIDATORS }, (_, j) => keyActor(chain, `anvil-v${j}`));
    await fx.fund(treasury, [...trainers, ...validators, owner], parseEther("100"));
    const modelId = await fx.registerModel(owner, "anvil-model");
    await fx.registryTx(owner, "setApprovalForAll", [env.tasks, true]);
    const blockGasLimit = (await chain.publicClient.getBlock()).gasLimit;
    const id = await fx.createTask(owner, {
      ...BASE_PARAMS,
      modelId: Number(modelId),
      rounds: 1,
      quorumBps: 6_000,
      maxTrainers: TRAINERS,
      maxValidators: VALIDATORS,
      commitWindow: 80,
      scoreWindow: 10,
      revealWindow: 10,
      minScore: 0,
    });
    await fx.joinAll(id, trainers, TRAINER, parseEther("10"));
    await fx.joinAll(id, validators, VALIDATOR, parseEther("20"));
    const played = await fx.playRound(id, owner, trainers, validators, syntheticScores(VALIDATORS, TRAINERS));
    const { steps } = await fx.finalizeAll(id, played.round, owner);
    const receipts: TransactionReceipt[] = [
      played.start,
      ...played.commits,
      ...played.scoreCommits,
      ...played.reveals,
      ...steps,
    ];
    assert.ok(steps.length > 1, "a round this size settles in several steps");
    for (const r of receipts) {
      assert.equal(r.status, "success");
      assert.ok(r.gasUsed < MAX_TX_GAS, `a transaction used ${r.gasUsed} gas`);
      assert.ok(r.gasUsed <= blockGasLimit);
    }
    const round = await fx.getRound(id, played.round);
    assert.equal(round.state.finalized, true);
    assert.equal(round.state.commits, TRAINERS);
    assert.ok(round.result.accepted > 0, "updates were accepted and paid");

    // A role that did not finalize reads the settlement back from the logs of every step, as the aggregator
    // does, and the accepted updates hash to the round's contributorsHash.
    const tasks = { chain, address: env.tasks, token: env.token, registry: env.registry, fromBlock: 0n };
    const settlement = await getSettlement(tasks, id, played.round);
    assert.equal(settlement.trainers.length, TRAINERS, "every trainer's outcome, from every step");
    assert.equal(settlement.validators.length, VALIDATORS);
    assert.deepEqual(
      settlement,
      settlementOf({ ...steps.at(-1), logs: steps.flatMap((r) => r.logs) } as TransactionReceipt),
    );
    const digestOf = new Map((await roundUpdates(tasks, id, played.round)).map((u) => [u.trainer, u.digest]));
    const accepted = settlement.trainers.filter((t) => t.accepted).map((t) => t.address);
    assert.equal(accepted.length, round.result.accepted);
    assert.equal(
      contributorsHash(
        accepted,
        accepted.map((a) => digestOf.get(a) as `0x${string}`),
      ),
      round.contributorsHash,
    );
  });
});
