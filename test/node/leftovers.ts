/**
 * What a run that starts processes may leave behind: processes found by a folder in their command lines, and
 * a chain by its port. For the tests that check a consortium stops everything it started; also what such a
 * run printed, and its node logs' last lines for a failure's message.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";

/** Processes whose command line names `text`, other than this search. */
export function processesNaming(text: string): string[] {
  try {
    return execFileSync("pgrep", ["-af", text], { encoding: "utf8" })
      .trim()
      .split("\n")
      .filter((line) => line !== "" && !line.includes("pgrep"));
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** Whether something accepts connections on the URL's port. */
export function listening(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A running child's output so far, and its exit code once it exits. */
export interface Watched {
  out(): string;
  err(): string;
  exited: Promise<number | null>;
  /** Waits until stdout matches `pattern`; fails (with the output) if the child exits or time runs out. */
  until(pattern: RegExp, timeoutMs: number): Promise<void>;
}

export function watch(child: ChildProcess): Watched {
  let out = "";
  let err = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    out: () => out,
    err: () => err,
    exited,
    async until(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(out)) {
        if (child.exitCode !== null) throw new Error(`ended before ${pattern}:\n${err}\n${out}`);
        if (Date.now() > deadline) throw new Error(`no ${pattern} in ${timeoutMs} ms:\n${err}\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

/** The last `lines` lines of every `*.log` in `dir`, each headed by its name: why a consortium run failed. */
export function logTails(dir: string, lines = 4): string {
  if (!existsSync(dir)) return `(no ${dir})`;
  return readdirSync(dir)
    .filter((f) => f.endsWith(".log"))
    .sort()
    .map((f) => {
      const tail = readFileSync(join(dir, f), "utf8").trimEnd().split("\n").slice(-lines);
      return `--${f}--\n${tail.map((l) => l.slice(0, 600)).join("\n")}`;
    })
    .join("\n");
}

/**
 * Ctrl-C (SIGINT) to a run that started a development chain and node processes in `dir`: it exits non-zero
 * with `said` on stderr and no stack trace, leaving no node process and no chain behind.
 */
export async function interruptAndCheck(child: ChildProcess, run: Watched, dir: string, said: RegExp) {
  child.kill("SIGINT");
  assert.notEqual(await run.exited, 0);
  assert.match(run.err(), said);
  assert.doesNotMatch(run.err(), /\n\s+at /, "no stack trace");
  const chain = /^development chain on (http:\/\/\S+)$/m.exec(run.out())?.[1];
  assert.ok(chain, run.out());
  assert.deepEqual(processesNaming(dir), [], "no node process left");
  assert.equal(await listening(chain), false, "the chain stopped");
}
