/**
 * Generates the circom circuit of a dense model's fixed-point inference (pure, no I/O).
 *
 * Two kinds of circuit, one statement (src/zk/commitment.ts) as the one public signal:
 *   private weights   one circuit serves every weight set of one architecture and scale: the weights are
 *                     private inputs bound by their salted Poseidon commitment, so a federated task's next
 *                     round or a retrained version is proven with the same keys, and the weights stay secret.
 *                     Hashing the weights costs about 41 constraints each: an MNIST MLP needs ~2^21.
 *   constant weights  one circuit per version: its weights, and their commitment, are constants of the
 *                     circuit, so a product by a weight is linear and costs no constraint. For versions whose
 *                     weights are public anyway (a registry version's weights are fetched by CID); an MNIST
 *                     MLP then fits 2^15. Anyone can rebuild the circuit from the registered weights and
 *                     check a proving key against it (snarkjs zkey verify).
 *
 * Bounds, so that no value wraps around the field (each is checked or follows from the previous):
 *   inputs      -2^B <= x < 2^B, range-checked, B the plan's input bits (40 by default: fixed point 1e6, up
 *               to about ±1.1e6 in real units; 20 covers [-1.04, 1.04], e.g. pixels)
 *   weights     |w| <= 2^31 - 1 by the canonical encoding; the commitment binds them, the circuit does
 *               not range-check them (whoever commits to weights outside int32 only breaks its own model)
 *   layer l     |acc| + 2^(s-1) < 2^accBits with accBits = max(31 + A, 51) + ceil(log2(in + 1)) + 1,
 *               where |a| <= 2^A (51 bounds |bias · 1e6|); then |z| <= 2^(accBits - s) = the next A
 */
import { createHash } from "node:crypto";
import { parseDenseArchitecture } from "../oracle/fixed-point.ts";
import { INPUT_RATE, inputsPerElement, spongeRate, WEIGHTS_RATE } from "./commitment.ts";

/** Inputs lie in [-2^INPUT_BITS, 2^INPUT_BITS) unless a plan says otherwise. */
export const INPUT_BITS = 40;
/** Largest bit width a range check may use and still be unique in the BN254 field. */
const MAX_RANGE_BITS = 250;

export class ZkCircuitError extends Error {
  override name = "ZkCircuitError";
}

/** Whether the weights are private inputs (one circuit per architecture) or constants (one per version). */
export type CircuitWeights = "private" | "constant";

export interface DenseCircuitPlan {
  architecture: string;
  scaleBits: number;
  /** Inputs are proven in [-2^inputBits, 2^inputBits). */
  inputBits: number;
  weights: CircuitWeights;
  sizes: number[];
  output: "linear" | "sigmoid";
  /** Number of weights (kernels and biases, all layers). */
  weightCount: number;
  /** Per layer: the accumulator's bit bound. */
  accBits: number[];
}

export interface PlanOptions {
  /** Default INPUT_BITS. */
  inputBits?: number;
  /** Default "private". */
  weights?: CircuitWeights;
}

/** Layer sizes and bit bounds of an architecture's circuit; refuses what would not fit in the field. */
export function planDenseCircuit(
  architecture: string,
  scaleBits: number,
  options: PlanOptions = {},
): DenseCircuitPlan {
  if (!Number.isInteger(scaleBits) || scaleBits < 0 || scaleBits > 31)
    throw new ZkCircuitError(`scaleBits must be an integer from 0 to 31, got ${scaleBits}`);
  const inputBits = options.inputBits ?? INPUT_BITS;
  try {
    inputsPerElement(inputBits);
  } catch (err) {
    throw new ZkCircuitError((err as Error).message);
  }
  const { sizes, output } = parseDenseArchitecture(architecture);
  const accBits: number[] = [];
  let a = inputBits;
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
  return {
    architecture,
    scaleBits,
    inputBits,
    weights: options.weights ?? "private",
    sizes,
    output,
    weightCount,
    accBits,
  };
}

/** Partial rounds of circomlib's Poseidon by state width t = inputs + 1 (t = 2..17); 8 full rounds each. */
const POSEIDON_PARTIAL_ROUNDS = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68];

/** An upper bound on circomlib's Poseidon constraints: three per S-box (x^5), t S-boxes per full round. */
export function poseidonConstraints(inputs: number): number {
  const t = inputs + 1;
  return 3 * (8 * t + (POSEIDON_PARTIAL_ROUNDS[t - 2] as number));
}

/** An upper bound on the constraints of the documented sponge over `length` values. */
export function spongeConstraints(length: number, maxRate: number): number {
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
  const { sizes, accBits, scaleBits: s, inputBits } = plan;
  const n0 = sizes[0] as number;
  const constant = plan.weights === "constant";
  let total = constant ? 0 : spongeConstraints(plan.weightCount + 1, WEIGHTS_RATE);
  total += spongeConstraints(Math.ceil(n0 / inputsPerElement(inputBits)), INPUT_RATE);
  total += poseidonConstraints(4) + n0 * (inputBits + 1);
  for (let l = 0; l + 1 < sizes.length; l++) {
    const nIn = sizes[l] as number;
    const nOut = sizes[l + 1] as number;
    const bits = accBits[l] as number;
    total += (constant ? 0 : nIn * nOut) + nOut * (bits + 1);
    if (l + 2 < sizes.length) total += nOut; // ReLU
  }
  const outputs = sizes[sizes.length - 1] as number;
  const zBits = (accBits[accBits.length - 1] as number) - s;
  if (plan.output === "sigmoid") total += outputs * (zBits + 360);
  if (outputs > 1) total += (outputs - 1) * ((plan.output === "sigmoid" ? 20 : zBits) + 4);
  return total;
}

