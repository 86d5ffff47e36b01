import {
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  type Hash,
  NonceTooLowError,
  type TransactionReceipt,
} from "viem";
import type { LedgerChain } from "./connect.ts";
import { CONTRACT_ERRORS } from "./errors.ts";

/** A contract refused a call: `errorName` is its custom error, `args` the error's arguments. */
export class ContractRefusedError extends Error {
  override name = "ContractRefusedError";
  constructor(
    readonly errorName: string,
    readonly args: readonly unknown[],
  ) {
    super(`the contract refused: ${errorName}(${args.map(formatArg).join(", ")})`);
  }
}

export class TransactionFailedError extends Error {
  override name = "TransactionFailedError";
}

function formatArg(a: unknown): string {
  return typeof a === "bigint" ? a.toString() : JSON.stringify(a);
}

/**
 * Turns viem's revert errors into `ContractRefusedError` naming the custom error; other errors pass.
 * viem decodes only the errors of the called contract's ABI: an error a nested call raised (the oracle's,
 * under CropInsurance.assess) arrives as raw data, decoded here against every Ledgermind contract.
 */
export function decodeRevert(err: unknown): unknown {
  if (err instanceof BaseError) {
    const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revert instanceof ContractFunctionRevertedError) {
      if (revert.data?.errorName)
        return new ContractRefusedError(revert.data.errorName, revert.data.args ?? []);
      if (revert.raw) {
        try {
          const { errorName, args } = decodeErrorResult({ abi: CONTRACT_ERRORS, data: revert.raw });
          return new ContractRefusedError(errorName, args ?? []);
        } catch {
          // not an error of ours: left as viem reported it
        }
      }
    }
  }
  return err;
}

/** How many times a write is sent again after another sender took its nonce. */
const NONCE_RACE_RETRIES = 8;

/**
 * Whether a write failed only because its nonce was taken: another process (two `oracle serve` funding
 * their stakes from one account) or another call in this one sent from the same account between the
 * nonce's read and the send. Nothing ran, so sending again with a fresh nonce is safe. "already known"
 * and "already imported" (which viem also reports as NonceTooLowError) are left out: they say that this
 * very transaction is already in the node's pool (a transport retry), and sending it again would run it
 * twice.
 */
export function nonceTaken(err: unknown): boolean {
  if (!(err instanceof BaseError)) return false;
  const text = `${err.details ?? ""} ${err.message}`;
  if (/already known|already imported/i.test(text)) return false;
  return (
    err.walk((e) => e instanceof NonceTooLowError) instanceof NonceTooLowError ||
    /replacement transaction underpriced|nonce too low|lower than the current nonce/i.test(text)
  );
}

/**
 * Sends (`send` signs with a fresh nonce each call) and waits for the receipt; a revert becomes
 * `ContractRefusedError`. A send whose nonce another sender took is retried, after a short random pause
 * so that racing senders spread out.
 */
export async function sendAndWait(
  chain: LedgerChain,
  send: () => Promise<Hash>,
): Promise<TransactionReceipt> {
  let hash: Hash | undefined;
  for (let attempt = 0; hash === undefined; attempt++) {
    try {
      hash = await send();
    } catch (err) {
      if (attempt >= NONCE_RACE_RETRIES || !nonceTaken(err)) throw decodeRevert(err);
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40 * (attempt + 1)));
    }
  }
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 20 });
  if (receipt.status !== "success") throw new TransactionFailedError(`transaction ${hash} reverted`);
  return receipt;
}
