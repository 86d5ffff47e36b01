import {
  type HDAccount,
  mnemonicToAccount,
  type PrivateKeyAccount,
  privateKeyToAccount,
} from "viem/accounts";

/**
 * The well-known development mnemonic that both the embedded EVM and `ledgermind chain` fund.
 * Its keys are public: they hold value only on development chains.
 */
export const DEV_MNEMONIC = "test test test test test test test test test test test junk";
export const DEV_ACCOUNT_COUNT = 20;

export type LocalAccount = HDAccount | PrivateKeyAccount;

export class MissingKeysError extends Error {
  override name = "MissingKeysError";
  constructor(chainId: number) {
    super(
      `chain ${chainId} is not a development chain: set LEDGERMIND_KEYS to one or more comma-separated private keys`,
    );
  }
}

export class InvalidKeyError extends Error {
  override name = "InvalidKeyError";
}

export function devAccounts(count = DEV_ACCOUNT_COUNT): LocalAccount[] {
  return Array.from({ length: count }, (_, i) => mnemonicToAccount(DEV_MNEMONIC, { addressIndex: i }));
}

/** Parses LEDGERMIND_KEYS-style text: comma-separated 32-byte hex private keys. */
export function accountsFromKeys(text: string): LocalAccount[] {
  return text
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k.length > 0)
    .map((k, i) => {
      const hex = k.startsWith("0x") ? k : `0x${k}`;
      if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) {
        throw new InvalidKeyError(`LEDGERMIND_KEYS entry ${i + 1} is not a 32-byte hex private key`);
      }
      return privateKeyToAccount(hex as `0x${string}`);
    });
}

/** Development chain ids: the embedded EVM (31337) and `ledgermind chain` (1337). */
export function isDevChain(chainId: number): boolean {
  return chainId === 31337 || chainId === 1337;
}

/**
 * Keys come from the environment, never from a file in the repository; on a development chain the
 * funded development accounts serve when none are set.
 */
export function resolveAccounts(chainId: number, env: NodeJS.ProcessEnv = process.env): LocalAccount[] {
  const keys = env.LEDGERMIND_KEYS;
  if (keys && keys.trim() !== "") return accountsFromKeys(keys);
  if (isDevChain(chainId)) return devAccounts();
  throw new MissingKeysError(chainId);
}
