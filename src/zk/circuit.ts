/**
 * Generates the circom circuit of a dense model's fixed-point inference (pure, no I/O).
 *
 * One circuit serves every weight set of one architecture and scale: the weights are private inputs,
 * bound by their Poseidon commitment, so a federated task's next round or a retrained version is proven
 * with the same keys. The circuit's one public signal is the statement of src/zk/commitment.ts.
 *
 * Bounds, so that no value wraps around the field (each is checked or follows from the previous):
 *   inputs      -2^40 <= x < 2^40, range-checked (fixed point 1e6: up to about ±1.1e6 in real units)
 *   weights     |w| <= 2^31 - 1 by the canonical encoding; the commitment binds them, the circuit does
 *               not range-check them (whoever commits to weights outside int32 only breaks its own model)
 *   layer l     |acc| + 2^(s-1) < 2^accBits with accBits = max(31 + A, 51) + ceil(log2(in + 1)) + 1,
 *               where |a| <= 2^A (51 bounds |bias · 1e6|); then |z| <= 2^(accBits - s) = the next A
 */
import { createHash } from "node:crypto";
import { parseDenseArchitecture } from "../oracle/fixed-point.ts";
import { INPUT_RATE, spongeRate, WEIGHTS_RATE } from "./commitment.ts";

/** Inputs must lie in [-2^INPUT_BITS, 2^INPUT_BITS). */
export const INPUT_BITS = 40;
/** Largest bit width a range check may use and still be unique in the BN254 field. */
const MAX_RANGE_BITS = 250;

export class ZkCircuitError extends Error {
  override name = "ZkCircuitError";
}

export interface DenseCircuitPlan {
  architecture: string;
  scaleBits: number;
  sizes: number[];
  output: "linear" | "sigmoid";
  /** Number of weights (kernels and biases, all layers). */
  weightCount: number;
  /** Per layer: the accumulator's bit bound. */
  accBits: number[];
}

/** Layer sizes and bit bounds of an architecture's circuit; refuses what would not fit in the field. */
export function planDenseCircuit(architecture: string, scaleBits: number): DenseCircuitPlan {
  if (!Number.isInteger(scaleBits) || scaleBits < 0 || scaleBits > 31)
    throw new ZkCircuitError(`scaleBits must be an integer from 0 to 31, got ${scaleBits}`);
  const { sizes, output } = parseDenseArchitecture(architecture);
  const accBits: number[] = [];
  let a = INPUT_BITS;
  let weightCount = 0;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const inputs = sizes[l] as number;
    const outputs = sizes[l + 1] as number;
    weightCount += inputs * outputs + outputs;
    const bits = Math.max(31 + a, 51) + Math.ceil(Math.log2(inputs + 1)) + 1;
    if (bits + 1 > MAX_RANGE_BITS)
      throw new ZkCircuitError(
        `${architecture} at scale 2^${scaleBits}: layer ${l}'s values need ${bits} bits, more than a field element holds safely; use a larger scaleBits or fewer layers`,
      );
    accBits.push(bits);
    a = bits - scaleBits;
  }
  return { architecture, scaleBits, sizes, output, weightCount, accBits };
}

/** Partial rounds of circomlib's Poseidon by state width t = inputs + 1 (t = 2..17); 8 full rounds each. */
const POSEIDON_PARTIAL_ROUNDS = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68];

/** An upper bound on circomlib's Poseidon constraints: three per S-box (x^5), t S-boxes per full round. */
function poseidonConstraints(inputs: number): number {
  const t = inputs + 1;
  return 3 * (8 * t + (POSEIDON_PARTIAL_ROUNDS[t - 2] as number));
}

function spongeConstraints(length: number, maxRate: number): number {
  const rate = spongeRate(length, maxRate);
  return Math.ceil(length / rate) * poseidonConstraints(rate + 1);
}

/**
 * The size of a plan's circuit without compiling it (compiling a model of MNIST's size takes longer than
 * measuring anything about it): each template's constraints after circom's --O2, counted from
 * circuits/dense.circom. Poseidon is counted at three constraints per S-box, a slight overestimate (circom
 * folds the S-boxes of constant inputs), so this is an upper bound, within a few percent of the compiled
 * circuits it is tested on.
 */
export function estimatedConstraints(plan: DenseCircuitPlan): number {
  const { sizes, accBits, scaleBits: s } = plan;
  const n0 = sizes[0] as number;
  let total = spongeConstraints(plan.weightCount + 1, WEIGHTS_RATE) + spongeConstraints(n0, INPUT_RATE);
  total += poseidonConstraints(4) + n0 * (INPUT_BITS + 1);
  for (let l = 0; l + 1 < sizes.length; l++) {
    const nIn = sizes[l] as number;
    const nOut = sizes[l + 1] as number;
    const bits = accBits[l] as number;
    total += nIn * nOut + nOut * (bits + 1);
    if (l + 2 < sizes.length) total += nOut; // ReLU
  }
  const outputs = sizes[sizes.length - 1] as number;
  const zBits = (accBits[accBits.length - 1] as number) - s;
  if (plan.output === "sigmoid") total += outputs * (zBits + 360);
  if (outputs > 1) total += (outputs - 1) * ((plan.output === "sigmoid" ? 20 : zBits) + 4);
  return total;
}

