import { readFileSync } from "node:fs";
import { Command, Help } from "commander";
import { DEFAULT_DATA_DIR } from "../chain/connect.ts";
import { registerBlobCommands } from "./blob.ts";
import { registerChainCommands } from "./chain.ts";
import { DEFAULT_LOCK_TIMEOUT_S } from "./context.ts";
import { registerDataCommands } from "./data.ts";
import { registerDemoCommand } from "./demo.ts";
import { registerDevnetCommand } from "./devnet.ts";
import { registerFlCommands } from "./fl.ts";
import { finishHelp } from "./help.ts";
import { registerInsuranceCommands } from "./insurance.ts";
import { registerModelCommands } from "./model.ts";
import { registerNodeCommand } from "./node.ts";
import { registerOracleCommands } from "./oracle.ts";
import { registerTokenCommands } from "./token.ts";
import { registerZkCommands } from "./zk.ts";

/** The package's version, from its package.json. */
export const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** The program's options that take a value: what `versionFlagIsCommands` skips over. */
const VALUE_OPTIONS = new Set(["--rpc", "--data-dir", "--lock-timeout"]);

/**
 * Whether a `--version` in `args` (after node and the script) comes after the first command word, so that
 * it is that command's own option (`model show 1 --version 2`). commander takes a program's option
 * wherever it appears, and would print the package's version instead.
 */
export function versionFlagIsCommands(args: readonly string[]): boolean {
  let inCommand = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--version" || arg.startsWith("--version=")) return inCommand;
    if (VALUE_OPTIONS.has(arg)) i++;
    else if (!arg.startsWith("-")) inCommand = true;
  }
  return false;
}

/** Global options as listed under a subcommand: all but the program's own `--version`. */
const globalHelp = Object.assign(new Help(), { showGlobalOptions: true });

/** The whole command tree; `versionFlag: false` leaves `--version` to the subcommands that take one. */
export function createProgram({ versionFlag = true }: { versionFlag?: boolean } = {}): Command {
  const program = new Command("ledgermind")
    .description("Accountable AI on an EVM chain: model registry, attestations, verification")
    .option("--rpc <URL>", "an EVM JSON-RPC endpoint (default: the embedded EVM, persisted in --data-dir)")
    .option(
      "--data-dir <DIR>",
      "where the embedded chain, deployments, keys and blobs live",
      DEFAULT_DATA_DIR,
    )
    .option(
      "--lock-timeout <SECONDS>",
      "how long a read-only command waits for an embedded chain that another process holds",
      String(DEFAULT_LOCK_TIMEOUT_S),
    )
    .option("--json", "print results as JSON")
    .configureHelp({
      showGlobalOptions: true,
      visibleGlobalOptions: (cmd) =>
        globalHelp.visibleGlobalOptions(cmd).filter((option) => option.long !== "--version"),
    })
    .exitOverride()
    .configureOutput({
      // commander's own errors ("unknown command", a missing option) follow the CLI's rule: one line.
      outputError: (text, write) =>
        write(
          `ledgermind: ${text
            .replace(/^error: /, "")
            .trim()
            .replace(/\s*\n\s*/g, " ")}\n`,
        ),
    });
  if (versionFlag) program.version(VERSION, "-V, --version", "print the version and exit");

  registerChainCommands(program);
  registerTokenCommands(program);
  registerBlobCommands(program);
  registerModelCommands(program);
  registerOracleCommands(program);
  registerInsuranceCommands(program);
  registerFlCommands(program);
  registerDataCommands(program);
  registerZkCommands(program);
  registerNodeCommand(program);
  registerDevnetCommand(program);
  registerDemoCommand(program);
  finishHelp(program);
  return program;
}
