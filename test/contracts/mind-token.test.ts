import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type Abi,
  type AbiFunction,
  type Address,
  isAddressEqual,
  parseEther,
  parseEventLogs,
  parseSignature,
  type TransactionReceipt,
  zeroAddress,
} from "viem";
import type { LocalAccount } from "../../src/chain/accounts.ts";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll, TOKEN_SUPPLY } from "../../src/chain/deploy.ts";
import { MindToken } from "../../src/chain/generated/contracts.ts";
import { ContractRefusedError, sendAndWait } from "../../src/chain/tx.ts";

const abi = MindToken.abi;

let chain: LedgerChain;
let token: Address;

function account(i: number): LocalAccount {
  const a = chain.accounts[i];
  if (!a) throw new Error(`no dev account #${i}`);
  return a;
}

function addr(i: number): Address {
  return account(i).address;
}

function balanceOf(a: Address): Promise<bigint> {
  return chain.publicClient.readContract({ address: token, abi, functionName: "balanceOf", args: [a] });
}

function getVotes(a: Address): Promise<bigint> {
  return chain.publicClient.readContract({ address: token, abi, functionName: "getVotes", args: [a] });
}

function nonces(a: Address): Promise<bigint> {
  return chain.publicClient.readContract({ address: token, abi, functionName: "nonces", args: [a] });
}

function transfer(from: number, to: Address, value: bigint): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    chain.wallet(from).writeContract({ address: token, abi, functionName: "transfer", args: [to, value] }),
  );
}

function delegate(from: number, to: Address): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    chain.wallet(from).writeContract({ address: token, abi, functionName: "delegate", args: [to] }),
  );
}

async function refused(p: Promise<unknown>, errorName: string, check?: (args: readonly unknown[]) => void) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ContractRefusedError, `expected ContractRefusedError, got ${String(err)}`);
    assert.equal(err.errorName, errorName);
    check?.(err.args);
    return true;
  });
}

async function domain() {
  const [, name, version, chainId, verifyingContract] = await chain.publicClient.readContract({
    address: token,
    abi,
    functionName: "eip712Domain",
  });
  return { name, version, chainId: Number(chainId), verifyingContract };
}

const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

const DELEGATION_TYPES = {
  Delegation: [
    { name: "delegatee", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "expiry", type: "uint256" },
  ],
} as const;

async function signPermit(
  signer: LocalAccount,
  owner: Address,
  spender: Address,
  value: bigint,
  nonce: bigint,
  deadline: bigint,
) {
  const { r, s, v, yParity } = parseSignature(
    await signer.signTypedData({
      domain: await domain(),
      types: PERMIT_TYPES,
      primaryType: "Permit",
      message: { owner, spender, value, nonce, deadline },
    }),
  );
  return { r, s, v: Number(v ?? BigInt(yParity + 27)) };
}

async function deadlineIn(seconds: number): Promise<bigint> {
  const block = await chain.publicClient.getBlock();
  return block.timestamp + BigInt(seconds);
}

before(async () => {
  chain = await connect({ ephemeral: true });
  const manifest = await deployAll(chain);
  token = manifest.contracts.MindToken.address;
});

after(async () => {
  await chain?.close();
});

