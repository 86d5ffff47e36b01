/**
 * The ledgermind CLI as a separate process, for the end-to-end tests in test/cli: `node --import tsx
 * src/cli/main.ts [--data-dir DIR] [--rpc URL] ...args` from the repository root, in an environment without
 * the variables that change its keys or its error output; and the assertions on how such a process ended.
 */
import assert from "node:assert/strict";
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";

/** The repository root: the working directory of every CLI process. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** How long `cli` lets a process run before it kills it (SIGKILL), unless told otherwise. */
export const CLI_TIMEOUT_MS = 90_000;

/** A finished CLI process: its exit code, or the signal that ended it, and everything it wrote. */
export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Where a CLI process points: `--data-dir DIR` and `--rpc URL`, put before its own arguments when given. */
export interface CliTarget {
  dataDir?: string;
  rpc?: string;
}

/** A `CliTarget` and the time `cli` allows (`CLI_TIMEOUT_MS` unless given). */
export interface CliOptions extends CliTarget {
  timeoutMs?: number;
}

/** A running CLI process; stdin is closed, stdout and stderr are pipes. */
export type CliProcess = ChildProcessByStdio<null, Readable, Readable>;

/** The environment the CLI sees: none of the variables that change its keys or its error output. */
export function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of [
    "LEDGERMIND_DEBUG",
    "LEDGERMIND_KEYS",
    "LEDGERMIND_MLDSA_SEED",
    "NODE_TEST_CONTEXT",
    "NODE_OPTIONS",
    "FORCE_COLOR",
  ])
    delete env[name];
  return env;
}

/** Starts `ledgermind [--data-dir DIR] [--rpc URL] ...args` without waiting (`chain`, `oracle serve`). */
export function spawnCli(args: readonly string[], target: CliTarget = {}): CliProcess {
  const lead = [
    ...(target.dataDir === undefined ? [] : ["--data-dir", target.dataDir]),
    ...(target.rpc === undefined ? [] : ["--rpc", target.rpc]),
  ];
  return spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...lead, ...args], {
    cwd: ROOT,
    env: cliEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs `ledgermind [--data-dir DIR] [--rpc URL] ...args` to completion, killing it after `timeoutMs`. */
export function cli(args: readonly string[], options: CliOptions = {}): Promise<Run> {
  const { timeoutMs = CLI_TIMEOUT_MS, ...target } = options;
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, target);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** `cli` and `spawnCli` with defaults (a function is read at each call); a call's own options win. */
export function cliWith(defaults: CliOptions | (() => CliOptions)): {
  cli: (args: readonly string[], options?: CliOptions) => Promise<Run>;
  spawnCli: (args: readonly string[], target?: CliTarget) => CliProcess;
} {
  const base = typeof defaults === "function" ? defaults : () => defaults;
  return {
    cli: (args, options = {}) => cli(args, { ...base(), ...options }),
    spawnCli: (args, target = {}) => {
      const { timeoutMs: _, ...baseTarget } = base();
      return spawnCli(args, { ...baseTarget, ...target });
    },
  };
}

/**
 * A run for an assertion message: exit code (and signal), stderr, then stdout: the error comes before the
 * long output, so a report that keeps only the start of a failure still shows why.
 */
export const show = (r: Run): string =>
  `exit ${r.code}${r.signal ? ` (${r.signal})` : ""}\n--stderr--\n${r.stderr}\n--stdout--\n${r.stdout}`;

/** Asserts the run exited 0 with nothing on stderr; returns its stdout. */
export function assertOk(r: Run): string {
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stderr, "", show(r));
  return r.stdout;
}

/** Asserts `assertOk` and that stdout is one JSON document; returns it parsed. */
export function parseJson<T>(r: Run): T {
  assertOk(r);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    assert.fail(`stdout is not one JSON document:\n${show(r)}`);
  }
}

/** Asserts a non-zero exit (`code` if given), one `ledgermind: ...` line on stderr matching `pattern`. */
export function assertOneLineError(r: Run, pattern: RegExp, code?: number): string {
  assert.notEqual(r.code, 0, show(r));
  assert.equal(r.signal, null, show(r));
  if (code !== undefined) assert.equal(r.code, code, show(r));
  assert.doesNotMatch(r.stderr, /^\s+at /m, `a stack trace:\n${show(r)}`);
  const lines = r.stderr.split("\n");
  assert.equal(lines.pop(), "", `stderr must end with a newline:\n${show(r)}`);
  assert.equal(lines.length, 1, `exactly one line on stderr:\n${show(r)}`);
  const line = lines[0] as string;
  assert.ok(line.startsWith("ledgermind: "), `stderr must start with "ledgermind: ":\n${show(r)}`);
  assert.match(line, pattern, show(r));
  return line;
}

/** Writes a valid dataset metadata file (a hospital's ward admissions) in `dir` for `data publish`; its path. */
export function writeWardsMetadata(dir: string): string {
  const path = join(dir, "wards.json");
  writeFileSync(
    path,
    JSON.stringify({
      format: "ledgermind.dataset/1",
      name: "ward admissions",
      description: "one row per stay",
      schema: { age: "int", days: "int" },
      licence: "CC-BY-NC-4.0",
      size: { rows: 1200, bytes: 48_000 },
    }),
  );
  return path;
}
