/**
 * The private inputs of a dense model's circuit, and its witness computed by the circuit's own
 * WebAssembly (what the prover runs; tests compare it with the TypeScript inference).
 */
import { readFileSync } from "node:fs";
import { WitnessCalculatorBuilder } from "circom_runtime";
import type { Address } from "viem";
import type { CanonicalModel } from "../ml/encoding.ts";
import type { DenseCircuitPlan } from "./circuit.ts";
import { toField, weightsInOrder } from "./commitment.ts";

export class ZkInputError extends Error {
  override name = "ZkInputError";
}

/**
 * What the circuit takes: the input and the prover's address, and for a private-weights circuit the salt
 * and the weights in commitment order.
 */
export interface CircuitInput {
  prover: bigint;
  x: bigint[];
  salt?: bigint;
  weights?: bigint[];
}

/** The circuit's private inputs; refuses an input outside the range the circuit proves. */
export function circuitInput(
  plan: Pick<DenseCircuitPlan, "inputBits" | "weights">,
  model: CanonicalModel,
  salt: bigint,
  input: readonly bigint[],
  prover: Address,
): CircuitInput {
  const limit = 1n << BigInt(plan.inputBits);
  input.forEach((v, i) => {
    if (v < -limit || v >= limit)
      throw new ZkInputError(
        `input[${i}] = ${v} is outside the proven range [-2^${plan.inputBits}, 2^${plan.inputBits}) (fixed point, 1e6 = 1.0)`,
      );
  });
  const x = input.map(toField);
  if (plan.weights === "constant") return { prover: BigInt(prover), x };
  return { salt: toField(salt), prover: BigInt(prover), weights: weightsInOrder(model).map(toField), x };
}

interface WitnessCalculator {
  calculateWitness(input: Record<string, bigint | bigint[]>, sanityCheck: boolean): Promise<bigint[]>;
}

/**
 * Loads a compiled circuit's witness calculator once; `statement` runs it on one input (a dense model's
 * CircuitInput by default, any circuit's named inputs otherwise).
 */
export async function witnessCalculator<Input extends object = CircuitInput>(
  wasmPath: string,
): Promise<{
  witness(input: Input): Promise<bigint[]>;
  statement(input: Input): Promise<bigint>;
}> {
  const calculator = (await WitnessCalculatorBuilder(readFileSync(wasmPath))) as WitnessCalculator;
  const witness = (input: Input) =>
    calculator.calculateWitness({ ...input } as Record<string, bigint | bigint[]>, true);
  return {
    witness,
    // Signal 0 is the constant 1; the public outputs follow, and `statement` is the only one.
    statement: async (input) => (await witness(input))[1] as bigint,
  };
}
