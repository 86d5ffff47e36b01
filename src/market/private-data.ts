/** A provider's private rows, from a data source as a node config names it (src/learning/data-source.ts). */
import { type DataSource, loadRows } from "../learning/data-source.ts";
import type { PrivateDataset } from "./compute.ts";

/** The rows of `source`, loaded once, here. */
export function privateRows(source: DataSource): PrivateDataset {
  const rows = loadRows(source);
  return { samples: rows.n, rows: () => rows };
}
