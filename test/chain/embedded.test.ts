/**
 * Persistence of the embedded chain (src/chain/embedded.ts + journal.ts), through `connect({ dataDir })`:
 * the journal is replayed exactly (balances, nonces, code, storage, block hashes and timestamps), one
 * process holds a data dir at a time, a torn last line is a crash to survive (and to say so) and a corrupt
 * middle line is damage to report, naming `ledgermind chain repair`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, type Hash, type Hex, parseEther } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { CONTRACT_NAMES, deployAll, type Manifest } from "../../src/chain/deploy.ts";
import { MindToken, ModelRegistry } from "../../src/chain/generated/contracts.ts";
import { ChainLockedError, JournalDamagedError, JournalError } from "../../src/chain/journal.ts";
import { parseLockFile } from "../../src/chain/lock.ts";
import { sendAndWait } from "../../src/chain/tx.ts";

const root = mkdtempSync(join(tmpdir(), "ledgermind-embedded-"));
after(() => rmSync(root, { recursive: true, force: true }));

let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);
const journalOf = (dataDir: string) => join(dataDir, "chain", "journal.ndjson");
const lockOf = (dataDir: string) => join(dataDir, "chain", "lock");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const lockPid = (dataDir: string) => parseLockFile(readFileSync(lockOf(dataDir), "utf8"))?.pid;

function rpc<T>(chain: LedgerChain, method: string, params: unknown[] = []): Promise<T> {
  return chain.publicClient.request({ method, params } as never) as Promise<T>;
}

/** Reads through raw RPC (no client-side caching), so every read sees the chain as it is now. */
interface Snapshot {
  blockNumber: Hex;
  blocks: { number: Hex; hash: Hash; timestamp: Hex; stateRoot: Hash }[];
  accounts: Record<string, { balance: Hex; nonce: Hex; code: Hex }>;
  storage: Record<string, Hex>;
}

async function snapshot(chain: LedgerChain, watch: Address[]): Promise<Snapshot> {
  const blockNumber = await rpc<Hex>(chain, "eth_blockNumber");
  const blocks: Snapshot["blocks"] = [];
  for (let n = 0n; n <= BigInt(blockNumber); n++) {
    const b = await rpc<{ number: Hex; hash: Hash; timestamp: Hex; stateRoot: Hash }>(
      chain,
      "eth_getBlockByNumber",
      [`0x${n.toString(16)}`, false],
    );
    blocks.push({ number: b.number, hash: b.hash, timestamp: b.timestamp, stateRoot: b.stateRoot });
  }
  const accounts: Snapshot["accounts"] = {};
  const storage: Snapshot["storage"] = {};
  for (const address of watch) {
    accounts[address] = {
      balance: await rpc<Hex>(chain, "eth_getBalance", [address, "latest"]),
      nonce: await rpc<Hex>(chain, "eth_getTransactionCount", [address, "latest"]),
      code: await rpc<Hex>(chain, "eth_getCode", [address, "latest"]),
    };
    for (const slot of [0, 1, 2, 3]) {
      storage[`${address}:${slot}`] = await rpc<Hex>(chain, "eth_getStorageAt", [
        address,
        `0x${slot.toString(16)}`,
        "latest",
      ]);
    }
  }
  return { blockNumber, blocks, accounts, storage };
}

