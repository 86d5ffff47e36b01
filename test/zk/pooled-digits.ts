/** MNIST digits average-pooled to a coarse grid: held-out sets small enough for a score proof here. */
import type { Dataset } from "../../src/ml/partition.ts";

/** Each digit's 28x28 pixels averaged over `block` x `block` squares (block 7: 16 features). */
export function poolDigits(data: Dataset, block: number): Dataset {
  const side = 28 / block;
  if (!Number.isInteger(side)) throw new RangeError(`28 is not a multiple of ${block}`);
  const features = side * side;
  const x = new Float32Array(data.n * features);
  for (let n = 0; n < data.n; n++) {
    for (let p = 0; p < 784; p++) {
      const row = Math.floor(p / 28);
      const col = p % 28;
      const cell = Math.floor(row / block) * side + Math.floor(col / block);
      x[n * features + cell] =
        (x[n * features + cell] as number) + (data.x[n * 784 + p] as number) / (block * block);
    }
  }
  return { x, y: data.y, n: data.n };
}
