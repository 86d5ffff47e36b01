// `npm run bench`: every benchmark, a table on stdout, every figure in bench/results.json.
import { benchFederated, benchGrid } from "./fl.bench.ts";
import { benchLearningGas } from "./fl-gas.bench.ts";
import { benchLearningProtocol } from "./fl-protocol.bench.ts";
import { benchOracleGas } from "./oracle.bench.ts";
import { benchCompile, benchRegistryGas } from "./registry.bench.ts";
import { type Figures, printTable, RESULTS_FILE, writeResults } from "./results-file.ts";

const figures: Figures = {};
const steps: [string, () => Figures | Promise<Figures>][] = [
  ["compile", benchCompile],
  ["registry gas", benchRegistryGas],
  ["oracle gas", benchOracleGas],
  ["federated learning", benchFederated],
  ["federated learning grid", benchGrid],
  ["federated learning gas", benchLearningGas],
  ["federated learning on-chain", benchLearningProtocol],
];
for (const [i, [name, run]] of steps.entries()) {
  process.stderr.write(`[${i + 1}/${steps.length}] ${name}...\n`);
  Object.assign(figures, await run());
}
printTable(figures);
writeResults(figures);
console.log(`\nwritten to ${RESULTS_FILE}`);
process.exit(0);
