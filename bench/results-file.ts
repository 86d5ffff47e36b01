import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../src/chain/compile.ts";

export type Figures = Record<string, number>;

export const RESULTS_FILE = join(PROJECT_ROOT, "bench", "results.json");

/**
 * Merges figures into bench/results.json: one flat object, keys sorted, so that versions of the file
 * diff cleanly and a benchmark that did not run keeps its last figures.
 */
/** The figures bench/results.json holds now (none when there is no file). */
export function readResults(): Figures {
  return existsSync(RESULTS_FILE) ? JSON.parse(readFileSync(RESULTS_FILE, "utf8")) : {};
}

export function writeResults(figures: Figures): Figures {
  const previous = readResults();
  const merged = { ...previous, ...figures };
  const sorted = Object.fromEntries(
    Object.keys(merged)
      .sort()
      .map((k) => [k, merged[k] as number]),
  );
  writeFileSync(RESULTS_FILE, `${JSON.stringify(sorted, null, 2)}\n`);
  return sorted;
}

export function printTable(figures: Figures): void {
  const width = Math.max(...Object.keys(figures).map((k) => k.length));
  console.log(`${"figure".padEnd(width)}  value`);
  console.log(`${"-".repeat(width)}  ${"-".repeat(12)}`);
  for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(width)}  ${v}`);
}
