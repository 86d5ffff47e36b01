import type { SnarkLogger } from "snarkjs";

/** Where a long zk step reports progress: one line at a time (a CLI prints it, a test may drop it). */
export type ProgressLog = (line: string) => void;

/**
 * Adapts a line callback to snarkjs's logger. snarkjs reports its step names through `info` and its
 * per-chunk counters through `debug`; the counters are only forwarded when `verbose`, since a setup
 * emits thousands of them.
 */
export function progressLogger(log: ProgressLog, opts: { verbose?: boolean } = {}): SnarkLogger {
  const drop = () => {};
  return {
    info: (message) => log(message),
    warn: (message) => log(`warning: ${message}`),
    error: (message) => log(`error: ${message}`),
    debug: opts.verbose ? (message) => log(message) : drop,
    log: opts.verbose ? (message) => log(message) : drop,
  };
}
