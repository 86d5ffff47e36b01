/**
 * Training and evaluation of classifiers on in-memory datasets: a plain loop (seeded shuffling, no
 * Math.random), softmax cross-entropy on logits, SGD or Adam, an optional FedProx proximal term, and
 * every intermediate tensor disposed.
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelTensor } from "./encoding.ts";
import { namedVariables } from "./models.ts";
import { createRng, type Dataset, featuresOf, permutation } from "./partition.ts";

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Seeds the per-epoch shuffling. */
  seed: number | string;
  /** Default "sgd" (plain, stateless across calls: what FedAvg assumes). */
  optimizer?: "sgd" | "adam";
  /**
   * FedProx: adds mu/2 * ||w - w_global||^2 over the trainable weights to each batch's loss
   * (its gradient mu * (w - w_global) is added to the weight gradients). Needs `globalWeights`.
   */
  proximalMu?: number;
  /** The global model the proximal term pulls towards, by the names of `getWeights`. */
  globalWeights?: readonly ModelTensor[];
  /**
   * "auto" (default): hand-written backpropagation for plain dense stacks (every `createModel`
   * model), about 3x faster on wasm, whose transposed matrix products under autodiff are slow;
   * "tape": tfjs autodiff, for any classifier (used automatically when the fast path does not apply).
   */
  gradients?: "auto" | "tape";
  /** Called after each epoch (0-based) with its mean training loss; awaited. */
  onEpoch?: (epoch: number, metrics: { loss: number }) => void | Promise<void>;
}

export interface TrainResult {
  /** Mean cross-entropy over the samples of the last epoch (before each step's update; no prox term). */
  loss: number;
  /** Optimizer steps taken. */
  steps: number;
}

export interface Metrics {
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
}

/** Steps between yields to the event loop, so a node's timers and sockets keep running while training. */
const YIELD_EVERY_STEPS = 64;
const EPSILON = 1e-7;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Forward {
  /** Returns logits (when `logits`) or class probabilities. */
  apply(x: tf.Tensor): tf.Tensor;
  logits: boolean;
  classes: number;
  features: number;
}

const forwards = new WeakMap<tf.LayersModel, Forward>();

/**
 * How to run the model: models that end with a softmax Activation layer (all of `createModel`'s)
 * are run up to the logits before it, for a numerically stable loss; other single-output models are
 * taken to output probabilities.
 */
function forwardOf(model: tf.LayersModel): Forward {
  const cached = forwards.get(model);
  if (cached) return cached;
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new Error("train: only single-input, single-output classifiers are supported");
  }
  const inShape = model.inputs[0]?.shape ?? [];
  const outShape = model.outputs[0]?.shape ?? [];
  const features = inShape[1];
  const classes = outShape[1];
  if (
    inShape.length !== 2 ||
    outShape.length !== 2 ||
    typeof features !== "number" ||
    typeof classes !== "number"
  ) {
    throw new Error(
      `train: expected a model from [batch, features] to [batch, classes], got [${inShape}] -> [${outShape}]`,
    );
  }
  let forward: Forward = { apply: (x) => model.apply(x) as tf.Tensor, logits: false, classes, features };
  const last = model.layers[model.layers.length - 1];
  if (last && last.getClassName() === "Activation" && last.getConfig().activation === "softmax") {
    const inner = tf.model({ inputs: model.inputs, outputs: last.input as tf.SymbolicTensor });
    forward = { apply: (x) => inner.apply(x) as tf.Tensor, logits: true, classes, features };
  }
  forwards.set(model, forward);
  return forward;
}

/** Mean (or summed) cross-entropy of one-hot labels against the forward's output. */
function crossEntropy(
  forward: Forward,
  out: tf.Tensor,
  oneHot: tf.Tensor,
  reduction: "mean" | "sum",
): tf.Scalar {
  const perSample = forward.logits
    ? tf.losses.softmaxCrossEntropy(oneHot, out, undefined, undefined, tf.Reduction.NONE)
    : tf.neg(tf.sum(tf.mul(oneHot, tf.log(tf.clipByValue(out, EPSILON, 1))), -1));
  return (reduction === "mean" ? tf.mean(perSample) : tf.sum(perSample)) as tf.Scalar;
}

interface DenseLayer {
  kernel: tf.Variable;
  bias: tf.Variable;
  relu: boolean;
}

const denseStacks = new WeakMap<tf.LayersModel, DenseLayer[] | null>();

/**
 * The layers of a model that is exactly input -> dense(relu) ... -> dense(linear) -> softmax, each
 * dense with a bias and fed by the previous layer; undefined for any other model.
 */
