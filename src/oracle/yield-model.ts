/**
 * The yield-risk model behind CropInsurance: an MLP (4 inputs, 16 ReLU units, 1 sigmoid output) that
 * predicts the relative yield loss of a (region, season) from its conditions, trained with MSE on the
 * synthetic data of yield-data.ts.
 *
 * src/ml/train.ts trains and evaluates classifiers only (softmax cross-entropy, integer labels, and
 * models.ts refuses an output width below 2), so this file holds a small regression trainer: seeded
 * Glorot initialization and shuffling, Adam, mean squared error. Training uses floats; what leaves
 * here is the canonical encoding (encodeModel), and the metrics are reported both for the float model
 * and for the integer inference operators run (fixed-point.ts), which is what decides payouts.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../ml/backend.ts";
import { decodeModel, encodeModel, type ModelTensor } from "../ml/encoding.ts";
import { createRng, permutation } from "../ml/partition.ts";
import { MODEL_CARD_SCHEMA, type ModelCard, parseModelCard } from "../registry/model-card.ts";
import { cidOf, sha256Digest } from "../storage/cid.ts";
import { fromFixed, inferFixed } from "./fixed-point.ts";
import {
  encodeYieldData,
  FEATURE_COUNT,
  FEATURE_NAMES,
  FEATURE_RANGES,
  generateYieldData,
  KY_MAIZE,
  NOISE_SD,
  toOracleInput,
  type YieldData,
} from "./yield-data.ts";

export interface YieldModelOptions {
  /** Seed of the training data, the initial weights and the shuffling. */
  seed?: number | string;
  trainSize?: number;
  testSize?: number;
  hidden?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Fixed-point scale of the canonical weights. */
  scaleBits?: number;
}

export interface RegressionMetrics {
  mae: number;
  rmse: number;
  /** 1 − SSE / SST, against the evaluated data's own mean. */
  r2: number;
}

export interface YieldModelMetrics {
  /** The float (tfjs) model on the training data. */
  train: RegressionMetrics;
  /** The float model on held-out data (another seed: other regions, other seasons). */
  test: RegressionMetrics;
  /** The canonical weights run by the integer inference (what the oracle computes) on held-out data. */
  testFixed: RegressionMetrics;
  /** Predicting the training mean for everything, on held-out data. */
  baseline: RegressionMetrics;
  /** The generator's noise-free expected loss, on held-out data: the floor no model can beat. */
  noiseFloor: RegressionMetrics;
  /** Largest |float prediction − integer prediction| on held-out data. */
  maxFixedDeviation: number;
}

export interface TrainedYieldModel {
  architecture: string;
  /** Float weights, canonical names and order. */
  weights: ModelTensor[];
  /** Canonical encoding (the bytes whose sha256 goes on-chain as the weights digest). */
  canonical: Uint8Array;
  weightsDigest: `0x${string}`;
  metrics: YieldModelMetrics;
  card: ModelCard;
  trainData: YieldData;
  testData: YieldData;
  options: Required<YieldModelOptions>;
  trainingSeconds: number;
}

export const YIELD_DEFAULTS: Required<YieldModelOptions> = {
  seed: "ledgermind-yield-v1",
  trainSize: 4000,
  testSize: 2000,
  hidden: 16,
  epochs: 30,
  batchSize: 128,
  learningRate: 0.02,
  scaleBits: 16,
};

/** "mlp-4-<hidden>-1-sigmoid": the sigmoid output is part of the id (fixed-point.ts). */
export function yieldArchitecture(hidden: number): string {
  return `mlp-${FEATURE_COUNT}-${hidden}-1-sigmoid`;
}

/** MAE, RMSE and R² of predictions against targets. */
export function regressionMetrics(
  predicted: ArrayLike<number>,
  actual: ArrayLike<number>,
): RegressionMetrics {
  const n = actual.length;
  if (n === 0 || predicted.length !== n) throw new Error("regressionMetrics: need equal, non-empty arrays");
  let mean = 0;
  for (let i = 0; i < n; i++) mean += actual[i] as number;
  mean /= n;
  let abs = 0;
  let sse = 0;
  let sst = 0;
  for (let i = 0; i < n; i++) {
    const e = (predicted[i] as number) - (actual[i] as number);
    abs += Math.abs(e);
    sse += e * e;
    sst += ((actual[i] as number) - mean) ** 2;
  }
  return { mae: abs / n, rmse: Math.sqrt(sse / n), r2: sst > 0 ? 1 - sse / sst : 0 };
}

