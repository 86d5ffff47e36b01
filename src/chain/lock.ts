import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * One process at a time per chain folder. The embedded chain (a command that replays and appends the
 * journal) and `ledgermind chain` (an anvil child that loads and saves its state file) take the same
 * lock, because two writers of one folder silently overwrite each other's transactions.
 *
 * The lock is a file naming its holder. A holder that crashed leaves it behind: it is stale when its pid
 * is gone or now belongs to a process that started at another time (a reused pid). A stale holder that
 * was `ledgermind chain` may have left its anvil running on the port: the next holder stops it first.
 */

/** Who holds a chain folder: written into the lock file, shown to whoever is refused. */
export interface LockHolder {
  pid: number;
  /** The process's start time as the OS counts it, so that a reused pid is not mistaken for the holder. */
  start?: string;
  /** `embedded`: a command running the embedded EVM; `chain`: `ledgermind chain` serving `url`. */
  command: "embedded" | "chain";
  url?: string;
  /** `ledgermind chain`'s watchdog then anvil: to stop, in that order, if the holder died and left them. */
  children?: { name: string; pid: number; start?: string }[];
}

export class ChainLockedError extends Error {
  override name = "ChainLockedError";
  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
  ) {
    super(
      holder.command === "chain"
        ? `the chain in ${dir} is served by \`ledgermind chain\` (process ${holder.pid}${holder.url ? `, ${holder.url}` : ""}): use it with --rpc ${holder.url ?? "URL"}, or stop it first`
        : `the chain in ${dir} is in use by process ${holder.pid}: wait for it, or run \`ledgermind chain\` to share one chain between processes`,
    );
  }
}

export class ChainLockError extends Error {
  override name = "ChainLockError";
}

/**
 * The state (field 3) and start time (field 22, clock ticks since boot) in a `/proc/PID/stat` line; the
 * process name before them may hold spaces and parentheses.
 */
export function parseProcStat(stat: string): { state?: string; start?: string } {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0], start: fields[19] };
}

/** The lock file's holder; a bare pid is how locks were written before they named their holder. */
export function parseLockFile(text: string): LockHolder | undefined {
  if (/^\d+$/.test(text.trim())) return { pid: Number(text.trim()), command: "embedded" };
  try {
    const parsed = JSON.parse(text) as Partial<LockHolder>;
    if (!Number.isInteger(parsed.pid) || (parsed.pid as number) <= 0) return undefined;
    return { ...parsed, command: parsed.command === "chain" ? "chain" : "embedded" } as LockHolder;
  } catch {
    return undefined;
  }
}

/** When the OS says `pid` started; undefined where that cannot be read (no /proc, or no such process). */
export function processStart(pid: number): string | undefined {
  return procStat(pid)?.start;
}

function procStat(pid: number): { state?: string; start?: string } | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * Whether `p` still runs: its pid is alive and, where /proc can be read, neither a zombie (an exited
 * process nobody reaped: an orphan's, where the container's init does not reap) nor started at another
 * time than recorded (a reused pid).
 */
