/**
 * Private datasets a provider can hold: a shard of the project's MNIST split (as a federated trainer's), the
 * development stand-in for a hospital's records.
 */
import { type DataOptions, federatedData } from "../learning/simulate.ts";
import type { PrivateDataset } from "./compute.ts";

/** Client `index`'s shard of an MNIST split (a node config's `data.mnist`), loaded once, here. */
export function mnistShard(split: DataOptions & { index: number }): PrivateDataset {
  const rows = federatedData(split).clients[split.index];
  if (!rows) throw new RangeError(`the split has ${split.clients} clients, none at index ${split.index}`);
  return { samples: rows.n, rows: () => rows };
}
