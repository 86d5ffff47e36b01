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
