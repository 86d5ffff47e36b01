import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { DEFAULT_DATA_DIR } from "../chain/connect.ts";
import { registerBlobCommands } from "./blob.ts";
import { registerChainCommands } from "./chain.ts";
import { UsageError } from "./context.ts";
import { registerDemoCommand } from "./demo.ts";
import { registerFlCommands } from "./fl.ts";
import { registerInsuranceCommands } from "./insurance.ts";
import { registerModelCommands } from "./model.ts";
import { registerOracleCommands } from "./oracle.ts";
import { registerTokenCommands } from "./token.ts";

// package.json is two levels up from src/cli and from dist/cli alike.
const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

const program = new Command("ledgermind")
  .description("Accountable AI on an EVM chain: model registry, attestations, verification")
  .option("--rpc <url>", "an EVM JSON-RPC endpoint (default: the embedded EVM, persisted in --data-dir)")
  .option("--data-dir <dir>", "where the embedded chain, deployments, keys and blobs live", DEFAULT_DATA_DIR)
  .option("--json", "print results as JSON")
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

registerChainCommands(program);
registerTokenCommands(program);
registerBlobCommands(program);
registerModelCommands(program);
registerOracleCommands(program);
registerInsuranceCommands(program);
registerFlCommands(program);
registerDemoCommand(program);

function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split("\n")[0]?.trim() || String(err);
}

// A reader that stops early (`| head -c 100`) closes the pipe: the rest has nowhere to go, which is not
// the command's failure.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(Number(process.exitCode ?? 0));
    throw err;
  });
}

/**
 * Exits once stdout and stderr have drained. Writes to a pipe are asynchronous: process.exit right
 * after a large write cut piped output at 64 KiB. An empty write's callback runs after every write
 * queued before it. The exit itself stays explicit: a command may leave handles open (a chain, tfjs).
 */
async function exit(code: number): Promise<never> {
  const drained = (stream: NodeJS.WriteStream) =>
    new Promise<void>((resolve) => stream.write("", () => resolve()));
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}

// `ledgermind --version` alone: commander's .version() would also take the subcommands' own `--version <n>`.
if (process.argv.length === 3 && ["--version", "-V"].includes(process.argv[2] as string)) {
  console.log(version);
  await exit(0);
}

try {
  await program.parseAsync(process.argv);
  await exit(Number(process.exitCode ?? 0));
} catch (err) {
  if (err instanceof CommanderError) {
    // commander already printed its one-line message (or the help, or the version)
    await exit(err.exitCode === 0 ? 0 : 2);
  }
  if (process.env.LEDGERMIND_DEBUG) console.error(err);
  console.error(`ledgermind: ${oneLine(err)}`);
  await exit(err instanceof UsageError ? 2 : 1);
}