/** Seeded Glorot-uniform kernels, zero biases, named as the canonical encoding names them. */
function initialWeights(sizes: number[], seed: number | string): ModelTensor[] {
  const rng = createRng(`${seed}:init`);
  const tensors: ModelTensor[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const fanIn = sizes[l] as number;
    const fanOut = sizes[l + 1] as number;
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    const kernel = new Float32Array(fanIn * fanOut);
    for (let i = 0; i < kernel.length; i++) kernel[i] = (2 * rng.next() - 1) * limit;
    tensors.push({ name: `dense${l}.kernel`, shape: [fanIn, fanOut], values: kernel });
    tensors.push({ name: `dense${l}.bias`, shape: [fanOut], values: new Float32Array(fanOut) });
  }
  return tensors;
}

interface Params {
  vars: tf.Variable[];
  forward(x: tf.Tensor2D): tf.Tensor2D;
}

function buildParams(init: ModelTensor[]): Params {
  const vars = init.map((t) => tf.variable(tf.tensor(Float32Array.from(t.values), t.shape), true, t.name));
  const layers = vars.length / 2;
  return {
    vars,
    forward(x) {
      let h: tf.Tensor2D = x;
      for (let l = 0; l < layers; l++) {
        const last = l === layers - 1;
        h = tf.fused.matMul({
          a: h,
          b: vars[2 * l] as tf.Tensor2D,
          bias: vars[2 * l + 1],
          activation: last ? "sigmoid" : "relu",
        }) as tf.Tensor2D;
      }
      return h;
    },
  };
}

function predictFloat(params: Params, data: YieldData): Float32Array {
  const out = tf.tidy(() => params.forward(tf.tensor2d(data.x, [data.n, FEATURE_COUNT])));
  const values = Float32Array.from(out.dataSync() as Float32Array);
  out.dispose();
  return values;
}

/** The oracle's view: integer inference on the canonical weights, for each row of `data`. */
export function predictFixed(canonical: Uint8Array, data: YieldData): Float64Array {
  const model = decodeModel(canonical);
  const out = new Float64Array(data.n);
  for (let i = 0; i < data.n; i++) {
    const row = Array.from(data.x.subarray(i * FEATURE_COUNT, (i + 1) * FEATURE_COUNT));
    out[i] = fromFixed(inferFixed(model, toOracleInput(row))[0] as bigint);
  }
  return out;
}

