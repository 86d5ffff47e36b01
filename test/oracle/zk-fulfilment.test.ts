// Fulfilment by zero-knowledge proof (InferenceOracle.fulfillByProof), on the embedded EVM with the oracle
// fixture of test/contracts. The verifiers here are stand-ins (contracts/OracleTestConsumers.sol): each
// accepts exactly one pre-agreed proof for one (commitment, input, answer) and refuses everything else, so
// these tests cover the oracle's side: who may prove, which request, which commitment, what settles and
// who is paid. The real Groth16 path (ZkInferenceVerifier.sol with a generated verifier) is tested end to end
// in test/zk.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  type Address,
  decodeErrorResult,
  getAddress,
  type Hex,
  keccak256,
  parseEther,
  parseEventLogs,
  stringToHex,
  type TransactionReceipt,
  toHex,
} from "viem";
import {
  ModelRegistry,
  RecordingConsumer,
  RevertingZkVerifier,
  StandInZkVerifier,
} from "../../src/chain/generated/contracts.ts";
import { sendAndWait } from "../../src/chain/tx.ts";
import { versionLines } from "../../src/cli/model.ts";
import { type FlatProof, fulfillByProof, openOracle } from "../../src/oracle/client.ts";
import {
  getVersion,
  getZkVerifier,
  openRegistry,
  RegistryError,
  setZkVerifier,
} from "../../src/registry/client.ts";
import { FIELD_MODULUS } from "../../src/zk/commitment.ts";
import { bareVersion } from "../contracts/bare-version.ts";
import {
  abi,
  addr,
  advanceTo,
  assertConservation,
  chain,
  commitAll,
  consumerRequest,
  consumers,
  deploy,
  eventsOf,
  getRequest,
  getResult,
  INPUT,
  isPending,
  MAIN_OPS,
  modelId,
  newRequest,
  OWNER,
  observedErrors,
  operatorInfo,
  oracle,
  REQUESTER,
  refused,
  registry,
  revealAll,
  STRANGER,
  send,
  setupOracleFixture,
  teardownOracleFixture,
} from "../contracts/inference-oracle-fixture.ts";

