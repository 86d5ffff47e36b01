/**
 * Where a participant's rows come from: its part of an agreed MNIST split (demonstrations, the devnet, tests:
 * every member builds the same split from the same options and keeps its own part), or a CSV file of its
 * own (a hospital's records: src/ml/csv-dataset.ts).
 */
import { loadCsvDataset } from "../ml/csv-dataset.ts";
import type { Dataset } from "../ml/partition.ts";
import { type DataOptions, federatedData } from "./simulate.ts";

export type DataSource =
  | { mnist: DataOptions & { index: number } }
  | { csv: { path: string; divideBy: number } };

/** The rows of `source`: trainer (client) `index`'s shard of the split, or validator `index`'s held-out part. */
export function loadRows(source: DataSource, part: "trainer" | "validator" = "trainer"): Dataset {
  if ("csv" in source) return loadCsvDataset(source.csv.path, source.csv.divideBy);
  const split = source.mnist;
  const data = federatedData(split);
  const rows = part === "trainer" ? data.clients[split.index] : data.validators[split.index];
  if (!rows) throw new RangeError(`the split has no ${part} ${split.index}`);
  return rows;
}
