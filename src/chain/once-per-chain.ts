import type { LedgerChain } from "./connect.ts";

/** Reads a value of `chain` under `key`, or returns the read already made. */
export type OncePerChain<T> = (chain: LedgerChain, key: string, read: () => Promise<T>) => Promise<T>;

/**
 * Remembers, per connection and key, what is read once and never changes after (a registry version's
 * digest, a finalized round's settlement, a node's accounts). A read that fails is forgotten, so the next
 * call tries again: what does not exist yet may exist later.
 */
export function oncePerChain<T>(): OncePerChain<T> {
  const byChain = new WeakMap<LedgerChain, Map<string, Promise<T>>>();
  return (chain, key, read) => {
    let known = byChain.get(chain);
    if (!known) {
      known = new Map();
      byChain.set(chain, known);
    }
    const remembered = known.get(key);
    if (remembered) return remembered;
    const reading = read();
    const entries = known;
    entries.set(key, reading);
    reading.catch(() => {
      if (entries.get(key) === reading) entries.delete(key);
    });
    return reading;
  };
}
