import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { Address } from "viem";
import type { CanonicalModel } from "../../src/ml/encoding.ts";
import { createRng, type Rng } from "../../src/ml/partition.ts";
import { answerOf } from "../../src/oracle/client.ts";
import { inferFixed } from "../../src/oracle/fixed-point.ts";
import { yieldArchitecture } from "../../src/oracle/yield-model.ts";
import {
  type DenseCircuitPlan,
  estimatedConstraints,
  INPUT_BITS,
  planDenseCircuit,
  ZkCircuitError,
} from "../../src/zk/circuit.ts";
import {
  inputDigest,
  randomSalt,
  statementOf,
  weightsCommitment,
  weightsInOrder,
  ZkEncodingError,
} from "../../src/zk/commitment.ts";
import { type CompiledCircuit, compileDenseCircuit, defaultZkCacheDir } from "../../src/zk/compile.ts";
import { circuitInput, witnessCalculator, ZkInputError } from "../../src/zk/witness.ts";
import { INPUT_LIMIT, randomModel, randomSigned } from "./random-model.ts";

/** A fixed-point input: realistic (a few units at 1e6, clipped to the range) or anywhere in the proven range. */
function randomInput(rng: Rng, n: number, bits: number): bigint[] {
  const wide = rng.int(4) === 0;
  const limit = 1n << BigInt(bits);
  const clip = (v: bigint) => (v < -limit ? -limit : v >= limit ? limit - 1n : v);
  return Array.from({ length: n }, () =>
    wide ? randomSigned(rng, bits) : clip(BigInt(Math.round(rng.normal() * 2_000_000))),
  );
}

const PROVER: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

function expectedStatement(
  plan: DenseCircuitPlan,
  model: CanonicalModel,
  salt: bigint,
  input: bigint[],
): bigint {
  const answer = answerOf(inferFixed(model, input));
  return statementOf(
    weightsCommitment(model, salt),
    inputDigest(input, plan.inputBits),
    answer,
    BigInt(PROVER),
  );
}

async function agreesOn(circuit: CompiledCircuit, models: CanonicalModel[], inputs: number, seed: string) {
  const calc = await witnessCalculator(circuit.wasm);
  const rng = createRng(seed);
  const n0 = circuit.plan.sizes[0] as number;
  for (let k = 0; k < inputs; k++) {
    const model = models[k % models.length] as CanonicalModel;
    const salt = randomSalt();
    const input = randomInput(rng, n0, circuit.plan.inputBits);
    const got = await calc.statement(circuitInput(circuit.plan, model, salt, input, PROVER));
    assert.equal(
      got,
      expectedStatement(circuit.plan, model, salt, input),
      `input #${k} [${input.join(", ")}]: the circuit's answer differs from inferFixed (outputs ${inferFixed(model, input).join(", ")})`,
    );
  }
}

