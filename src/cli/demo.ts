import { join } from "node:path";
import type { Command } from "commander";
import { loadOrCreatePqKey } from "../registry/pq-keystore.ts";
import { blobStore, emit, globalOptions, UsageError, withChain } from "./context.ts";
import { lineageLines, VerificationFailedError } from "./model.ts";

const PARTS = ["all", "registry", "learning", "insurance", "data"] as const;

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description(
      "end to end: train on real digits, register two versions, attest, verify, print the lineage; five hospitals train one model on-chain, each its own node process, and a poisoner is slashed; crop insurance paid through the inference oracle, answered by operator node processes; a hospital's records sold for compute-to-data from its own node, consent granted and revoked",
    )
    .option("--part <PART>", `which part to run: ${PARTS.join(", ")}`, "all")
    .option(
      "--dir <DIR>",
      "folder for the node processes' configs, folders and logs (default: a new one in --data-dir)",
    )
    .action(async (o: { part: string; dir?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      if (!(PARTS as readonly string[]).includes(o.part))
        throw new UsageError(`--part must be one of ${PARTS.join(", ")}`);
      const started = performance.now();
      const log = opts.json ? undefined : (line: string) => console.log(line);
      const section = (title: string) => log?.(`\n== ${title} ==`);
      const runs = (part: string) => o.part === "all" || o.part === part;
      // Loaded on demand: tfjs takes a second to load, and only the demo trains.
      const { runRegistryDemo } = await import("../demo/registry-demo.ts");
      const { runInsuranceDemo } = await import("../demo/insurance-demo.ts");
      const { runLearningDemo } = await import("../demo/learning-demo.ts");
      const { runMarketDemo } = await import("../demo/market-demo.ts");
      const { Consortium } = await import("../node/consortium.ts");
      let registry: Awaited<ReturnType<typeof runRegistryDemo>> | undefined;
      let learning: Awaited<ReturnType<typeof runLearningDemo>> | undefined;
      let insurance: Awaited<ReturnType<typeof runInsuranceDemo>> | undefined;
      let market: Awaited<ReturnType<typeof runMarketDemo>> | undefined;
      // The registry part is one owner and one auditor: it needs no other process, so it runs on the
      // command's chain (embedded unless --rpc), where `model verify` and `model lineage` find it afterwards.
      if (runs("registry"))
        await withChain(opts, async (chain) => {
          section("model registry: provenance anyone can verify");
          registry = await runRegistryDemo({
            chain,
            store: blobStore(opts),
            pqKeyFor: (address) => loadOrCreatePqKey(opts.dataDir, address),
            log,
          });
          log?.("lineage:");
          for (const line of lineageLines(registry.lineage)) log?.(`  ${line}`);
        });
      // The other parts are consortia: node processes share a chain, which the embedded chain (one
      // process's) cannot be; they run on --rpc, or on a development chain started for them.
      if (runs("learning") || runs("insurance") || runs("data")) {
        const controller = new AbortController();
        const onSignal = () => controller.abort();
        process.once("SIGINT", onSignal);
        process.once("SIGTERM", onSignal);
        const consortium = await Consortium.open({
          dir: o.dir ?? join(opts.dataDir, "demo", new Date().toISOString().replace(/[:.]/g, "-")),
          ...(opts.rpc ? { rpc: opts.rpc, dataDir: opts.dataDir } : {}),
          creatorDir: "validator-A",
          what: "the demo",
          log: (line) => log?.(line),
          signal: controller.signal,
        }).catch((error: unknown) => {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
          throw error;
        });
        try {
          if (runs("learning")) {
            section(
              "federated learning: five hospitals, three validators, one poisoner, eight node processes",
            );
            learning = await runLearningDemo({ consortium, log });
          }
          if (runs("insurance")) {
            section(
              "AI oracle: crop insurance paid on a model's risk score, answered by operator node processes",
            );
            insurance = await runInsuranceDemo({ consortium, store: blobStore(opts), log });
          }
          if (runs("data")) {
            section(
              "data market: records that never leave the hospital, paid access, consent that can be revoked",
            );
            market = await runMarketDemo({ consortium, log });
          }
        } finally {
          await consortium.close();
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        }
        log?.(`every node process stopped; configs and logs in ${consortium.dir}`);
      }
      const seconds = (performance.now() - started) / 1000;
      emit(opts, { registry, learning, insurance, market, seconds }, () => [
        `\ndone in ${seconds.toFixed(1)} s`,
      ]);
      if (registry && !registry.verification.ok) {
        throw new VerificationFailedError(registry.verification.problems.join("; "));
      }
    });
}
