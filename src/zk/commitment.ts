/**
 * The hashes a proof of inference is about (pure, no I/O). The circuit (circuits/dense.circom) computes
 * the same values from its private inputs, and ZkInferenceVerifier.sol recomputes the input digest and the
 * statement on-chain, so all three must agree bit for bit (tested against each other).
 *
 *   sponge(values, rate)  h = len(values); for each chunk of `rate` values, the last zero-padded:
 *                         h = Poseidon([h, ...chunk]) (circomlib's Poseidon with rate + 1 inputs)
 *   commitment            sponge([salt, ...weights], min(n, 15)); weights layer by layer, the kernel
 *                         (row-major [in, out]) then the bias. The salt hides the weights: without it,
 *                         anyone could test a guess of the weights against the public commitment.
 *   input digest          the n inputs, each range-checked to [-2^B, 2^B) by the circuit (B = its input
 *                         bits), are offset to u = x + 2^B in [0, 2^(B+1)) and packed, k = floor(253 / (B + 1))
 *                         per field element (the first in the lowest bits; the last element holds the rest);
 *                         then h = n and each chunk of min(elements, 4) packed elements, the last zero-padded,
 *                         is absorbed as h = Poseidon([h, ...chunk]). Packing costs the circuit nothing (the
 *                         range check already has the bits) and cuts the hashing, in the circuit and on-chain,
 *                         k-fold: an MNIST digit at B = 20 is 66 elements, not 784. Rate 4 is the widest
 *                         Poseidon that poseidon-solidity offers on-chain (PoseidonT6).
 *   statement             Poseidon([commitment, inputDigest, answer, prover]): the proof's one public
 *                         signal, so verification costs the same whatever the input's size. The prover's
 *                         address is in it so that a proof seen in the mempool is worthless to anyone else.
 *
 * Signed integers enter the BN254 scalar field as v mod p.
 */
import { randomBytes } from "node:crypto";
import * as poseidonLite from "poseidon-lite";
import { type Hex, toHex } from "viem";
import type { CanonicalModel } from "../ml/encoding.ts";
import { parseDenseArchitecture } from "../oracle/fixed-point.ts";

/** The BN254 scalar field's modulus: every circuit value and public signal is below it. */
export const FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
/** Sponge rate of the weights commitment (Poseidon with 16 inputs, the widest circomlib has). */
export const WEIGHTS_RATE = 15;
/** Sponge rate of the input digest (Poseidon with 5 inputs, PoseidonT6 on-chain). */
export const INPUT_RATE = 4;
/** Bits of a packed field element: below the modulus (2^253 < p), so packing never wraps. */
const PACKED_ELEMENT_BITS = 253;
/** The widest input range a circuit may prove, [-2^MAX_INPUT_BITS, 2^MAX_INPUT_BITS). */
export const MAX_INPUT_BITS = 64;

export class ZkEncodingError extends Error {
  override name = "ZkEncodingError";
}

function poseidon(width: number): ((input: bigint[]) => bigint) | undefined {
  return (poseidonLite as Record<string, ((input: bigint[]) => bigint) | undefined>)[`poseidon${width}`];
}

/** A field element as the bytes32 the registry and the verifier take. */
export function fieldToBytes32(v: bigint): Hex {
  return toHex(v, { size: 32 });
}

/** v mod p, in [0, p). */
export function toField(v: bigint): bigint {
  const r = v % FIELD_MODULUS;
  return r < 0n ? r + FIELD_MODULUS : r;
}

/** The rate a sponge over `length` values uses with at most `maxRate` per chunk. */
export function spongeRate(length: number, maxRate: number): number {
  return Math.min(length, maxRate);
}

/** The documented Poseidon sponge; rate 1 to 15. `length` is its first state (the values' count by default). */
export function sponge(values: readonly bigint[], rate: number, length = values.length): bigint {
  if (values.length === 0) throw new ZkEncodingError("cannot hash an empty vector");
  const hash = poseidon(rate + 1);
  if (!hash || rate < 1) throw new ZkEncodingError(`no Poseidon takes ${rate + 1} inputs (rate 1 to 15)`);
  let h = BigInt(length);
  for (let start = 0; start < values.length; start += rate) {
    const chunk: bigint[] = [h];
    for (let k = 0; k < rate; k++) chunk.push(toField(values[start + k] ?? 0n));
    h = hash(chunk);
  }
  return h;
}

/** The weights in commitment order: per layer, the kernel then the bias. */
export function weightsInOrder(model: CanonicalModel): bigint[] {
  const { sizes } = parseDenseArchitecture(model.architecture);
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const out: bigint[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    for (const name of [`dense${l}.kernel`, `dense${l}.bias`]) {
      const tensor = byName.get(name);
      if (!tensor) throw new ZkEncodingError(`${model.architecture}: has no tensor ${name}`);
      for (const v of tensor.ints) out.push(BigInt(v));
    }
  }
  return out;
}

/** A fresh random salt below the field modulus (31 random bytes). */
export function randomSalt(): bigint {
  return BigInt(`0x${randomBytes(31).toString("hex")}`);
}

/** The Poseidon commitment to a model's weights under `salt`. */
export function weightsCommitment(model: CanonicalModel, salt: bigint): bigint {
  if (salt < 0n || salt >= FIELD_MODULUS) throw new ZkEncodingError("the salt must be a field element");
  const values = [salt, ...weightsInOrder(model)];
  return sponge(values, spongeRate(values.length, WEIGHTS_RATE));
}

/** How many inputs of a circuit proving [-2^inputBits, 2^inputBits) share one packed field element. */
export function inputsPerElement(inputBits: number): number {
  if (!Number.isInteger(inputBits) || inputBits < 1 || inputBits > MAX_INPUT_BITS)
    throw new ZkEncodingError(`input bits must be an integer from 1 to ${MAX_INPUT_BITS}, got ${inputBits}`);
  return Math.floor(PACKED_ELEMENT_BITS / (inputBits + 1));
}

/** The packed field elements of an input; refuses a value outside [-2^inputBits, 2^inputBits). */
export function packedInput(input: readonly bigint[], inputBits: number): bigint[] {
  const perElement = inputsPerElement(inputBits);
  const bound = 1n << BigInt(inputBits);
  const width = BigInt(inputBits + 1);
  const elements: bigint[] = [];
  input.forEach((v, i) => {
    if (v < -bound || v >= bound)
      throw new ZkEncodingError(
        `input[${i}] = ${v} is outside the proven range [-2^${inputBits}, 2^${inputBits}) (fixed point, 1e6 = 1.0)`,
      );
    const e = Math.floor(i / perElement);
    elements[e] = (elements[e] ?? 0n) | ((v + bound) << (width * BigInt(i % perElement)));
  });
  return elements;
}

/** The Poseidon digest of a fixed-point input (1e6 = 1.0) for a circuit of `inputBits` input bits. */
export function inputDigest(input: readonly bigint[], inputBits: number): bigint {
  const packed = packedInput(input, inputBits);
  return sponge(packed, spongeRate(packed.length, INPUT_RATE), input.length);
}

/** The one public signal of a proof: the commitment, the input digest, the answer and the prover, hashed. */
export function statementOf(commitment: bigint, digest: bigint, answer: bigint, prover: bigint): bigint {
  return poseidonLite.poseidon4([toField(commitment), toField(digest), toField(answer), toField(prover)]);
}
