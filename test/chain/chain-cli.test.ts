/**
 * `ledgermind chain` as a user runs it, in its own process: one per data folder, its anvil stopped
 * whatever ends it, and no confirmed transaction lost. Named after what went wrong: two chains on one
 * folder both ran and the last to stop overwrote the other's transactions; SIGHUP (a closed terminal) or
 * kill -9 left anvil holding the port, so the next start failed with `Address already in use`; and
 * `--rpc URL chain` ignored --rpc without a word.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Address } from "viem";
import { connect } from "../../src/chain/connect.ts";
import { isRunning, type LockHolder, parseLockFile, stopLeftover } from "../../src/chain/lock.ts";
import { sendAndWait } from "../../src/chain/tx.ts";
import { assertOk, assertOneLineError, type CliProcess, cli, show, spawnCli } from "../cli/cli-process.ts";

const dataDir = mkdtempSync(join(tmpdir(), "ledgermind-chain-cli-"));
/** The chain started last, for the cleanup. */
let current: Running | undefined;
after(async () => {
  // A failed step must not leave a chain behind: stop the one running, then what its lock names.
  if (current && current.proc.exitCode === null && current.proc.signalCode === null) {
    current.proc.kill("SIGCONT");
    current.proc.kill("SIGINT");
    await current.exited;
  }
  try {
    for (const child of holder().children ?? []) await stopLeftover(child, 5_000);
  } catch {
    // no lock left: nothing left running
  }
  rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const holder = (): LockHolder =>
  parseLockFile(readFileSync(join(dataDir, "chain", "lock"), "utf8")) as LockHolder;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether nothing listens on `port`: it can be bound again. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer().once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * Whether the port is free within `ms`. Right after anvil dies the kernel may still hold its closing
 * connections on the port for a moment (CI saw the port held 60 ms after a SIGKILL); an anvil left
 * running holds it for good.
 */
async function portFreed(port: number, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await portIsFree(port))) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

interface Running {
  proc: CliProcess;
  url: string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `ledgermind chain --port PORT` and waits until it listens. */
async function startChain(port: number): Promise<Running> {
  const proc = spawnCli(["chain", "--port", String(port)], { dataDir });
  let stdout = "";
  let stderr = "";
  proc.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      const m = stdout.match(/listening on (http:\/\/\S+)/);
      if (m) resolve(m[1] as string);
    });
    void exited.then((e) =>
      reject(new Error(`chain exited ${e.code ?? e.signal} before listening:\n${stdout}\n${stderr}`)),
    );
  });
  current = { proc, url, stderr: () => stderr, exited };
  return current;
}

/** Sends `value` wei to `to` and returns once the transaction is confirmed. */
async function pay(url: string, to: Address, value: bigint): Promise<void> {
  const chain = await connect({ rpc: url, env: {} });
  await sendAndWait(chain, () => chain.wallet(0).sendTransaction({ to, value }));
}

async function balanceOf(url: string, address: Address): Promise<bigint> {
  const chain = await connect({ rpc: url, env: {} });
  return chain.publicClient.getBalance({ address });
}

