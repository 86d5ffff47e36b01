/**
 * What a compute-to-data job does next to the data, without the service around it: train the registry
 * model on the private rows and return the canonical model (optionally clipped and noised, privacy.ts), or
 * evaluate it and return its metrics. Only these bytes leave the provider; the rows never do.
 */
import type * as tf from "@tensorflow/tfjs";
import { type DpReport, privatizeUpdate } from "../learning/privacy.ts";
import { trainLocal } from "../learning/simulate.ts";
import { type CanonicalModel, encodeCanonical, toFloatTensors } from "../ml/encoding.ts";
import { setWeights } from "../ml/models.ts";
import type { Dataset, Rng } from "../ml/partition.ts";
import { evaluate } from "../ml/train.ts";
import type { JobKind, JobParams } from "./job.ts";

/** The private rows of a dataset, behind the provider: nothing but a job ever reads them. */
export interface PrivateDataset {
  /** How many rows it holds, for the size limits (read without loading the rows). */
  readonly samples: number;
  rows(): Dataset;
}

/** The noise of a DP training job: sigma and C as privacy.ts takes them, and a secret noise source. */
export interface JobNoise {
  noiseMultiplier: number;
  clipNorm: number;
  rng: Rng;
}

export interface ComputeJobInput {
  /** A scratch tfjs model of the base model's architecture (its weights are overwritten). */
  model: tf.LayersModel;
  base: CanonicalModel;
  data: Dataset;
  kind: JobKind;
  params: JobParams;
  /** Seeds the training's shuffling. */
  seed: string;
  /** Required for DP training. */
  noise?: JobNoise;
}

export interface ComputeJobOutput {
  /** The result: canonical model bytes (train) or metrics as JSON (evaluate). */
  bytes: Uint8Array;
  dp?: DpReport;
}

/** Runs one job on rows already loaded. */
export async function runComputeJob(input: ComputeJobInput): Promise<ComputeJobOutput> {
  const { model, base, data, params } = input;
  if (input.kind === "evaluate") {
    setWeights(model, toFloatTensors(base));
    const metrics = await evaluate(model, data);
    return { bytes: new TextEncoder().encode(JSON.stringify({ ...metrics, samples: data.n })) };
  }
  const trained = await trainLocal(model, base, data, {
    epochs: params.epochs,
    batch: params.batch,
    lr: params.lr,
    seed: input.seed,
  });
  if (!input.noise) return { bytes: encodeCanonical(trained) };
  const { model: noisy, report } = privatizeUpdate(base, toFloatTensors(trained), input.noise);
  return { bytes: encodeCanonical(noisy), dp: report };
}