describe("MindToken", () => {
  it("mints the whole fixed supply to the deployer, and has no way to mint more", async () => {
    const read = <F extends "name" | "symbol" | "decimals" | "totalSupply">(functionName: F) =>
      chain.publicClient.readContract({ address: token, abi, functionName });
    assert.equal(await read("name"), "Ledgermind");
    assert.equal(await read("symbol"), "MIND");
    assert.equal(await read("decimals"), 18);
    assert.equal(await read("totalSupply"), TOKEN_SUPPLY);
    assert.equal(TOKEN_SUPPLY, parseEther("1000000000"));
    assert.equal(await balanceOf(addr(0)), TOKEN_SUPPLY);
    for (const i of [1, 2, 19]) assert.equal(await balanceOf(addr(i)), 0n);
    const stateChanging = (abi as Abi)
      .filter((item): item is AbiFunction => item.type === "function")
      .filter((item) => item.stateMutability === "nonpayable" || item.stateMutability === "payable")
      .map((item) => item.name)
      .sort();
    assert.deepEqual(stateChanging, [
      "approve",
      "delegate",
      "delegateBySig",
      "permit",
      "transfer",
      "transferFrom",
    ]);
  });

  it("transfers move balances, emit Transfer and refuse overdrafts", async () => {
    const value = parseEther("1000");
    const receipt = await transfer(0, addr(1), value);
    const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "Transfer" });
    assert.ok(log);
    assert.ok(isAddressEqual(log.args.from, addr(0)));
    assert.ok(isAddressEqual(log.args.to, addr(1)));
    assert.equal(log.args.value, value);
    assert.equal(await balanceOf(addr(1)), value);
    assert.equal(await balanceOf(addr(0)), TOKEN_SUPPLY - value);

    await transfer(1, addr(2), parseEther("1"));
    assert.equal(await balanceOf(addr(1)), value - parseEther("1"));
    assert.equal(await balanceOf(addr(2)), parseEther("1"));

    await refused(transfer(2, addr(3), parseEther("2")), "ERC20InsufficientBalance", (args) =>
      assert.deepEqual(args, [addr(2), parseEther("1"), parseEther("2")]),
    );
    await refused(transfer(2, zeroAddress, 1n), "ERC20InvalidReceiver", (args) =>
      assert.deepEqual(args, [zeroAddress]),
    );
    assert.equal(await balanceOf(addr(2)), parseEther("1"));
    const total = await chain.publicClient.readContract({ address: token, abi, functionName: "totalSupply" });
    assert.equal(total, TOKEN_SUPPLY);
  });

  it("permit: a signature from the owner sets an allowance that a spender uses; replays and late permits fail", async () => {
    const owner = account(1);
    const spender = 2;
    const relayer = 3;
    const value = parseEther("100");
    const nonce = await nonces(owner.address);
    const deadline = await deadlineIn(3600);
    const sig = await signPermit(owner, owner.address, addr(spender), value, nonce, deadline);

    const permit = (s: { r: `0x${string}`; s: `0x${string}`; v: number }, d = deadline, v = value) =>
      sendAndWait(chain, () =>
        chain.wallet(relayer).writeContract({
          address: token,
          abi,
          functionName: "permit",
          args: [owner.address, addr(spender), v, d, s.v, s.r, s.s],
        }),
      );

    const receipt = await permit(sig);
    const [approval] = parseEventLogs({ abi, logs: receipt.logs, eventName: "Approval" });
    assert.ok(approval && isAddressEqual(approval.args.owner, owner.address));
    assert.equal(approval.args.value, value);
    assert.equal(
      await chain.publicClient.readContract({
        address: token,
        abi,
        functionName: "allowance",
        args: [owner.address, addr(spender)],
      }),
      value,
    );
    assert.equal(await nonces(owner.address), nonce + 1n);

    const ownerBefore = await balanceOf(owner.address);
    const spenderBefore = await balanceOf(addr(spender));
    await sendAndWait(chain, () =>
      chain.wallet(spender).writeContract({
        address: token,
        abi,
        functionName: "transferFrom",
        args: [owner.address, addr(spender), parseEther("60")],
      }),
    );
    assert.equal(await balanceOf(owner.address), ownerBefore - parseEther("60"));
    assert.equal(await balanceOf(addr(spender)), spenderBefore + parseEther("60"));
    assert.equal(
      await chain.publicClient.readContract({
        address: token,
        abi,
        functionName: "allowance",
        args: [owner.address, addr(spender)],
      }),
      parseEther("40"),
    );
    await refused(
      sendAndWait(chain, () =>
        chain.wallet(spender).writeContract({
          address: token,
          abi,
          functionName: "transferFrom",
          args: [owner.address, addr(spender), parseEther("41")],
        }),
      ),
      "ERC20InsufficientAllowance",
      (args) => assert.deepEqual(args, [addr(spender), parseEther("40"), parseEther("41")]),
    );

    // The nonce moved, so the same signature now recovers someone else.
    await refused(permit(sig), "ERC2612InvalidSigner", (args) => {
      assert.ok(!isAddressEqual(args[0] as Address, owner.address));
      assert.ok(isAddressEqual(args[1] as Address, owner.address));
    });
    // A permit signed by someone other than the owner.
    const forged = await signPermit(account(4), owner.address, addr(spender), value, nonce + 1n, deadline);
    await refused(permit(forged), "ERC2612InvalidSigner", (args) => {
      assert.ok(isAddressEqual(args[0] as Address, addr(4)));
      assert.ok(isAddressEqual(args[1] as Address, owner.address));
    });
    // A genuine signature with a different value.
    const genuine = await signPermit(owner, owner.address, addr(spender), value, nonce + 1n, deadline);
    await refused(permit(genuine, deadline, value + 1n), "ERC2612InvalidSigner");
    // An expired permit.
    const past = (await deadlineIn(0)) - 1n;
    const expired = await signPermit(owner, owner.address, addr(spender), value, nonce + 1n, past);
    await refused(permit(expired, past), "ERC2612ExpiredSignature", (args) => assert.deepEqual(args, [past]));
    assert.equal(await nonces(owner.address), nonce + 1n, "refused permits use no nonce");
  });

  it("votes: balances count only once delegated, and follow delegation and transfers", async () => {
    const holder = 5;
    const delegatee = 6;
    const outsider = 7;
    const amount = parseEther("5000");
    await transfer(0, addr(holder), amount);
    assert.equal(await balanceOf(addr(holder)), amount);
    assert.equal(await getVotes(addr(holder)), 0n, "undelegated balances carry no votes");

    const selfDelegation = await delegate(holder, addr(holder));
    assert.equal(await getVotes(addr(holder)), amount);
    assert.ok(
      isAddressEqual(
        await chain.publicClient.readContract({
          address: token,
          abi,
          functionName: "delegates",
          args: [addr(holder)],
        }),
        addr(holder),
      ),
    );

    await transfer(holder, addr(outsider), parseEther("1000"));
    assert.equal(await getVotes(addr(holder)), parseEther("4000"));
    assert.equal(await getVotes(addr(outsider)), 0n);

    const moved = await delegate(holder, addr(delegatee));
    assert.equal(await getVotes(addr(holder)), 0n);
    assert.equal(await getVotes(addr(delegatee)), parseEther("4000"));
    await transfer(0, addr(holder), parseEther("500"));
    assert.equal(await getVotes(addr(delegatee)), parseEther("4500"));

    const pastVotes = (a: Address, block: bigint) =>
      chain.publicClient.readContract({
        address: token,
        abi,
        functionName: "getPastVotes",
        args: [a, block],
      });
    assert.equal(await pastVotes(addr(holder), selfDelegation.blockNumber), amount);
    assert.equal(await pastVotes(addr(holder), moved.blockNumber - 1n), parseEther("4000"));
    assert.equal(await pastVotes(addr(delegatee), moved.blockNumber), parseEther("4000"));
    assert.equal(await pastVotes(addr(delegatee), selfDelegation.blockNumber), 0n);
    assert.equal(
      await chain.publicClient.readContract({
        address: token,
        abi,
        functionName: "getPastTotalSupply",
        args: [moved.blockNumber],
      }),
      TOKEN_SUPPLY,
    );
  });

  it("delegateBySig: a signed delegation submitted by anyone moves votes", async () => {
    const holder = account(8);
    const delegatee = 9;
    await transfer(0, holder.address, parseEther("700"));
    const nonce = await nonces(holder.address);
    const expiry = await deadlineIn(3600);
    const sig = parseSignature(
      await holder.signTypedData({
        domain: await domain(),
        types: DELEGATION_TYPES,
        primaryType: "Delegation",
        message: { delegatee: addr(delegatee), nonce, expiry },
      }),
    );
    const submit = () =>
      sendAndWait(chain, () =>
        chain.wallet(0).writeContract({
          address: token,
          abi,
          functionName: "delegateBySig",
          args: [addr(delegatee), nonce, expiry, Number(sig.v ?? BigInt(sig.yParity + 27)), sig.r, sig.s],
        }),
      );
    await submit();
    assert.equal(await getVotes(addr(delegatee)), parseEther("700"));
    assert.equal(await nonces(holder.address), nonce + 1n);
    await refused(submit(), "InvalidAccountNonce");
  });
});