/** The main circom file of a dense model (it includes circuits/dense.circom). */
export function denseCircuitSource(plan: DenseCircuitPlan): string {
  const { sizes, scaleBits: s, weightCount: w, accBits } = plan;
  const n0 = sizes[0] as number;
  const layers = sizes.length - 1;
  const lines: string[] = [
    "pragma circom 2.1.0;",
    "",
    `// ${plan.architecture} at scale 2^${s}: generated by src/zk/circuit.ts, do not edit.`,
    'include "dense.circom";',
    "",
    "template Model() {",
    "    signal input salt;",
    "    signal input prover;",
    `    signal input weights[${w}];`,
    `    signal input x[${n0}];`,
    "    signal output statement;",
    "",
    `    component commitment = Sponge(${w + 1}, ${spongeRate(w + 1, WEIGHTS_RATE)});`,
    "    commitment.in[0] <== salt;",
    `    for (var i = 0; i < ${w}; i++) commitment.in[i + 1] <== weights[i];`,
    "",
    `    component digest = Sponge(${n0}, ${spongeRate(n0, INPUT_RATE)});`,
    `    component range[${n0}];`,
    `    for (var i = 0; i < ${n0}; i++) {`,
    `        range[i] = SignedRange(${INPUT_BITS});`,
    "        range[i].in <== x[i];",
    "        digest.in[i] <== x[i];",
    "    }",
  ];
  let offset = 0;
  let activations = "x";
  for (let l = 0; l < layers; l++) {
    const nIn = sizes[l] as number;
    const nOut = sizes[l + 1] as number;
    const bits = accBits[l] as number;
    lines.push(
      "",
      `    component layer${l} = Dense(${nIn}, ${nOut}, ${s}, ${bits});`,
      `    for (var i = 0; i < ${nIn}; i++) layer${l}.a[i] <== ${activations}[i];`,
      `    for (var k = 0; k < ${nIn * nOut}; k++) layer${l}.kernel[k] <== weights[${offset} + k];`,
      `    for (var j = 0; j < ${nOut}; j++) layer${l}.bias[j] <== weights[${offset + nIn * nOut} + j];`,
    );
    offset += nIn * nOut + nOut;
    const last = l === layers - 1;
    if (!last) {
      lines.push(
        `    signal a${l + 1}[${nOut}];`,
        `    component relu${l}[${nOut}];`,
        `    for (var j = 0; j < ${nOut}; j++) {`,
        `        relu${l}[j] = Relu();`,
        `        relu${l}[j].z <== layer${l}.z[j];`,
        `        relu${l}[j].nonNeg <== layer${l}.nonNeg[j];`,
        `        a${l + 1}[j] <== relu${l}[j].out;`,
        "    }",
      );
      activations = `a${l + 1}`;
    }
  }
  const last = layers - 1;
  const nOut = sizes[layers] as number;
  const zBits = (accBits[last] as number) - s;
  lines.push("", `    signal y[${nOut}];`);
  if (plan.output === "sigmoid") {
    lines.push(
      `    component sigmoid[${nOut}];`,
      `    for (var j = 0; j < ${nOut}; j++) {`,
      `        sigmoid[j] = SigmoidFixed(${zBits});`,
      `        sigmoid[j].x <== layer${last}.z[j];`,
      `        sigmoid[j].nonNeg <== layer${last}.nonNeg[j];`,
      "        y[j] <== sigmoid[j].out;",
      "    }",
    );
  } else {
    lines.push(`    for (var j = 0; j < ${nOut}; j++) y[j] <== layer${last}.z[j];`);
  }
  lines.push("", "    signal answer;");
  if (nOut === 1) {
    lines.push("    answer <== y[0];");
  } else {
    // Sigmoid outputs lie in [0, 1e6] < 2^20; linear ones in [-2^zBits, 2^zBits).
    lines.push(
      `    component argmax = ArgMax(${nOut}, ${plan.output === "sigmoid" ? 20 : zBits});`,
      `    for (var j = 0; j < ${nOut}; j++) argmax.v[j] <== y[j];`,
      "    answer <== argmax.index;",
    );
  }
  lines.push(
    "",
    "    component hash = Poseidon(4);",
    "    hash.inputs[0] <== commitment.out;",
    "    hash.inputs[1] <== digest.out;",
    "    hash.inputs[2] <== answer;",
    "    hash.inputs[3] <== prover;",
    "    statement <== hash.out;",
    "}",
    "",
    "component main = Model();",
    "",
  );
  return lines.join("\n");
}

/** The digest that names a circuit and its keys: its main source, the template library and the compiler. */
export function circuitDigest(mainSource: string, librarySource: string, compilerVersion: string): string {
  return createHash("sha256")
    .update(`${compilerVersion}\n`)
    .update(`${librarySource.length}\n${librarySource}`)
    .update(mainSource)
    .digest("hex");
}
