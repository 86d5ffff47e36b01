import { readFileSync } from "node:fs";
import { Command } from "commander";
import { DEFAULT_DATA_DIR } from "../chain/connect.ts";
import { registerBlobCommands } from "./blob.ts";
import { registerChainCommands } from "./chain.ts";
import { DEFAULT_LOCK_TIMEOUT_S } from "./context.ts";
import { registerDemoCommand } from "./demo.ts";
import { registerFlCommands } from "./fl.ts";
import { finishHelp } from "./help.ts";
import { registerInsuranceCommands } from "./insurance.ts";
import { registerModelCommands } from "./model.ts";
import { registerOracleCommands } from "./oracle.ts";
import { registerTokenCommands } from "./token.ts";

/** The package's version, from its package.json. */
export const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** The program's options that take a value: what `versionFlagIsGlobal` skips over. */
const VALUE_OPTIONS = new Set(["--rpc", "--data-dir", "--lock-timeout"]);

/**
 * Whether `--version` (or `-V`) in `args` (after node and the script) is the program's, that is, comes
 * before the first command word. commander takes a program's option wherever it appears, which would
 * swallow the `--version N` of `model show 1 --version 2`.
 */
export function versionFlagIsGlobal(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--version" || arg === "-V") return true;
    if (VALUE_OPTIONS.has(arg)) i++;
    else if (!arg.startsWith("-")) return false;
  }
  return false;
}

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
    .configureHelp({ showGlobalOptions: true })
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
  registerDemoCommand(program);
  finishHelp(program);
  return program;
}
