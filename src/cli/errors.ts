/**
 * What the CLI prints for an error, and its exit code: usage errors exit 2, failures 1, each one line.
 * Pure: no I/O.
 */
import { BaseError, ContractFunctionRevertedError } from "viem";
import { describeContractError, errorArgsByName } from "../chain/errors.ts";
import { ContractRefusedError, decodeRevert } from "../chain/tx.ts";
import { InvalidCidError } from "../storage/cid.ts";
import { UsageError } from "./context.ts";

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** 128 + SIGINT's number, as shells report a command ended by Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

/** The one line to print for `err`: contract errors as sentences, anything else as its first line. */
export function errorLine(err: unknown): string {
  const refused = decodeRevert(err);
  if (refused instanceof ContractRefusedError) {
    return describeContractError(refused.errorName, errorArgsByName(refused.errorName, refused.args));
  }
  if (err instanceof BaseError) {
    const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revert instanceof ContractFunctionRevertedError) {
      if (revert.reason) return `the contract refused: ${revert.reason}`;
      if (revert.signature)
        return `the contract refused with an unknown error (selector ${revert.signature})`;
    }
    return firstLine(err.shortMessage);
  }
  return firstLine(err instanceof Error ? err.message : String(err));
}

function firstLine(message: string): string {
  return message.split("\n")[0]?.trim() || message;
}

/** A CID the user typed that is not one is a usage error, as is anything the CLI itself calls one. */
export function exitCodeOf(err: unknown): number {
  return err instanceof UsageError || err instanceof InvalidCidError ? EXIT_USAGE : EXIT_FAILURE;
}
