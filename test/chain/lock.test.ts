/**
 * The chain folder's lock (src/chain/lock.ts): who holds it, when a holder is gone (a dead or reused pid),
 * and what a new holder does about the anvil a dead `ledgermind chain` left running. Two `ledgermind chain`
 * on one folder used to run side by side, and the last to stop overwrote the other's transactions.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  acquireChainLock,
  ChainLockedError,
  isRunning,
  type LockHolder,
  parseLockFile,
  parseProcStat,
  processStart,
} from "../../src/chain/lock.ts";

const root = mkdtempSync(join(tmpdir(), "ledgermind-lock-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid as number;
}

describe("lock file and process identity (pure)", () => {
  it("reads state and start time from /proc/PID/stat, even when the name holds spaces and parentheses", () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = "Z";
    assert.deepEqual(parseProcStat(`4242 (a (b) c) ${fields.join(" ")}`), { state: "Z", start: "22" });
  });

  it("reads a holder, and the bare pid that older locks hold", () => {
    assert.deepEqual(parseLockFile("1234\n"), { pid: 1234, command: "embedded" });
    const holder: LockHolder = { pid: 7, start: "99", command: "chain", url: "http://127.0.0.1:8545" };
    assert.deepEqual(parseLockFile(JSON.stringify(holder)), holder);
    assert.equal(parseLockFile('{"pid":0}'), undefined);
    assert.equal(parseLockFile("{"), undefined);
  });
});

describe("process identity", () => {
  it("tells this process from a dead pid and from a reused pid", async () => {
    const start = processStart(process.pid);
    assert.ok(start, "this Linux has /proc");
    assert.equal(isRunning({ pid: process.pid, start }), true);
    assert.equal(isRunning({ pid: process.pid, start: `${start}0` }), false, "same pid, another start");
    assert.equal(isRunning({ pid: await deadPid() }), false);
  });

  it("counts an exited process nobody reaped (a zombie) as gone", async () => {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const pid = child.pid as number;
    // The exit is left unreaped while this loop spins: child_process reaps it from the event loop.
    const until = Date.now() + 10_000;
    while (!readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ") && Date.now() < until);
    assert.equal(isRunning({ pid }), false);
    await new Promise((resolve) => child.once("exit", resolve));
  });
});

describe("acquireChainLock", () => {
  it("refuses a second holder, naming the first and where it serves", async () => {
    const dir = freshDir();
    const lock = await acquireChainLock(dir, "chain");
    lock.update({ url: "http://127.0.0.1:18545" });
    try {
      await assert.rejects(acquireChainLock(dir, "embedded"), (err: unknown) => {
        assert.ok(err instanceof ChainLockedError);
        assert.equal(err.holder.pid, process.pid);
        assert.match(err.message, /`ledgermind chain` \(process \d+, http:\/\/127\.0\.0\.1:18545\)/);
        return true;
      });
    } finally {
      lock.release();
    }
    assert.deepEqual(readdirSync(dir), [], "released, and no file left beside the lock");
  });

  it("takes over a lock whose pid was reused by another process", async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    const reused: LockHolder = { pid: process.pid, start: "1", command: "embedded" };
    writeFileSync(join(dir, "lock"), JSON.stringify(reused));
    const lock = await acquireChainLock(dir, "embedded");
    assert.equal(parseLockFile(readFileSync(join(dir, "lock"), "utf8"))?.start, processStart(process.pid));
    lock.release();
  });

  it("stops what a dead `ledgermind chain` left running, and never a reused pid", async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    // Stands for the anvil left behind: it exits on SIGINT, as anvil does once it has saved its state.
    const left = spawn(
      process.execPath,
      [
        "-e",
        "process.on('SIGINT', () => process.exit(0)); console.log('ready'); setInterval(() => {}, 1000)",
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      left.once("exit", (code, signal) => resolve(signal ?? code)),
    );
    await new Promise((resolve) => left.stdout.once("data", resolve));
    const pid = left.pid as number;
    const holder: LockHolder = {
      pid: await deadPid(),
      command: "chain",
      children: [
        // This test process, recorded with another start time: a pid reused since, to leave alone.
        { name: "watchdog", pid: process.pid, start: `${processStart(process.pid)}0` },
        { name: "anvil", pid, start: processStart(pid) },
      ],
    };
    writeFileSync(join(dir, "lock"), JSON.stringify(holder));
    const notices: string[] = [];
    const lock = await acquireChainLock(dir, "chain", (m) => notices.push(m));
    lock.release();
    assert.equal(await exited, 0, "stopped with SIGINT, so that anvil saves its state");
    assert.deepEqual(notices, [
      `stopped anvil (process ${pid}), left running by \`ledgermind chain\` (process ${holder.pid}) when it died`,
    ]);
  });
});
