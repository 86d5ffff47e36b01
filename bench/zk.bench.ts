// Zero-knowledge proofs of inference: constraints, setup, proving and verification time, on-chain gas.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Abi, type Address, encodeFunctionData, parseEther } from "viem";
import { connect, type LedgerChain } from "../src/chain/connect.ts";
import { ZkInferenceVerifier } from "../src/chain/generated/contracts.ts";
import { transferMind } from "../src/chain/token.ts";
import { initBackend } from "../src/ml/backend.ts";
import { type CanonicalModel, decodeModel, encodeCanonical, encodeModel } from "../src/ml/encoding.ts";
import { loadMnist } from "../src/ml/mnist.ts";
import { createModel, getWeights } from "../src/ml/models.ts";
import { createRng } from "../src/ml/partition.ts";
import { predictProbabilities, trainModel } from "../src/ml/train.ts";
import {
  answerOf,
  fulfillByProof,
  openOracle,
  requestInference,
  setModelSpec,
  toFixedInput,
} from "../src/oracle/client.ts";
import { inferFixed } from "../src/oracle/fixed-point.ts";
import { createOperator } from "../src/oracle/operator.ts";
import { toOracleInput } from "../src/oracle/yield-data.ts";
import { yieldArchitecture } from "../src/oracle/yield-model.ts";
import { addVersion, openRegistry, registerModel, setZkVerifier } from "../src/registry/client.ts";
import { FsBlobStore } from "../src/storage/fs-blob-store.ts";
import { estimatedConstraints, INPUT_BITS, planDenseCircuit } from "../src/zk/circuit.ts";
import { fieldToBytes32, weightsCommitment, weightsInOrder } from "../src/zk/commitment.ts";
import { type CompiledCircuit, compileCircuitSource, compileDenseCircuit } from "../src/zk/compile.ts";
import { prove, releaseCurve, toSolidityProof, verifyProof } from "../src/zk/groth16.ts";
import { type ModelCircuit, proveInference } from "../src/zk/inference-proof.ts";
import { requiredPower } from "../src/zk/ptau.ts";
import { quantizationReport } from "../src/zk/quantization.ts";
import {
  correctCount,
  estimatedScoreConstraints,
  planScoreCircuit,
  scoreCircuitInput,
  scoreCircuitSource,
} from "../src/zk/score.ts";
import { type CircuitFiles, setupCircuit } from "../src/zk/setup.ts";
import {
  compileGroth16Verifier,
  deployGroth16Verifier,
  deployInferenceVerifier,
  groth16VerifyCalldata,
} from "../src/zk/verifier.ts";
import { circuitInput as circuitInputOf } from "../src/zk/witness.ts";
import { argmaxRows } from "../test/ml/onnx-runtime.ts";
import { compileStatementCircuit } from "../test/zk/fixtures/statement-circuit.ts";
import { circuitInput, HONEST, type Statement } from "../test/zk/fixtures/statement-proof.ts";
import { poolDigits } from "../test/zk/pooled-digits.ts";
import { randomModel } from "../test/zk/random-model.ts";
import type { Figures } from "./results-file.ts";

/** What a circuit's figures are measured on: its files, its input JSON and the statement it proves. */
export interface ZkBenchCase {
  name: string;
  circuit: (cacheDir: string) => Promise<CircuitFiles>;
  input: Record<string, unknown>;
  statement: Statement;
  /** A model circuit's model and salt: its oracle fulfilment is measured too. */
  model?: { canonical: CanonicalModel; salt: bigint };
  /** The circuit's input bits (default INPUT_BITS), which its on-chain wrapper is deployed with. */
  inputBits?: number;
}

/** The crop-insurance model's circuit (mlp-4-16-1-sigmoid at 2^16), on a dry season's conditions. */
function cropCase(): ZkBenchCase {
  const model = randomModel(yieldArchitecture(16), 16, createRng("bench zk crop"), false);
  const salt = 0x5a17n;
  const input = toOracleInput([0.55, 0.35, 0.3, 0.8]);
  const prover = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
  const answer = answerOf(inferFixed(model, input));
  return {
    name: "crop",
    circuit: (cacheDir) => compileDenseCircuit(model.architecture, model.scaleBits, { cacheDir }),
    input: {
      ...circuitInputOf(planDenseCircuit(model.architecture, model.scaleBits), model, salt, input, prover),
    },
    statement: { commitment: weightsCommitment(model, salt), input, answer, prover },
    model: { canonical: model, salt },
  };
}

/**
 * Gas of `InferenceOracle.fulfillByProof` for a model version with its verifier recorded: the Groth16
 * check, the on-chain statement, and the settlement (two operators registered, as the oracle requires; the
 * requester is an account, so no callback).
 */
