/**
 * `ledgermind node` as a child process: started from its config file with its log in a file, ready once it
 * answers /health, stopped with SIGTERM (SIGKILL after a grace period). The devnet runs its consortium
 * this way, and the crash tests kill and restart such processes.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** A node process failed to start or stopped on its own; the message ends with its log's last line. */
export class NodeProcessError extends Error {
  override name = "NodeProcessError";
}

/** How long a node may take to answer /health after it starts. */
export const NODE_START_MS = 90_000;
/** How long a node may take to stop after SIGTERM before it is killed. */
export const NODE_STOP_MS = 15_000;

export interface NodeProcess {
  child: ChildProcess;
  /** Where it answers: its config's http port on this machine. */
  url: string;
  log: string;
  /** Resolves when the process has exited, however. */
  exited: Promise<void>;
  /** Whether it has exited. */
  readonly done: boolean;
  /** SIGTERM, then SIGKILL after NODE_STOP_MS; resolves once it has exited. */
  stop(): Promise<void>;
}

/** The command that runs the CLI in a child process: the sources through tsx, or the package's build. */
function cliCommand(): { file: string; args: string[] } {
  const fromSource = import.meta.url.endsWith(".ts");
  const main = fileURLToPath(new URL(`../cli/main.${fromSource ? "ts" : "js"}`, import.meta.url));
  return {
    file: process.execPath,
    args: [...(fromSource ? ["--import", import.meta.resolve("tsx")] : []), main],
  };
}

/** The last line of a node's JSON log (its error or message), for an error that says why it stopped. */
export function lastLogLine(file: string): string {
  let last: string;
  try {
    last = readFileSync(file, "utf8").trim().split("\n").at(-1) ?? "";
  } catch {
    return "(no log)";
  }
  try {
    const entry = JSON.parse(last) as { msg?: string; error?: string };
    return entry.error ?? entry.msg ?? last;
  } catch {
    return last;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts `ledgermind node --config CONFIG`, appending its output to `log`, and waits until `url` answers
 * /health. A node that exits first, does not answer within NODE_START_MS, or whose start `signal` aborts
 * is stopped, and NodeProcessError says why.
 */
export async function startNodeProcess(o: {
  name: string;
  config: string;
  url: string;
  log: string;
  signal?: AbortSignal;
}): Promise<NodeProcess> {
  const { file, args } = cliCommand();
  const out = openSync(o.log, "a");
  // stdin is a pipe this process holds: when it dies, however, the pipe closes and the node stops.
  const child = spawn(file, [...args, "node", "--config", o.config, "--stop-with-stdin"], {
    stdio: ["pipe", out, out],
  });
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const node: NodeProcess = {
    child,
    url: o.url,
    log: o.log,
    exited,
    get done() {
      return child.exitCode !== null || child.signalCode !== null;
    },
    async stop() {
      if (node.done) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), NODE_STOP_MS);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + NODE_START_MS;
  for (;;) {
    if (node.done)
      throw new NodeProcessError(`${o.name} stopped while starting: ${lastLogLine(o.log)} (see ${o.log})`);
    try {
      if ((await fetch(`${o.url}/health`)).ok) return node;
    } catch {
      // not listening yet
    }
    if (o.signal?.aborted || Date.now() > deadline) {
      await node.stop();
      throw new NodeProcessError(
        o.signal?.aborted
          ? `${o.name}: interrupted while starting`
          : `${o.name} did not answer within ${NODE_START_MS / 1000} s (see ${o.log})`,
      );
    }
    await sleep(250);
  }
}
