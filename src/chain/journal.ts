import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

/**
 * The embedded EVM has no state dump, so its state on disk is a journal of the calls that changed it,
 * each with the timestamp of the block it mined. Replaying the journal into a fresh EVM with the same
 * genesis date rebuilds the same state, block by block: the same idea as a database's write-ahead log.
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

export class ChainLockedError extends Error {
  override name = "ChainLockedError";
  constructor(
    dir: string,
    readonly pid: number,
  ) {
    super(
      `the chain in ${dir} is in use by process ${pid}: wait for it, or run \`ledgermind chain\` to share one chain between processes`,
    );
  }
}

export class Journal {
  readonly file: string;
  private constructor(
    readonly dir: string,
    readonly header: JournalHeader,
    readonly entries: JournalEntry[],
  ) {
    this.file = join(dir, "journal.ndjson");
  }

  /** Opens (or creates, with `fresh` as its header) the journal in `dir`. */
  static open(dir: string, fresh: JournalHeader): Journal {
    const file = join(dir, "journal.ndjson");
    if (!existsSync(file)) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, `${JSON.stringify(fresh)}\n`);
      return new Journal(dir, fresh, []);
    }
    const text = readFileSync(file, "utf8");
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    const entries: JournalEntry[] = [];
    let header: JournalHeader | undefined;
    let validBytes = 0;
    lines.forEach((line, i) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        // A crash mid-append leaves at most a torn last line: it never reached the chain's callers.
        if (i === lines.length - 1) return;
        throw new JournalError(`${file} line ${i + 1} is corrupt: the chain state cannot be rebuilt`);
      }
      validBytes += Buffer.byteLength(line) + 1;
      if (i === 0) header = parsed as JournalHeader;
      else entries.push(parsed as JournalEntry);
    });
    if (header?.format !== "ledgermind.chain-journal/1") {
      throw new JournalError(`${file} is not a Ledgermind chain journal`);
    }
    // Cut a torn tail so that the next append starts on a line of its own.
    const size = Buffer.byteLength(text);
    if (validBytes < size) truncateSync(file, validBytes);
    else if (validBytes > size) appendFileSync(file, "\n"); // the last line lacked its newline
    return new Journal(dir, header, entries);
  }

  append(entry: JournalEntry): void {
    appendFileSync(this.file, `${JSON.stringify(entry)}\n`);
    this.entries.push(entry);
  }
}

/** Holds `dir` for this process so that two writers never fork one journal. Returns the release function. */
export function lockDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, "lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, "wx");
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.off("exit", release);
        try {
          unlinkSync(lock);
        } catch {
          // already gone: nothing to release
        }
      };
      process.once("exit", release);
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(readFileSync(lock, "utf8"));
      if (pid && isAlive(pid)) throw new ChainLockedError(dir, pid);
      unlinkSync(lock); // left by a process that died: take it over
    }
  }
  throw new JournalError(`could not lock ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
