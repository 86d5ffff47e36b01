import { join, resolve } from "node:path";
import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import { type LocalAccount, resolveAccounts } from "./accounts.ts";
import { EMBEDDED_CHAIN_ID, openEmbeddedChain } from "./embedded.ts";
import type { LockWait } from "./lock.ts";

export const DEFAULT_DATA_DIR = ".ledgermind";

/** The folder of a data dir's chain: the embedded chain's journal, and the lock `ledgermind chain` shares. */
export const chainDir = (dataDir: string): string => join(dataDir, "chain");

export interface ConnectOptions {
  /** Any EVM JSON-RPC endpoint; without it, the embedded EVM. */
  rpc?: string;
  /** Where the embedded chain, deployments and blobs live. */
  dataDir?: string;
  /** A fresh embedded chain in memory, for simulations and tests. */
  ephemeral?: boolean;
  /** Wait for an embedded chain that another process holds (default: fail at once). */
  lockWait?: LockWait;
  env?: NodeJS.ProcessEnv;
  /** Hears what opening the embedded chain did on the user's behalf (default: one line on stderr). */
  onNotice?: (message: string) => void;
}

export interface LedgerChain {
  kind: "embedded" | "rpc";
  chainId: number;
  chain: Chain;
  publicClient: PublicClient<Transport, Chain>;
  accounts: LocalAccount[];
  /** A wallet client that signs locally with account `index` (0: the deployer). */
  wallet(index?: number): WalletClient<Transport, Chain, Account>;
  dataDir: string;
  /** Identifies this chain's deployment manifest: the embedded chain's never mixes with an RPC's. */
  manifestKey: string;
  close(): Promise<void>;
}

export class ConnectionError extends Error {
  override name = "ConnectionError";
}

export class UnknownAccountError extends Error {
  override name = "UnknownAccountError";
}

/** Connects viem clients to the embedded EVM (default, persisted in `dataDir`) or to `rpc`. */
export async function connect(opts: ConnectOptions = {}): Promise<LedgerChain> {
  const dataDir = resolve(opts.dataDir ?? DEFAULT_DATA_DIR);
  let transport: Transport;
  let chainId: number;
  let close = async () => {};
  let kind: LedgerChain["kind"];
  if (opts.rpc) {
    kind = "rpc";
    if (!/^https?:\/\//.test(opts.rpc))
      throw new ConnectionError(`--rpc must be an http(s) URL, got "${opts.rpc}"`);
    transport = http(opts.rpc, { retryCount: 0, timeout: 30_000 });
    try {
      const probe = createPublicClient({ transport });
      chainId = await probe.getChainId();
    } catch {
      throw new ConnectionError(`no EVM JSON-RPC endpoint answers at ${opts.rpc}`);
    }
  } else {
    kind = "embedded";
    const embedded = await openEmbeddedChain(
      opts.ephemeral
        ? {}
        : {
            dir: chainDir(dataDir),
            onNotice: opts.onNotice,
            ...(opts.lockWait ? { lockWait: opts.lockWait } : {}),
          },
    );
    transport = custom(embedded.provider, { retryCount: 0 });
    chainId = EMBEDDED_CHAIN_ID;
    close = embedded.close;
  }
  const chain = defineChain({
    id: chainId,
    name: kind === "embedded" ? "Ledgermind embedded EVM" : `EVM ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [opts.rpc ?? "http://embedded.invalid"] } },
  });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 50 });
  const accounts = resolveAccounts(chainId, opts.env);
  const wallets = new Map<number, WalletClient<Transport, Chain, Account>>();
  return {
    kind,
    chainId,
    chain,
    publicClient,
    accounts,
    wallet(index = 0) {
      const account = accounts[index];
      if (!account)
        throw new UnknownAccountError(`account #${index} is not configured (${accounts.length} keys)`);
      let w = wallets.get(index);
      if (!w) {
        w = createWalletClient({ account, chain, transport });
        wallets.set(index, w);
      }
      return w;
    },
    dataDir,
    manifestKey: kind === "embedded" ? (opts.ephemeral ? "ephemeral" : "embedded") : String(chainId),
    close,
  };
}
