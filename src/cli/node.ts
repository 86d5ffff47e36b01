import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { pino } from "pino";
import type { Address } from "viem";
import { ConfigError, type NodeConfig, parseNodeConfig } from "../node/config.ts";
import { announcedNodes, announceEndpoint, endpointsOf, openDirectory } from "../node/directory.ts";
import { startNode } from "../node/node.ts";
import { emit, globalOptions, parseAccount, parseAddress, UsageError, withChain } from "./context.ts";
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

/**
 * Runs a node until SIGINT or SIGTERM (or, with `stopWithStdin`, until the supervisor's pipe closes): JSON
 * logs on stdout; the first signal stops it cleanly, a second exits at once.
 */
export async function runNode(config: NodeConfig, o: { stopWithStdin: boolean }): Promise<void> {
  // Written synchronously: the CLI exits as soon as the node has stopped, and an asynchronous
  // destination would lose the last lines ("stopped") still in its buffer.
  const logger = pino({ base: { pid: process.pid } }, pino.destination({ dest: 1, sync: true }));
  // Watched from the start: a supervisor may die while the node still starts.
  let supervisorGone = false;
  let onSupervisorGone = () => {
    supervisorGone = true;
  };
  if (o.stopWithStdin) {
    process.stdin.once("end", () => onSupervisorGone());
    process.stdin.once("error", () => onSupervisorGone());
    process.stdin.resume();
  }
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
  onSupervisorGone = () => {
    logger.warn("the supervisor's pipe closed (stdin): stopping");
    onSignal("SIGTERM");
  };
  if (supervisorGone) onSupervisorGone();
  try {
    await stopped;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.stdin.pause();
  }
}

/** `node --config FILE` runs a node; `node announce | endpoints` manage the node directory. */
export function registerNodeCommand(program: Command): void {
  const node = program
    .command("node")
    .description(
      "run a node from a config file: its roles (trainer, validator, aggregator, keeper of a federated task; oracle operator), its blobs, /health and /metrics over HTTP, JSON logs on stdout; stops on SIGTERM or SIGINT. `node announce` and `node endpoints` manage the node directory, where nodes find each other",
    )
    // Checked in the action, not by commander: a required option here would be required by the
    // subcommands too.
    .option("--config <FILE>", "the node's YAML config (see the README); required to run a node")
    .option(
      "--stop-with-stdin",
      "for a supervisor (devnet, the demo): stop cleanly when stdin closes, so that the node never outlives the process that started it, even one killed with SIGKILL",
    )
    .action(async (o: { config?: string; stopWithStdin?: boolean }, cmd: Command) => {
      if (o.config === undefined)
        throw new UsageError("node needs --config FILE (or a subcommand: announce, endpoints)");
      if (globalOptions(cmd).rpc !== undefined)
        throw new UsageError("node takes its chain from the config (chain.rpc), not from --rpc");
      await runNode(loadConfig(o.config), { stopWithStdin: o.stopWithStdin === true });
    });

  node
    .command("announce")
    .description(
      "announce the URL other nodes fetch this account's blobs from (GET URL/blobs/CID) in the node directory; a running node announces its own on start",
    )
    .argument("<URL>", "the node's base URL: http:// or https://, at most 256 bytes")
    .option("--account <INDEX>", "the account whose node it is (default: 0)")
    .action(async (url: string, o: { account?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const account = parseAccount(o.account);
      await withChain(opts, async (chain) => {
        const receipt = await announceEndpoint(await openDirectory(chain), url, account);
        const node = chain.wallet(account).account.address;
        emit(opts, { node, url, gasUsed: receipt.gasUsed }, () => [`${node} serves its blobs at ${url}`]);
      });
    });

  node
    .command("endpoints")
    .description(
      "list the URLs nodes announced in the node directory: of the addresses given, or of every node that announced one",
    )
    .argument("[ADDRESS...]", "the accounts to look up (default: every account that announced a URL)")
    .action(async (given: string[], _o: unknown, cmd: Command) => {
      const opts = globalOptions(cmd);
      const asked = given.map((a) => parseAddress(a, "the account"));
      await withChain(
        opts,
        async (chain) => {
          const directory = await openDirectory(chain);
          const nodes: Address[] = asked.length > 0 ? asked : await announcedNodes(directory);
          const urls = await endpointsOf(directory, nodes);
          const rows = nodes.map((node, i) => ({ node, url: urls[i] ?? null }));
          // Listing everyone shows the live entries only; an address asked for by name is always answered.
          const shown = asked.length > 0 ? rows : rows.filter((r) => r.url !== null);
          emit(opts, shown, () =>
            shown.length === 0
              ? ["no node has announced a URL"]
              : shown.map((r) => `${r.node} ${r.url ?? "(none announced)"}`),
          );
        },
        { readOnly: true },
      );
    });
}
