import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { DEV_MNEMONIC } from "./accounts.ts";
import { HARDFORK } from "./embedded.ts";

const require = createRequire(import.meta.url);

/** `ledgermind chain` serves this chain id, so its deployments never mix with the embedded chain's (31337). */
export const DEV_NODE_CHAIN_ID = 1337;

/** How long anvil may take to save its state after SIGINT before it is killed. */
export const ANVIL_STOP_GRACE_MS = 15_000;

export class DevNodeError extends Error {
  override name = "DevNodeError";
}

export interface DevNode {
  url: string;
  /** The watchdog that runs anvil: it exits when anvil has. */
  process: ChildProcess;
  /** anvil's own pid, and the watchdog's. */
  pids: { anvil: number; watchdog: number };
  stop(): Promise<void>;
}

/** Path of the anvil binary that `@foundry-rs/anvil` ships inside its per-platform npm package. */
export function anvilBinary(): string {
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  try {
    return join(dirname(require.resolve(`${pkg}/package.json`)), "bin", "anvil");
  } catch {
    throw new DevNodeError(`no anvil binary for ${process.platform}-${process.arch}: install ${pkg}`);
  }
}

/**
 * anvil's parent, run as `node -e WATCHDOG GRACE_MS ANVIL ...ARGS`. Whatever ends the process that
 * started it (Ctrl-C, SIGTERM, a closed terminal's SIGHUP, kill -9), the pipe on the watchdog's stdin
 * closes, and the watchdog stops anvil with SIGINT, the signal on which anvil saves its state. Being
 * anvil's parent, it can never signal another process that reused anvil's pid. It relays anvil's
 * output, and keeps reading it once nobody listens, so that anvil never writes into a closed pipe.
 * Plain JavaScript in a string: it starts in a bare Node, with no TypeScript loader.
 */
const WATCHDOG = `
const { spawn } = require("node:child_process");
const { closeSync, writeSync } = require("node:fs");
const [grace, bin, ...args] = process.argv.slice(1);
const anvil = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
anvil.once("error", (err) => {
  process.stderr.write("anvil failed to start: " + err.message + "\\n");
  process.exit(127);
});
anvil.once("spawn", () => {
  writeSync(3, anvil.pid + "\\n");
  closeSync(3);
});
for (const [from, to] of [[anvil.stdout, process.stdout], [anvil.stderr, process.stderr]]) {
  let open = true;
  to.on("error", () => { open = false; });
  from.on("data", (chunk) => { if (open) to.write(chunk); });
}
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  anvil.kill("SIGINT");
  setTimeout(() => anvil.kill("SIGKILL"), Number(grace)).unref();
};
process.stdin.on("data", () => {}).once("end", stop).once("error", stop);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, stop);
anvil.once("exit", (code) => process.exit(code ?? 1));
`;

/**
 * Starts a JSON-RPC development chain (anvil, an existing EVM node) as a child process, funded from the
 * development mnemonic. With `stateFile` its state is loaded at start and saved when it stops. anvil
 * runs under a watchdog in a session of its own: a terminal's signals reach only this process, which
 * stops anvil through the watchdog, and anvil stops even when this process is killed outright.
 */
export async function startDevNode(
  opts: { port?: number; host?: string; stateFile?: string; blockTime?: number } = {},
): Promise<DevNode> {
  const host = opts.host ?? "127.0.0.1";
  const args = [
    "--host",
    host,
    "--port",
    String(opts.port ?? 8545),
    "--chain-id",
    String(DEV_NODE_CHAIN_ID),
    "--hardfork",
    HARDFORK,
    "--mnemonic",
    DEV_MNEMONIC,
    "--accounts",
    "20",
  ];
  if (opts.stateFile) args.push("--state", opts.stateFile);
  if (opts.blockTime) args.push("--block-time", String(opts.blockTime));
  const child = spawn(
    process.execPath,
    ["-e", WATCHDOG, String(ANVIL_STOP_GRACE_MS), anvilBinary(), ...args],
    // A session of its own (detached): a closed terminal's SIGHUP would kill anvil before it saved.
    { detached: true, stdio: ["pipe", "pipe", "pipe", "pipe"] },
  );
  const stdin = child.stdin as Writable;
  const pidPipe = child.stdio[3] as Readable;
  let anvilPid = "";
  pidPipe.on("data", (c: Buffer) => {
    anvilPid += c.toString();
  });
  const pidWritten = new Promise((resolve) => pidPipe.once("close", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = out.match(/Listening on ([\d.:a-z[\]]+)/i);
      if (m) resolve(`http://${m[1]}`);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.once("error", (err) => reject(new DevNodeError(`anvil failed to start: ${err.message}`)));
    child.once("exit", (code) => {
      const last = out.trim().split("\n").at(-1) ?? "";
      reject(new DevNodeError(`anvil exited with code ${code} before listening: ${last}`));
    });
  });
  child.stdout?.resume();
  await pidWritten;
  return {
    url,
    process: child,
    pids: { anvil: Number(anvilPid), watchdog: child.pid as number },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        // The same way the watchdog learns that this process died: one path, exercised at every stop.
        stdin.end();
      }),
  };
}
