import { createHash } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  existsSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";

/**
 * The embedded EVM has no state dump, so its state on disk is a journal of the calls that changed it,
 * each with the timestamp of the block it mined. Replaying the journal into a fresh EVM with the same
 * genesis date rebuilds the same state, block by block: the same idea as a database's write-ahead log,
 * and kept as one: every entry is on disk (fdatasync) before its call returns, so a transaction a caller
 * saw confirmed survives a crash, and each entry carries a checksum so that damage is found, not replayed.
 */
export interface JournalHeader {
  format: "ledgermind.chain-journal/1";
  chainId: number;
  hardfork: string;
  genesisTimestamp: number;
}

export interface JournalEntry {
  method: string;
  params: unknown[];
  /** Timestamp of the first block the call mined. */
  timestamp: number;
}

export const JOURNAL_FILE = "journal.ndjson";

/** Calls that mine blocks; their effect on state is replayed verbatim with their recorded timestamp. */
export const BLOCK_PRODUCING_METHODS = new Set([
  "eth_sendRawTransaction",
  "eth_sendTransaction",
  "evm_mine",
  "hardhat_mine",
]);
/** Calls that change state without mining. Time shifts are not listed: recorded timestamps carry them. */
/** Snapshots and reverts are among them: replayed in order, they undo on replay what they undid live. */
export const STATE_SETTING_METHODS = new Set([
  "evm_revert",
  "evm_snapshot",
  "hardhat_impersonateAccount",
  "hardhat_setBalance",
  "hardhat_setCode",
  "hardhat_setNonce",
  "hardhat_setStorageAt",
  "hardhat_stopImpersonatingAccount",
]);

export class JournalError extends Error {
  override name = "JournalError";
}

/** A journal damaged before its last line: replaying past the damage would rebuild a different chain. */
export class JournalDamagedError extends JournalError {
  override name = "JournalDamagedError";
}

// Kept here as well for the modules that imported the lock from the journal before it had its own.
export { ChainLockedError } from "./lock.ts";

/** The checksum of an entry: the first 8 bytes of the SHA-256 of its fields, in a fixed order. */
export function entrySum(entry: JournalEntry): string {
  const fields = JSON.stringify([entry.method, entry.params, entry.timestamp]);
  return createHash("sha256").update(fields).digest("hex").slice(0, 16);
}

/** One journal line, newline included. */
export function entryLine(entry: JournalEntry): string {
  const { method, params, timestamp } = entry;
  return `${JSON.stringify({ method, params, timestamp, sum: entrySum(entry) })}\n`;
}

/** What reading a journal found: its good prefix and where the damage starts, if anywhere. */
export interface JournalScan {
  /** Undefined when line 1 is not a journal header. */
  header?: JournalHeader;
  /** The entries before the first damaged entry line. */
  entries: JournalEntry[];
  /** Bytes of the header (when good) and of those entries, newlines included. */
  goodBytes: number;
  lines: number;
  /** The first damaged entry line (1-based) and what is wrong with it. */
  damage?: { line: number; reason: string };
  /** The last good line lacks its newline: a complete write cut just before it. */
  missingNewline: boolean;
}

function parseHeader(line: string): JournalHeader | undefined {
  try {
    const h = JSON.parse(line) as Partial<JournalHeader>;
    const ok =
      h?.format === "ledgermind.chain-journal/1" &&
      Number.isInteger(h.chainId) &&
      typeof h.hardfork === "string" &&
      Number.isInteger(h.genesisTimestamp);
    return ok ? (h as JournalHeader) : undefined;
  } catch {
    return undefined;
  }
}

/** Why `line` is not a good entry, or the entry. Lines written before entries had checksums have none. */
function parseEntry(line: string): JournalEntry | string {
  let e: Partial<JournalEntry> & { sum?: unknown };
  try {
    e = JSON.parse(line);
  } catch {
    return line.length === 0 ? "empty line" : "not JSON: cut or overwritten";
  }
  const known =
    typeof e?.method === "string" &&
    (BLOCK_PRODUCING_METHODS.has(e.method) || STATE_SETTING_METHODS.has(e.method));
  if (!known || !Array.isArray(e.params) || !Number.isInteger(e.timestamp)) return "not a journal entry";
  const entry = { method: e.method, params: e.params, timestamp: e.timestamp } as JournalEntry;
  if (e.sum !== undefined && e.sum !== entrySum(entry)) return "checksum mismatch";
  return entry;
}

/** Reads a journal's text up to its first damaged line. Pure: no file is touched. */
export function scanJournal(text: string): JournalScan {
  const lines = text.split("\n");
  const missingNewline = lines.at(-1) !== "";
  if (!missingNewline) lines.pop();
  const header = parseHeader(lines[0] ?? "");
  const scan: JournalScan = { header, entries: [], goodBytes: 0, lines: lines.length, missingNewline };
  if (header) scan.goodBytes = Buffer.byteLength(lines[0] as string) + 1;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const entry = parseEntry(line);
    if (typeof entry === "string") {
      scan.damage = { line: i + 1, reason: entry };
      break;
    }
    scan.entries.push(entry);
    if (header) scan.goodBytes += Buffer.byteLength(line) + 1;
  }
  scan.missingNewline = missingNewline && !scan.damage && header !== undefined;
  if (scan.missingNewline) scan.goodBytes -= 1;
  return scan;
}

