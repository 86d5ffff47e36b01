/**
 * A dataset of a participant's own, from a CSV file: one row per sample, its class label first, then its
 * features (MNIST as Kaggle ships it: `label,pixel0,...,pixel783`). A first line that is not numbers is a
 * header. Features are divided by `divideBy` (255 for raw pixels), since the models expect inputs in 0..1.
 */
import { readFileSync } from "node:fs";
import type { Dataset } from "./partition.ts";

export class CsvDatasetError extends Error {
  override name = "CsvDatasetError";
}

/** The rows of `text` as a Dataset; `where` names the file in errors, which also name the line. */
export function parseCsvDataset(text: string, divideBy = 1, where = "the CSV"): Dataset {
  if (!(divideBy > 0)) throw new CsvDatasetError(`${where}: divideBy must be positive, got ${divideBy}`);
  const lines = text.split(/\r?\n/);
  const rows: { line: number; cells: string[] }[] = [];
  lines.forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed !== "") rows.push({ line: i + 1, cells: trimmed.split(",").map((c) => c.trim()) });
  });
  if (rows[0]?.cells.some((c) => c === "" || !Number.isFinite(Number(c)))) rows.shift();
  if (rows.length === 0) throw new CsvDatasetError(`${where}: no rows`);
  const width = (rows[0] as { cells: string[] }).cells.length - 1;
  if (width < 1) throw new CsvDatasetError(`${where}: a row needs a label and at least one feature`);
  const x = new Float32Array(rows.length * width);
  const y = new Uint8Array(rows.length);
  rows.forEach(({ line, cells }, r) => {
    if (cells.length !== width + 1)
      throw new CsvDatasetError(
        `${where}, line ${line}: ${cells.length} columns, expected ${width + 1} (a label and ${width} features)`,
      );
    const label = Number(cells[0]);
    if (!Number.isInteger(label) || label < 0 || label > 255)
      throw new CsvDatasetError(`${where}, line ${line}: the label "${cells[0]}" is not a class 0 to 255`);
    y[r] = label;
    for (let j = 0; j < width; j++) {
      const v = Number(cells[j + 1]);
      if (cells[j + 1] === "" || !Number.isFinite(v))
        throw new CsvDatasetError(
          `${where}, line ${line}: feature ${j + 1} "${cells[j + 1]}" is not a number`,
        );
      x[r * width + j] = v / divideBy;
    }
  });
  return { x, y, n: rows.length };
}

/** `parseCsvDataset` of a file. */
export function loadCsvDataset(path: string, divideBy = 1): Dataset {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new CsvDatasetError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  return parseCsvDataset(text, divideBy, path);
}