async function fulfilByProofGas(
  chain: LedgerChain,
  work: string,
  model: { canonical: CanonicalModel; salt: bigint },
  circuit: ModelCircuit,
  verifier: Address,
  input: readonly bigint[],
): Promise<number> {
  const store = new FsBlobStore(join(work, "blobs"));
  const reg = await openRegistry(chain);
  const { modelId } = await registerModel(reg, `bench-zk-${model.canonical.architecture}`);
  const { version } = await addVersion(reg, modelId, {
    weightsCid: await store.put(encodeCanonical(model.canonical)),
  });
  await setModelSpec(chain, modelId, version, input.length);
  await setZkVerifier(reg, {
    modelId,
    version,
    verifier,
    commitment: fieldToBytes32(weightsCommitment(model.canonical, model.salt)),
  });
  for (const account of [1, 2]) {
    await transferMind(chain, chain.wallet(account).account.address, parseEther("500"));
    await createOperator({
      chain,
      account,
      store,
      modelId,
      version,
      stateFile: join(work, `op-${account}.json`),
    });
  }
  const oracle = await openOracle(chain);
  const { requestId } = await requestInference(oracle, {
    modelId,
    version,
    input,
    fee: 0n,
    aggregation: "median",
  });
  const prover = chain.wallet(1).account.address;
  const made = await proveInference(circuit, { model: model.canonical, salt: model.salt, input, prover });
  const { gasUsed } = await fulfillByProof(
    oracle,
    { requestId, input, output: made.answer, proof: made.proof },
    1,
  );
  return Number(gasUsed);
}

/**
 * The statement alone (test/zk/fixtures/statement.circom): the floor under every model's circuit; then the
 * crop-insurance model's whole circuit, compiled cold.
 */
const CASES: ZkBenchCase[] = [
  { name: "statement", circuit: compileStatementCircuit, input: circuitInput(HONEST), statement: HONEST },
  cropCase(),
];

const seconds = (since: number) => Math.round((performance.now() - since) / 10) / 100;

/** The zk figures of the statement alone and of the crop-insurance model's circuit. */
export function benchZk(): Promise<Figures> {
  return measureCases(CASES);
}

