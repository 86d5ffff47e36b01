/**
 * Sending on development chains (src/chain/dev-sending.ts): the node signs for the accounts it holds and
 * for no other, writes carry the block's gas limit, a node-signed transaction survives the embedded
 * chain's journal, and no other chain is touched.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parseEther } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { devSending } from "../../src/chain/dev-sending.ts";
import { sendAndWait } from "../../src/chain/tx.ts";

const root = mkdtempSync(join(tmpdir(), "ledgermind-dev-sending-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("development chains: node signing and the block's gas limit", () => {
  it("the embedded node signs for its development accounts only; gas is the block's limit", async () => {
    const chain = await connect({ ephemeral: true });
    try {
      const dev = await devSending(chain);
      assert.ok(dev, "the embedded chain is a development chain");
      const block = await chain.publicClient.getBlock({ blockTag: "latest" });
      assert.equal(dev.gas, block.gasLimit);
      assert.equal(await devSending(chain), dev, "one plan per connection");

      const stranger = privateKeyToAccount(generatePrivateKey()).address;
      assert.equal(dev.nodeWallet(stranger), undefined, "a key the node does not hold is signed locally");

      const sender = chain.wallet(1).account.address;
      const wallet = dev.nodeWallet(sender);
      assert.ok(wallet);
      assert.equal(wallet.account.type, "json-rpc");
      assert.equal(dev.nodeWallet(sender.toLowerCase() as typeof sender), wallet, "one wallet per address");
      const receipt = await sendAndWait(chain, () =>
        wallet.sendTransaction({ to: stranger, value: parseEther("1.5"), gas: dev.gas }),
      );
      assert.equal(receipt.from.toLowerCase(), sender.toLowerCase());
      assert.equal(await chain.publicClient.getBalance({ address: stranger }), parseEther("1.5"));
      assert.ok(receipt.gasUsed < 30_000n, "only the gas used is charged, not the limit");
    } finally {
      await chain.close();
    }
  });

  it("a node-signed transaction is replayed from the embedded chain's journal", async () => {
    const dataDir = join(root, "persisted");
    const recipient = privateKeyToAccount(generatePrivateKey()).address;
    const first = await connect({ dataDir });
    try {
      const dev = await devSending(first);
      const wallet = dev?.nodeWallet(first.wallet(2).account.address);
      assert.ok(wallet);
      await sendAndWait(first, () => wallet.sendTransaction({ to: recipient, value: 7n }));
    } finally {
      await first.close();
    }
    const second = await connect({ dataDir });
    try {
      assert.equal(await second.publicClient.getBalance({ address: recipient }), 7n);
    } finally {
      await second.close();
    }
  });

  it("any other chain keeps estimates and local keys, without a request", async () => {
    const untouched = new Proxy({ chainId: 11_155_111 } as LedgerChain, {
      get(target, key) {
        if (key === "chainId" || key === "then") return Reflect.get(target, key);
        throw new Error(`devSending read chain.${String(key)} of a chain that is not a development chain`);
      },
    });
    assert.equal(await devSending(untouched), undefined);
  });
});
