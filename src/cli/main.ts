import { CommanderError } from "commander";
import { ensureDataDir, globalOptions, parseRpc } from "./context.ts";
import { EXIT_INTERRUPTED, EXIT_USAGE, errorLine, exitCodeOf } from "./errors.ts";
import { commandPath } from "./help.ts";
import { createProgram, versionFlagIsCommands } from "./program.ts";

const program = createProgram({ versionFlag: !versionFlagIsCommands(process.argv.slice(2)) });

/** What Ctrl-C interrupts: the command line's command, once commander has found it. */
let running = "ledgermind";

program.hook("preAction", (_program, action) => {
  running = `ledgermind ${commandPath(action)}`;
  const opts = globalOptions(action);
  if (opts.rpc !== undefined) parseRpc(opts.rpc);
  ensureDataDir(opts.dataDir);
});

// Ctrl-C: one line, then exit 130. Leaving through process.exit runs the 'exit' listeners, which
// release the embedded chain's lock; every journal entry is written synchronously, so none is half done.
// Commands that serve until stopped (`chain`, `oracle serve`) add their own listener and stop cleanly.
process.on("SIGINT", () => {
  if (process.listenerCount("SIGINT") > ownSigintListeners) return;
  process.stderr.write(
    `ledgermind: interrupted: ${running} (what was confirmed is kept; the chain is released)\n`,
  );
  process.exit(EXIT_INTERRUPTED);
});
// Counted after ours: a loader (tsx) may listen too, before any command adds its own.
const ownSigintListeners = process.listenerCount("SIGINT");

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

try {
  await program.parseAsync(process.argv);
  await exit(Number(process.exitCode ?? 0));
} catch (err) {
  if (err instanceof CommanderError) {
    // commander already printed its one-line message (or the help, or the version)
    await exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  }
  if (process.env.LEDGERMIND_DEBUG) console.error(err);
  console.error(`ledgermind: ${errorLine(err)}`);
  await exit(exitCodeOf(err));
}
