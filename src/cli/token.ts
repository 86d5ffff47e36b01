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

/** An address, or the index of a configured account ("3"), checked before anything connects. */
export function parseTarget(text: string): Address | number {
  if (/^0x/i.test(text)) return parseAddress(text, "the account");
  if (!/^\d+$/.test(text)) {
    throw new UsageError(
      `expected an address (0x...) or a configured account's index (0, 1, ...), got "${text}"`,
    );
  }
  return parseAccount(text);
}

/** The address of a `parseTarget` result, on this chain's configured accounts. */
export function resolveTarget(target: Address | number, accounts: readonly { address: Address }[]): Address {
  if (typeof target === "string") return target;
  const account = accounts[target];
  if (!account) throw new UsageError(`no configured account ${target} (there are ${accounts.length})`);
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
      const target = parseTarget(who);
      await withChain(
        opts,
        async (chain) => {
          const account = resolveTarget(target, chain.accounts);
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
      const target = parseTarget(to);
      const amount = parseMind(amountText, "amount");
      const sender = parseAccount(o.account);
      await withChain(opts, async (chain) => {
        const recipient = resolveTarget(target, chain.accounts);
        await transferMind(chain, recipient, amount, sender);
        const balance = await mindBalance(chain, recipient);
        emit(opts, { to: recipient, amount, balance }, () => [
          `sent ${formatEther(amount)} MIND to ${recipient}, who now holds ${formatEther(balance)}`,
        ]);
      });
    });
}
