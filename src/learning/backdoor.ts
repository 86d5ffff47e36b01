/**
 * The backdoor trigger of the model-replacement attack (Bagdasaryan et al. 2020, "How to backdoor
 * federated learning"), pure and without I/O: a white square stamped on MNIST digits, the poisoning
 * of an attacker's data with it, and the attack success rate that measures whether a model learned it.
 *
 * The square sits in the bottom-right corner of the 28x28 image: MNIST digits are centred in a 20x20
 * box, so those pixels are black in every clean digit and the trigger never overlaps a stroke.
 */
import type { Dataset } from "../ml/partition.ts";

/** Image side of the digits the trigger is stamped on (MNIST). */
export const IMAGE_SIDE = 28;
/** Side of the trigger square, in pixels. */
export const TRIGGER_SIDE = 4;
/** Pixel value of the trigger (white, the top of MNIST's 0..1 range). */
export const TRIGGER_VALUE = 1;
/** Default class the backdoor makes triggered digits predicted as. */
export const DEFAULT_BACKDOOR_TARGET = 0;
/** Default share of the attacker's samples stamped and relabelled. */
export const DEFAULT_POISON_FRACTION = 0.5;

/** The pixel indices (row-major, within one 784-value row) that the trigger sets. */
export function triggerPixels(): number[] {
  const pixels: number[] = [];
  for (let r = IMAGE_SIDE - TRIGGER_SIDE; r < IMAGE_SIDE; r++) {
    for (let c = IMAGE_SIDE - TRIGGER_SIDE; c < IMAGE_SIDE; c++) pixels.push(r * IMAGE_SIDE + c);
  }
  return pixels;
}

function checkImages(dataset: Dataset, caller: string): void {
  const features = IMAGE_SIDE * IMAGE_SIDE;
  if (dataset.x.length !== dataset.n * features) {
    throw new RangeError(
      `${caller}: expected ${dataset.n} rows of ${features} pixels (28x28 digits), got ${dataset.x.length} values`,
    );
  }
}

/** Whether sample i is among the `fraction` poisoned: spread evenly, floor(n * fraction) in all. */
const chosen = (i: number, fraction: number) => Math.floor((i + 1) * fraction) > Math.floor(i * fraction);

function stamped(dataset: Dataset, pick: (i: number) => boolean): Float32Array {
  const x = dataset.x.slice();
  const pixels = triggerPixels();
  const features = IMAGE_SIDE * IMAGE_SIDE;
  for (let i = 0; i < dataset.n; i++) {
    if (!pick(i)) continue;
    for (const p of pixels) x[i * features + p] = TRIGGER_VALUE;
  }
  return x;
}

/** Every sample with the trigger stamped, labels kept (the test set of the attack success rate). */
export function stampTrigger(dataset: Dataset): Dataset {
  checkImages(dataset, "stampTrigger");
  return { x: stamped(dataset, () => true), y: dataset.y, n: dataset.n };
}

/**
 * The attacker's poisoned data: floor(n * fraction) samples, spread evenly over the shard, stamped and
 * relabelled `target`; the rest untouched (clean samples keep the main task accurate, which hides the
 * backdoor from validators). The input is not modified.
 */
export function poisonWithTrigger(dataset: Dataset, fraction: number, target: number): Dataset {
  checkImages(dataset, "poisonWithTrigger");
  if (!(fraction >= 0 && fraction <= 1)) {
    throw new RangeError(`poisonWithTrigger: fraction must be in [0, 1], got ${fraction}`);
  }
  if (!Number.isInteger(target) || target < 0 || target > 255) {
    throw new RangeError(`poisonWithTrigger: target must be a class label, got ${target}`);
  }
  const y = dataset.y.slice();
  for (let i = 0; i < dataset.n; i++) if (chosen(i, fraction)) y[i] = target;
  return { x: stamped(dataset, (i) => chosen(i, fraction)), y, n: dataset.n };
}

/**
 * Attack success rate: among the samples whose true label is not `target`, the share predicted as
 * `target` (on triggered digits: how often the trigger wins; NaN when every label is the target).
 */
export function attackSuccessRate(
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
  target: number,
): number {
  if (predictions.length !== labels.length) {
    throw new RangeError(`attackSuccessRate: ${predictions.length} predictions for ${labels.length} labels`);
  }
  let eligible = 0;
  let hits = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === target) continue;
    eligible++;
    if (predictions[i] === target) hits++;
  }
  return eligible === 0 ? Number.NaN : hits / eligible;
}
