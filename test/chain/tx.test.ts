/**
 * Sending (src/chain/tx.ts): writes from one account that race for its nonce (two `oracle serve`
 * processes funding their stakes from one account) all land; a refusal is reported once, never retried.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Address, BaseError, NonceTooLowError } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { MindToken } from "../../src/chain/generated/contracts.ts";
import { mindBalance, transferMind } from "../../src/chain/token.ts";
import { ContractRefusedError, nonceTaken, sendAndWait } from "../../src/chain/tx.ts";

describe("sendAndWait", () => {
  let chain: LedgerChain;
  let token: Address;
  before(async () => {
    chain = await connect({ ephemeral: true });
    token = (await deployAll(chain)).contracts.MindToken.address;
  });
  after(() => chain.close());

  it("nonce race: four transfers sent at once from one account all land", async () => {
    const recipients = [2, 3, 4, 5].map((i) => chain.wallet(i).account.address);
    // Each send reads the account's nonce before any of them is mined, so all read the same one.
    await Promise.all(recipients.map((to, i) => transferMind(chain, to, BigInt(i + 1), 0)));
    for (const [i, to] of recipients.entries()) assert.equal(await mindBalance(chain, to), BigInt(i + 1));
  });

  it("a refusal is not sent again: the contract's error, after one send", async () => {
    let sends = 0;
    await assert.rejects(
      sendAndWait(chain, () => {
        sends++;
        return chain.wallet(6).writeContract({
          address: token,
          abi: MindToken.abi,
          functionName: "transfer",
          args: [chain.wallet(7).account.address, 1n],
        });
      }),
      (err: unknown) => err instanceof ContractRefusedError && err.errorName === "ERC20InsufficientBalance",
    );
    assert.equal(sends, 1);
  });
});

describe("nonceTaken", () => {
  it("a nonce another sender took is sent again; this transaction already in the pool is not (it would run twice)", () => {
    assert.equal(nonceTaken(new NonceTooLowError()), true);
    assert.equal(nonceTaken(new BaseError("x", { details: "replacement transaction underpriced" })), true);
    const pooled = new NonceTooLowError({ cause: new BaseError("x", { details: "already known" }) });
    assert.equal(nonceTaken(pooled), false);
    assert.equal(nonceTaken(new BaseError("x", { details: "transaction already imported" })), false);
    assert.equal(nonceTaken(new Error("nonce too low")), false, "only viem's errors from a node");
  });
});
