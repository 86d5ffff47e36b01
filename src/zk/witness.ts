/**
 * The private inputs of a dense model's circuit, and its witness computed by the circuit's own
 * WebAssembly (what the prover runs; tests compare it with the TypeScript inference).
 */
import { readFileSync } from "node:fs";
import { WitnessCalculatorBuilder } from "circom_runtime";
import type { Address } from "viem";
import type { CanonicalModel } from "../ml/encoding.ts";
import { INPUT_BITS } from "./circuit.ts";
import { toField, weightsInOrder } from "./commitment.ts";

const INPUT_LIMIT = 1n << BigInt(INPUT_BITS);

export class ZkInputError extends Error {
  override name = "ZkInputError";
}

/** What the circuit takes: the salt, the weights in commitment order, the input and the prover's address. */
export interface CircuitInput {
  salt: bigint;
  prover: bigint;
  weights: bigint[];
  x: bigint[];
}

/** The circuit's private inputs; refuses an input outside the range the circuit proves. */
export function circuitInput(
  model: CanonicalModel,
  salt: bigint,
  input: readonly bigint[],
  prover: Address,
): CircuitInput {
  input.forEach((v, i) => {
    if (v < -INPUT_LIMIT || v >= INPUT_LIMIT)
      throw new ZkInputError(
        `input[${i}] = ${v} is outside the proven range [-2^${INPUT_BITS}, 2^${INPUT_BITS}) (fixed point, 1e6 = 1.0)`,
      );
  });
  return {
    salt: toField(salt),
    prover: BigInt(prover),
    weights: weightsInOrder(model).map(toField),
    x: input.map(toField),
  };
}

interface WitnessCalculator {
  calculateWitness(input: Record<string, bigint | bigint[]>, sanityCheck: boolean): Promise<bigint[]>;
}

/** Loads a compiled circuit's witness calculator once; `statement` runs it on one input. */
export async function witnessCalculator(wasmPath: string): Promise<{
  witness(input: CircuitInput): Promise<bigint[]>;
  statement(input: CircuitInput): Promise<bigint>;
}> {
  const calculator = (await WitnessCalculatorBuilder(readFileSync(wasmPath))) as WitnessCalculator;
  const witness = (input: CircuitInput) =>
    calculator.calculateWitness(
      { salt: input.salt, prover: input.prover, weights: input.weights, x: input.x },
      true,
    );
  return {
    witness,
    // Signal 0 is the constant 1; the public outputs follow, and `statement` is the only one.
    statement: async (input) => (await witness(input))[1] as bigint,
  };
}