/** The errors the zk path declares (IZkInferenceOracle, in IInferenceOracle.sol). */
const ZK_ERRORS = [
  ...readFileSync(new URL("../../contracts/IInferenceOracle.sol", import.meta.url), "utf8").matchAll(
    /^\s*error\s+(\w+)\s*\(/gm,
  ),
].map((m) => m[1] as string);

const FEE = parseEther("10");
/** The answer the stand-in verifiers accept for INPUT. */
const ANSWER = 730_000n;
const commitment = (label: string): Hex => toHex(BigInt(keccak256(stringToHex(label))) >> 8n, { size: 32 });
const proofOf = (label: string): FlatProof =>
  Array.from(
    { length: 8 },
    (_, i) => BigInt(keccak256(stringToHex(`${label}:${i}`))) >> 8n,
  ) as unknown as FlatProof;

/** v1: its own verifier. v3: another version, its own verifier and weights. */
const C1 = commitment("weights:v1");
const C3 = commitment("weights:v3");
/** v4 gets v1's verifier (same architecture) with retrained weights: v1's proofs are stale there. */
const C4 = commitment("weights:v4");
const P1 = proofOf("proof:v1");
const P3 = proofOf("proof:v3");
/** v6 (added here): a verifier that reverts on every proof. */
const C6 = commitment("weights:v6");
/** Operators of v4 and v6, besides MAIN_OPS on v1 and GAS_OPS on v3. */
const EXTRA_OPS = [9, 10, 11];
const PROVER = 2;
const OTHER_PROVER = 3;

let verifier1: Address;
let verifier3: Address;

/** A stand-in proof made for `who`: like a real one, it verifies only when `who` sends it. */
function boundTo(proof: FlatProof, who: number): FlatProof {
  const words = [...proof] as bigint[];
  words[0] = (words[0] as bigint) ^ BigInt(addr(who));
  return words as unknown as FlatProof;
}

function prove(who: number, requestId: bigint, output = ANSWER, proof: FlatProof = P1, input = INPUT) {
  return send(who, "fulfillByProof", [requestId, input, output, boundTo(proof, who)]);
}

function registryTx(functionName: "addVersion" | "setZkVerifier", args: readonly unknown[]) {
  return sendAndWait(chain, () =>
    chain
      .wallet(OWNER)
      .writeContract({ address: registry, abi: ModelRegistry.abi, functionName, args } as never),
  );
}

async function pendingOf(version: number, ops: number[]): Promise<number[]> {
  return Promise.all(ops.map(async (i) => (await operatorInfo(version, i)).pending));
}

before(async () => {
  await setupOracleFixture();
  const reg = await openRegistry(chain);
  verifier1 = getAddress(await deploy(StandInZkVerifier, [C1, INPUT, ANSWER, P1]));
  verifier3 = getAddress(await deploy(StandInZkVerifier, [C3, INPUT, ANSWER, P3]));
  await setZkVerifier(reg, { modelId, version: 1, verifier: verifier1, commitment: C1 }, OWNER);
  await setZkVerifier(reg, { modelId, version: 3, verifier: verifier3, commitment: C3 }, OWNER);
  // v4 (spec declared by the fixture) gets operators here and its verifier later, in the stale-commitment test.
  for (const i of EXTRA_OPS) await send(i, "registerOperator", [modelId, 4, parseEther("1000")]);
  // v6: a version whose verifier reverts.
  await registryTx("addVersion", [modelId, bareVersion("weights:v6")]);
  const reverting = await deploy(RevertingZkVerifier, []);
  await registryTx("setZkVerifier", [modelId, 6, reverting, C6]);
  await send(OWNER, "setModelSpec", [modelId, 6, INPUT.length]);
  for (const i of EXTRA_OPS) await send(i, "registerOperator", [modelId, 6, parseEther("1000")]);
});

after(teardownOracleFixture);

describe("fulfillByProof", () => {
  it("a proof settles an open request: result with the weights digest, events, whole fee to the prover, consumer called back", async () => {
    const consumer = consumers.recording as Address;
    const id = await consumerRequest(consumer, { fee: FEE });
    const { weightsDigest } = await getRequest(id);
    const before = await operatorInfo(1, PROVER);
    const receipt = await prove(PROVER, id);

    const result = await getResult(id);
    assert.equal(result.output, ANSWER);
    assert.equal(result.weightsDigest, weightsDigest);
    assert.equal(await isPending(id), false);
    const [finalized] = eventsOf(receipt, "InferenceFinalized");
    assert.ok(finalized);
    assert.equal(finalized.args.output, ANSWER);
    assert.equal(finalized.args.responders, 1n);
    const [proven] = parseEventLogs({ abi, logs: receipt.logs, eventName: "InferenceProven" });
    assert.ok(proven);
    assert.deepEqual(proven.args, {
      requestId: id,
      prover: addr(PROVER),
      verifier: verifier1,
      commitment: C1,
    });
    const after = await operatorInfo(1, PROVER);
    assert.equal(after.fees, before.fees + FEE);
    assert.equal(after.stake, before.stake);
    const recorded = (functionName: "lastRequestId" | "lastOutput" | "lastWeightsDigest") =>
      chain.publicClient.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName });
    assert.equal(await recorded("lastRequestId"), id);
    assert.equal(await recorded("lastOutput"), ANSWER);
    assert.equal(await recorded("lastWeightsDigest"), weightsDigest);
    assert.equal(eventsOf(receipt, "CallbackFailed").length, 0);
  });

  it("operators that committed or revealed are released with their stake; nobody is slashed", async () => {
    const id = await newRequest(REQUESTER, { fee: FEE });
    // #3 will reveal an answer far from the proven one, #4 stays silent, #5 commits and then proves.
    const answers = [
      { op: 3, output: 9_000_000n },
      { op: 4, output: ANSWER, reveal: false },
      { op: 5, output: ANSWER, reveal: false },
    ];
    const ops = answers.map((a) => a.op);
    const pendingBefore = await pendingOf(1, ops);
    const stakesBefore = await Promise.all(ops.map(async (i) => (await operatorInfo(1, i)).stake));
    await commitAll(id, answers);
    assert.deepEqual(
      await pendingOf(1, ops),
      pendingBefore.map((p) => p + 1),
    );
    await advanceTo((await getRequest(id)).commitDeadline);
    await revealAll(id, answers);
    // Past the reveal deadline: finalize would slash #4 and #5 as silent; a proof settles without judging.
    await advanceTo((await getRequest(id)).revealDeadline);
    const receipt = await prove(5, id);
    assert.equal(eventsOf(receipt, "OperatorSlashed").length, 0);
    assert.deepEqual(await pendingOf(1, ops), pendingBefore, "every committer is released");
    assert.deepEqual(
      await Promise.all(ops.map(async (i) => (await operatorInfo(1, i)).stake)),
      stakesBefore,
      "no stake lost",
    );
    assert.equal((await getResult(id)).output, ANSWER);
    await refused(send(REQUESTER, "finalize", [id]), "RequestClosed", [id]);
  });

  it("InvalidProof: a bad proof is refused and leaves the request open; a good one from another operator then succeeds", async () => {
    const id = await newRequest(REQUESTER, { fee: FEE });
    const bad = [...P1] as unknown as FlatProof;
    (bad as unknown as bigint[])[7] = (bad[7] as bigint) + 1n;
    await refused(prove(PROVER, id, ANSWER, bad), "InvalidProof", [id]);
    assert.equal(await isPending(id), true);
    const before = await operatorInfo(1, OTHER_PROVER);
    await prove(OTHER_PROVER, id);
    assert.equal((await operatorInfo(1, OTHER_PROVER)).fees, before.fees + FEE);
    assert.equal((await getResult(id)).output, ANSWER);
  });

  it("the client's fulfillByProof sends it and decodes the contract's refusals", async () => {
    const handle = await openOracle(chain, { address: oracle });
    const id = await newRequest(REQUESTER, { fee: FEE });
    await refused(
      fulfillByProof(
        handle,
        { requestId: id, input: INPUT, output: ANSWER + 1n, proof: boundTo(P1, PROVER) },
        PROVER,
      ),
      "InvalidProof",
      [id],
    );
    const done = await fulfillByProof(
      handle,
      { requestId: id, input: INPUT, output: ANSWER, proof: boundTo(P1, PROVER) },
      PROVER,
    );
    assert.equal(done.callbackFailed, false);
    assert.ok(done.gasUsed > 0n);
    await assert.rejects(
      fulfillByProof(handle, { requestId: id, input: [], output: ANSWER, proof: P1 }, PROVER),
      /only inline input can be proven/,
    );
  });
});

