// Compiles contracts/ (cached by source hash) and writes src/chain/generated/contracts.ts.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CompilationError,
  compileContracts,
  PROJECT_ROOT,
  renderTypedArtifacts,
} from "../src/chain/compile.ts";

const quiet = process.argv.includes("--quiet");
const started = performance.now();
try {
  const result = compileContracts();
  const outDir = join(PROJECT_ROOT, "src/chain/generated");
  const outFile = join(outDir, "contracts.ts");
  const text = renderTypedArtifacts(result);
  if (!existsSync(outFile) || readFileSync(outFile, "utf8") !== text) {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(outFile, text);
  }
  if (!quiet) {
    const secs = ((performance.now() - started) / 1000).toFixed(2);
    const how = result.fromCache ? "cached" : "compiled";
    console.log(`contracts ${how} (${Object.keys(result.artifacts).length} artifacts, ${secs} s)`);
  }
} catch (err) {
  if (err instanceof CompilationError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}
