import {
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  type Hash,
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

/** Sends (awaits the hash) and waits for the receipt; a revert becomes `ContractRefusedError`. */
export async function sendAndWait(chain: LedgerChain, sending: Promise<Hash>): Promise<TransactionReceipt> {
  let hash: Hash;
  try {
    hash = await sending;
  } catch (err) {
    throw decodeRevert(err);
  }
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 20 });
  if (receipt.status !== "success") throw new TransactionFailedError(`transaction ${hash} reverted`);
  return receipt;
}
