import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { DEV_MNEMONIC } from "./accounts.ts";
import { HARDFORK } from "./embedded.ts";

const require = createRequire(import.meta.url);

/** `ledgermind chain` serves this chain id, so its deployments never mix with the embedded chain's (31337). */
export const DEV_NODE_CHAIN_ID = 1337;

export class DevNodeError extends Error {
  override name = "DevNodeError";
}

export interface DevNode {
  url: string;
  process: ChildProcess;
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
 * Starts a JSON-RPC development chain (anvil, an existing EVM node) as a child process, funded from the
 * development mnemonic. With `stateFile` its state is loaded at start and saved on exit.
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
  const child = spawn(anvilBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
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
  return {
    url,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGINT"); // SIGINT lets anvil write its --state file
      }),
  };
}
