import type { EIP1193Provider } from "viem";
import { DEV_ACCOUNT_COUNT, DEV_MNEMONIC } from "./accounts.ts";
import { PROJECT_ROOT } from "./compile.ts";
import {
  BLOCK_PRODUCING_METHODS,
  ChainLockedError,
  Journal,
  type JournalEntry,
  type JournalHeader,
  lockDir,
  STATE_SETTING_METHODS,
} from "./journal.ts";

export const EMBEDDED_CHAIN_ID = 31337;
export const HARDFORK = "prague";

type RequestFn = (args: { method: string; params?: unknown }) => Promise<unknown>;

export interface EmbeddedChain {
  provider: EIP1193Provider;
  /** Replayed journal entries: how much history this process rebuilt on start. */
  replayed: number;
  close(): Promise<void>;
}

/** How long to wait for a chain folder that another process holds, instead of failing at once. */
export interface LockWait {
  timeoutMs: number;
  /** Called once, when the first attempt finds the folder held by process `pid`. */
  onWait?: (pid: number) => void;
  /** How often to try again (default: 100 ms). */
  pollMs?: number;
}

/**
 * Takes `dir`'s lock (`lockDir`); with `wait`, retries while a live process holds it, up to
 * `wait.timeoutMs`, then throws the last `ChainLockedError`.
 */
export async function acquireChainLock(dir: string, wait?: LockWait): Promise<() => void> {
  const deadline = Date.now() + (wait?.timeoutMs ?? 0);
  let told = false;
  for (;;) {
    try {
      return lockDir(dir);
    } catch (err) {
      if (!(err instanceof ChainLockedError) || !wait || Date.now() >= deadline) throw err;
      if (!told) wait.onWait?.(err.pid);
      told = true;
      await new Promise((resolve) => setTimeout(resolve, wait.pollMs ?? 100));
    }
  }
}

/**
 * Starts Hardhat's EVM engine (EDR) in this process. With `dir`, the chain persists there as a journal
 * that every later process replays, so separate commands see one chain; without, it lives in memory.
 * With `lockWait`, a folder held by another process is waited for rather than refused.
 */
export async function openEmbeddedChain(
  opts: { dir?: string; lockWait?: LockWait } = {},
): Promise<EmbeddedChain> {
  const release = opts.dir ? await acquireChainLock(opts.dir, opts.lockWait) : () => {};
  try {
    const fresh: JournalHeader = {
      format: "ledgermind.chain-journal/1",
      chainId: EMBEDDED_CHAIN_ID,
      hardfork: HARDFORK,
      genesisTimestamp: Math.floor(Date.now() / 1000),
    };
    const journal = opts.dir ? Journal.open(opts.dir, fresh) : undefined;
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

/** Wraps the provider so that every state change is appended to the journal as soon as it happened. */
function recording(request: RequestFn, journal: Journal): RequestFn {
  let queue: Promise<unknown> = Promise.resolve();
  return (args) => {
    const changesState = BLOCK_PRODUCING_METHODS.has(args.method) || STATE_SETTING_METHODS.has(args.method);
    if (!changesState) return request(args);
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