export function isRunning(p: { pid: number; start?: string }): boolean {
  try {
    process.kill(p.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const now = procStat(p.pid);
  if (now === undefined) return true;
  return now.state !== "Z" && (p.start === undefined || now.start === p.start);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Stops a process we started and lost (an anvil whose `ledgermind chain` was killed): SIGINT first, so
 * that anvil saves its state, then SIGKILL after `graceMs`. Returns whether it had to be stopped.
 */
export async function stopLeftover(p: { pid: number; start?: string }, graceMs = 15_000): Promise<boolean> {
  // Without a start time a live pid may be anyone's by now: never signal it.
  if (p.start === undefined || !isRunning(p)) return false;
  signal(p.pid, "SIGINT");
  const deadline = Date.now() + graceMs;
  while (isRunning(p)) {
    if (Date.now() > deadline) {
      signal(p.pid, "SIGKILL");
      await sleep(100);
      break;
    }
    await sleep(20);
  }
  return true;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // it exited between the check and the signal: what was wanted
  }
}

export interface ChainLock {
  readonly file: string;
  /** Adds to what the lock file says about its holder (the url and child of `ledgermind chain`). */
  update(about: Pick<LockHolder, "url" | "children">): void;
  release(): void;
}

/**
 * Takes `dir` for this process, or throws ChainLockedError naming the live holder. A stale lock is taken
 * over, after stopping the anvil its holder left running (`onNotice` is told).
 */
export async function acquireChainLock(
  dir: string,
  command: LockHolder["command"],
  onNotice: (message: string) => void = () => {},
  wait?: LockWait,
): Promise<ChainLock> {
  const deadline = Date.now() + (wait?.timeoutMs ?? 0);
  let told = false;
  for (;;) {
    try {
      return await takeChainLock(dir, command, onNotice);
    } catch (err) {
      // `ledgermind chain` serves until someone stops it: waiting for it would only delay the refusal.
      const waitable = err instanceof ChainLockedError && err.holder.command !== "chain";
      if (!waitable || !wait || Date.now() >= deadline) throw err;
      if (!told) wait.onWait?.(err.holder.pid);
      told = true;
      await new Promise((resolve) => setTimeout(resolve, wait.pollMs ?? 100));
    }
  }
}

/** How long to wait for a chain folder that another command holds, instead of failing at once. */
export interface LockWait {
  timeoutMs: number;
  /** Called once, when the first attempt finds the folder held by process `pid`. */
  onWait?: (pid: number) => void;
  /** How often to try again (default: 100 ms). */
  pollMs?: number;
}

async function takeChainLock(
  dir: string,
  command: LockHolder["command"],
  onNotice: (message: string) => void,
): Promise<ChainLock> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "lock");
  let holder: LockHolder = { pid: process.pid, start: processStart(process.pid), command };
  const write = (target: string) => writeFileSync(target, `${JSON.stringify(holder)}\n`);
  for (let attempt = 0; attempt < 5; attempt++) {
    // Written whole beside the lock, then linked into place: the link fails if a lock exists, and a
    // reader never sees a lock file that does not yet name its holder.
    const mine = `${file}.${process.pid}`;
    write(mine);
    try {
      linkSync(mine, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      await takeOverIfStale(dir, file, onNotice);
      continue;
    } finally {
      unlinkSync(mine);
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      process.off("exit", release);
      try {
        unlinkSync(file);
      } catch {
        // already gone: nothing to release
      }
    };
    process.once("exit", release);
    return {
      file,
      update(about) {
        holder = { ...holder, ...about };
        const next = `${file}.${process.pid}`;
        write(next);
        renameSync(next, file);
      },
      release,
    };
  }
  throw new ChainLockError(`could not lock ${dir}: other processes keep taking it`);
}

async function takeOverIfStale(
  dir: string,
  file: string,
  onNotice: (message: string) => void,
): Promise<void> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return; // released meanwhile: try again
  }
  const holder = parseLockFile(text);
  if (holder && isRunning(holder)) throw new ChainLockedError(dir, holder);
  for (const child of holder?.children ?? []) {
    if (await stopLeftover(child)) {
      onNotice(
        `stopped ${child.name} (process ${child.pid}), left running by \`ledgermind chain\` (process ${holder?.pid}) when it died`,
      );
    }
  }
  // Moved aside before it is removed, and checked: if another process replaced the stale lock with its
  // own since we read it, that live lock goes back in place instead.
  const aside = `${file}.stale-${process.pid}`;
  try {
    renameSync(file, aside);
  } catch {
    return;
  }
  try {
    if (readFileSync(aside, "utf8") !== text) linkSync(aside, file);
  } catch {
    // a third process locked it meanwhile: the next attempt reads who
  } finally {
    unlinkSync(aside);
  }
}
