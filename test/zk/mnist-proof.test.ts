/**
 * Verifiable inference at MNIST's size: a trained mlp-784-32-10 made provable as a constant-weights circuit
 * (its weights baked in, inputs range-checked at 20 bits, 25,751 constraints), set up from the development
 * powers of tau, its verifier recorded in the registry, and a digit's label settled on-chain by one proof.
 * The property test runs the circuit's own witness code on 1,000 inputs against inferFixed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Abi, type Address, hexToBigInt, parseEther } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { ZkInferenceVerifier } from "../../src/chain/generated/contracts.ts";
import { transferMind } from "../../src/chain/token.ts";
import { ContractRefusedError, decodeRevert } from "../../src/chain/tx.ts";
import { initBackend } from "../../src/ml/backend.ts";
import { type CanonicalModel, decodeModel, encodeCanonical, encodeModel } from "../../src/ml/encoding.ts";
import { loadMnist } from "../../src/ml/mnist.ts";
import { createModel, getWeights } from "../../src/ml/models.ts";
import { createRng, type Dataset } from "../../src/ml/partition.ts";
import { trainModel } from "../../src/ml/train.ts";
import {
  answerOf,
  fulfillByProof,
  getRequestStatus,
  type Oracle,
  openOracle,
  requestInference,
  setModelSpec,
  toFixedInput,
} from "../../src/oracle/client.ts";
import { inferFixed } from "../../src/oracle/fixed-point.ts";
import { createOperator, driveOperators, type OperatorEvent } from "../../src/oracle/operator.ts";
import { addVersion, openRegistry, registerModel, setZkVerifier } from "../../src/registry/client.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import { estimatedConstraints } from "../../src/zk/circuit.ts";
import { fieldToBytes32, inputDigest, statementOf, weightsCommitment } from "../../src/zk/commitment.ts";
import { releaseCurve } from "../../src/zk/groth16.ts";
import {
  type ModelCircuit,
  prepareModelCircuit,
  proveInference,
  ZkProofError,
} from "../../src/zk/inference-proof.ts";
import { deployCircuitVerifier } from "../../src/zk/verifier.ts";
import { circuitInput, witnessCalculator } from "../../src/zk/witness.ts";
import { randomSigned } from "./random-model.ts";

const ARCHITECTURE = "mlp-784-32-10";
/** MNIST's pixels are 0..1, 0..1e6 in fixed point: below 2^20. */
const INPUT_BITS = 20;
const PLAN = { inputBits: INPUT_BITS, weights: "constant" } as const;
/** The weights are public (a registry version's are, by CID): the commitment's salt hides nothing here. */
const SALT = 0n;
const OWNER = 0;
const PROVER = 1;
const OTHER = 2;
const REQUESTER = 4;
const TMP = mkdtempSync(join(tmpdir(), "ledgermind-zk-mnist-"));

let chain: LedgerChain;
let oracle: Oracle;
let model: CanonicalModel;
let test: Dataset;
let circuit: ModelCircuit;
let verifier: Address;
let modelId: bigint;
let store: FsBlobStore;

const addr = (i: number): Address => (chain.accounts[i] as { address: Address }).address;
const digit = (i: number): bigint[] => toFixedInput(Array.from(test.x.subarray(i * 784, (i + 1) * 784)));

async function refused(p: Promise<unknown>, errorName: string): Promise<void> {
  await assert.rejects(
    p.catch((err: unknown) => {
      throw decodeRevert(err);
    }),
    (err: unknown) => err instanceof ContractRefusedError && err.errorName === errorName,
  );
}

before(async () => {
  await initBackend();
  const data = loadMnist({ train: 2000, test: 200 });
  test = data.test;
  const trained = createModel(ARCHITECTURE, 15);
  await trainModel(trained, data.train, { epochs: 2, batchSize: 32, learningRate: 0.1, seed: 15 });
  model = decodeModel(
    encodeModel({ architecture: ARCHITECTURE, scaleBits: 16, tensors: getWeights(trained) }),
  );
  trained.dispose();
  circuit = await prepareModelCircuit(model, { plan: PLAN, salt: SALT });

  chain = await connect({ ephemeral: true });
  oracle = await openOracle(chain);
  const reg = await openRegistry(chain);
  store = new FsBlobStore(join(TMP, "blobs"));
  ({ modelId } = await registerModel(reg, "mnist-digits", OWNER));
  await addVersion(reg, modelId, { weightsCid: await store.put(encodeCanonical(model)) }, OWNER);
  await setModelSpec(chain, modelId, 1, 784, OWNER);
  ({ verifier } = await deployCircuitVerifier(chain, circuit));
  await setZkVerifier(
    reg,
    { modelId, version: 1, verifier, commitment: fieldToBytes32(weightsCommitment(model, SALT)) },
    OWNER,
  );
  for (const i of [PROVER, OTHER, REQUESTER]) await transferMind(chain, addr(i), parseEther("1000"));
});