describe("dense-model circuits compute exactly the TypeScript fixed-point inference", () => {
  const cacheDir = defaultZkCacheDir();
  let crop: CompiledCircuit;
  let classifier: CompiledCircuit;

  before(async () => {
    // The crop-insurance model's architecture, and a classifier with two ReLU layers and an argmax at the
    // largest scale (2^31: the rounding's half is 2^30).
    crop = await compileDenseCircuit(yieldArchitecture(16), 16, { cacheDir });
    classifier = await compileDenseCircuit("mlp-5-4-3-3", 31, { cacheDir });
  });

  it("crop-insurance model (sigmoid output): same statement as inferFixed on 1,000 random inputs", async () => {
    const rng = createRng("zk crop weights");
    const models = [
      randomModel(yieldArchitecture(16), 16, rng, false),
      randomModel(yieldArchitecture(16), 16, rng, true),
    ];
    await agreesOn(crop, models, 1000, "zk crop inputs");
  });

  it("classifier (ReLU, argmax, ties to the lowest index): same statement as inferFixed on 1,000 random inputs", async () => {
    const rng = createRng("zk classifier weights");
    const tied: CanonicalModel = {
      architecture: "mlp-5-4-3-3",
      scaleBits: 31,
      // Every output equal: the answer must be index 0, as answerOf says.
      tensors: [
        { name: "dense0.kernel", shape: [5, 4], ints: new Int32Array(20).fill(1 << 30) },
        { name: "dense0.bias", shape: [4], ints: new Int32Array(4) },
        { name: "dense1.kernel", shape: [4, 3], ints: new Int32Array(12).fill(1 << 29) },
        { name: "dense1.bias", shape: [3], ints: new Int32Array(3) },
        { name: "dense2.kernel", shape: [3, 3], ints: new Int32Array(9).fill(-(1 << 28)) },
        { name: "dense2.bias", shape: [3], ints: new Int32Array(3).fill(7) },
      ],
    };
    const models = [
      randomModel("mlp-5-4-3-3", 31, rng, false),
      randomModel("mlp-5-4-3-3", 31, rng, true),
      tied,
    ];
    await agreesOn(classifier, models, 1000, "zk classifier inputs");
  });

  it("the statement binds the answer, the weights, the input and the prover: changing any one changes it", async () => {
    const calc = await witnessCalculator(crop.wasm);
    const model = randomModel(yieldArchitecture(16), 16, createRng("zk binding"), false);
    const salt = 12345n;
    const input = [550_000n, 350_000n, 300_000n, 800_000n];
    const got = await calc.statement(circuitInput(crop.plan, model, salt, input, PROVER));
    const answer = answerOf(inferFixed(model, input));
    const commitment = weightsCommitment(model, salt);
    const prover = BigInt(PROVER);
    assert.equal(got, statementOf(commitment, inputDigest(input, INPUT_BITS), answer, prover));
    assert.notEqual(got, statementOf(commitment, inputDigest(input, INPUT_BITS), answer + 1n, prover));
    assert.notEqual(
      got,
      statementOf(weightsCommitment(model, salt + 1n), inputDigest(input, INPUT_BITS), answer, prover),
    );
    assert.notEqual(
      got,
      statementOf(commitment, inputDigest([...input.slice(0, 3), 800_001n], INPUT_BITS), answer, prover),
    );
    assert.notEqual(got, statementOf(commitment, inputDigest(input, INPUT_BITS), answer, prover + 1n));
  });

  it("refuses an input outside the proven range before proving", () => {
    const model = randomModel(yieldArchitecture(16), 16, createRng("zk range"), false);
    assert.throws(() => circuitInput(crop.plan, model, 1n, [0n, 0n, INPUT_LIMIT, 0n], PROVER), ZkInputError);
    assert.throws(
      () => circuitInput(crop.plan, model, 1n, [0n, -INPUT_LIMIT - 1n, 0n, 0n], PROVER),
      ZkInputError,
    );
    assert.doesNotThrow(() =>
      circuitInput(crop.plan, model, 1n, [0n, -INPUT_LIMIT, INPUT_LIMIT - 1n, 0n], PROVER),
    );
  });

  it("the compiled circuit is cached by digest, and its size is stated", async () => {
    const again = await compileDenseCircuit(yieldArchitecture(16), 16, { cacheDir });
    assert.equal(again.fromCache, true);
    assert.equal(again.digest, crop.digest);
    assert.ok(
      crop.constraints > 1000 && crop.constraints < 2 ** 14,
      `crop circuit: ${crop.constraints} constraints`,
    );
  });

  it("the constraint estimate (used where compiling is too slow, e.g. MNIST) bounds the compiled size within 3%", () => {
    for (const c of [crop, classifier]) {
      const estimate = estimatedConstraints(c.plan);
      assert.ok(
        estimate >= c.constraints && estimate <= c.constraints * 1.03,
        `${c.plan.architecture}: estimated ${estimate}, compiled ${c.constraints}`,
      );
    }
  });
});

describe("commitment and circuit plan (pure)", () => {
  it("the weights commitment follows the kernel-then-bias order and the salt", () => {
    const model = randomModel("logreg-3-2", 16, createRng("zk order"), false);
    const weights = weightsInOrder(model);
    assert.equal(weights.length, 3 * 2 + 2);
    const bias = model.tensors.find((t) => t.name === "dense0.bias");
    assert.equal(weights[6], BigInt(bias?.ints[0] ?? Number.NaN));
    assert.notEqual(weightsCommitment(model, 1n), weightsCommitment(model, 2n));
    assert.throws(() => weightsCommitment(model, -1n), ZkEncodingError);
  });

  it("refuses an architecture whose values would not fit in a field element", () => {
    assert.throws(() => planDenseCircuit("mlp-8-8-8-8-8-8-8-8", 0), ZkCircuitError);
    assert.throws(() => planDenseCircuit("mlp-4-16-1-sigmoid", 32), ZkCircuitError);
    const mnist = planDenseCircuit("mlp-784-32-10", 16);
    assert.equal(mnist.weightCount, 784 * 32 + 32 + 32 * 10 + 10);
  });
});
