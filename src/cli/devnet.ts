import { join } from "node:path";
import type { Command } from "commander";
import { DEVNET_MAX_NODES, DEVNET_VALIDATORS, runDevnet } from "../node/devnet.ts";
import { emit, globalOptions, parseInteger, parsePositive } from "./context.ts";

interface DevnetFlags {
  nodes: string;
  rounds: string;
  seed: string;
  alpha: string;
  samplesPerClient: string;
  dir?: string;
}

export function registerDevnetCommand(program: Command): void {
  program
    .command("devnet")
    .description(
      "run a consortium on this machine: a development chain (or --rpc) and N node processes (3 validators that also operate the oracle, the rest hospitals training on their own MNIST shards); runs a federated task and oracle requests across them, prints the results, stops every process",
    )
    .option("--nodes <N>", `node processes, 4 to ${DEVNET_MAX_NODES}`, "5")
    .option("--rounds <N>", "rounds of the federated task", "2")
    .option("--seed <N>", "seeds the data split and the initial model", "1")
    .option(
      "--alpha <A>",
      "Dirichlet concentration of the hospitals' label split (smaller: more skewed)",
      "0.5",
    )
    .option("--samples-per-client <N>", "MNIST digits per hospital", "500")
    .option(
      "--dir <DIR>",
      "folder for the nodes' configs, folders and logs (default: a new one in --data-dir)",
    )
    .action(async (f: DevnetFlags, cmd: Command) => {
      const opts = globalOptions(cmd);
      const dir = f.dir ?? join(opts.dataDir, "devnet", new Date().toISOString().replace(/[:.]/g, "-"));
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        const result = await runDevnet({
          nodes: parseInteger(f.nodes, "--nodes", DEVNET_VALIDATORS + 1, DEVNET_MAX_NODES),
          rounds: parseInteger(f.rounds, "--rounds", 1, 100),
          seed: parseInteger(f.seed, "--seed", 0, 2 ** 31),
          alpha: parsePositive(f.alpha, "--alpha"),
          samplesPerClient: parseInteger(f.samplesPerClient, "--samples-per-client", 10, 50_000),
          dir,
          ...(opts.rpc ? { rpc: opts.rpc, dataDir: opts.dataDir } : {}),
          log: (line) => {
            if (!opts.json) console.log(line);
          },
          signal: controller.signal,
        });
        emit(opts, result, () => [
          `task ${result.taskId}: final accuracy ${result.finalAccuracy.toFixed(4)} after ${result.rounds.length} rounds across ${result.nodes.length} node processes; ${result.slashedMembers} members slashed; ${(result.bytesServed / 1024).toFixed(0)} KiB of blobs served between nodes`,
          `oracle answers: ${result.oracle.map((a) => `${a.region} ${a.score.toFixed(3)} (${a.path})`).join(", ")}`,
          `every node stopped; configs and logs in ${dir}`,
        ]);
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}
