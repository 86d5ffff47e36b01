/**
 * The (buyer, nonce) pairs a provider has accepted, kept in its state folder so that a signed request runs
 * at most once, also across restarts. An append-only file of one pair a line, flushed before `use`
 * returns: accepting a request is one short write, whatever the number of pairs already used.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import type { Address } from "viem";

/** The request's nonce was already used by its buyer at this provider. */
export class ReplayedNonceError extends Error {
  override name = "ReplayedNonceError";
  constructor(
    readonly buyer: Address,
    readonly nonce: bigint,
  ) {
    super(
      `nonce ${nonce} of ${buyer} was already used at this provider; sign a new request with a fresh nonce`,
    );
  }
}

const keyOf = (buyer: Address, nonce: bigint) => `${buyer.toLowerCase()} ${nonce}`;

export class NonceLog {
  private readonly used = new Set<string>();
  /** The file ends in a line torn by a crash: the next pair starts on a line of its own. */
  private torn = false;

  constructor(readonly file: string) {
    if (!existsSync(file)) return;
    const lines = readFileSync(file, "utf8").split("\n");
    // The piece after the last newline was never acknowledged (its request did not run): it is dropped,
    // even where it reads as a pair, since it may be a prefix of one ("12" of "123").
    this.torn = (lines.pop() ?? "") !== "";
    for (const line of lines) if (/^0x[0-9a-f]{40} \d+$/.test(line)) this.used.add(line);
  }

  has(buyer: Address, nonce: bigint): boolean {
    return this.used.has(keyOf(buyer, nonce));
  }

  /** @throws ReplayedNonceError if used before; otherwise marks it used, on disk, before returning. */
  use(buyer: Address, nonce: bigint): void {
    const key = keyOf(buyer, nonce);
    if (this.used.has(key)) throw new ReplayedNonceError(buyer, nonce);
    mkdirSync(dirname(this.file), { recursive: true });
    const fd = openSync(this.file, "a");
    try {
      writeSync(fd, `${this.torn ? "\n" : ""}${key}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.torn = false;
    this.used.add(key);
  }
}
