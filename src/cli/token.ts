import type { Command } from "commander";
import { type Address, formatEther } from "viem";
import { mindBalance, transferMind } from "../chain/token.ts";
import {
  emit,
  globalOptions,
  parseAccount,
  parseAddress,
  parseMind,
  UsageError,
  withChain,
} from "./context.ts";

/** An address, or the index of a configured account ("3"). */
export function parseTarget(text: string, accounts: readonly { address: Address }[]): Address {
  if (/^0x/i.test(text)) return parseAddress(text, "the account");
  if (!/^\d+$/.test(text)) {
    throw new UsageError(
      `expected an address (0x...) or a configured account's index (0, 1, ...), got "${text}"`,
    );
  }
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
    .description("MIND held by an address or a configured account")
    .argument("[WHO]", "an address or an account index", "0")
    .action(async (who: string, _o: unknown, cmd: Command) => {
      const opts = globalOptions(cmd);
      await withChain(
        opts,
        async (chain) => {
          const account = parseTarget(who, chain.accounts);
          const balance = await mindBalance(chain, account);
          emit(opts, { account, balance }, () => [`${account} holds ${formatEther(balance)} MIND`]);
        },
        { readOnly: true },
      );
    });

  token
    .command("transfer")
    .description("send MIND to an address or a configured account")
    .argument("<TO>", "an address or an account index")
    .argument("<AMOUNT>", "MIND, e.g. 250 or 0.5")
    .option(
      "--account <INDEX>",
      "the sender's account index; account 0, the deployer, holds the supply (default: 0)",
    )
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
