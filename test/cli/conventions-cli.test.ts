/**
 * The CLI's conventions as a user meets them, one spawned process each (run side by side, each on its own
 * data folder): --version, validation before anything connects, exit codes, an impossible --data-dir,
 * Ctrl-C, and a read-only command waiting for a chain another process holds.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { assertOk, assertOneLineError, cli, type Run, show, spawnCli } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-conventions-cli-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

let dirs = 0;
/** A fresh data folder for one test. */
const dataDir = () => join(TMP, `data-${++dirs}`);

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

describe("CLI conventions (spawned processes)", { concurrency: true }, () => {
  it("--version prints the package's version; a command's own --version still reaches it", async () => {
    const [version, tooLarge] = await Promise.all([
      cli(["--version"], { dataDir: dataDir() }),
      cli(["model", "show", "1", "--version", "99999999999999"], { dataDir: dataDir() }),
    ]);
    assert.equal(assertOk(version), `${PACKAGE_VERSION}\n`);
    assertOneLineError(tooLarge, /^ledgermind: version must be at most 4294967295 \(2\^32-1/, 2);
  });

  it("an invalid address, an empty name and a malformed --rpc are usage errors (exit 2)", async () => {
    const [address, name, rpc] = await Promise.all([
      cli(["token", "transfer", "0xdead", "1"], { dataDir: dataDir() }),
      cli(["model", "register", "--name", ""], { dataDir: dataDir() }),
      cli(["--rpc", "ftp://127.0.0.1:8545", "model", "show", "1"], { dataDir: dataDir() }),
    ]);
    const line = assertOneLineError(address, /the account "0xdead" is not a valid address/, 2);
    assert.doesNotMatch(line, /must be an index/);
    assertOneLineError(name, /^ledgermind: --name must not be empty$/, 2);
    assertOneLineError(rpc, /^ledgermind: --rpc takes an http\(s\) URL/, 2);
  });

  it("a --data-dir under /proc is one line and exit 1, not a hang", async () => {
    const r = await cli(["--data-dir", "/proc/ledgermind-test/data", "model", "show", "1"]);
    assertOneLineError(r, /^ledgermind: --data-dir \/proc\/ledgermind-test\/data is not a folder/, 1);
  });

  it("Ctrl-C prints what was interrupted, exits 130 and releases the embedded chain", async () => {
    const dir = dataDir();
    const lock = join(dir, "chain", "lock");
    const child = spawnCli(["demo", "--part", "registry"], { dataDir: dir });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const ended = new Promise<Run>((resolve) =>
      child.once("close", (code, signal) => resolve({ code, signal, stdout: "", stderr })),
    );
    const deadline = Date.now() + 60_000;
    while (!existsSync(lock) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(lock), "the demo holds the chain");
    child.kill("SIGINT");
    const r = await ended;
    assertOneLineError(r, /^ledgermind: interrupted: ledgermind demo \(/, 130);
    assert.equal(existsSync(lock), false, `the lock is released:\n${show(r)}`);
  });

  it("a read-only command waits for the chain another process holds, saying by which pid", async () => {
    const dir = dataDir();
    mkdirSync(join(dir, "chain"), { recursive: true });
    // The holder lives until the CLI says it waits for it; then it ends and the CLI goes on.
    const holder = spawn("sleep", ["600"], { stdio: "ignore" });
    writeFileSync(join(dir, "chain", "lock"), String(holder.pid));
    const child = spawnCli(["--lock-timeout", "300", "model", "show", "1"], { dataDir: dir });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
      if (stderr.includes("waiting for the chain")) holder.kill();
    });
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    holder.kill();
    const r: Run = { code, signal: null, stdout: "", stderr };
    const lines = stderr.split("\n");
    assert.equal(
      lines[0],
      `ledgermind: waiting for the chain held by pid ${holder.pid} (up to 300 s)...`,
      show(r),
    );
    // Past the lock, it found what a fresh folder has: no model (rather than "in use by process").
    assert.equal(r.code, 1, show(r));
    assert.match(lines[1] as string, /^ledgermind: model 1 does not exist/, show(r));
  });
});