function denseStackOf(model: tf.LayersModel): DenseLayer[] | undefined {
  const cached = denseStacks.get(model);
  if (cached !== undefined) return cached ?? undefined;
  let stack: DenseLayer[] | null = null;
  const layers = model.layers;
  const inner = layers.slice(1, -1);
  const first = layers[0];
  const last = layers[layers.length - 1];
  const ok =
    first?.getClassName() === "InputLayer" &&
    last?.getClassName() === "Activation" &&
    last.getConfig().activation === "softmax" &&
    inner.length > 0 &&
    inner.every((layer, i) => {
      const config = layer.getConfig();
      const activation = i === inner.length - 1 ? "linear" : "relu";
      return (
        layer.getClassName() === "Dense" &&
        config.activation === activation &&
        config.useBias === true &&
        layer.weights.length === 2 &&
        layer.input === (layers[i] as tf.layers.Layer).output
      );
    }) &&
    last.input === (inner[inner.length - 1] as tf.layers.Layer).output;
  if (ok) {
    stack = inner.map((layer, i) => {
      const [kernel, bias] = layer.weights as [tf.LayerVariable, tf.LayerVariable];
      if (!kernel.originalName.endsWith("kernel") || !bias.originalName.endsWith("bias"))
        throw new Error("unexpected dense weights");
      return {
        kernel: kernel.read() as tf.Variable,
        bias: bias.read() as tf.Variable,
        relu: i < inner.length - 1,
      };
    });
  }
  denseStacks.set(model, stack);
  return stack ?? undefined;
}

/**
 * Loss and weight gradients of a dense stack on one batch, backpropagated by hand with explicit
 * transposes. `xT` is the batch transposed ([features, batch]), built on the JavaScript side.
 */
function denseStackGradients(
  stack: DenseLayer[],
  xs: tf.Tensor2D,
  xT: tf.Tensor2D,
  oneHot: tf.Tensor2D,
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const batch = xs.shape[0];
  const inputs: tf.Tensor2D[] = [];
  let h: tf.Tensor2D = xs;
  for (const layer of stack) {
    inputs.push(h);
    h = tf.fused.matMul({
      a: h,
      b: layer.kernel as tf.Tensor2D,
      bias: layer.bias,
      activation: layer.relu ? "relu" : "linear",
    }) as tf.Tensor2D;
  }
  const logProbs = tf.logSoftmax(h);
  const value = tf.div(tf.neg(tf.sum(tf.mul(oneHot, logProbs))), batch) as tf.Scalar;
  let dz: tf.Tensor2D = tf.div(tf.sub(tf.exp(logProbs), oneHot), batch);
  const grads: tf.NamedTensorMap = {};
  for (let i = stack.length - 1; i >= 0; i--) {
    const layer = stack[i] as DenseLayer;
    const input = inputs[i] as tf.Tensor2D;
    grads[layer.kernel.name] = tf.matMul(i === 0 ? xT : tf.transpose(input), dz);
    grads[layer.bias.name] = tf.sum(dz, 0);
    if (i > 0) {
      // The input of layer i is the ReLU output of layer i-1: its derivative is 1 where it is > 0.
      dz = tf.mul(tf.matMul(dz, tf.transpose(layer.kernel)), tf.step(input));
    }
  }
  return { value, grads };
}

function checkDataset(dataset: Dataset, forward: Forward, what: string): void {
  const f = featuresOf(dataset);
  if (f !== forward.features)
    throw new Error(`${what}: dataset rows have ${f} features, the model takes ${forward.features}`);
  for (let i = 0; i < dataset.n; i++) {
    if ((dataset.y[i] as number) >= forward.classes) {
      throw new Error(
        `${what}: label ${dataset.y[i]} at ${i} is out of range for ${forward.classes} classes`,
      );
    }
  }
}

function gatherRows(
  dataset: Dataset,
  order: ArrayLike<number>,
  start: number,
  end: number,
  f: number,
  transposed: boolean,
) {
  const b = end - start;
  const x = new Float32Array(b * f);
  const xT = transposed ? new Float32Array(b * f) : undefined;
  const y = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    const j = order[start + i] as number;
    const row = dataset.x.subarray(j * f, (j + 1) * f);
    x.set(row, i * f);
    if (xT) for (let k = 0; k < f; k++) xT[k * b + i] = row[k] as number;
    y[i] = dataset.y[j] as number;
  }
  return { x, xT, y, b };
}

function positiveInteger(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 1)
    throw new Error(`trainModel: ${name} must be a positive integer, got ${v}`);
}

