/**
 * Proofs of inference for a registered model: compile its architecture's circuit, set up its keys (both
 * cached by the circuit's digest), and prove that the weights behind a commitment turn an input into the
 * oracle's answer, for one prover.
 */
import type { Address } from "viem";
import type { CanonicalModel } from "../ml/encoding.ts";
import { answerOf } from "../oracle/client.ts";
import { inferFixed } from "../oracle/fixed-point.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import type { PlanOptions } from "./circuit.ts";
import { inputDigest, statementOf, weightsCommitment, weightsInOrder } from "./commitment.ts";
import { type CompiledCircuit, compileDenseCircuit, defaultZkCacheDir } from "./compile.ts";
import { type ProofResult, prove, type SolidityProof, toSolidityProof } from "./groth16.ts";
import type { ProgressLog } from "./progress.ts";
import { type CircuitSetup, cachedProvingKeyCid, installProvingKey, setupCircuit } from "./setup.ts";
import { circuitInput } from "./witness.ts";

export class ZkProofError extends Error {
  override name = "ZkProofError";
}

/** A model architecture's circuit and its keys. */
export interface ModelCircuit {
  compiled: CompiledCircuit;
  setup: CircuitSetup;
}

export interface ModelCircuitOptions {
  /** Compiled circuits and keys; default defaultZkCacheDir(). */
  cacheDir?: string;
  /** Powers-of-tau file; default $LEDGERMIND_PTAU, else the development file. */
  ptau?: string;
  log?: ProgressLog;
  /** The circuit's input bits and weights kind (default: INPUT_BITS, private weights). */
  plan?: PlanOptions;
  /** The salt whose commitment a constant-weights circuit bakes in (required for one). */
  salt?: bigint;
  /**
   * The proving key `zk build` published (its CID, fetched from `store`), used instead of a setup here:
   * proofs must come from the key whose verifier is deployed.
   */
  provingKey?: { cid: string; store: BlobStore };
}

/**
 * Compiles the circuit of the model's architecture and scale (for constant weights: of the model itself)
 * and sets up its keys (cached).
 */
export async function prepareModelCircuit(
  model: CanonicalModel,
  options: ModelCircuitOptions = {},
): Promise<ModelCircuit> {
  const cacheDir = options.cacheDir ?? defaultZkCacheDir();
  const constant = options.plan?.weights === "constant";
  if (constant && options.salt === undefined)
    throw new ZkProofError("a constant-weights circuit needs the salt of the commitment it bakes in");
  const compiled = await compileDenseCircuit(model.architecture, model.scaleBits, {
    cacheDir,
    log: options.log,
    ...(options.plan ? { plan: options.plan } : {}),
    ...(constant && options.salt !== undefined
      ? {
          constants: {
            weights: weightsInOrder(model),
            commitment: weightsCommitment(model, options.salt),
          },
        }
      : {}),
  });
  const published = options.provingKey;
  // Fetched only when this machine's cache lacks it: the builder's own machine, or a second start, has it.
  if (published && cachedProvingKeyCid(compiled, cacheDir) !== published.cid)
    await installProvingKey(compiled, await published.store.get(published.cid), {
      cacheDir,
      ptau: options.ptau,
    });
  const setup = await setupCircuit(compiled, { cacheDir, ptau: options.ptau, log: options.log });
  return { compiled, setup };
}

export interface InferenceProof {
  /** The oracle's answer (answerOf of the fixed-point outputs). */
  answer: bigint;
  commitment: bigint;
  /** The proof's one public signal. */
  statement: bigint;
  /** As ZkInferenceVerifier and InferenceOracle.fulfillByProof take it. */
  proof: SolidityProof;
  groth16: ProofResult;
}

/** Proves that `model` under `salt` answers `input` with its fixed-point answer, for `prover`. */
export async function proveInference(
  circuit: ModelCircuit,
  args: { model: CanonicalModel; salt: bigint; input: readonly bigint[]; prover: Address },
): Promise<InferenceProof> {
  const { plan } = circuit.compiled;
  const { model, salt, input, prover } = args;
  if (model.architecture !== plan.architecture || model.scaleBits !== plan.scaleBits)
    throw new ZkProofError(
      `the circuit is for ${plan.architecture} at 2^${plan.scaleBits}, the model is ${model.architecture} at 2^${model.scaleBits}`,
    );
  const answer = answerOf(inferFixed(model, input));
  const commitment = weightsCommitment(model, salt);
  const statement = statementOf(commitment, inputDigest(input, plan.inputBits), answer, BigInt(prover));
  const groth16 = await prove(circuit.setup, { ...circuitInput(plan, model, salt, input, prover) });
  // The circuit and the TypeScript inference are tested to agree; a difference here is a bug (or, for a
  // constant-weights circuit, another model or salt than the one it was built for), never a proof.
  if (groth16.publicSignals[0] !== statement.toString())
    throw new ZkProofError(
      `the circuit's statement ${groth16.publicSignals[0]} differs from the expected ${statement}`,
    );
  return { answer, commitment, statement, proof: toSolidityProof(groth16.proof), groth16 };
}
