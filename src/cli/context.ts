import { existsSync, mkdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { type Address, isAddress, parseEther } from "viem";
import { connect, DEFAULT_DATA_DIR, type LedgerChain } from "../chain/connect.ts";
import { FsBlobStore } from "../storage/fs-blob-store.ts";

/** A mistake in how the command was called: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The data folder cannot be created or written: printed as one line, exit code 1. */
export class DataDirError extends Error {
  override name = "DataDirError";
}

/** How long a read-only command waits for an embedded chain that another process holds, by default. */
export const DEFAULT_LOCK_TIMEOUT_S = 30;

export interface GlobalOptions {
  rpc?: string;
  dataDir: string;
  json?: boolean;
  /** How long read-only commands wait for the embedded chain's lock. */
  lockTimeoutMs: number;
}

export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as { rpc?: string; dataDir?: string; json?: boolean; lockTimeout?: string };
  return {
    rpc: o.rpc,
    dataDir: resolve(o.dataDir ?? DEFAULT_DATA_DIR),
    json: o.json,
    lockTimeoutMs:
      parseInteger(o.lockTimeout ?? String(DEFAULT_LOCK_TIMEOUT_S), "--lock-timeout", 0, 86_400) * 1000,
  };
}

/** `--rpc URL`: an http(s) URL, checked before anything connects. */
export function parseRpc(text: string): string {
  if (!/^https?:\/\/[^\s/]+/.test(text)) {
    throw new UsageError(`--rpc takes an http(s) URL (for example http://127.0.0.1:8545), got "${text}"`);
  }
  return text;
}

/**
 * Creates the data folder if it is missing and checks that it takes files. Each missing level is made on
 * its own: Node's recursive mkdir never returns for a path under /proc, where mkdir answers ENOENT.
 */
export function ensureDataDir(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !existsSync(d) && dirname(d) !== d; d = dirname(d)) missing.unshift(d);
  const probe = join(dir, `.write-test-${process.pid}`);
  try {
    for (const d of missing) makeFolder(d);
    writeFileSync(probe, "");
    unlinkSync(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new DataDirError(`--data-dir ${dir} is not a folder this process can write to (${code})`);
  }
}

/**
 * Makes the folder `d`. One that another process made since it was found missing is as good: two commands
 * started at once on a new --data-dir both go on.
 */
export function makeFolder(d: string): void {
  try {
    mkdirSync(d);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST" || !statSync(d).isDirectory()) throw err;
  }
}

export function blobStore(opts: GlobalOptions): FsBlobStore {
  return new FsBlobStore(join(opts.dataDir, "blobs"));
}

/**
 * Connects for one command and always releases the chain, even when the command fails. A `readOnly`
 * command waits (up to --lock-timeout) for an embedded chain that another process holds, saying so once.
 */
export async function withChain<T>(
  opts: GlobalOptions,
  fn: (chain: LedgerChain) => Promise<T>,
  { readOnly = false }: { readOnly?: boolean } = {},
): Promise<T> {
  const seconds = opts.lockTimeoutMs / 1000;
  const lockWait = readOnly
    ? {
        timeoutMs: opts.lockTimeoutMs,
        onWait: (pid: number) =>
          process.stderr.write(
            `ledgermind: waiting for the chain held by pid ${pid} (up to ${seconds} s)...\n`,
          ),
      }
    : undefined;
  const chain = await connect({ rpc: opts.rpc, dataDir: opts.dataDir, lockWait });
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

export function parseDatasetId(text: string): bigint {
  if (!/^[1-9]\d*$/.test(text)) throw new UsageError(`a dataset id is a positive integer, got "${text}"`);
  return BigInt(text);
}

/** Versions are uint32 on-chain. */
export const MAX_VERSION = 0xffffffff;

export function parseVersion(text: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw new UsageError(`version must be a positive integer, got "${text}"`);
  if (Number(text) > MAX_VERSION) {
    throw new UsageError(`version must be at most ${MAX_VERSION} (2^32-1, a uint32 on-chain), got ${text}`);
  }
  return Number(text);
}

/** A name that must say something: not empty, not only spaces. */
export function parseName(text: string, option: string): string {
  if (text.trim() === "") throw new UsageError(`${option} must not be empty`);
  return text;
}

/** An address: 0x and 40 hex digits, its checksum right if it has mixed case. */
export function parseAddress(text: string, what: string): Address {
  if (!isAddress(text)) {
    throw new UsageError(
      `${what} "${text}" is not a valid address (0x followed by 40 hex digits, with a correct checksum if mixed-case)`,
    );
  }
  return text;
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
/** An integer option from 1 to `max`. */
export function parsePositiveInt(text: string, option: string, max: number): number {
  if (!/^[1-9]\d*$/.test(text) || Number(text) > max)
    throw new UsageError(`${option} must be an integer from 1 to ${max}, got "${text}"`);
  return Number(text);
}

export function parsePositive(text: string, option: string): number {
  const value = Number(text);
  if (!/^\d*\.?\d+(e-?\d+)?$/i.test(text) || !(value > 0) || !Number.isFinite(value)) {
    throw new UsageError(`${option} takes a positive number, got "${text}"`);
  }
  return value;
}
