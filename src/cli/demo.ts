import type { Command } from "commander";
import { loadOrCreatePqKey } from "../registry/pq-keystore.ts";
import { blobStore, emit, globalOptions, withChain } from "./context.ts";
import { lineageLines, VerificationFailedError } from "./model.ts";

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("end to end: train on real digits, register two versions, attest, verify, print the lineage")
    .action(async (_o, cmd: Command) => {
      const opts = globalOptions(cmd);
      // Loaded on demand: tfjs takes a second to load, and only the demo trains.
      const { runRegistryDemo } = await import("../demo/registry-demo.ts");
      await withChain(opts, async (chain) => {
        const result = await runRegistryDemo({
          chain,
          store: blobStore(opts),
          pqKeyFor: (address) => loadOrCreatePqKey(opts.dataDir, address),
          log: opts.json ? undefined : (line) => console.log(line),
        });
        emit(opts, result, () => [
          "lineage:",
          ...lineageLines(result.lineage).map((l) => `  ${l}`),
          `done in ${result.seconds.toFixed(1)} s`,
        ]);
        if (!result.verification.ok)
          throw new VerificationFailedError(result.verification.problems.join("; "));
      });
    });
}
