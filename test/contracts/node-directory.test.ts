/**
 * NodeDirectory on the embedded EVM: each account announces, replaces and withdraws only its own URL; the
 * URL checks (empty, too long, scheme, forbidden bytes) and the lookup bound each revert with their own
 * error; no money can move; the gas of an announcement is reported.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  type Abi,
  type AbiFunction,
  type Address,
  parseEther,
  parseEventLogs,
  type TransactionReceipt,
} from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { NodeDirectory } from "../../src/chain/generated/contracts.ts";
import { ContractRefusedError, decodeRevert, sendAndWait } from "../../src/chain/tx.ts";

const abi = NodeDirectory.abi;
const SOURCE = readFileSync(new URL("../../contracts/NodeDirectory.sol", import.meta.url), "utf8");

let chain: LedgerChain;
let directory: Address;
/** Every custom error name a test saw the contract raise, checked against the source at the end. */
const observedErrors = new Set<string>();

const addr = (i: number): Address => {
  const a = chain.accounts[i];
  if (!a) throw new Error(`no dev account #${i}`);
  return a.address;
};

function announce(from: number, url: string): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    chain.wallet(from).writeContract({ address: directory, abi, functionName: "announce", args: [url] }),
  );
}

function withdraw(from: number): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    chain.wallet(from).writeContract({ address: directory, abi, functionName: "withdraw" }),
  );
}

function endpointOf(node: Address): Promise<string> {
  return chain.publicClient.readContract({
    address: directory,
    abi,
    functionName: "endpointOf",
    args: [node],
  });
}

function endpointsOf(nodes: readonly Address[]): Promise<readonly string[]> {
  return chain.publicClient.readContract({
    address: directory,
    abi,
    functionName: "endpointsOf",
    args: [nodes],
  });
}

async function refused(p: Promise<unknown>, errorName: string, args: readonly unknown[] = []): Promise<void> {
  // A write arrives decoded by sendAndWait; a read (endpointsOf) as viem's error.
  const decoded = p.catch((err: unknown) => {
    throw decodeRevert(err);
  });
  await assert.rejects(decoded, (err: unknown) => {
    assert.ok(err instanceof ContractRefusedError, `expected ContractRefusedError, got ${String(err)}`);
    assert.equal(err.errorName, errorName);
    assert.deepEqual(err.args, args);
    observedErrors.add(err.errorName);
    return true;
  });
}

before(async () => {
  chain = await connect({ ephemeral: true });
  directory = (await deployAll(chain)).contracts.NodeDirectory.address;
});

after(async () => {
  await chain?.close();
});

