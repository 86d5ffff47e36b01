/** Random dense models and inputs for the zk tests: weights of a trained model's size, and the extremes. */
import type { CanonicalModel } from "../../src/ml/encoding.ts";
import type { Rng } from "../../src/ml/partition.ts";
import { parseDenseArchitecture } from "../../src/oracle/fixed-point.ts";
import { INPUT_BITS } from "../../src/zk/circuit.ts";

export const INPUT_LIMIT = 1n << BigInt(INPUT_BITS);
const MAX_WEIGHT = 2 ** 31 - 1;

/** A random signed integer with |v| <= 2^bits, and the extremes now and then. */
export function randomSigned(rng: Rng, bits: number): bigint {
  const limit = 1n << BigInt(bits);
  const pick = rng.int(20);
  if (pick === 0) return limit - 1n;
  if (pick === 1) return -limit;
  if (pick === 2) return 0n;
  const magnitude = BigInt(rng.nextUint32()) * 2n ** 32n + BigInt(rng.nextUint32());
  const scaled = magnitude % (1n << BigInt(1 + rng.int(bits)));
  return rng.int(2) === 0 ? scaled : -scaled;
}

/** Random weights for an architecture: mostly of a trained model's size, some at the int32 extremes. */
export function randomModel(
  architecture: string,
  scaleBits: number,
  rng: Rng,
  extremes: boolean,
): CanonicalModel {
  const { sizes } = parseDenseArchitecture(architecture);
  const tensors = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const inputs = sizes[l] as number;
    const outputs = sizes[l + 1] as number;
    const fill = (n: number) =>
      Int32Array.from({ length: n }, () => {
        if (extremes && rng.int(4) === 0) return rng.int(2) === 0 ? MAX_WEIGHT : -MAX_WEIGHT;
        return Math.round(rng.normal() * 2 ** scaleBits * 0.8);
      });
    tensors.push(
      { name: `dense${l}.kernel`, shape: [inputs, outputs], ints: fill(inputs * outputs) },
      { name: `dense${l}.bias`, shape: [outputs], ints: fill(outputs) },
    );
  }
  return { architecture, scaleBits, tensors };
}