describe("fulfillByProof attacks", () => {
  it("proof theft: a proof copied from the mempool by another operator does not verify for it", async () => {
    const id = await newRequest(REQUESTER, { fee: FEE });
    const stolen = boundTo(P1, PROVER);
    await refused(send(OTHER_PROVER, "fulfillByProof", [id, INPUT, ANSWER, stolen]), "InvalidProof", [id]);
    const before = await operatorInfo(1, PROVER);
    await send(PROVER, "fulfillByProof", [id, INPUT, ANSWER, stolen]);
    assert.equal((await operatorInfo(1, PROVER)).fees, before.fees + FEE);
  });

  it("a proof from a non-operator", async () => {
    const id = await newRequest(REQUESTER, { fee: FEE });
    await refused(prove(STRANGER, id), "NotOperator", [addr(STRANGER)]);
    // #9 operates v3, v4 and v6, not v1.
    await refused(prove(9, id), "NotOperator", [addr(9)]);
    assert.equal(await isPending(id), true);
    await prove(PROVER, id);
  });

  it("a proof for another output", async () => {
    const id = await newRequest(REQUESTER, { fee: FEE });
    for (const output of [ANSWER + 1n, ANSWER - 1n, 0n, -ANSWER]) {
      await refused(prove(PROVER, id, output), "InvalidProof", [id]);
    }
    assert.equal(await isPending(id), true);
    await prove(PROVER, id);
    assert.equal((await getResult(id)).output, ANSWER);
  });

  it("a proof for another model version", async () => {
    // #2 operates v1 and v3; each version's proof is refused on the other's request.
    const onV1 = await newRequest(REQUESTER, { fee: FEE });
    const onV3 = await newRequest(REQUESTER, { version: 3, fee: FEE });
    await refused(prove(PROVER, onV1, ANSWER, P3), "InvalidProof", [onV1]);
    await refused(prove(PROVER, onV3, ANSWER, P1), "InvalidProof", [onV3]);
    await prove(PROVER, onV1, ANSWER, P1);
    await prove(PROVER, onV3, ANSWER, P3);
  });

  it("NoZkVerifier, then a stale commitment: v1's proof on v4, which shares v1's verifier with retrained weights", async () => {
    const id = await newRequest(REQUESTER, { version: 4, fee: FEE });
    await refused(prove(9, id), "NoZkVerifier", [modelId, 4]);
    // Set after the request: the registry is read at proof time.
    await registryTx("setZkVerifier", [modelId, 4, verifier1, C4]);
    await refused(prove(9, id), "InvalidProof", [id]);
    assert.equal(await isPending(id), true);
  });

  it("a verifier that reverts on a proof refuses it with InvalidProof; the request stays open", async () => {
    const id = await newRequest(REQUESTER, { version: 6, fee: FEE });
    await refused(prove(9, id), "InvalidProof", [id]);
    assert.equal(await isPending(id), true);
  });

  it("replay of a proof on a second request with the same input (accepted: same statement), not with another input", async () => {
    // The proof binds (commitment, input, answer), not the request: on an open request of the same version
    // with the same input it proves the right answer again, so it settles that one too.
    const first = await newRequest(REQUESTER, { fee: FEE });
    const second = await newRequest(REQUESTER, { fee: FEE });
    await prove(PROVER, first);
    const before = await operatorInfo(1, OTHER_PROVER);
    await prove(OTHER_PROVER, second);
    assert.equal((await getResult(second)).output, ANSWER);
    assert.equal((await operatorInfo(1, OTHER_PROVER)).fees, before.fees + FEE);

    const otherInput = [...INPUT.slice(0, -1), (INPUT.at(-1) as bigint) + 1n];
    const third = await newRequest(REQUESTER, { input: otherInput, fee: FEE });
    await refused(prove(PROVER, third), "InputMismatch", [third]);
    await refused(prove(PROVER, third, ANSWER, P1, otherInput), "InvalidProof", [third]);
    // Another length is another input too.
    await refused(prove(PROVER, third, ANSWER, P1, [...otherInput, 0n]), "InputMismatch", [third]);
    assert.equal(await isPending(third), true);
  });

  it("a CID request", async () => {
    const id = await newRequest(REQUESTER, { inputCid: keccak256(stringToHex("input blob")), fee: FEE });
    await refused(prove(PROVER, id), "ProofNeedsInlineInput", [id]);
    assert.equal(await isPending(id), true);
  });

  it("a finalized request", async () => {
    const id = await newRequest(REQUESTER, { fee: FEE });
    await prove(PROVER, id);
    const fees = (await operatorInfo(1, OTHER_PROVER)).fees;
    await refused(prove(OTHER_PROVER, id), "RequestClosed", [id]);
    assert.equal((await operatorInfo(1, OTHER_PROVER)).fees, fees, "no second fee");
    // A failed request (nobody answered, refunded) is closed as well; an unknown one does not exist.
    const failed = await newRequest(REQUESTER, { fee: FEE });
    await advanceTo((await getRequest(failed)).revealDeadline);
    await send(REQUESTER, "finalize", [failed]);
    await refused(prove(PROVER, failed), "RequestClosed", [failed]);
    await refused(prove(PROVER, 10_000n), "UnknownRequest", [10_000n]);
  });

  it("a reentrant consumer", async () => {
    const consumer = consumers.reentrant as Address;
    const id = await consumerRequest(consumer, { fee: FEE });
    const before = await operatorInfo(1, PROVER);
    const receipt: TransactionReceipt = await prove(PROVER, id);
    const [failed] = eventsOf(receipt, "CallbackFailed");
    assert.ok(failed, "the re-entering callback failed");
    assert.equal(
      decodeErrorResult({ abi, data: failed.args.reason }).errorName,
      "ReentrancyGuardReentrantCall",
    );
    assert.equal(eventsOf(receipt, "InferenceFinalized").length, 1);
    assert.equal((await getResult(id)).output, ANSWER);
    assert.equal((await operatorInfo(1, PROVER)).fees, before.fees + FEE, "paid once");
    await refused(prove(PROVER, id), "RequestClosed", [id]);
  });
});