/** What opening a journal had to do about a torn last line. */
export interface JournalRecovery {
  line: number;
  reason: string;
  kept: number;
  /** The whole file as it was found. */
  backup: string;
}

const backupName = (dir: string, now: Date) =>
  join(dir, `journal.damaged-${now.toISOString().replace(/[:.]/g, "-")}.ndjson`);

/** Writes a file whole or not at all, and makes it durable: a crash leaves the old file or the new one. */
function writeDurably(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  syncDir(dirname(file));
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not every platform can sync a folder (Windows): the file itself was synced.
  }
}

export class Journal {
  readonly file: string;
  private fd: number | undefined;
  private constructor(
    readonly dir: string,
    readonly header: JournalHeader,
    readonly entries: JournalEntry[],
    readonly recovery?: JournalRecovery,
  ) {
    this.file = join(dir, JOURNAL_FILE);
    this.fd = openSync(this.file, "a");
  }

  /**
   * Opens (or creates, with `fresh` as its header) the journal in `dir`. A damaged last line is a crash
   * mid-append, whose call never returned: it is cut off, the file as found is kept beside it, and
   * `recovery` says so. Damage before the last line throws JournalDamagedError naming `chain repair`.
   */
  static open(dir: string, fresh: JournalHeader, now = new Date()): Journal {
    const file = join(dir, JOURNAL_FILE);
    // An empty file is a journal whose creation was cut short: nothing was ever recorded in it.
    if (!existsSync(file) || statSync(file).size === 0) {
      mkdirSync(dir, { recursive: true });
      writeDurably(file, `${JSON.stringify(fresh)}\n`);
      return new Journal(dir, fresh, []);
    }
    const scan = scanJournal(readFileSync(file, "utf8"));
    if (!scan.header) {
      throw new JournalDamagedError(
        `${file} does not start with a Ledgermind chain journal header: run \`ledgermind chain repair\` to rebuild it (the damaged file is backed up)`,
      );
    }
    if (scan.damage && scan.damage.line < scan.lines) {
      throw new JournalDamagedError(
        `${file} is damaged at line ${scan.damage.line} of ${scan.lines} (${scan.damage.reason}): run \`ledgermind chain repair\` to keep the ${scan.entries.length} entries before it (the damaged file is backed up)`,
      );
    }
    let recovery: JournalRecovery | undefined;
    if (scan.damage) {
      const backup = backupName(dir, now);
      copyFileSync(file, backup);
      truncateSync(file, scan.goodBytes);
      recovery = { ...scan.damage, kept: scan.entries.length, backup };
    } else if (scan.missingNewline) {
      writeFileSync(file, "\n", { flag: "a" });
    }
    return new Journal(dir, scan.header, scan.entries, recovery);
  }

  /** Appends `entry` and returns once it is on disk. */
  append(entry: JournalEntry): void {
    if (this.fd === undefined) throw new JournalError(`${this.file} is closed`);
    writeSync(this.fd, entryLine(entry));
    fdatasyncSync(this.fd);
    this.entries.push(entry);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** What `repairJournal` did. */
export interface JournalRepair {
  file: string;
  kept: number;
  /** Lines dropped from the first damaged one on; 0 when the journal was sound. */
  dropped: number;
  damage?: { line: number; reason: string };
  headerRebuilt: boolean;
  backup?: string;
}

/**
 * Cuts the journal in `dir` back to its entries before the first damaged line, after copying the file
 * as found beside it. A damaged header is rebuilt from `fresh`, its genesis just before the first entry.
 * For the damage `Journal.open` refuses to cut on its own; the caller holds the chain folder's lock.
 */
export function repairJournal(dir: string, fresh: JournalHeader, now = new Date()): JournalRepair {
  const file = join(dir, JOURNAL_FILE);
  if (!existsSync(file)) throw new JournalError(`no chain journal in ${dir}: nothing to repair`);
  const scan = scanJournal(readFileSync(file, "utf8"));
  const kept = scan.entries.length;
  if (scan.header && !scan.damage) return { file, kept, dropped: 0, headerRebuilt: false };
  const first = scan.entries[0]?.timestamp;
  const header = scan.header ?? {
    ...fresh,
    genesisTimestamp: first === undefined ? fresh.genesisTimestamp : first - 1,
  };
  const backup = backupName(dir, now);
  copyFileSync(file, backup);
  writeDurably(file, `${JSON.stringify(header)}\n${scan.entries.map(entryLine).join("")}`);
  return {
    file,
    kept,
    dropped: scan.damage ? scan.lines - scan.damage.line + 1 : 0,
    damage: scan.damage ?? { line: 1, reason: "not a journal header" },
    headerRebuilt: !scan.header,
    backup,
  };
}
