/**
 * How transactions go out on development chains (chain ids 31337 and 1337: the embedded EVM, `ledgermind
 * chain`). The embedded EVM runs every call under Hardhat's tracer (measured here: about 40 Mgas/s on
 * arithmetic against anvil's 360), and eth_estimateGas runs a call at least twice before the transaction
 * runs it again. On these chains a write is instead simulated once with eth_call, which names a refusal
 * as precisely as an estimate does, and sent with the block's gas limit (only the gas used is charged, and
 * no estimate can fall short when racing transactions change the state). A sender whose key the node holds
 * (its eth_accounts lists it: the development accounts) is signed for by the node, natively, instead of
 * in JavaScript. On any other chain nothing here applies: writes are estimated and signed locally.
 */
import {
  type Account,
  type Address,
  type Chain,
  createWalletClient,
  custom,
  type Transport,
  type WalletClient,
} from "viem";
import { isDevChain } from "./accounts.ts";
import type { LedgerChain } from "./connect.ts";
import { oncePerChain } from "./once-per-chain.ts";

export interface DevSending {
  /** The gas limit every write is sent with: the latest block's. */
  gas: bigint;
  /** A wallet client for which the node signs, when it holds the key of `address`. */
  nodeWallet(address: Address): WalletClient<Transport, Chain, Account> | undefined;
}

const plans = oncePerChain<DevSending | undefined>();

/** The development chain's way of sending (read once per connection); undefined on any other chain. */
export function devSending(chain: LedgerChain): Promise<DevSending | undefined> {
  return plans(chain, "plan", async () => (isDevChain(chain.chainId) ? planFor(chain) : undefined));
}

async function planFor(chain: LedgerChain): Promise<DevSending> {
  // Requests go through the chain's own client, so they share its transport (and the embedded chain's journal).
  const transport = custom(
    { request: (args) => chain.publicClient.request(args as never) },
    { retryCount: 0 },
  );
  const [block, held] = await Promise.all([
    chain.publicClient.getBlock({ blockTag: "latest" }),
    createWalletClient({ chain: chain.chain, transport }).getAddresses(),
  ]);
  const nodeHeld = new Set(held.map((a) => a.toLowerCase()));
  const wallets = new Map<string, WalletClient<Transport, Chain, Account>>();
  return {
    gas: block.gasLimit,
    nodeWallet(address) {
      const key = address.toLowerCase();
      if (!nodeHeld.has(key)) return undefined;
      let wallet = wallets.get(key);
      if (!wallet) {
        wallet = createWalletClient({ account: address, chain: chain.chain, transport });
        wallets.set(key, wallet);
      }
      return wallet;
    },
  };
}
