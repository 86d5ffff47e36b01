/**
 * Verifiable inference end to end, with real Groth16 proofs on the embedded EVM: the crop-insurance
 * model's circuit (mlp-4-16-1-sigmoid) compiled and set up, its verifier deployed and recorded in the
 * registry with the weights commitment, an operator in zk mode settling a request by one proof, and the
 * attacks on that path tried with real proofs.
 */

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, parseEther, toHex } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { InferenceOracle } from "../../src/chain/generated/contracts.ts";
import { transferMind } from "../../src/chain/token.ts";
import { ContractRefusedError, decodeRevert } from "../../src/chain/tx.ts";
import { type CanonicalModel, encodeCanonical } from "../../src/ml/encoding.ts";
import { createRng } from "../../src/ml/partition.ts";
import {
  answerOf,
  explainResult,
  fulfillByProof,
  getRequestStatus,
  type Oracle,
  openOracle,
  requestInference,
  setModelSpec,
} from "../../src/oracle/client.ts";
import { inferFixed } from "../../src/oracle/fixed-point.ts";
import { createOperator, driveOperators, type OperatorEvent } from "../../src/oracle/operator.ts";
import { normalizeFeatures, toOracleInput } from "../../src/oracle/yield-data.ts";
import { yieldArchitecture } from "../../src/oracle/yield-model.ts";
import {
  addVersion,
  openRegistry,
  type Registry,
  registerModel,
  setZkVerifier,
} from "../../src/registry/client.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import { FIELD_MODULUS, randomSalt, weightsCommitment } from "../../src/zk/commitment.ts";
import { releaseCurve, verifyProof } from "../../src/zk/groth16.ts";
import { type ModelCircuit, prepareModelCircuit, proveInference } from "../../src/zk/inference-proof.ts";
import { deployCircuitVerifier } from "../../src/zk/verifier.ts";
import { randomModel } from "./random-model.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-zk-e2e-"));
const OWNER = 0;
const PROVER = 1;
const OTHER = 2;
const REQUESTER = 4;
const FEE = parseEther("10");
const DROUGHT = toOracleInput(
  normalizeFeatures({ rainfallDeficit: 0.55, heatDays: 21, soilMoisture: 0.14, growingDegreeDays: 1900 }),
);

let chain: LedgerChain;
let oracle: Oracle;
let reg: Registry;
let store: FsBlobStore;
let model: CanonicalModel;
let circuit: ModelCircuit;
let modelId: bigint;
let salt: bigint;
const VERSION = 1;

const addr = (i: number): Address => (chain.accounts[i] as { address: Address }).address;

async function refused(p: Promise<unknown>, errorName: string): Promise<void> {
  await assert.rejects(
    p.catch((err: unknown) => {
      throw decodeRevert(err);
    }),
    (err: unknown) => err instanceof ContractRefusedError && err.errorName === errorName,
  );
}

async function request(input = DROUGHT): Promise<bigint> {
  const { requestId } = await requestInference(
    oracle,
    { modelId, version: VERSION, input, fee: FEE, aggregation: "median" },
    REQUESTER,
  );
  return requestId;
}

before(async () => {
  chain = await connect({ ephemeral: true });
  oracle = await openOracle(chain);
  reg = await openRegistry(chain);
  store = new FsBlobStore(join(TMP, "blobs"));
  model = randomModel(yieldArchitecture(16), 16, createRng("zk e2e weights"), false);
  const weightsCid = await store.put(encodeCanonical(model));
  ({ modelId } = await registerModel(reg, "crop-yield-risk", OWNER));
  await addVersion(reg, modelId, { weightsCid }, OWNER);
  await setModelSpec(chain, modelId, VERSION, 4, OWNER);
  for (const i of [PROVER, OTHER, REQUESTER]) await transferMind(chain, addr(i), parseEther("1000"));
  circuit = await prepareModelCircuit(model);
  const { verifier } = await deployCircuitVerifier(chain, circuit);
  salt = randomSalt();
  await setZkVerifier(
    reg,
    { modelId, version: VERSION, verifier, commitment: toHex(weightsCommitment(model, salt), { size: 32 }) },
    OWNER,
  );
});

after(async () => {
  await releaseCurve();
  await chain?.close();
  rmSync(TMP, { recursive: true, force: true });
});

