import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { pino } from "pino";
import { ConfigError, parseNodeConfig } from "../node/config.ts";
import { startNode } from "../node/node.ts";
import { globalOptions, UsageError } from "./context.ts";
import { EXIT_INTERRUPTED } from "./errors.ts";

/** Reads and checks the config; a missing or invalid file is a usage error (one line, exit 2). */
function loadConfig(file: string) {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new UsageError(`--config ${file}: cannot read it (${(error as NodeJS.ErrnoException).code})`);
  }
  try {
    return parseNodeConfig(text, file);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

export function registerNodeCommand(program: Command): void {
  program
    .command("node")
    .description(
      "run a node from a config file: its roles (oracle operator), its blobs, /health and /metrics over HTTP, JSON logs on stdout; stops on SIGTERM or SIGINT",
    )
    .requiredOption("--config <FILE>", "the node's YAML config (see the README)")
    .action(async (o: { config: string }, cmd: Command) => {
      if (globalOptions(cmd).rpc !== undefined)
        throw new UsageError("node takes its chain from the config (chain.rpc), not from --rpc");
      const config = loadConfig(o.config);
      const logger = pino({ base: { pid: process.pid } });
      const node = await startNode({ config, logger });
      // The first signal stops cleanly (operators finish their step, state files kept); a second one
      // means the person will not wait.
      let signals = 0;
      let onSignal: (signal: NodeJS.Signals) => void = () => {};
      const stopped = new Promise<void>((resolve, reject) => {
        onSignal = (signal) => {
          if (signals++ > 0) {
            logger.warn({ signal }, "second signal: exiting without waiting");
            process.exit(EXIT_INTERRUPTED);
          }
          logger.info({ signal }, "stopping");
          node.stop().then(resolve, reject);
        };
      });
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        await stopped;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}
