/**
 * Model architectures by id, deterministic initial weights, and weights in and out of tfjs models
 * under stable names ("dense0.kernel", "dense0.bias", ...), in the order the canonical encoding uses.
 *
 * Ids (canonical decimal, no leading zeros):
 *   logreg-<in>-<out>          softmax regression (one dense layer)
 *   mlp-<in>-<h1>[-<h2>...]-<out>  dense ReLU hidden layers, then a dense output layer
 * e.g. "logreg-784-10", "mlp-784-128-10". Every model ends with a weightless softmax layer, so
 * `predict` gives class probabilities while training uses the logits before it.
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelTensor } from "./encoding.ts";
import { createRng } from "./partition.ts";

export type { ModelTensor } from "./encoding.ts";

export interface TensorSpec {
  name: string;
  shape: number[];
}

export interface ArchitectureSpec {
  id: string;
  kind: "logreg" | "mlp";
  /** Layer widths from input to output, e.g. [784, 128, 10]. */
  sizes: number[];
}

/** Upper bound on parameters of an architecture parsed from an id (guards against typos like 7840000). */
export const MAX_PARAMETERS = 50_000_000;

/** Parses and validates an architecture id. */
export function parseArchitecture(id: string): ArchitectureSpec {
  const match = /^(logreg|mlp)-([0-9]+(?:-[0-9]+)+)$/.exec(id);
  if (!match) {
    throw new Error(`Unknown architecture "${id}": expected logreg-<in>-<out> or mlp-<in>-<hidden...>-<out>`);
  }
  const kind = match[1] as "logreg" | "mlp";
  const parts = (match[2] as string).split("-");
  const sizes = parts.map(Number);
  parts.forEach((p, i) => {
    const v = sizes[i] as number;
    if (!Number.isSafeInteger(v) || v < 1 || String(v) !== p) {
      throw new Error(
        `Architecture "${id}": layer width "${p}" must be a positive integer without leading zeros`,
      );
    }
  });
  if (kind === "logreg" && sizes.length !== 2) {
    throw new Error(`Architecture "${id}": logreg takes exactly an input and an output width`);
  }
  if (kind === "mlp" && sizes.length < 3) {
    throw new Error(
      `Architecture "${id}": mlp needs at least one hidden layer (use logreg-<in>-<out> for none)`,
    );
  }
  if ((sizes[sizes.length - 1] as number) < 2)
    throw new Error(`Architecture "${id}": needs at least 2 classes`);
  const spec = { id, kind, sizes };
  const params = parameterCount(spec);
  if (params > MAX_PARAMETERS) {
    throw new Error(`Architecture "${id}" has ${params} parameters, more than the ${MAX_PARAMETERS} allowed`);
  }
  return spec;
}

function parameterCount(spec: ArchitectureSpec): number {
  let total = 0;
  for (let i = 0; i + 1 < spec.sizes.length; i++) {
    total += ((spec.sizes[i] as number) + 1) * (spec.sizes[i + 1] as number);
  }
  return total;
}

/** Tensor names and shapes of an architecture, in canonical order, without building a model. */
export function architectureShapes(architecture: string): TensorSpec[] {
  const { sizes } = parseArchitecture(architecture);
  const specs: TensorSpec[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    specs.push({ name: `dense${i}.kernel`, shape: [sizes[i] as number, sizes[i + 1] as number] });
    specs.push({ name: `dense${i}.bias`, shape: [sizes[i + 1] as number] });
  }
  return specs;
}

/** Number of trainable parameters of an architecture. */
export function architectureParameters(architecture: string): number {
  return parameterCount(parseArchitecture(architecture));
}

/**
 * Deterministic initial weights without tfjs: Glorot-uniform kernels (the Keras default for dense
 * layers) drawn from the seeded PRNG, layer by layer in row-major order; zero biases.
 */
export function initialWeights(architecture: string, seed: number | string): ModelTensor[] {
  const rng = createRng(seed);
  return architectureShapes(architecture).map(({ name, shape }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (shape.length === 2) {
      const limit = Math.sqrt(6 / ((shape[0] as number) + (shape[1] as number)));
      for (let i = 0; i < size; i++) values[i] = (2 * rng.next() - 1) * limit;
    }
    return { name, shape, values };
  });
}

const architectures = new WeakMap<tf.LayersModel, string>();

