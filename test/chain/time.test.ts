/**
 * Waiting for the chain (src/chain/time.ts `nextHead`): a loop that waits for another member's move wakes
 * on the block that move made, not a whole poll later; with no block it waits its poll; asked to stop, it
 * stops.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { mineBlocks, nextHead } from "../../src/chain/time.ts";

describe("nextHead", () => {
  let chain: LedgerChain;
  before(async () => {
    chain = await connect({ ephemeral: true });
  });
  after(() => chain.close());

  it("wakes on the next block, long before its poll", { timeout: 20_000 }, async () => {
    const head = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    // A poll far beyond the test's timeout: only the block can end the wait.
    const waited = nextHead(chain, head, 600_000);
    setTimeout(() => void mineBlocks(chain, 1n), 50);
    await waited;
    assert.ok((await chain.publicClient.getBlockNumber({ cacheTime: 0 })) > head);
  });

  it("with no new block, waits the whole poll", async () => {
    const head = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    const started = performance.now();
    await nextHead(chain, head, 300);
    assert.ok(performance.now() - started >= 290, "returned before the poll ended with no block");
  });

  it("a stopping loop stops waiting", { timeout: 20_000 }, async () => {
    const head = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    let stopped = false;
    setTimeout(() => {
      stopped = true;
    }, 50);
    await nextHead(chain, head, 600_000, () => stopped);
    assert.equal(await chain.publicClient.getBlockNumber({ cacheTime: 0 }), head);
  });
});
