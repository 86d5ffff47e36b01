import type { EIP1193Provider } from "viem";
import { DEV_ACCOUNT_COUNT, DEV_MNEMONIC } from "./accounts.ts";
import { PROJECT_ROOT } from "./compile.ts";
import {
  BLOCK_PRODUCING_METHODS,
  Journal,
  type JournalEntry,
  type JournalHeader,
  STATE_SETTING_METHODS,
} from "./journal.ts";
import { acquireChainLock, type LockWait } from "./lock.ts";

export const EMBEDDED_CHAIN_ID = 31337;
export const HARDFORK = "prague";

type RequestFn = (args: { method: string; params?: unknown }) => Promise<unknown>;

export interface EmbeddedChain {
  provider: EIP1193Provider;
  /** Replayed journal entries: how much history this process rebuilt on start. */
  replayed: number;
  close(): Promise<void>;
}

/** A journal header for a chain starting now. */
export function freshHeader(): JournalHeader {
  return {
    format: "ledgermind.chain-journal/1",
    chainId: EMBEDDED_CHAIN_ID,
    hardfork: HARDFORK,
    genesisTimestamp: Math.floor(Date.now() / 1000),
  };
}

/** Where a library says what it did on the user's behalf (a recovered journal): one line on stderr. */
export const stderrNotice = (message: string): void => {
  process.stderr.write(`ledgermind: ${message}\n`);
};

/**
 * Starts Hardhat's EVM engine (EDR) in this process. With `dir`, the chain persists there as a journal
 * that every later process replays, so separate commands see one chain; without, it lives in memory.
 * `onNotice` hears of what was done to open it: a torn journal recovered, a dead holder's anvil stopped.
 * With `lockWait`, a folder that another command holds is waited for rather than refused.
 */
export async function openEmbeddedChain(
  opts: { dir?: string; onNotice?: (message: string) => void; lockWait?: LockWait } = {},
): Promise<EmbeddedChain> {
  const onNotice = opts.onNotice ?? stderrNotice;
  const lock = opts.dir ? await acquireChainLock(opts.dir, "embedded", onNotice, opts.lockWait) : undefined;
  let journal: Journal | undefined;
  const release = () => {
    journal?.close();
    lock?.release();
  };
  try {
    const fresh = freshHeader();
    journal = opts.dir ? Journal.open(opts.dir, fresh) : undefined;
    const recovery = journal?.recovery;
    if (recovery) {
      onNotice(
        `the chain journal ${journal?.file} was cut by a crash at line ${recovery.line} (${recovery.reason}): recovered its ${recovery.kept} entries before it; the damaged file is kept at ${recovery.backup}`,
      );
    }
    const header = journal?.header ?? fresh;
    const request = await startEdr(header);
    if (journal) await replay(request, journal.entries);
    const provider = journal ? recording(request, journal) : request;
    return {
      provider: { request: provider, on: () => {}, removeListener: () => {} } as unknown as EIP1193Provider,
      replayed: journal?.entries.length ?? 0,
      close: async () => release(),
    };
  } catch (err) {
    release();
    throw err;
  }
}

async function startEdr(header: JournalHeader): Promise<RequestFn> {
  // Loaded on demand: commands on an RPC chain never pay for Hardhat's start-up.
  const { createHardhatRuntimeEnvironment } = await import("hardhat/hre");
  const hre = await createHardhatRuntimeEnvironment(
    {
      networks: {
        embedded: {
          type: "edr-simulated",
          chainType: "l1",
          chainId: header.chainId,
          hardfork: header.hardfork,
          initialDate: new Date(header.genesisTimestamp * 1000),
          accounts: { mnemonic: DEV_MNEMONIC, count: DEV_ACCOUNT_COUNT },
          mining: { auto: true, interval: 0 },
        },
      },
    },
    {},
    PROJECT_ROOT,
  );
  const connection = await hre.network.connect({ network: "embedded" });
  const provider = connection.provider;
  return (args) => provider.request(args as { method: string; params?: unknown[] });
}

async function latestBlock(request: RequestFn): Promise<{ number: bigint; timestamp: number }> {
  const block = (await request({ method: "eth_getBlockByNumber", params: ["latest", false] })) as {
    number: string;
    timestamp: string;
  };
  return { number: BigInt(block.number), timestamp: Number(BigInt(block.timestamp)) };
}

async function replay(request: RequestFn, entries: JournalEntry[]): Promise<void> {
  for (const entry of entries) {
    if (BLOCK_PRODUCING_METHODS.has(entry.method)) {
      await request({ method: "evm_setNextBlockTimestamp", params: [`0x${entry.timestamp.toString(16)}`] });
    }
    try {
      await request({ method: entry.method, params: entry.params });
    } catch {
      // A call that failed after mining (a reverted transaction) fails the same way again: its block is
      // what mattered, and it was mined again.
    }
  }
}

/** Wraps the provider so that every state change is on disk in the journal before anyone sees it. */
function recording(request: RequestFn, journal: Journal): RequestFn {
  let queue: Promise<unknown> = Promise.resolve();
  return (args) => {
    const changesState = BLOCK_PRODUCING_METHODS.has(args.method) || STATE_SETTING_METHODS.has(args.method);
    // A read waits for the writes before it: a caller must never see a block that is not yet on disk,
    // or it could report confirmed a transaction that a crash then loses.
    if (!changesState) return queue.then(() => request(args));
    // Serialize state changes, so that the journal's order is the chain's order.
    const run = async () => {
      const before = await latestBlock(request);
      let result: unknown;
      let error: unknown;
      try {
        result = await request(args);
      } catch (err) {
        error = err;
      }
      const after = await latestBlock(request);
      const mined = after.number > before.number;
      if (mined || (error === undefined && STATE_SETTING_METHODS.has(args.method))) {
        const firstMined = mined ? await blockTimestamp(request, before.number + 1n) : after.timestamp;
        journal.append({
          method: args.method,
          params: (args.params as unknown[]) ?? [],
          timestamp: firstMined,
        });
      }
      if (error !== undefined) throw error;
      return result;
    };
    const next = queue.then(run, run);
    queue = next.catch(() => {});
    return next;
  };
}

async function blockTimestamp(request: RequestFn, n: bigint): Promise<number> {
  const block = (await request({
    method: "eth_getBlockByNumber",
    params: [`0x${n.toString(16)}`, false],
  })) as {
    timestamp: string;
  };
  return Number(BigInt(block.timestamp));
}