describe("NodeDirectory", { concurrency: false }, () => {
  it("announces, replaces and withdraws the caller's own URL, each with its event", async () => {
    assert.equal(await endpointOf(addr(1)), "", "nothing announced yet");
    const first = await announce(1, "http://10.0.0.2:8600");
    const [announced] = parseEventLogs({ abi, logs: first.logs, eventName: "EndpointAnnounced" });
    assert.deepEqual(announced?.args, { node: addr(1), url: "http://10.0.0.2:8600" });
    assert.equal(await endpointOf(addr(1)), "http://10.0.0.2:8600");

    await announce(1, "https://node-1.example.org/ledgermind");
    assert.equal(await endpointOf(addr(1)), "https://node-1.example.org/ledgermind");

    const gone = await withdraw(1);
    const [withdrawn] = parseEventLogs({ abi, logs: gone.logs, eventName: "EndpointWithdrawn" });
    assert.deepEqual(withdrawn?.args, { node: addr(1) });
    assert.equal(await endpointOf(addr(1)), "");
    await refused(withdraw(1), "NoEndpoint", [addr(1)]);
  });

  it("endpointsOf answers in the order asked, empty where none is announced", async () => {
    await announce(2, "http://127.0.0.1:8602");
    await announce(4, "http://127.0.0.1:8604");
    assert.deepEqual(await endpointsOf([addr(4), addr(3), addr(2), addr(4)]), [
      "http://127.0.0.1:8604",
      "",
      "http://127.0.0.1:8602",
      "http://127.0.0.1:8604",
    ]);
    assert.deepEqual(await endpointsOf([]), []);
    const max = await chain.publicClient.readContract({
      address: directory,
      abi,
      functionName: "MAX_LOOKUP",
    });
    assert.equal((await endpointsOf(Array(Number(max)).fill(addr(2)))).length, Number(max));
    await refused(endpointsOf(Array(Number(max) + 1).fill(addr(2))), "TooManyAddresses", [max + 1n, max]);
  });

  it("endpoint hijack: an account cannot set another's endpoint", async () => {
    await announce(5, "http://honest.example:8600");
    // The attacker's only levers are announce and withdraw, and both act on msg.sender alone.
    const writes = (abi as Abi)
      .filter((item): item is AbiFunction => item.type === "function" && item.stateMutability !== "view")
      .map((item) => `${item.name}(${item.inputs.map((i) => i.type).join(",")})`)
      .sort();
    assert.deepEqual(writes, ["announce(string)", "withdraw()"], "no write takes another account");
    await announce(6, "http://attacker.example:8600");
    await refused(withdraw(7), "NoEndpoint", [addr(7)]);
    await withdraw(6);
    assert.equal(await endpointOf(addr(5)), "http://honest.example:8600", "the honest entry is untouched");
    assert.equal(await endpointOf(addr(6)), "");
  });

  it("refuses an empty URL, one over MAX_URL_BYTES, another scheme, a space or a control byte", async () => {
    const max = await chain.publicClient.readContract({
      address: directory,
      abi,
      functionName: "MAX_URL_BYTES",
    });
    assert.equal(max, 256n);
    const longest = `http://${"a".repeat(Number(max) - 7)}`;
    await announce(8, longest);
    assert.equal(await endpointOf(addr(8)), longest, "exactly MAX_URL_BYTES is accepted");

    await refused(announce(8, ""), "EmptyUrl");
    await refused(announce(8, `${longest}a`), "UrlTooLong", [max + 1n, max]);
    for (const url of ["ftp://x", "http://", "https://", "HTTP://x", "http:/x", "10.0.0.2:8600", "httpsx//y"])
      await refused(announce(8, url), "UnsupportedScheme");
    await refused(announce(8, "http://a b"), "ForbiddenCharacter", [8n]);
    await refused(announce(8, "https://a\nforged log line"), "ForbiddenCharacter", [9n]);
    await refused(announce(8, "http://a\u007f"), "ForbiddenCharacter", [8n]);
    await refused(announce(8, "http://a\u0000"), "ForbiddenCharacter", [8n]);
    assert.equal(await endpointOf(addr(8)), longest, "every refusal left the entry as it was");
  });

  it("moves no money: it takes no ether", async () => {
    const payable = (abi as Abi).filter(
      (item) => "stateMutability" in item && item.stateMutability === "payable",
    );
    assert.deepEqual(payable, []);
    await assert.rejects(
      sendAndWait(chain, () => chain.wallet(1).sendTransaction({ to: directory, value: parseEther("1") })),
    );
    assert.equal(await chain.publicClient.getBalance({ address: directory }), 0n);
  });

  it("gas of announce (reported)", async (t) => {
    const typical = await announce(9, "http://10.0.0.2:8600");
    const replace = await announce(9, "http://10.0.0.3:8600");
    const longest = await announce(10, `https://${"a".repeat(248)}`);
    const gas = { first: typical.gasUsed, replace: replace.gasUsed, longest: longest.gasUsed };
    t.diagnostic(
      `NodeDirectory.announce gas: ${JSON.stringify(gas, (_k, v) => (typeof v === "bigint" ? Number(v) : v))}`,
    );
    assert.ok(typical.gasUsed < 80_000n, `a typical first announce costs ${typical.gasUsed}`);
    assert.ok(longest.gasUsed < 300_000n, `a 256-byte announce costs ${longest.gasUsed}`);
  });
});

describe("NodeDirectory error coverage", () => {
  it("every custom error declared in NodeDirectory.sol is in the ABI and was observed by a test", () => {
    const declared = [...SOURCE.matchAll(/^\s*error\s+(\w+)\s*\(/gm)].map((m) => m[1] as string);
    assert.equal(declared.length, 6, `parsed ${declared.join(", ")}`);
    const abiErrors = new Set<string>(abi.filter((item) => item.type === "error").map((item) => item.name));
    for (const name of declared) assert.ok(abiErrors.has(name), `${name} is in the ABI`);
    const missing = declared.filter((name) => !observedErrors.has(name));
    assert.deepEqual(missing, [], `custom errors never reached by a test: ${missing.join(", ")}`);
  });
});
