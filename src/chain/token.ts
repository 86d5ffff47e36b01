import type { Address } from "viem";
import type { LedgerChain } from "./connect.ts";
import { requireDeployment } from "./deploy.ts";
import { MindToken } from "./generated/contracts.ts";
import { sendAndWait } from "./tx.ts";

async function tokenAddress(chain: LedgerChain): Promise<Address> {
  return (await requireDeployment(chain)).contracts.MindToken.address;
}

export async function mindBalance(chain: LedgerChain, account: Address): Promise<bigint> {
  return chain.publicClient.readContract({
    address: await tokenAddress(chain),
    abi: MindToken.abi,
    functionName: "balanceOf",
    args: [account],
  });
}

/** Sends MIND from configured account `from` (0: the deployer, who holds the supply). */
export async function transferMind(chain: LedgerChain, to: Address, amount: bigint, from = 0): Promise<void> {
  await sendAndWait(chain, async () =>
    chain.wallet(from).writeContract({
      address: await tokenAddress(chain),
      abi: MindToken.abi,
      functionName: "transfer",
      args: [to, amount],
    }),
  );
}

/** Lets `spender` pull `amount` MIND from configured account `owner`, unless it may already. */
export async function approveMind(
  chain: LedgerChain,
  spender: Address,
  amount: bigint,
  owner = 0,
): Promise<void> {
  if (amount === 0n) return;
  const allowance = await chain.publicClient.readContract({
    address: await tokenAddress(chain),
    abi: MindToken.abi,
    functionName: "allowance",
    args: [chain.wallet(owner).account.address, spender],
  });
  if (allowance >= amount) return;
  await sendAndWait(chain, async () =>
    chain.wallet(owner).writeContract({
      address: await tokenAddress(chain),
      abi: MindToken.abi,
      functionName: "approve",
      args: [spender, amount],
    }),
  );
}
