// `npm run bench`: every benchmark, a table on stdout, every figure in bench/results.json.
// `tsx bench/run.ts --only NAME`: just the steps whose name contains NAME (their figures merged in).
import { benchComputeOverhead } from "./compute.bench.ts";
import { benchFederated, benchGrid } from "./fl.bench.ts";
import { benchLearningGas } from "./fl-gas.bench.ts";
import { benchLearningProtocol } from "./fl-protocol.bench.ts";
import { benchMarketGas } from "./market.bench.ts";
import { benchMultiprocess } from "./node.bench.ts";
import { benchOracleGas, benchOracleReportLatency } from "./oracle.bench.ts";
import { benchCompile, benchFolderHashing, benchRegistryGas } from "./registry.bench.ts";
import { type Figures, printTable, RESULTS_FILE, writeResults } from "./results-file.ts";
import { benchZk, benchZkMnist, benchZkScore } from "./zk.bench.ts";

const figures: Figures = {};
const steps: [string, () => Figures | Promise<Figures>][] = [
  ["compile", benchCompile],
  ["registry gas", benchRegistryGas],
  ["registry folder hashing", benchFolderHashing],
  ["oracle gas", benchOracleGas],
  ["oracle report latency", benchOracleReportLatency],
  ["federated learning", benchFederated],
  ["federated learning grid", benchGrid],
  ["federated learning gas", benchLearningGas],
  ["federated learning on-chain", benchLearningProtocol],
  ["federated learning across processes", benchMultiprocess],
  ["data market gas", benchMarketGas],
  ["compute-to-data overhead", benchComputeOverhead],
  ["zero-knowledge inference", benchZk],
  ["zero-knowledge MNIST", benchZkMnist],
  ["zero-knowledge score", benchZkScore],
];
const onlyAt = process.argv.indexOf("--only");
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
const chosen = steps.filter(([name]) => only === undefined || name.includes(only));
if (chosen.length === 0) throw new Error(`no benchmark step is named like "${only}"`);
for (const [i, [name, run]] of chosen.entries()) {
  process.stderr.write(`[${i + 1}/${chosen.length}] ${name}...\n`);
  Object.assign(figures, await run());
}
printTable(figures);
writeResults(figures);
console.log(`\nwritten to ${RESULTS_FILE}`);
process.exit(0);