/** What a constant-weights circuit bakes in: the weights in commitment order, and their commitment. */
export interface CircuitConstants {
  weights: readonly bigint[];
  commitment: bigint;
}

/**
 * The main circom file of a dense model (it includes circuits/dense.circom); a constant-weights plan needs
 * its `constants`.
 */
export function denseCircuitSource(plan: DenseCircuitPlan, constants?: CircuitConstants): string {
  const { sizes, scaleBits: s, weightCount: w, accBits, inputBits } = plan;
  const constant = plan.weights === "constant";
  if (constant && constants?.weights.length !== w)
    throw new ZkCircuitError(
      `a constant-weights circuit of ${plan.architecture} needs its ${w} weights, got ${constants?.weights.length ?? "none"}`,
    );
  const n0 = sizes[0] as number;
  const layers = sizes.length - 1;
  const perElement = inputsPerElement(inputBits);
  const elements = Math.ceil(n0 / perElement);
  const lines: string[] = [
    "pragma circom 2.1.0;",
    "",
    `// ${plan.architecture} at scale 2^${s}, inputs in [-2^${inputBits}, 2^${inputBits}), ${plan.weights} weights: generated by src/zk/circuit.ts, do not edit.`,
    'include "dense.circom";',
    "",
    "template Model() {",
    ...(constant ? [] : ["    signal input salt;"]),
    "    signal input prover;",
    ...(constant ? [] : [`    signal input weights[${w}];`]),
    `    signal input x[${n0}];`,
    "    signal output statement;",
    "",
  ];
  if (constant && constants) {
    lines.push(`    var weights[${w}] = [${constants.weights.join(",")}];`);
  } else {
    lines.push(
      `    component commitment = Sponge(${w + 1}, ${spongeRate(w + 1, WEIGHTS_RATE)}, ${w + 1});`,
      "    commitment.in[0] <== salt;",
      `    for (var i = 0; i < ${w}; i++) commitment.in[i + 1] <== weights[i];`,
    );
  }
  lines.push(
    "",
    `    component digest = InputDigest(${n0}, ${inputBits}, ${perElement}, ${spongeRate(elements, INPUT_RATE)});`,
    `    for (var i = 0; i < ${n0}; i++) digest.x[i] <== x[i];`,
  );
  let offset = 0;
  let activations = "x";
  for (let l = 0; l < layers; l++) {
    const nIn = sizes[l] as number;
    const nOut = sizes[l + 1] as number;
    const bits = accBits[l] as number;
    const bias = offset + nIn * nOut;
    lines.push("", `    signal z${l}[${nOut}];`, `    signal nonNeg${l}[${nOut}];`);
    if (constant) {
      // acc is a linear combination of the activations: a product by a constant weight costs nothing.
      lines.push(
        `    component shift${l}[${nOut}];`,
        `    for (var j = 0; j < ${nOut}; j++) {`,
        `        var acc = weights[${bias} + j] * 1000000;`,
        `        for (var i = 0; i < ${nIn}; i++) acc += weights[${offset} + i * ${nOut} + j] * ${activations}[i];`,
        `        shift${l}[j] = RoundShift(${bits}, ${s});`,
        `        shift${l}[j].acc <== acc;`,
        `        z${l}[j] <== shift${l}[j].out;`,
        `        nonNeg${l}[j] <== shift${l}[j].nonNeg;`,
        "    }",
      );
    } else {
      lines.push(
        `    component layer${l} = Dense(${nIn}, ${nOut}, ${s}, ${bits});`,
        `    for (var i = 0; i < ${nIn}; i++) layer${l}.a[i] <== ${activations}[i];`,
        `    for (var k = 0; k < ${nIn * nOut}; k++) layer${l}.kernel[k] <== weights[${offset} + k];`,
        `    for (var j = 0; j < ${nOut}; j++) layer${l}.bias[j] <== weights[${bias} + j];`,
        `    for (var j = 0; j < ${nOut}; j++) {`,
        `        z${l}[j] <== layer${l}.z[j];`,
        `        nonNeg${l}[j] <== layer${l}.nonNeg[j];`,
        "    }",
      );
    }
    offset += nIn * nOut + nOut;
    if (l < layers - 1) {
      lines.push(
        `    signal a${l + 1}[${nOut}];`,
        `    component relu${l}[${nOut}];`,
        `    for (var j = 0; j < ${nOut}; j++) {`,
        `        relu${l}[j] = Relu();`,
        `        relu${l}[j].z <== z${l}[j];`,
        `        relu${l}[j].nonNeg <== nonNeg${l}[j];`,
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
      `        sigmoid[j].x <== z${last}[j];`,
      `        sigmoid[j].nonNeg <== nonNeg${last}[j];`,
      "        y[j] <== sigmoid[j].out;",
      "    }",
    );
  } else {
    lines.push(`    for (var j = 0; j < ${nOut}; j++) y[j] <== z${last}[j];`);
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
    constant && constants
      ? `    hash.inputs[0] <== ${constants.commitment};`
      : "    hash.inputs[0] <== commitment.out;",
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
