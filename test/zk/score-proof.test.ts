/**
 * A validator's score proven in zero knowledge: a logistic-regression model (trained on MNIST digits pooled to
 * 4x4) scored on 16 committed held-out digits, the count of right labels proven with Groth16 and checked
 * on-chain by the circuit's verifier; a claimed count that is off by one, or another held-out set, does
 * not verify. The property test runs the circuit's witness code against correctCount on 200 random
 * models and held-out sets.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Address } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { initBackend } from "../../src/ml/backend.ts";
import { type CanonicalModel, decodeModel, encodeModel } from "../../src/ml/encoding.ts";
import { loadMnist } from "../../src/ml/mnist.ts";
import { createModel, getWeights } from "../../src/ml/models.ts";
import { createRng, type Rng } from "../../src/ml/partition.ts";
import { trainModel } from "../../src/ml/train.ts";
import { toFixedInput } from "../../src/oracle/client.ts";
import { statementOf, weightsCommitment } from "../../src/zk/commitment.ts";
import { compileCircuitSource, defaultZkCacheDir } from "../../src/zk/compile.ts";
import { prove, releaseCurve, toSolidityProof, verifyProof } from "../../src/zk/groth16.ts";
import {
  correctCount,
  estimatedScoreConstraints,
  exactLabel,
  type HeldOutExample,
  heldOutCommitment,
  planScoreCircuit,
  SCORE_INPUT_BITS,
  scoreCircuitInput,
  scoreCircuitSource,
} from "../../src/zk/score.ts";
import { type CircuitSetup, setupCircuit } from "../../src/zk/setup.ts";
import {
  compileGroth16Verifier,
  deployGroth16Verifier,
  groth16VerifyCalldata,
} from "../../src/zk/verifier.ts";
import { witnessCalculator } from "../../src/zk/witness.ts";
import { poolDigits } from "./pooled-digits.ts";
import { randomModel, randomSigned } from "./random-model.ts";

const ARCHITECTURE = "logreg-16-10";
const EXAMPLES = 16;
const PROVER: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const DATA_SALT = 0x5eed_da7an;
const plan = planScoreCircuit(ARCHITECTURE, EXAMPLES);

let model: CanonicalModel;
let heldOut: HeldOutExample[];
let setup: CircuitSetup;
let compiled: Awaited<ReturnType<typeof compileCircuitSource>>;
let chain: LedgerChain;

const statement = (m: CanonicalModel, examples: readonly HeldOutExample[], salt: bigint, count: number) =>
  statementOf(weightsCommitment(m, 0n), heldOutCommitment(examples, salt), BigInt(count), BigInt(PROVER));

function randomHeldOut(rng: Rng): HeldOutExample[] {
  return Array.from({ length: EXAMPLES }, () => ({
    x: Array.from({ length: plan.features }, () =>
      rng.int(3) === 0 ? randomSigned(rng, SCORE_INPUT_BITS - 1) : BigInt(rng.int(1_000_001)),
    ),
    label: rng.int(plan.classes),
  }));
}

before(async () => {
  await initBackend();
  const data = loadMnist({ train: 3000, test: EXAMPLES });
  const train = poolDigits(data.train, 7);
  const trained = createModel(ARCHITECTURE, 21);
  await trainModel(trained, train, { epochs: 5, batchSize: 32, learningRate: 0.5, seed: 21 });
  model = decodeModel(
    encodeModel({ architecture: ARCHITECTURE, scaleBits: 16, tensors: getWeights(trained) }),
  );
  trained.dispose();
  const test = poolDigits(data.test, 7);
  heldOut = Array.from({ length: EXAMPLES }, (_, e) => ({
    x: toFixedInput(Array.from(test.x.subarray(e * 16, (e + 1) * 16))),
    label: test.y[e] as number,
  }));
  const cacheDir = defaultZkCacheDir();
  compiled = await compileCircuitSource(scoreCircuitSource(plan), { cacheDir });
  setup = await setupCircuit(compiled, { cacheDir });
  chain = await connect({ ephemeral: true });
});

after(async () => {
  await releaseCurve();
  await chain?.close();
});

describe("a validator's score proven in zero knowledge (logistic regression, 16 held-out digits)", () => {
  it("the circuit's size is within 3% of the estimate that the extrapolation uses", () => {
    const estimate = estimatedScoreConstraints(plan);
    assert.ok(
      estimate >= compiled.constraints && estimate <= compiled.constraints * 1.03,
      `estimated ${estimate}, compiled ${compiled.constraints}`,
    );
  });

  it("the proven count verifies on-chain; a count off by one or another held-out set does not", async () => {
    const correct = correctCount(model, heldOut);
    assert.ok(correct > 0 && correct < EXAMPLES, `the trained model labels ${correct} of ${EXAMPLES} right`);
    const { proof, publicSignals } = await prove(
      setup,
      scoreCircuitInput({
        model,
        weightsSalt: 0n,
        examples: heldOut,
        dataSalt: DATA_SALT,
        prover: BigInt(PROVER),
      }),
    );
    assert.equal(publicSignals[0], statement(model, heldOut, DATA_SALT, correct).toString());
    assert.equal(await verifyProof(setup.verificationKey, proof, publicSignals), true);

    const groth16 = await deployGroth16Verifier(chain, setup);
    const { abi } = await compileGroth16Verifier(setup);
    const p = toSolidityProof(proof);
    const onChain = async (signal: bigint) => {
      const data = groth16VerifyCalldata(abi, p, [signal]);
      const { data: out } = await chain.publicClient.call({ to: groth16, data });
      return BigInt(out ?? "0x0") === 1n;
    };
    assert.equal(await onChain(statement(model, heldOut, DATA_SALT, correct)), true);
    assert.equal(await onChain(statement(model, heldOut, DATA_SALT, correct + 1)), false);
    assert.equal(await onChain(statement(model, heldOut, DATA_SALT + 1n, correct)), false);
    const relabelled = heldOut.map((e, i) => (i === 0 ? { ...e, label: (e.label + 1) % 10 } : e));
    assert.equal(await onChain(statement(model, relabelled, DATA_SALT, correct)), false);
  });

  it("the circuit's statement equals correctCount's on 200 random models and held-out sets", async () => {
    const calc = await witnessCalculator<ReturnType<typeof scoreCircuitInput>>(compiled.wasm);
    const rng = createRng("zk score property");
    for (let k = 0; k < 200; k++) {
      const m = randomModel(ARCHITECTURE, 16, rng, k % 4 === 0);
      const examples = randomHeldOut(rng);
      // Some labels set to the model's own, so that counts other than about 1 in 10 are covered.
      for (const e of examples.slice(0, rng.int(EXAMPLES))) e.label = exactLabel(m, e.x);
      const got = await calc.statement(
        scoreCircuitInput({
          model: m,
          weightsSalt: 0n,
          examples,
          dataSalt: BigInt(k),
          prover: BigInt(PROVER),
        }),
      );
      const count = correctCount(m, examples);
      assert.equal(got, statement(m, examples, BigInt(k), count), `case #${k}: correctCount ${count}`);
    }
  });
});