describe("embedded chain journal", { concurrency: false }, () => {
  const dataDir = freshDir();
  let manifest: Manifest;
  let watch: Address[];
  let saved: Snapshot;
  let lines: number;

  before(async () => {
    const chain = await connect({ dataDir });
    try {
      manifest = await deployAll(chain);
      const [a0, a1, a2] = chain.accounts.map((a) => a.address) as [Address, Address, Address];
      const token = manifest.contracts.MindToken.address;
      const registry = manifest.contracts.ModelRegistry.address;
      watch = [a0, a1, a2, token, registry, "0x000000000000000000000000000000000000bEEF"];

      await sendAndWait(chain, () => chain.wallet(0).sendTransaction({ to: a1, value: parseEther("1.5") }));
      // Token storage changes, from a second account too.
      await sendAndWait(chain, () =>
        chain.wallet(0).writeContract({
          address: token,
          abi: MindToken.abi,
          functionName: "transfer",
          args: [a2, 12345n],
        }),
      );
      await sendAndWait(chain, () =>
        chain.wallet(1).writeContract({
          address: registry,
          abi: ModelRegistry.abi,
          functionName: "registerModel",
          args: ["journal-test"],
        }),
      );
      // Time shifts are not journaled: the blocks' recorded timestamps must carry them.
      await rpc(chain, "evm_increaseTime", ["0xe10"]);
      await sendAndWait(chain, () => chain.wallet(2).sendTransaction({ to: a0, value: 7n }));
      await rpc(chain, "evm_setNextBlockTimestamp", [`0x${(4_000_000_000).toString(16)}`]);
      await rpc(chain, "evm_mine");
      // Several blocks from one call, 100 s apart.
      await rpc(chain, "hardhat_mine", ["0x3", "0x64"]);
      await rpc(chain, "hardhat_setBalance", ["0x000000000000000000000000000000000000bEEF", "0x2a"]);
      // A transaction that reverts is still mined (and uses a nonce): its block must be replayed too.
      await assert.rejects(
        chain.wallet(0).sendTransaction({ to: registry, data: "0xdeadbeef", gas: 100_000n }),
      );
      saved = await snapshot(chain, watch);
    } finally {
      await chain.close();
    }
    lines = readFileSync(journalOf(dataDir), "utf8").trimEnd().split("\n").length;
    // Replay must not take its timestamps from the clock: make sure the clock has moved on.
    await sleep(1100);
  });

  it("recorded every state change, and only those", () => {
    const deployments = CONTRACT_NAMES.length;
    // header + deployments + 3 transactions + increaseTime'd tx + evm_mine + hardhat_mine + setBalance + revert
    assert.equal(lines, 1 + deployments + 8);
    // hardhat_mine mined 3 blocks, setBalance none
    assert.equal(BigInt(saved.blockNumber), BigInt(deployments + 9));
    const nonce = saved.accounts[watch[0] as string]?.nonce;
    assert.equal(
      nonce,
      `0x${(deployments + 3).toString(16)}`,
      "deployments, a transfer, a token transfer and the reverted call",
    );
    assert.equal(saved.accounts["0x000000000000000000000000000000000000bEEF"]?.balance, "0x2a");
    assert.equal(existsSync(lockOf(dataDir)), false, "close() releases the lock");
  });

  it("reopening in the same process replays the journal exactly, block timestamps included", async () => {
    const chain = await connect({ dataDir });
    try {
      const again = await snapshot(chain, watch);
      assert.deepEqual(again, saved);
      const times = saved.blocks.map((b) => Number(BigInt(b.timestamp)));
      // Block d+5 is the evm_mine after d deployments and 4 transactions; hardhat_mine's three follow.
      const d = CONTRACT_NAMES.length;
      assert.equal(times[d + 5], 4_000_000_000);
      assert.deepEqual(times.slice(d + 6, d + 9), [4_000_000_001, 4_000_000_101, 4_000_000_201]);
      // The chain goes on from where it was.
      await sendAndWait(chain, () => chain.wallet(0).sendTransaction({ to: watch[1] as Address, value: 1n }));
      const block = await rpc<{ timestamp: Hex }>(chain, "eth_getBlockByNumber", ["latest", false]);
      assert.ok(BigInt(block.timestamp) > BigInt(saved.blocks.at(-1)?.timestamp ?? "0x0"));
      saved = await snapshot(chain, watch);
    } finally {
      await chain.close();
    }
  });

  it("refuses a second concurrent open of the same data dir with ChainLockedError", async () => {
    const chain = await connect({ dataDir });
    try {
      await assert.rejects(connect({ dataDir }), (err: unknown) => {
        assert.ok(err instanceof ChainLockedError);
        assert.match(err.message, new RegExp(`process ${process.pid}\\b`));
        return true;
      });
      // The refused open left the holder's lock (and chain) alone.
      assert.equal(lockPid(dataDir), process.pid);
      assert.equal(await rpc<Hex>(chain, "eth_blockNumber"), saved.blockNumber);
    } finally {
      await chain.close();
    }
    assert.equal(existsSync(lockOf(dataDir)), false);
  });

  it("refuses a data dir whose lock names another live process", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, "chain"), { recursive: true });
    writeFileSync(lockOf(dir), "1"); // pid 1 is always alive
    await assert.rejects(connect({ dataDir: dir }), (err: unknown) => {
      assert.ok(err instanceof ChainLockedError);
      assert.match(err.message, /process 1\b/);
      return true;
    });
    assert.equal(readFileSync(lockOf(dir), "utf8"), "1", "another process's lock is never removed");
  });

  it("takes over a lock file left by a process that died", async () => {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const pid = child.pid;
    await new Promise((resolve) => child.once("exit", resolve));
    assert.ok(pid);
    writeFileSync(lockOf(dataDir), String(pid));
    const chain = await connect({ dataDir });
    try {
      assert.equal(lockPid(dataDir), process.pid);
      assert.equal(await rpc<Hex>(chain, "eth_blockNumber"), saved.blockNumber);
    } finally {
      await chain.close();
    }
    assert.equal(existsSync(lockOf(dataDir)), false);
  });

  it("close() removes the process exit listener that lockDir added", async () => {
    const before = process.listenerCount("exit");
    const chain = await connect({ dataDir });
    await chain.close();
    assert.equal(process.listenerCount("exit"), before);
  });

  it("recovers a journal cut mid-entry by a crash, keeps the damaged file aside and says so", async () => {
    const dir = freshDir();
    cpSync(dataDir, dir, { recursive: true });
    const sound = readFileSync(journalOf(dir), "utf8");
    appendFileSync(journalOf(dir), '{"method":"eth_sendRawTransaction","params":["0x02f8');
    const damaged = readFileSync(journalOf(dir), "utf8");
    const notices: string[] = [];
    const chain = await connect({ dataDir: dir, onNotice: (m) => notices.push(m) });
    try {
      assert.deepEqual(await snapshot(chain, watch), saved);
    } finally {
      await chain.close();
    }
    assert.equal(notices.length, 1, notices.join("\n"));
    const m = notices[0]?.match(/recovered its (\d+) entries .* kept at (\S+journal\.damaged-\S+\.ndjson)$/);
    assert.ok(m, notices[0]);
    assert.equal(Number(m[1]), sound.trimEnd().split("\n").length - 1, "every entry before the torn one");
    assert.equal(readFileSync(m[2] as string, "utf8"), damaged, "the damaged file, as it was found");
    assert.equal(readFileSync(journalOf(dir), "utf8"), sound);
  });

  it("keeps transactions sent after a torn last line was recovered", async () => {
    const dir = freshDir();
    cpSync(dataDir, dir, { recursive: true });
    appendFileSync(journalOf(dir), '{"method":"eth_sendRawTransaction","params":["0x02f8');
    const a1 = watch[1] as Address;
    let chain = await connect({ dataDir: dir, onNotice: () => {} });
    try {
      await sendAndWait(chain, () => chain.wallet(0).sendTransaction({ to: a1, value: 1n }));
    } finally {
      await chain.close();
    }
    const expected = BigInt(saved.accounts[a1]?.balance ?? "0x0") + 1n;
    const notices: string[] = [];
    chain = await connect({ dataDir: dir, onNotice: (m) => notices.push(m) });
    try {
      assert.equal(BigInt(await rpc<Hex>(chain, "eth_getBalance", [a1, "latest"])), expected);
      assert.equal(BigInt(await rpc<Hex>(chain, "eth_blockNumber")), BigInt(saved.blockNumber) + 1n);
    } finally {
      await chain.close();
    }
    assert.deepEqual(notices, [], "a recovered journal is sound afterwards");
  });

  it("refuses a corrupt line in the middle naming `ledgermind chain repair`, and releases the lock", async () => {
    const dir = freshDir();
    cpSync(dataDir, dir, { recursive: true });
    const text = readFileSync(journalOf(dir), "utf8").split("\n");
    text[3] = `${text[3]?.slice(0, 40)}#garbage`;
    writeFileSync(journalOf(dir), text.join("\n"));
    await assert.rejects(connect({ dataDir: dir }), (err: unknown) => {
      assert.ok(err instanceof JournalDamagedError);
      assert.match(err.message, /damaged at line 4 of \d+ .*`ledgermind chain repair` to keep the 2 entries/);
      return true;
    });
    assert.equal(existsSync(lockOf(dir)), false);
  });

  it("refuses, never starts empty, a journal whose first line is not a journal header", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, "chain"), { recursive: true });
    writeFileSync(journalOf(dir), '{"format":"something-else"}\n');
    await assert.rejects(connect({ dataDir: dir }), (err: unknown) => {
      assert.ok(err instanceof JournalError);
      assert.match(err.message, /`ledgermind chain repair`/);
      return true;
    });
    assert.equal(readFileSync(journalOf(dir), "utf8"), '{"format":"something-else"}\n');
  });

  it("a concurrent read sees a mined transaction only once its journal entry is on disk", async () => {
    const dir = freshDir();
    const chain = await connect({ dataDir: dir });
    try {
      const journaled = () => readFileSync(journalOf(dir), "utf8").trimEnd().split("\n").length - 1;
      let seenUnjournaled = 0;
      let sent = false;
      const reader = (async () => {
        for (;;) {
          const mined = BigInt(await rpc<Hex>(chain, "eth_blockNumber")) > 0n;
          if (mined && journaled() === 0) seenUnjournaled++;
          if (mined || sent) return;
        }
      })();
      await chain.wallet(0).sendTransaction({ to: "0x000000000000000000000000000000000000dEaD", value: 1n });
      sent = true;
      await reader;
      assert.equal(seenUnjournaled, 0, "a reader saw the block before it was journaled");
    } finally {
      await chain.close();
    }
  });

  it("replays exactly across evm_snapshot / evm_revert", async () => {
    const dir = freshDir();
    let chain = await connect({ dataDir: dir });
    const to = "0x000000000000000000000000000000000000cafE";
    let before: Snapshot;
    try {
      await sendAndWait(chain, () => chain.wallet(0).sendTransaction({ to, value: 1n }));
      const id = await rpc<Hex>(chain, "evm_snapshot");
      await sendAndWait(chain, () => chain.wallet(0).sendTransaction({ to, value: 2n }));
      assert.equal(await rpc(chain, "evm_revert", [id]), true);
      await sleep(1100);
      await sendAndWait(chain, () => chain.wallet(0).sendTransaction({ to, value: 4n }));
      before = await snapshot(chain, [to, chain.accounts[0]?.address as Address]);
    } finally {
      await chain.close();
    }
    chain = await connect({ dataDir: dir });
    try {
      assert.deepEqual(await snapshot(chain, [to, chain.accounts[0]?.address as Address]), before);
    } finally {
      await chain.close();
    }
  });
});