/** Builds the model of an architecture id with seeded initial weights. Call `initBackend()` first. */
export function createModel(architecture: string, seed: number | string): tf.LayersModel {
  const { sizes } = parseArchitecture(architecture);
  const input = tf.input({ shape: [sizes[0] as number], name: "input" });
  let h: tf.SymbolicTensor = input;
  const last = sizes.length - 2;
  for (let i = 0; i <= last; i++) {
    const dense = tf.layers.dense({
      units: sizes[i + 1] as number,
      activation: i < last ? "relu" : "linear",
      name: `dense${i}`,
      kernelInitializer: "zeros",
      biasInitializer: "zeros",
    });
    h = dense.apply(h) as tf.SymbolicTensor;
  }
  const output = tf.layers
    .activation({ activation: "softmax", name: "softmax" })
    .apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output });
  architectures.set(model, architecture);
  setWeights(model, initialWeights(architecture, seed));
  return model;
}

/** The architecture id a model was created with by `createModel`, if any. */
export function architectureOf(model: tf.LayersModel): string | undefined {
  return architectures.get(model);
}

interface NamedVariable {
  name: string;
  variable: tf.LayerVariable;
}

/**
 * The model's weight variables under stable names: `<layer class><index among layers of that
 * class>.<weight>`, e.g. "dense0.kernel", in layer order then each layer's weight order.
 */
export function namedVariables(model: tf.LayersModel): NamedVariable[] {
  const counters = new Map<string, number>();
  const out: NamedVariable[] = [];
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const cls = layer.getClassName().toLowerCase();
    const index = counters.get(cls) ?? 0;
    counters.set(cls, index + 1);
    for (const variable of layer.weights) {
      const short = variable.originalName.split("/").pop() ?? variable.originalName;
      out.push({ name: `${cls}${index}.${short}`, variable });
    }
  }
  return out;
}

/** Tensor names and shapes of a built model, in canonical order. */
export function modelShapes(model: tf.LayersModel): TensorSpec[] {
  return namedVariables(model).map(({ name, variable }) => ({
    name,
    shape: [...variable.shape] as number[],
  }));
}

/** Copies of the model's weights (Float32Array values, row-major), in canonical order. */
export function getWeights(model: tf.LayersModel): ModelTensor[] {
  return namedVariables(model).map(({ name, variable }) => ({
    name,
    shape: [...variable.shape] as number[],
    values: new Float32Array(variable.read().dataSync() as Float32Array),
  }));
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Replaces the model's weights. The tensors must name exactly the model's weights (any order) with
 * the same shapes and a value count matching each shape; otherwise nothing is changed and a clear
 * error says what differs.
 */
export function setWeights(model: tf.LayersModel, tensors: readonly ModelTensor[]): void {
  const vars = namedVariables(model);
  const byName = new Map<string, ModelTensor>();
  for (const t of tensors) {
    if (byName.has(t.name)) throw new Error(`setWeights: tensor "${t.name}" given twice`);
    byName.set(t.name, t);
  }
  const expected = new Set(vars.map((v) => v.name));
  const missing = vars.filter((v) => !byName.has(v.name)).map((v) => v.name);
  const unexpected = [...byName.keys()].filter((n) => !expected.has(n));
  if (missing.length > 0 || unexpected.length > 0) {
    throw new Error(
      `setWeights: tensor names do not match the model` +
        (missing.length ? `; missing ${missing.join(", ")}` : "") +
        (unexpected.length ? `; unexpected ${unexpected.join(", ")}` : ""),
    );
  }
  for (const { name, variable } of vars) {
    const t = byName.get(name) as ModelTensor;
    const shape = variable.shape as number[];
    if (!sameShape(t.shape, shape)) {
      throw new Error(
        `setWeights: "${name}" has shape [${t.shape.join(", ")}], the model expects [${shape.join(", ")}]`,
      );
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (t.values.length !== size) {
      throw new Error(
        `setWeights: "${name}" has ${t.values.length} values, shape [${shape.join(", ")}] needs ${size}`,
      );
    }
  }
  for (const { name, variable } of vars) {
    const t = byName.get(name) as ModelTensor;
    // Always a copy: the cpu backend keeps the array it is given, and callers may reuse theirs.
    const value = tf.tensor(Float32Array.from(t.values), variable.shape as number[], "float32");
    variable.write(value);
    value.dispose();
  }
}

/** One tfjs scratch model per architecture, made when first needed (the task's model decides it). */
export function scratchModels(): { of: (architecture: string) => tf.LayersModel; dispose: () => void } {
  const models = new Map<string, tf.LayersModel>();
  return {
    of(architecture) {
      let model = models.get(architecture);
      if (!model) {
        model = createModel(architecture, 0);
        models.set(architecture, model);
      }
      return model;
    },
    dispose() {
      for (const model of models.values()) model.dispose();
      models.clear();
    },
  };
}
