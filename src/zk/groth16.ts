// Proving and off-chain verification with snarkjs's Groth16, and the proof's layout for Solidity.
import { type Groth16Proof, groth16 } from "snarkjs";
import type { CircuitSetup, Groth16VerificationKey } from "./setup.ts";

export type { Groth16Proof } from "snarkjs";

/** A proof and the circuit's public signals (decimal strings; Ledgermind's circuits have one: the statement). */
export interface ProofResult {
  proof: Groth16Proof;
  publicSignals: string[];
}

/** The proof as the wrapper takes it: [a.x, a.y, b.x1, b.x0, b.y1, b.y0, c.x, c.y]. */
export type SolidityProof = readonly [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];

/** The witness could not be computed: the input violates a circuit constraint (e.g. an input out of range). */
export class ProvingError extends Error {
  override name = "ProvingError";
}

/** Proves the circuit on `input` (the circuit's input JSON: signal name to value or array of values). */
export async function prove(setup: CircuitSetup, input: Record<string, unknown>): Promise<ProofResult> {
  try {
    return await groth16.fullProve(input, setup.circuit.wasm, setup.zkey);
  } catch (err) {
    const detail = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new ProvingError(`cannot prove circuit ${setup.circuit.digest}: ${detail}`);
  }
}

/** Verifies a proof off-chain; a malformed proof (not numbers, points off the curve) is false, not an error. */
export async function verifyProof(
  vk: Groth16VerificationKey,
  proof: Groth16Proof,
  publicSignals: readonly string[],
): Promise<boolean> {
  try {
    return await groth16.verify(vk, publicSignals, proof);
  } catch {
    return false;
  }
}

/**
 * The proof for Solidity. The EVM's pairing precompile (EIP-197) takes a G2 coordinate in Fp2 as
 * (imaginary, real), snarkjs writes (real, imaginary): so b's pairs are swapped.
 */
export function toSolidityProof(proof: Groth16Proof): SolidityProof {
  const n = (v: string | undefined): bigint => {
    if (v === undefined || !/^\d+$/.test(v))
      throw new ProvingError(`malformed proof coordinate: ${String(v)}`);
    return BigInt(v);
  };
  const { pi_a: a, pi_b: b, pi_c: c } = proof;
  return [n(a[0]), n(a[1]), n(b[0]?.[1]), n(b[0]?.[0]), n(b[1]?.[1]), n(b[1]?.[0]), n(c[0]), n(c[1])];
}

/**
 * Stops snarkjs's worker threads. snarkjs keeps one BN254 curve, with a thread per core, for the whole
 * process, and the threads keep Node alive: a command or test calls this once when done proving.
 */
export async function releaseCurve(): Promise<void> {
  const holder = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
  const curve = holder.curve_bn128;
  holder.curve_bn128 = null;
  await curve?.terminate();
}