describe("verifiable inference on the crop-insurance model (real Groth16 proofs on the EVM)", () => {
  it("an operator in zk mode settles a request by one proof; the result is inferFixed's answer", async () => {
    const prover = await createOperator({
      chain,
      account: PROVER,
      store,
      modelId,
      version: VERSION,
      stateFile: join(TMP, "prover.json"),
      zkSalt: salt,
    });
    const committer = await createOperator({
      chain,
      account: OTHER,
      store,
      modelId,
      version: VERSION,
      stateFile: join(TMP, "other.json"),
    });
    const id = await request();
    const events: OperatorEvent[] = await driveOperators([prover, committer], {
      until: async () => (await getRequestStatus(oracle, id)).state !== "open",
    });
    const proven = events.filter((e) => e.type === "proven");
    assert.equal(proven.length, 1, JSON.stringify(events.map((e) => e.type)));
    const status = await getRequestStatus(oracle, id);
    assert.equal(status.state, "finalized");
    assert.equal(status.output, answerOf(inferFixed(model, DROUGHT)));
    const explained = await explainResult(reg, store, id);
    assert.equal(explained.fulfilment, "proof");
    assert.equal(explained.matches, true, "the proven answer is the registry's model re-run");
    assert.deepEqual(explained.reveals, []);
    const info = await chain.publicClient.readContract({
      address: oracle.address,
      abi: InferenceOracle.abi,
      functionName: "operatorInfo",
      args: [modelId, VERSION, addr(OTHER)],
    });
    assert.equal(info.pending, 0, "the operator that committed is released");
  });

  it("an operator on another machine (an empty key cache) proves with the owner's published proving key", async () => {
    const provingKey = await store.put(readFileSync(circuit.setup.zkey));
    const elsewhere = mkdtempSync(join(TMP, "other-machine-"));
    const prover = await createOperator({
      chain,
      account: PROVER,
      store,
      modelId,
      version: VERSION,
      stateFile: join(TMP, "prover.json"),
      zkSalt: salt,
      zkCacheDir: elsewhere,
      zkProvingKey: provingKey,
    });
    const committer = await createOperator({
      chain,
      account: OTHER,
      store,
      modelId,
      version: VERSION,
      stateFile: join(TMP, "other.json"),
    });
    const id = await request();
    const events: OperatorEvent[] = await driveOperators([prover, committer], {
      until: async () => (await getRequestStatus(oracle, id)).state !== "open",
    });
    assert.equal(
      events.filter((e) => e.type === "proven").length,
      1,
      JSON.stringify(events.map((e) => e.type)),
    );
    assert.equal((await getRequestStatus(oracle, id)).output, answerOf(inferFixed(model, DROUGHT)));
    const installed = readdirSync(elsewhere).find((d) => existsSync(join(elsewhere, d, "circuit.zkey")));
    assert.ok(installed, "the key is installed in the operator's own cache");
    assert.deepEqual(
      readFileSync(join(elsewhere, installed, "circuit.zkey")),
      readFileSync(circuit.setup.zkey),
    );
  });

  it("the proof verifies off-chain too, and proves the answer for this prover only", async () => {
    const made = await proveInference(circuit, { model, salt, input: DROUGHT, prover: addr(PROVER) });
    assert.equal(
      await verifyProof(circuit.setup.verificationKey, made.groth16.proof, made.groth16.publicSignals),
      true,
    );
    assert.equal(
      await verifyProof(circuit.setup.verificationKey, made.groth16.proof, [
        (made.statement + 1n).toString(),
      ]),
      false,
    );
  });

  it("attacks with real proofs: forged answer, other weights, stale commitment, malformed and stolen proofs are refused; the request stays open for the honest proof", async () => {
    const id = await request();
    const honest = await proveInference(circuit, { model, salt, input: DROUGHT, prover: addr(PROVER) });
    const send = (output: bigint, proof: typeof honest.proof, who = PROVER) =>
      fulfillByProof(oracle, { requestId: id, input: DROUGHT, output, proof }, who);
    // Forged answer: the honest proof, another answer.
    await refused(send(honest.answer + 1n, honest.proof), "InvalidProof");
    // Other weights: a valid proof for a model with one weight changed, whose commitment is not recorded.
    const tampered: CanonicalModel = {
      ...model,
      tensors: model.tensors.map((t) =>
        t.name === "dense1.bias" ? { ...t, ints: Int32Array.from(t.ints, (v) => v + 40_000) } : t,
      ),
    };
    const other = await proveInference(circuit, {
      model: tampered,
      salt,
      input: DROUGHT,
      prover: addr(PROVER),
    });
    await refused(send(other.answer, other.proof), "InvalidProof");
    // Stale commitment: the right weights under another salt (a commitment the registry does not hold).
    const stale = await proveInference(circuit, {
      model,
      salt: salt + 1n,
      input: DROUGHT,
      prover: addr(PROVER),
    });
    await refused(send(stale.answer, stale.proof), "InvalidProof");
    // Malformed: a coordinate not below the field's modulus, and an all-zero proof.
    const outOfField = [...honest.proof] as bigint[];
    outOfField[0] = (outOfField[0] as bigint) + FIELD_MODULUS;
    await refused(send(honest.answer, outOfField as unknown as typeof honest.proof), "InvalidProof");
    await refused(send(honest.answer, [0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]), "InvalidProof");
    // Proof theft: another operator submits the prover's proof.
    await refused(send(honest.answer, honest.proof, OTHER), "InvalidProof");
    assert.equal((await getRequestStatus(oracle, id)).state, "open");
    const done = await send(honest.answer, honest.proof);
    assert.ok(done.gasUsed < 500_000n, `fulfillByProof used ${done.gasUsed} gas`);
    const status = await getRequestStatus(oracle, id);
    assert.equal(status.state, "finalized");
    assert.equal(status.output, honest.answer);
  });
});
