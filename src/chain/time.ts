import { isDevChain } from "./accounts.ts";
import type { LedgerChain } from "./connect.ts";

export class NotADevChainError extends Error {
  override name = "NotADevChainError";
  constructor(chainId: number) {
    super(`chain ${chainId} is not a development chain: its time and blocks move on their own`);
  }
}

/**
 * Moves a development chain's clock forward and mines a block at the new time. Development chains only
 * mine when transactions come, so seasons and deadlines would otherwise never end.
 */
export async function advanceTime(chain: LedgerChain, seconds: number): Promise<number> {
  if (!isDevChain(chain.chainId)) throw new NotADevChainError(chain.chainId);
  const latest = await chain.publicClient.getBlock();
  const target = Number(latest.timestamp) + seconds;
  await chain.publicClient.request({
    method: "evm_setNextBlockTimestamp",
    params: [`0x${target.toString(16)}`],
  } as never);
  await chain.publicClient.request({ method: "evm_mine", params: [] } as never);
  return target;
}

/**
 * Mines `blocks` empty blocks (at least one) on a development chain, whose windows counted in blocks would
 * otherwise close only as transactions come. EDR and anvil both answer `hardhat_mine`.
 */
export async function mineBlocks(chain: LedgerChain, blocks: bigint): Promise<void> {
  if (!isDevChain(chain.chainId)) throw new NotADevChainError(chain.chainId);
  const count = blocks > 0n ? blocks : 1n;
  await chain.publicClient.request({ method: "hardhat_mine", params: [`0x${count.toString(16)}`] } as never);
}

/** How often `nextHead` asks a development chain for its height, ms. */
export const DEV_HEAD_POLL_MS = 50;

/**
 * Resolves when the chain's head passes `head`, or after `maxMs`, whichever comes first (or at once when
 * `stopped()` turns true). On a development chain the height is asked every DEV_HEAD_POLL_MS: a block
 * there is a transaction someone just sent, and a loop that waits for it reacts in tens of ms instead of a
 * whole poll. Elsewhere (a public RPC, blocks seconds apart, requests rate-limited) it simply waits `maxMs`;
 * so it does when the chain does not answer.
 */
export async function nextHead(
  chain: LedgerChain,
  head: bigint,
  maxMs: number,
  stopped: () => boolean = () => false,
): Promise<void> {
  const deadline = Date.now() + maxMs;
  const every = isDevChain(chain.chainId) ? Math.min(DEV_HEAD_POLL_MS, maxMs) : maxMs;
  while (!stopped() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(every, Math.max(0, deadline - Date.now()))));
    if (every >= maxMs) continue;
    try {
      if ((await chain.publicClient.getBlockNumber({ cacheTime: 0 })) > head) return;
    } catch {
      // the chain did not answer: the caller's next step will say so, after the full wait
    }
  }
}
