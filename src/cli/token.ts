import type { Command } from "commander";
import { type Address, formatEther, isAddress } from "viem";
import { mindBalance, transferMind } from "../chain/token.ts";
import { emit, globalOptions, parseAccount, parseMind, UsageError, withChain } from "./context.ts";

/** An address, or the index of a configured account ("3"). */
function parseTarget(text: string, accounts: readonly { address: Address }[]): Address {
  if (isAddress(text)) return text;
  const index = parseAccount(text);
  const account = accounts[index];
  if (!account) throw new UsageError(`no configured account ${index} (there are ${accounts.length})`);
  return account.address;
}

/** `token balance | transfer`: MIND for stakes, fees and rewards. */
export function registerTokenCommands(program: Command): void {
  const token = program.command("token").description("MIND, the token of stakes, fees and rewards");

  token
    .command("balance")
    .description("MIND held by an address or a configured account (default: account 0)")
    .argument("[who]", "an address or an account index", "0")
    .action(async (who: string, _o: unknown, cmd: Command) => {
      const opts = globalOptions(cmd);
      await withChain(opts, async (chain) => {
        const account = parseTarget(who, chain.accounts);
        const balance = await mindBalance(chain, account);
        emit(opts, { account, balance }, () => [`${account} holds ${formatEther(balance)} MIND`]);
      });
    });

  token
    .command("transfer")
    .description("send MIND to an address or a configured account")
    .argument("<to>", "an address or an account index")
    .argument("<amount>", "MIND, e.g. 250 or 0.5")
    .option("--account <k>", "the sender's account index (default 0, the deployer, who holds the supply)")
    .action(async (to: string, amountText: string, o: { account?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const amount = parseMind(amountText, "amount");
      await withChain(opts, async (chain) => {
        const recipient = parseTarget(to, chain.accounts);
        await transferMind(chain, recipient, amount, parseAccount(o.account));
        const balance = await mindBalance(chain, recipient);
        emit(opts, { to: recipient, amount, balance }, () => [
          `sent ${formatEther(amount)} MIND to ${recipient}, who now holds ${formatEther(balance)}`,
        ]);
      });
    });
}