/** Trains the yield-risk model on generated data and evaluates it. */
export async function trainYieldModel(options: YieldModelOptions = {}): Promise<TrainedYieldModel> {
  const o: Required<YieldModelOptions> = { ...YIELD_DEFAULTS, ...options };
  await initBackend();
  const started = performance.now();
  const trainData = generateYieldData(o.trainSize, o.seed);
  const testData = generateYieldData(o.testSize, `${o.seed}:test`);
  const sizes = [FEATURE_COUNT, o.hidden, 1];
  const architecture = yieldArchitecture(o.hidden);
  const params = buildParams(initialWeights(sizes, o.seed));
  const optimizer = tf.train.adam(o.learningRate);
  const rng = createRng(`${o.seed}:shuffle`);
  const x = new Float32Array(o.batchSize * FEATURE_COUNT);
  const y = new Float32Array(o.batchSize);
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const order = permutation(trainData.n, rng);
      for (let start = 0; start < trainData.n; start += o.batchSize) {
        const b = Math.min(o.batchSize, trainData.n - start);
        for (let i = 0; i < b; i++) {
          const j = order[start + i] as number;
          x.set(trainData.x.subarray(j * FEATURE_COUNT, (j + 1) * FEATURE_COUNT), i * FEATURE_COUNT);
          y[i] = trainData.y[j] as number;
        }
        tf.tidy(() => {
          const xs = tf.tensor2d(x.slice(0, b * FEATURE_COUNT), [b, FEATURE_COUNT]);
          const ys = tf.tensor2d(y.slice(0, b), [b, 1]);
          optimizer.minimize(
            () => tf.losses.meanSquaredError(ys, params.forward(xs)) as tf.Scalar,
            false,
            params.vars,
          );
        });
      }
    }
    const weights: ModelTensor[] = params.vars.map((v) => ({
      name: v.name,
      shape: [...v.shape],
      values: Float32Array.from(v.dataSync() as Float32Array),
    }));
    const canonical = encodeModel({ architecture, scaleBits: o.scaleBits, tensors: weights });
    const trainPred = predictFloat(params, trainData);
    const testPred = predictFloat(params, testData);
    const testFixed = predictFixed(canonical, testData);
    let trainMean = 0;
    for (const v of trainData.y) trainMean += v;
    trainMean /= trainData.n;
    let maxFixedDeviation = 0;
    for (let i = 0; i < testData.n; i++) {
      maxFixedDeviation = Math.max(
        maxFixedDeviation,
        Math.abs((testPred[i] as number) - (testFixed[i] as number)),
      );
    }
    const metrics: YieldModelMetrics = {
      train: regressionMetrics(trainPred, trainData.y),
      test: regressionMetrics(testPred, testData.y),
      testFixed: regressionMetrics(testFixed, testData.y),
      baseline: regressionMetrics(new Float32Array(testData.n).fill(trainMean), testData.y),
      noiseFloor: regressionMetrics(testData.expected, testData.y),
      maxFixedDeviation,
    };
    const trainingSeconds = (performance.now() - started) / 1000;
    const card = yieldModelCard({ architecture, metrics, options: o, trainData, testData });
    return {
      architecture,
      weights,
      canonical,
      weightsDigest: sha256Digest(canonical),
      metrics,
      card,
      trainData,
      testData,
      options: o,
      trainingSeconds,
    };
  } finally {
    optimizer.dispose();
    for (const v of params.vars) v.dispose();
  }
}

