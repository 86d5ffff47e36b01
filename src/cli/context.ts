import { join, resolve } from "node:path";
import type { Command } from "commander";
import { parseEther } from "viem";
import { connect, DEFAULT_DATA_DIR, type LedgerChain } from "../chain/connect.ts";
import { FsBlobStore } from "../storage/fs-blob-store.ts";

/** A mistake in how the command was called: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface GlobalOptions {
  rpc?: string;
  dataDir: string;
  json?: boolean;
}

export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Partial<GlobalOptions>;
  return { rpc: o.rpc, dataDir: resolve(o.dataDir ?? DEFAULT_DATA_DIR), json: o.json };
}

export function blobStore(opts: GlobalOptions): FsBlobStore {
  return new FsBlobStore(join(opts.dataDir, "blobs"));
}

/** Connects for one command and always releases the chain, even when the command fails. */
export async function withChain<T>(opts: GlobalOptions, fn: (chain: LedgerChain) => Promise<T>): Promise<T> {
  const chain = await connect({ rpc: opts.rpc, dataDir: opts.dataDir });
  try {
    return await fn(chain);
  } finally {
    await chain.close();
  }
}

/** Prints `data` as JSON with --json, else the human lines. */
export function emit(opts: GlobalOptions, data: unknown, lines: () => string[]): void {
  if (opts.json) console.log(JSON.stringify(data, jsonReplacer, 2));
  else for (const line of lines()) console.log(line);
}

export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return undefined;
  return value;
}

export function parseModelId(text: string): bigint {
  if (!/^[1-9]\d*$/.test(text)) throw new UsageError(`model id must be a positive integer, got "${text}"`);
  return BigInt(text);
}

export function parseVersion(text: string): number {
  if (!/^[1-9]\d*$/.test(text) || Number(text) > 0xffffffff) {
    throw new UsageError(`version must be a positive integer, got "${text}"`);
  }
  return Number(text);
}

/** Parses `MODEL@VERSION`, as in `--parent 3@2`. */
export function parseModelRef(text: string): { modelId: bigint; version: number } {
  const m = text.match(/^(\d+)@(\d+)$/);
  if (!m) throw new UsageError(`expected MODEL@VERSION (for example 1@2), got "${text}"`);
  return { modelId: parseModelId(m[1] as string), version: parseVersion(m[2] as string) };
}

/** `--account K`: which configured account signs (default 0, the deployer). */
export function parseAccount(text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^\d+$/.test(text)) throw new UsageError(`--account must be an index (0, 1, ...), got "${text}"`);
  return Number(text);
}

/** An amount of MIND in decimal units ("1.5"), as wei. */
export function parseMind(text: string, option: string): bigint {
  if (!/^\d+(\.\d{1,18})?$/.test(text)) {
    throw new UsageError(`${option} takes an amount of MIND (for example 1.5), got "${text}"`);
  }
  return parseEther(text);
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** An integer option within [min, max]. */
export function parseInteger(
  text: string,
  option: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const value = Number(text);
  if (!/^-?\d+$/.test(text) || value < min || value > max) {
    throw new UsageError(`${option} takes an integer from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

/** A positive number option (a rate, a concentration). */
export function parsePositive(text: string, option: string): number {
  const value = Number(text);
  if (!/^\d*\.?\d+(e-?\d+)?$/i.test(text) || !(value > 0) || !Number.isFinite(value)) {
    throw new UsageError(`${option} takes a positive number, got "${text}"`);
  }
  return value;
}