after(async () => {
  await releaseCurve();
  await chain?.close();
  rmSync(TMP, { recursive: true, force: true });
});

describe("an MNIST MLP (784-32-10) proven with its weights as circuit constants", () => {
  it("fits the development powers of tau: 2^15, its size within 3% of the estimate", () => {
    const { constraints, plan } = circuit.compiled;
    assert.ok(constraints < 2 ** 15 - 2, `${constraints} constraints`);
    const estimate = estimatedConstraints(plan);
    assert.ok(
      estimate >= constraints && estimate <= constraints * 1.03,
      `estimated ${estimate}, compiled ${constraints}`,
    );
  });

  it("a digit's label, settled on-chain by an operator's proof (its circuit rebuilt from the plan), equals inferFixed's", async () => {
    const operator = (account: number, zk: boolean) =>
      createOperator({
        chain,
        account,
        store,
        modelId,
        version: 1,
        stateFile: join(TMP, `operator-${account}.json`),
        ...(zk ? { zkSalt: SALT, zkPlan: PLAN } : {}),
      });
    const prover = await operator(PROVER, true);
    const committer = await operator(OTHER, false);
    const input = digit(0);
    const { requestId } = await requestInference(
      oracle,
      { modelId, version: 1, input, fee: parseEther("1"), aggregation: "median" },
      REQUESTER,
    );
    const made = await proveInference(circuit, { model, salt: SALT, input, prover: addr(PROVER) });
    assert.equal(made.answer, answerOf(inferFixed(model, input)));
    // A forged label (another digit) with the honest proof: refused, and the request stays open.
    await refused(
      fulfillByProof(
        oracle,
        { requestId, input, output: (made.answer + 1n) % 10n, proof: made.proof },
        PROVER,
      ),
      "InvalidProof",
    );
    // Someone else submitting the prover's proof: refused.
    await refused(
      fulfillByProof(oracle, { requestId, input, output: made.answer, proof: made.proof }, OTHER),
      "InvalidProof",
    );
    assert.equal((await getRequestStatus(oracle, requestId)).state, "open");
    const events: OperatorEvent[] = await driveOperators([prover, committer], {
      until: async () => (await getRequestStatus(oracle, requestId)).state !== "open",
    });
    assert.equal(
      events.filter((e) => e.type === "proven").length,
      1,
      JSON.stringify(events.map((e) => e.type)),
    );
    const status = await getRequestStatus(oracle, requestId);
    assert.equal(status.state, "finalized");
    assert.equal(status.output, made.answer);
  });

  it("other weights: the circuit cannot prove them, and the proof does not verify for their commitment", async () => {
    const other: CanonicalModel = {
      ...model,
      tensors: model.tensors.map((t, k) =>
        k === 0 ? { ...t, ints: t.ints.map((v, i) => (i === 0 ? v + 1 : v)) } : t,
      ),
    };
    const input = digit(1);
    await assert.rejects(
      proveInference(circuit, { model: other, salt: SALT, input, prover: addr(PROVER) }),
      ZkProofError,
    );
    const made = await proveInference(circuit, { model, salt: SALT, input, prover: addr(PROVER) });
    const verify = (commitment: bigint, answer: bigint) =>
      chain.publicClient.readContract({
        address: verifier,
        abi: ZkInferenceVerifier.abi as Abi,
        functionName: "verifyInference",
        args: [fieldToBytes32(commitment), input, answer, addr(PROVER), made.proof],
      });
    assert.equal(await verify(made.commitment, made.answer), true);
    assert.equal(await verify(weightsCommitment(other, SALT), made.answer), false);
    assert.equal(await verify(made.commitment, made.answer === 0n ? 1n : 0n), false);
    assert.equal(hexToBigInt(fieldToBytes32(made.commitment)), weightsCommitment(model, SALT));
  });

  it("the circuit's statement equals inferFixed's on 1,000 inputs: 200 test digits and 800 random ones", async () => {
    const calc = await witnessCalculator(circuit.compiled.wasm);
    const rng = createRng("zk mnist inputs");
    const commitment = weightsCommitment(model, SALT);
    for (let k = 0; k < 1000; k++) {
      const input =
        k < test.n ? digit(k) : Array.from({ length: 784 }, () => randomSigned(rng, INPUT_BITS - 1) * 2n);
      const prover = addr(k % 5);
      const got = await calc.statement(circuitInput(circuit.compiled.plan, model, SALT, input, prover));
      const answer = answerOf(inferFixed(model, input));
      assert.equal(
        got,
        statementOf(commitment, inputDigest(input, INPUT_BITS), answer, BigInt(prover)),
        `input #${k}: the circuit's statement differs from inferFixed's (answer ${answer})`,
      );
    }
  });
});