/** The model card: honest about the data being synthetic and about what the model is for. */
export function yieldModelCard(input: {
  architecture: string;
  metrics: YieldModelMetrics;
  options: Required<YieldModelOptions>;
  trainData: YieldData;
  testData: YieldData;
}): ModelCard {
  const { metrics, options: o } = input;
  const trainCid = cidOf(encodeYieldData(input.trainData));
  const testCid = cidOf(encodeYieldData(input.testData));
  const featureText = FEATURE_NAMES.map((name) => {
    const r = FEATURE_RANGES[name];
    return `${name} (${r.unit}, scaled from [${r.min}, ${r.max}] to [0, 1])`;
  }).join("; ");
  const metric = (name: string, value: number, dataset: string, description: string) => ({
    name,
    value: Number(value.toFixed(6)),
    dataset,
    description,
  });
  return parseModelCard({
    schema: MODEL_CARD_SCHEMA,
    name: "Maize yield-loss risk (synthetic demonstration)",
    version: "1.0.0",
    description:
      "Predicts the relative yield loss (0 = none, 1 = total) of rain-fed maize in a region and season " +
      `from four conditions: ${featureText}. Output: a sigmoid score in [0, 1], 1_000_000 = 1.0 in the oracle.`,
    intendedPurpose: {
      purpose:
        "Demonstrating parametric crop-insurance payouts computed by the Ledgermind inference oracle " +
        "(CropInsurance.sol): the score above a deductible sets the payout.",
      intendedUsers: [
        "developers and testers of Ledgermind",
        "reviewers of the oracle and insurance contracts",
      ],
      outOfScopeUses: [
        "insuring real farms or pricing real policies: the model never saw real yields",
        "agronomic advice, credit scoring or land valuation",
      ],
    },
    provider: { name: "Ledgermind", contact: "https://github.com/ledgermind" },
    architecture: input.architecture,
    dataProvenance: [
      {
        name: `Synthetic maize yield-loss data, training split (${input.trainData.n} region-seasons)`,
        cid: trainCid,
        description:
          "Generated, not observed. Expected loss L = 1 - (1 - Lw)(1 - Lh)(1 - Lg): water stress " +
          `Lw = min(1, Ky e) with Ky = ${KY_MAIZE} (FAO-33 yield response) and e = 0.7 deficit + 0.3 (1 - soil ` +
          "water availability); heat Lh = min(1, 0.01 heatDays (1 + 0.7 e)) after Lobell et al. 2011; " +
          `phenology Lg = 0.08 clip((GDD - 1700) / 400, 0, 1); observed y = clip(L + N(0, ${NOISE_SD}^2), 0, 1).`,
        licence: "MIT",
        collection:
          `generateYieldData(${input.trainData.n}, ${JSON.stringify(o.seed)}) in src/oracle/yield-data.ts: ` +
          "40 regions with a random aridity, a drought anomaly per season shared by all four features.",
        preprocessing:
          "Features scaled to [0, 1] by fixed physical ranges; bytes (LMYD1: n, features, float32 x, y) hashed for the CID.",
      },
      {
        name: `Synthetic maize yield-loss data, held-out split (${input.testData.n} region-seasons)`,
        cid: testCid,
        description: "The same generator under another seed: other regions' aridity, other seasons.",
        licence: "MIT",
        collection: `generateYieldData(${input.testData.n}, ${JSON.stringify(`${o.seed}:test`)})`,
        preprocessing: "As the training split.",
      },
    ],
    training: {
      procedure:
        "Adam on mean squared error, seeded Glorot-uniform initialization and shuffling, float32 (tfjs); " +
        `weights then quantized to int32 at 2^-${o.scaleBits} (canonical encoding); inference by the oracle is ` +
        "integer-only with a piecewise-linear sigmoid (src/oracle/fixed-point.ts).",
      hyperparameters: {
        hidden: o.hidden,
        epochs: o.epochs,
        batchSize: o.batchSize,
        learningRate: o.learningRate,
        optimizer: "adam",
        loss: "mse",
        scaleBits: o.scaleBits,
        seed: String(o.seed),
      },
      computeDescription: "A few seconds on one CPU core (tfjs wasm or cpu backend).",
    },
    metrics: [
      metric("MAE", metrics.testFixed.mae, testCid, "held-out, integer inference as the oracle runs it"),
      metric("R2", metrics.testFixed.r2, testCid, "held-out, integer inference as the oracle runs it"),
      metric("MAE (float)", metrics.test.mae, testCid, "held-out, float32 tfjs model"),
      metric("R2 (float)", metrics.test.r2, testCid, "held-out, float32 tfjs model"),
      metric("MAE (constant-mean baseline)", metrics.baseline.mae, testCid, "predicting the training mean"),
      metric(
        "MAE (noise floor)",
        metrics.noiseFloor.mae,
        testCid,
        "the generator's noise-free expected loss",
      ),
    ],
    knownLimitations: [
      "Trained only on synthetic data from a stated formula; real yield losses depend on crop stage, " +
        "cultivar, management, pests and events the four features do not capture.",
      "Inputs outside the stated physical ranges are extrapolation.",
      "The integer sigmoid deviates from the exact sigmoid by at most 2e-4.",
    ],
    risks: {
      identified: [
        "Used on real policies, systematic errors would under- or over-pay farmers.",
        "Whoever reports the conditions of a region-season controls the inputs and hence the payouts.",
      ],
      foreseeableMisuse: ["Presenting the synthetic metrics as evidence of real-world accuracy."],
      mitigations: [
        "The model card, the architecture name and the contract tests say that the data is synthetic.",
        "Payouts are capped at coverage and the pool reserves coverage at purchase.",
      ],
    },
    humanOversight: {
      measures: [
        "The insurer's owner opens seasons and appoints the conditions reporter; every input and score is an event.",
      ],
      interpretationGuidance:
        "A score is an expected fractional loss; only the part above the policy's deductible is paid, in proportion.",
    },
    lifecycle: {
      changes: [{ version: "1.0.0", description: "First release, synthetic data." }],
      monitoring: "Compare scores with reported losses when real data becomes available; retrain then.",
    },
    licence: "MIT",
  });
}