/** Per circuit: a cold setup (fresh key cache), one proof, one off-chain check, and gas on a fresh chain. */
async function measureCases(cases: readonly ZkBenchCase[]): Promise<Figures> {
  const work = mkdtempSync(join(tmpdir(), "lm-bench-zk-"));
  const chain = await connect({ ephemeral: true });
  const figures: Figures = {};
  try {
    for (const c of cases) {
      let t = performance.now();
      const circuit = await c.circuit(join(work, "circuits"));
      figures[`zk.compile_s.${c.name}`] = seconds(t);
      t = performance.now();
      const setup = await setupCircuit(circuit, { cacheDir: join(work, "keys") });
      figures[`zk.setup_s.${c.name}`] = seconds(t);
      figures[`zk.constraints.${c.name}`] = setup.constraints;
      t = performance.now();
      const { proof, publicSignals } = await prove(setup, c.input);
      const proveSeconds = (performance.now() - t) / 1000;
      figures[`zk.prove_s.${c.name}`] = seconds(t);
      figures[`zk.prove_us_per_constraint.${c.name}`] =
        Math.round((proveSeconds * 1e7) / setup.constraints) / 10;
      t = performance.now();
      if (!(await verifyProof(setup.verificationKey, proof, publicSignals)))
        throw new Error(`${c.name}: proof invalid`);
      figures[`zk.verify_s.${c.name}`] = seconds(t);

      const groth16 = await deployGroth16Verifier(chain, setup);
      const wrapper = await deployInferenceVerifier(chain, groth16, c.inputBits ?? INPUT_BITS);
      const p = toSolidityProof(proof);
      const { abi } = await compileGroth16Verifier(setup);
      const bareData = groth16VerifyCalldata(abi, p, publicSignals.map(BigInt));
      const wrappedData = encodeFunctionData({
        abi: ZkInferenceVerifier.abi as Abi,
        functionName: "verifyInference",
        args: [
          fieldToBytes32(c.statement.commitment),
          c.statement.input,
          c.statement.answer,
          c.statement.prover,
          p,
        ],
      });
      figures[`gas.zk.verify_groth16.${c.name}`] = Number(
        await chain.publicClient.estimateGas({ to: groth16, data: bareData }),
      );
      figures[`gas.zk.verify_inference.${c.name}`] = Number(
        await chain.publicClient.estimateGas({ to: wrapper, data: wrappedData }),
      );
      if (c.model)
        figures[`gas.zk.fulfil_by_proof.${c.name}`] = await fulfilByProofGas(
          chain,
          work,
          c.model,
          { compiled: circuit as CompiledCircuit, setup },
          wrapper,
          c.statement.input,
        );
    }
    return figures;
  } finally {
    await releaseCurve();
    await chain.close();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Published figures the zk numbers are read beside (issue 15's anchors). */
const ANCHORS = [
  "EZKL (ONNX to Halo2), MNIST MLP: 2.66 s to prove in its fast mode (6.4% accuracy loss), 38 s exact",
  "circom + Groth16, 784-56-10 MLP with the weights as circuit constants: 2.35 s to prove",
  "Modulus Labs: proving costs 10^4 to 10^5 times plain inference",
  "Groth16 on-chain verification: about 207k gas plus 7k per public input",
];

/** An MNIST digit's pixels (0..1) are 0..1e6 in fixed point: below 2^20. */
const MNIST_INPUT_BITS = 20;

/**
 * The MNIST MLP (784-32-10 at 2^16), trained on 8,000 digits: the quantization loss of its canonical
 * fixed-point model against the float model on 2,000 held-out digits; then its constant-weights circuit
 * (20 input bits) measured like the others: compiled and set up cold, one proof of a held-out digit, its
 * Groth16 check and the whole on-chain statement (784 inputs packed and hashed) in gas, and the oracle's
 * settlement by that proof. The private-weights circuit of the same model is sized, not built: its
 * commitment hashes 25,450 weights, and its keys need a powers-of-tau file of power 21.
 */
export async function benchZkMnist(): Promise<Figures> {
  const architecture = "mlp-784-32-10";
  await initBackend();
  const { train, test } = loadMnist({ train: 8000, test: 2000 });
  const model = createModel(architecture, 7);
  await trainModel(model, train, {
    epochs: 5,
    batchSize: 32,
    learningRate: 0.1,
    seed: 7,
    onEpoch: (epoch, m) => {
      process.stderr.write(`  mnist mlp epoch ${epoch + 1}/5: loss ${m.loss.toFixed(4)}\n`);
    },
  });
  const floatLabels = argmaxRows(predictProbabilities(model, test.x), 10);
  const canonical = decodeModel(encodeModel({ architecture, scaleBits: 16, tensors: getWeights(model) }));
  model.dispose();
  const report = quantizationReport(canonical, floatLabels, test);
  const privatePlan = planDenseCircuit(architecture, 16, { inputBits: MNIST_INPUT_BITS });
  const privateConstraints = estimatedConstraints(privatePlan);
  const plan = { inputBits: MNIST_INPUT_BITS, weights: "constant" } as const;
  const salt = 0x3a15n;
  const input = toFixedInput(Array.from(test.x.subarray(0, 784)));
  const prover = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
  const answer = answerOf(inferFixed(canonical, input));
  const measured = await measureCases([
    {
      name: "mnist",
      circuit: (cacheDir) =>
        compileDenseCircuit(architecture, 16, {
          cacheDir,
          plan,
          constants: { weights: weightsInOrder(canonical), commitment: weightsCommitment(canonical, salt) },
        }),
      input: { ...circuitInputOf({ ...plan }, canonical, salt, input, prover) },
      statement: { commitment: weightsCommitment(canonical, salt), input, answer, prover },
      model: { canonical, salt },
      inputBits: MNIST_INPUT_BITS,
    },
  ]);
  for (const line of ANCHORS) process.stderr.write(`  anchor: ${line}\n`);
  return {
    "zk.float_accuracy.mnist": round4(report.floatAccuracy),
    "zk.fixed_accuracy.mnist": round4(report.fixedAccuracy),
    "zk.quantization_loss_pts.mnist": round4(report.lossPoints),
    "zk.agreement.mnist": round4(report.agreement),
    "zk.weights.mnist": privatePlan.weightCount,
    "zk.constraints_estimated.mnist_private": privateConstraints,
    "zk.ptau_power_needed.mnist_private": requiredPower(privateConstraints, 1),
    ...measured,
    // The headline figure: one proof of the MNIST MLP checked on-chain (Groth16, one public signal).
    "gas.zk.verify": measured["gas.zk.verify_groth16.mnist"] as number,
  };
}

const round4 = (v: number) => Math.round(v * 1e4) / 1e4;

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

/** The held-out set sizes a real task's score proof would need, for the extrapolation. */
const SCORE_EXTRAPOLATION = [16, 100, 1000];

/**
 * A validator's score proven (src/zk/score.ts): logistic regression on MNIST digits pooled to 4x4 (16
 * features), 16 committed held-out digits, compiled and set up cold, one proof (and its peak memory, in a
 * process of its own: bench/zk-prove-process.ts), and its
 * Groth16 check on-chain. Then the size of the same proof for the full 784-pixel model at 16, 100 and 1,000
 * held-out digits, from the estimate (within 0.5 % of the compiled sizes it is tested on), with the proving
 * time and memory scaled linearly from the measured proof: a lower bound, since proving grows as n log n.
 */
export async function benchZkScore(): Promise<Figures> {
  const architecture = "logreg-16-10";
  await initBackend();
  const data = loadMnist({ train: 3000, test: 16 });
  const trained = createModel(architecture, 21);
  await trainModel(trained, poolDigits(data.train, 7), {
    epochs: 5,
    batchSize: 32,
    learningRate: 0.5,
    seed: 21,
  });
  const model = decodeModel(encodeModel({ architecture, scaleBits: 16, tensors: getWeights(trained) }));
  trained.dispose();
  const test = poolDigits(data.test, 7);
  const examples = Array.from({ length: 16 }, (_, e) => ({
    x: toFixedInput(Array.from(test.x.subarray(e * 16, (e + 1) * 16))),
    label: test.y[e] as number,
  }));
  const plan = planScoreCircuit(architecture, examples.length);
  const work = mkdtempSync(join(tmpdir(), "lm-bench-zk-score-"));
  const chain = await connect({ ephemeral: true });
  const key = "logreg16x10_k16";
  const figures: Figures = {};
  try {
    let t = performance.now();
    const compiled = await compileCircuitSource(scoreCircuitSource(plan), {
      cacheDir: join(work, "circuits"),
    });
    figures[`zk.score.compile_s.${key}`] = seconds(t);
    t = performance.now();
    const setup = await setupCircuit(compiled, { cacheDir: join(work, "keys") });
    figures[`zk.score.setup_s.${key}`] = seconds(t);
    figures[`zk.score.constraints.${key}`] = setup.constraints;
    const input = scoreCircuitInput({ model, weightsSalt: 0n, examples, dataSalt: 7n, prover: 1n });
    t = performance.now();
    const { proof, publicSignals } = await prove(setup, input);
    const proveSeconds = (performance.now() - t) / 1000;
    figures[`zk.score.prove_s.${key}`] = seconds(t);
    const inputFile = join(work, "score-input.json");
    writeFileSync(
      inputFile,
      JSON.stringify(input, (_, v) => (typeof v === "bigint" ? v.toString() : v)),
    );
    const child = JSON.parse(
      execFileSync(
        process.execPath,
        ["--import", "tsx", join(BENCH_DIR, "zk-prove-process.ts"), compiled.wasm, setup.zkey, inputFile],
        { encoding: "utf8" },
      ),
    ) as { seconds: number; maxRssMb: number };
    figures[`zk.score.prove_max_rss_mb.${key}`] = Math.round(child.maxRssMb);
    figures[`zk.score.correct.${key}`] = correctCount(model, examples);
    if (!(await verifyProof(setup.verificationKey, proof, publicSignals)))
      throw new Error("score proof invalid");
    const groth16 = await deployGroth16Verifier(chain, setup);
    const { abi } = await compileGroth16Verifier(setup);
    const p = toSolidityProof(proof);
    figures[`gas.zk.score.verify_groth16.${key}`] = Number(
      await chain.publicClient.estimateGas({
        to: groth16,
        data: groth16VerifyCalldata(abi, p, publicSignals.map(BigInt)),
      }),
    );
    const perConstraint = proveSeconds / setup.constraints;
    // The whole proving process's peak, Node itself included: an overestimate per constraint at this size.
    const mbPerConstraint = child.maxRssMb / setup.constraints;
    for (const k of SCORE_EXTRAPOLATION) {
      const constraints = estimatedScoreConstraints(planScoreCircuit("logreg-784-10", k));
      const at = `logreg784x10_k${k}`;
      figures[`zk.score.constraints_estimated.${at}`] = constraints;
      figures[`zk.score.ptau_power_needed.${at}`] = requiredPower(constraints, 1);
      figures[`zk.score.prove_s_extrapolated.${at}`] = Math.round(constraints * perConstraint);
      figures[`zk.score.prove_rss_gb_extrapolated.${at}`] =
        Math.round((constraints * mbPerConstraint) / 102.4) / 10;
    }
    return figures;
  } finally {
    await releaseCurve();
    await chain.close();
    rmSync(work, { recursive: true, force: true });
  }
}