async function gone(p: { pid: number; start?: string }, ms = 20_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isRunning(p)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** One payee per confirmed transaction, each paid its index + 1 wei; every one must survive every stop. */
const payees: Address[] = [];
async function payNext(url: string): Promise<void> {
  const to = `0x${(0xc0ffee00 + payees.length).toString(16).padStart(40, "0")}` as Address;
  await pay(url, to, BigInt(payees.length + 1));
  payees.push(to);
}
async function assertNoneLost(url: string): Promise<void> {
  for (const [i, to] of payees.entries()) {
    assert.equal(await balanceOf(url, to), BigInt(i + 1), `confirmed transaction ${i + 1} was lost`);
  }
}

describe("ledgermind chain: one process per folder, no orphan, no lost transaction", {
  concurrency: false,
}, () => {
  let port: number;
  let running: Running;

  it("`--rpc URL chain` is a usage error, not a chain that ignores --rpc", async () => {
    const r = await cli(["--rpc", "http://127.0.0.1:1", "chain"], { dataDir });
    assertOneLineError(
      r,
      /`chain` works on the chain in --data-dir, not on --rpc http:\/\/127\.0\.0\.1:1/,
      2,
    );
  });

  it("a second chain on the same folder is refused (who holds it) while the first keeps running", async () => {
    port = await freePort();
    running = await startChain(port);
    await payNext(running.url);
    const other = await freePort();
    const second = await cli(["chain", "--port", String(other)], { dataDir });
    const line = assertOneLineError(second, /served by `ledgermind chain`/, 1);
    assert.ok(line.includes(`process ${running.proc.pid}, ${running.url}`), line);
    assert.equal(await portIsFree(other), true, "the refused chain started no anvil");
    // Nor may an embedded-chain command write the folder meanwhile.
    assertOneLineError(await cli(["deploy"], { dataDir }), /use it with --rpc http:/, 1);
    await payNext(running.url);
    await assertNoneLost(running.url);
  });

  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"] as const) {
    it(`${signal} to \`ledgermind chain\` leaves no anvil on the port, and the next start keeps every transaction`, async () => {
      const anvil = holder().children?.find((c) => c.name === "anvil");
      assert.ok(anvil?.start, JSON.stringify(holder()));
      running.proc.kill(signal);
      const exit = await running.exited;
      if (signal !== "SIGKILL") assert.deepEqual(exit, { code: 0, signal: null }, running.stderr());
      assert.equal(await gone(anvil), true, `anvil ${anvil.pid} still runs after ${signal}`);
      assert.equal(await portFreed(port), true, `port ${port} still held 5 s after ${signal}`);
      running = await startChain(port);
      await assertNoneLost(running.url);
      await payNext(running.url);
      assert.equal(running.stderr(), "");
    });
  }

  it("kill -9 of the chain and of its watchdog: the next start stops the anvil left behind and keeps its state", async () => {
    const children = holder().children ?? [];
    const watchdog = children.find((c) => c.name === "watchdog");
    const anvil = children.find((c) => c.name === "anvil");
    assert.ok(watchdog && anvil);
    // Frozen first, so that it cannot stop anvil itself when its watchdog dies.
    running.proc.kill("SIGSTOP");
    process.kill(watchdog.pid, "SIGKILL");
    assert.equal(await gone(watchdog), true);
    running.proc.kill("SIGKILL");
    await running.exited;
    await sleep(200);
    assert.equal(isRunning(anvil), true, "anvil is left behind, holding the port");
    running = await startChain(port);
    assert.match(running.stderr(), new RegExp(`^ledgermind: stopped anvil \\(process ${anvil.pid}\\)`));
    assert.equal(isRunning(anvil), false);
    await assertNoneLost(running.url);
    running.proc.kill("SIGINT");
    assert.deepEqual(
      await running.exited,
      { code: 0, signal: null },
      show({ code: null, signal: null, stdout: "", stderr: running.stderr() }),
    );
  });
});

describe("ledgermind chain repair: a damaged journal is never an empty chain", () => {
  const dir = mkdtempSync(join(tmpdir(), "ledgermind-chain-repair-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const journal = join(dir, "chain", "journal.ndjson");

  it("a command refuses a corrupt middle line naming `chain repair`, which keeps every entry before it", async () => {
    const chain = await connect({ dataDir: dir });
    try {
      for (let i = 0; i < 5; i++) await chain.publicClient.request({ method: "evm_mine" } as never);
    } finally {
      await chain.close();
    }
    const lines = readFileSync(journal, "utf8").split("\n");
    lines[3] = `${lines[3]?.slice(0, 20)}#garbage`;
    const damaged = lines.join("\n");
    writeFileSync(journal, damaged);

    const refused = await cli(["advance-time", "60"], { dataDir: dir });
    assertOneLineError(
      refused,
      /damaged at line 4 of 6 .*run `ledgermind chain repair` to keep the 2 entries/,
      1,
    );
    assert.equal(readFileSync(journal, "utf8"), damaged, "a refused command changes nothing");

    const repaired = await cli(["chain", "repair"], { dataDir: dir });
    const out = assertOk(repaired);
    const m = out.match(
      /^repaired \S+: kept its 2 entries before line 4 \(.*\), dropped 3 lines; the damaged file is kept at (\S+)\n$/,
    );
    assert.ok(m, out);
    assert.equal(readFileSync(m[1] as string, "utf8"), damaged);

    const after = await cli(["--json", "advance-time", "60"], { dataDir: dir });
    assertOk(after);
    const reopened = await connect({ dataDir: dir });
    try {
      // genesis, the 2 blocks kept, and the one advance-time mined
      assert.equal(await reopened.publicClient.getBlockNumber({ cacheTime: 0 }), 3n);
    } finally {
      await reopened.close();
    }
  });

  it("a journal cut mid-entry is recovered by the next command, which says so in one line", async () => {
    const text = readFileSync(journal, "utf8");
    writeFileSync(journal, text.slice(0, text.length - 25));
    const r = await cli(["advance-time", "60"], { dataDir: dir });
    assert.equal(r.code, 0, show(r));
    assert.match(
      r.stderr,
      /^ledgermind: the chain journal \S+ was cut by a crash at line 4 \(not JSON: cut or overwritten\): recovered its 2 entries before it; the damaged file is kept at \S+journal\.damaged-\S+\.ndjson\n$/,
    );
  });
});
