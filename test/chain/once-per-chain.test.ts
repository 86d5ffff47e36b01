/** oncePerChain (src/chain/once-per-chain.ts): one read per connection and key; failed reads are retried. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { LedgerChain } from "../../src/chain/connect.ts";
import { oncePerChain } from "../../src/chain/once-per-chain.ts";

const fakeChain = () => ({ chainId: 31337 }) as LedgerChain;

describe("oncePerChain", () => {
  it("reads once per connection and key, and again after a failure", async () => {
    const remember = oncePerChain<number>();
    const a = fakeChain();
    const b = fakeChain();
    let reads = 0;
    const read = async () => ++reads;
    assert.equal(await remember(a, "k", read), 1);
    assert.equal(await remember(a, "k", read), 1, "the same connection and key: no second read");
    assert.equal(await remember(a, "other", read), 2);
    assert.equal(await remember(b, "k", read), 3, "another connection reads for itself");

    const failing = remember(a, "late", async () => {
      throw new Error("not yet");
    });
    await assert.rejects(failing, /not yet/);
    assert.equal(await remember(a, "late", read), 4, "a failed read is forgotten");
    assert.equal(await remember(a, "late", read), 4);
  });
});