/** Trains the model in place. Call `initBackend()` first. */
export async function trainModel(
  model: tf.LayersModel,
  dataset: Dataset,
  options: TrainOptions,
): Promise<TrainResult> {
  const { epochs, batchSize, learningRate } = options;
  positiveInteger(epochs, "epochs");
  positiveInteger(batchSize, "batchSize");
  if (!(learningRate > 0) || !Number.isFinite(learningRate)) {
    throw new Error(`trainModel: learningRate must be a positive number, got ${learningRate}`);
  }
  const mu = options.proximalMu ?? 0;
  if (!(mu >= 0) || !Number.isFinite(mu)) throw new Error(`trainModel: proximalMu must be >= 0, got ${mu}`);
  if (mu > 0 && !options.globalWeights) throw new Error("trainModel: proximalMu needs globalWeights");
  const forward = forwardOf(model);
  checkDataset(dataset, forward, "trainModel");
  const f = forward.features;

  const trainable = namedVariables(model).filter((v) => v.variable.trainable);
  let stack = options.gradients === "tape" ? undefined : denseStackOf(model);
  // Frozen layers: the hand-written path updates every dense weight, so leave those to autodiff.
  if (stack && trainable.length !== stack.length * 2) stack = undefined;
  const varList = trainable.map((v) => v.variable.read() as tf.Variable);
  const globals = new Map<string, tf.Tensor>();
  const optimizer: tf.Optimizer =
    options.optimizer === "adam" ? tf.train.adam(learningRate) : tf.train.sgd(learningRate);
  const rng = createRng(options.seed);
  let loss = Number.NaN;
  let steps = 0;
  try {
    if (mu > 0) {
      const given = new Map((options.globalWeights ?? []).map((t) => [t.name, t]));
      for (const { name, variable } of trainable) {
        const t = given.get(name);
        const shape = variable.shape as number[];
        if (!t || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
          throw new Error(`trainModel: globalWeights lack "${name}" of shape [${shape.join(", ")}]`);
        }
        globals.set(
          (variable.read() as tf.Variable).name,
          tf.tensor(Float32Array.from(t.values), shape, "float32"),
        );
      }
    }
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = permutation(dataset.n, rng);
      let sum = 0;
      for (let start = 0; start < dataset.n; start += batchSize) {
        const batch = gatherRows(dataset, order, start, Math.min(start + batchSize, dataset.n), f, !!stack);
        const value = tf.tidy(() => {
          const xs = tf.tensor2d(batch.x, [batch.b, f]);
          const ys = tf.oneHot(tf.tensor1d(batch.y, "int32"), forward.classes) as tf.Tensor2D;
          const { value, grads } = stack
            ? denseStackGradients(stack, xs, tf.tensor2d(batch.xT as Float32Array, [f, batch.b]), ys)
            : optimizer.computeGradients(() => crossEntropy(forward, forward.apply(xs), ys, "mean"), varList);
          if (mu > 0) {
            for (const v of varList) {
              const g = grads[v.name];
              const w0 = globals.get(v.name);
              if (g && w0) grads[v.name] = tf.add(g, tf.mul(tf.sub(v, w0), mu));
            }
          }
          optimizer.applyGradients(grads);
          return value;
        });
        sum += (value.dataSync()[0] as number) * batch.b;
        value.dispose();
        steps++;
        if (steps % YIELD_EVERY_STEPS === 0) await yieldToEventLoop();
      }
      loss = sum / dataset.n;
      if (options.onEpoch) await options.onEpoch(epoch, { loss });
      await yieldToEventLoop();
    }
  } finally {
    optimizer.dispose();
    for (const t of globals.values()) t.dispose();
  }
  return { loss, steps };
}

/** Accuracy and mean cross-entropy of the model on a dataset. */
export async function evaluate(model: tf.LayersModel, dataset: Dataset, batchSize = 1024): Promise<Metrics> {
  const forward = forwardOf(model);
  checkDataset(dataset, forward, "evaluate");
  const f = forward.features;
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < dataset.n; start += batchSize) {
    const end = Math.min(start + batchSize, dataset.n);
    const x = dataset.x.subarray(start * f, end * f);
    const [lossT, predT] = tf.tidy(() => {
      const out = forward.apply(tf.tensor2d(x.slice(), [end - start, f]));
      const labels = tf.oneHot(
        tf.tensor1d(Int32Array.from(dataset.y.subarray(start, end)), "int32"),
        forward.classes,
      );
      return [crossEntropy(forward, out, labels, "sum"), tf.argMax(out, 1)];
    });
    lossSum += lossT.dataSync()[0] as number;
    const pred = predT.dataSync();
    for (let i = 0; i < end - start; i++) if (pred[i] === dataset.y[start + i]) correct++;
    tf.dispose([lossT, predT]);
    await yieldToEventLoop();
  }
  return { accuracy: correct / dataset.n, loss: lossSum / dataset.n };
}

/** Class probabilities for rows of `features` values: n * classes, row-major. */
export function predictProbabilities(model: tf.LayersModel, x: Float32Array): Float32Array {
  const forward = forwardOf(model);
  const n = x.length / forward.features;
  if (!Number.isInteger(n))
    throw new Error(`predict: input length ${x.length} is not a multiple of ${forward.features}`);
  const probs = tf.tidy(() => {
    const out = forward.apply(tf.tensor2d(x.slice(), [n, forward.features]));
    return forward.logits ? tf.softmax(out) : out;
  });
  const values = Float32Array.from(probs.dataSync() as Float32Array);
  probs.dispose();
  return values;
}
