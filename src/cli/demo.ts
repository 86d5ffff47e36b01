import { join } from "node:path";
import type { Command } from "commander";
import { loadOrCreatePqKey } from "../registry/pq-keystore.ts";
import { blobStore, emit, globalOptions, UsageError, withChain } from "./context.ts";
import { lineageLines, VerificationFailedError } from "./model.ts";

const PARTS = ["all", "registry", "learning", "insurance"] as const;

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description(
      "end to end: train on real digits, register two versions, attest, verify, print the lineage; five hospitals train one model on-chain, a poisoner is slashed; crop insurance paid through the inference oracle",
    )
    .option("--part <PART>", `which part to run: ${PARTS.join(", ")}`, "all")
    .action(async (o: { part: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      if (!(PARTS as readonly string[]).includes(o.part))
        throw new UsageError(`--part must be one of ${PARTS.join(", ")}`);
      const started = performance.now();
      const log = opts.json ? undefined : (line: string) => console.log(line);
      const section = (title: string) => log?.(`\n== ${title} ==`);
      // Loaded on demand: tfjs takes a second to load, and only the demo trains.
      const { runRegistryDemo } = await import("../demo/registry-demo.ts");
      const { runInsuranceDemo } = await import("../demo/insurance-demo.ts");
      const { runLearningDemo } = await import("../demo/learning-demo.ts");
      await withChain(opts, async (chain) => {
        const store = blobStore(opts);
        let registry: Awaited<ReturnType<typeof runRegistryDemo>> | undefined;
        let learning: Awaited<ReturnType<typeof runLearningDemo>> | undefined;
        let insurance: Awaited<ReturnType<typeof runInsuranceDemo>> | undefined;
        if (o.part === "all" || o.part === "registry") {
          section("model registry: provenance anyone can verify");
          registry = await runRegistryDemo({
            chain,
            store,
            pqKeyFor: (address) => loadOrCreatePqKey(opts.dataDir, address),
            log,
          });
          log?.("lineage:");
          for (const line of lineageLines(registry.lineage)) log?.(`  ${line}`);
        }
        if (o.part === "all" || o.part === "learning") {
          section("federated learning: five hospitals, three validators, one poisoner");
          learning = await runLearningDemo({ chain, store, log });
        }
        if (o.part === "all" || o.part === "insurance") {
          section("AI oracle: crop insurance paid on a model's risk score");
          insurance = await runInsuranceDemo({
            chain,
            store,
            stateDir: join(opts.dataDir, "operators"),
            log,
          });
        }
        const seconds = (performance.now() - started) / 1000;
        emit(opts, { registry, learning, insurance, seconds }, () => [`\ndone in ${seconds.toFixed(1)} s`]);
        if (registry && !registry.verification.ok) {
          throw new VerificationFailedError(registry.verification.problems.join("; "));
        }
      });
    });
}