describe("registry client: zk verifiers", () => {
  it("getVersion carries the verifier and commitment when set, and model show prints them", async () => {
    const reg = await openRegistry(chain);
    const v1 = await getVersion(reg, modelId, 1);
    assert.deepEqual(v1.zk, { verifier: verifier1, commitment: C1 });
    assert.ok(versionLines(v1).some((l) => l.includes(verifier1) && l.includes(C1)));
    const v5 = await getVersion(reg, modelId, 5);
    assert.equal("zk" in v5, false);
    assert.equal(await getZkVerifier(reg, { modelId, version: 5 }), undefined);
    assert.deepEqual(await getZkVerifier(reg, { modelId, version: 3 }), {
      verifier: verifier3,
      commitment: C3,
    });
  });

  it("setZkVerifier refuses locally, with a RegistryError, what the contract would refuse", async () => {
    const reg = await openRegistry(chain);
    const set = (version: number, verifier: Address, c: bigint | Hex) =>
      setZkVerifier(reg, { modelId, version, verifier, commitment: c }, OWNER);
    await assert.rejects(set(5, verifier1, 0n), RegistryError);
    await assert.rejects(set(5, verifier1, FIELD_MODULUS), /BN254 scalar field/);
    await assert.rejects(set(1, verifier1, C1), /already has the zk verifier/);
    await assert.rejects(set(5, addr(STRANGER), C1), /holds no contract code/);
    await assert.rejects(set(9, verifier1, C1), /has no version 9/);
    assert.equal(await getZkVerifier(reg, { modelId, version: 5 }), undefined);
  });
});

describe("fulfillByProof accounting and coverage", () => {
  it("the oracle holds exactly what it owes; no MIND created or lost", async () => {
    await assertConservation();
    for (const i of MAIN_OPS) assert.equal((await operatorInfo(1, i)).pending, 0, `#${i} is not locked`);
  });

  it("every custom error the zk path declares was observed", () => {
    assert.deepEqual(ZK_ERRORS.sort(), [
      "InputMismatch",
      "InvalidProof",
      "NoZkVerifier",
      "ProofNeedsInlineInput",
    ]);
    const missing = ZK_ERRORS.filter((e) => !observedErrors.has(e));
    assert.deepEqual(missing, [], `never observed: ${missing.join(", ")}`);
  });
});
