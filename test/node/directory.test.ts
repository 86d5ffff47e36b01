/**
 * The node directory on one anvil: the client (announce, look up one or many, paged past the contract's
 * bound, the accounts that ever announced, the cached peer resolver), then nodes in-process with NO static
 * peers: two nodes find each other's blobs through the directory, an oracle node fetches its model's
 * weights from another operator's node, and a restart that finds its URL already announced sends nothing.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { type Address, parseEther } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { type DevNode, startDevNode } from "../../src/chain/devnode.ts";
import { NodeDirectory } from "../../src/chain/generated/contracts.ts";
import { transferMind } from "../../src/chain/token.ts";
import { encodeModel } from "../../src/ml/encoding.ts";
import { parseNodeConfig } from "../../src/node/config.ts";
import {
  announcedNodes,
  announceEndpoint,
  type Directory,
  directoryEndpoints,
  directoryPeers,
  endpointOf,
  endpointsOf,
  MAX_LOOKUP,
  openDirectory,
} from "../../src/node/directory.ts";
import { type RunningNode, startNode } from "../../src/node/node.ts";
import { setModelSpec } from "../../src/oracle/client.ts";
import { addVersion, openRegistry, registerModel } from "../../src/registry/client.ts";
import { cidOf } from "../../src/storage/cid.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-directory-"));
let dev: DevNode;
let chain: LedgerChain;
let directory: Directory;
const running: RunningNode[] = [];
const lines: Record<string, unknown>[] = [];
const logger = pino({}, { write: (line: string) => void lines.push(JSON.parse(line)) });

const addr = (i: number): Address => (chain.accounts[i] as { address: Address }).address;

before(async () => {
  dev = await startDevNode({ port: 0 });
  chain = await connect({ rpc: dev.url, dataDir: join(TMP, "deployer") });
  await deployAll(chain);
  directory = await openDirectory(chain);
});

after(async () => {
  await Promise.all(running.map((n) => n.stop()));
  await chain?.close();
  await dev?.stop();
  rmSync(TMP, { recursive: true, force: true });
});

/** A node with no static peers, on account `account`, in `dir` under TMP. */
async function nodeOn(dir: string, account: number, extra: string[] = []): Promise<RunningNode> {
  const config = parseNodeConfig(
    [
      `dataDir: ${dir}`,
      `chain: { rpc: ${dev.url}, deployment: deployer/deployments/1337.json }`,
      `account: ${account}`,
      ...extra,
    ].join("\n"),
    join(TMP, "node.yaml"),
  );
  const node = await startNode({ config, logger });
  running.push(node);
  return node;
}

async function stopNode(node: RunningNode): Promise<void> {
  await node.stop();
  running.splice(running.indexOf(node), 1);
}

describe("directory client", { concurrency: false }, () => {
  it("MAX_LOOKUP is the contract's", async () => {
    const max = await chain.publicClient.readContract({
      address: directory.address,
      abi: NodeDirectory.abi,
      functionName: "MAX_LOOKUP",
    });
    assert.equal(Number(max), MAX_LOOKUP);
  });

  it("announces and reads back one, many (paged past MAX_LOOKUP) and every account that announced", async () => {
    assert.equal(await endpointOf(directory, addr(7)), undefined);
    await announceEndpoint(directory, "http://10.0.0.7:8600", 7);
    await announceEndpoint(directory, "http://10.0.0.8:8600", 8);
    assert.equal(await endpointOf(directory, addr(7)), "http://10.0.0.7:8600");

    const strangers = Array.from({ length: MAX_LOOKUP + 40 }, (_, i) =>
      privateKeyToAddress(`0x${(i + 1).toString(16).padStart(64, "0")}`),
    );
    const asked = [addr(8), ...strangers, addr(7)];
    const urls = await endpointsOf(directory, asked);
    assert.equal(urls.length, asked.length);
    assert.equal(urls[0], "http://10.0.0.8:8600");
    assert.equal(urls.at(-1), "http://10.0.0.7:8600", "the last page answers too");
    assert.equal(urls.filter((u) => u !== undefined).length, 2);

    const nodes = await announcedNodes(directory);
    assert.deepEqual(nodes.slice(0, 2), [addr(7), addr(8)]);
  });

  it("a refused URL is the contract's own error", async () => {
    await assert.rejects(announceEndpoint(directory, "ftp://10.0.0.7", 7), {
      name: "ContractRefusedError",
      errorName: "UnsupportedScheme",
    });
  });

  it("directoryPeers: announced URLs only, no repeats, kept for ttlMs, a failure not kept", async () => {
    let clock = 0;
    let asked = 0;
    let accounts: Address[] = [addr(7), addr(9), addr(8), addr(7)];
    const peers = directoryPeers(
      directory,
      async () => {
        asked++;
        return accounts;
      },
      { ttlMs: 1_000, now: () => clock },
    );
    const [a, b] = await Promise.all([peers(), peers()]);
    assert.deepEqual(a, ["http://10.0.0.7:8600", "http://10.0.0.8:8600"], "account 9 announced none");
    assert.deepEqual(b, a);
    assert.equal(asked, 1, "concurrent calls share one lookup");
    await announceEndpoint(directory, "http://10.0.0.9:8600", 9);
    clock = 999;
    assert.deepEqual(await peers(), a, "still cached");
    clock = 1_000;
    assert.deepEqual(await peers(), ["http://10.0.0.7:8600", "http://10.0.0.9:8600", "http://10.0.0.8:8600"]);
    assert.equal(asked, 2);

    accounts = [];
    const failing = directoryPeers(
      directory,
      async () => {
        asked++;
        if (asked === 3) throw new Error("the chain does not answer");
        return [addr(8)];
      },
      { ttlMs: 60_000, now: () => clock },
    );
    await assert.rejects(failing(), /the chain does not answer/);
    assert.deepEqual(await failing(), ["http://10.0.0.8:8600"], "asked again after a failure");
  });

  it("directoryEndpoints: the named accounts' URLs in order, no repeats, each kept for ttlMs, a failure not kept", async () => {
    let clock = 0;
    let reads = 0;
    let failNext = false;
    // The real directory, behind a read that counts and can fail once.
    const counted = {
      ...directory,
      chain: {
        ...directory.chain,
        publicClient: {
          readContract: (args: Parameters<LedgerChain["publicClient"]["readContract"]>[0]) => {
            reads++;
            if (failNext) {
              failNext = false;
              return Promise.reject(new Error("the chain does not answer"));
            }
            return directory.chain.publicClient.readContract(args);
          },
        },
      },
    } as unknown as Directory;
    const endpoints = directoryEndpoints(counted, { ttlMs: 1_000, now: () => clock });
    const [a, b] = await Promise.all([
      endpoints([addr(8), addr(10), addr(7), addr(8)]),
      endpoints([addr(7)]),
    ]);
    assert.deepEqual(a, ["http://10.0.0.8:8600", "http://10.0.0.7:8600"], "account 10 announced none");
    assert.deepEqual(b, ["http://10.0.0.7:8600"]);
    assert.equal(reads, 1, "accounts read once, in one call, by calls made together");

    await announceEndpoint(directory, "http://10.0.0.77:8600", 7);
    clock = 999;
    assert.deepEqual(await endpoints([addr(7)]), ["http://10.0.0.7:8600"], "still kept");
    assert.deepEqual(await endpoints([addr(9)]), ["http://10.0.0.9:8600"], "a new account is read");
    assert.equal(reads, 2);
    clock = 1_000;
    assert.deepEqual(await endpoints([addr(7), addr(9)]), ["http://10.0.0.77:8600", "http://10.0.0.9:8600"]);
    assert.equal(reads, 3, "only account 7 was stale, read with account 9 kept");

    clock = 5_000;
    failNext = true;
    await assert.rejects(endpoints([addr(8)]), /the chain does not answer/);
    assert.deepEqual(await endpoints([addr(8)]), ["http://10.0.0.8:8600"], "read again after a failure");
    assert.equal(reads, 5);
  });
});

describe("nodes find each other through the directory (no static peers)", { concurrency: false }, () => {
  it("two nodes on one chain fetch each other's blobs by the accounts that announced them", async () => {
    const a = await nodeOn("node-a", 1, ["http: { port: 0 }"]);
    const b = await nodeOn("node-b", 2, ["http: { port: 0 }"]);
    assert.equal(await endpointOf(directory, addr(1)), a.url, "each announced its server's URL");
    assert.equal(await endpointOf(directory, addr(2)), b.url);

    const fromA = new Uint8Array(3000).map((_, i) => (i * 7 + 1) & 0xff);
    const fromB = new Uint8Array(2000).map((_, i) => (i * 13 + 5) & 0xff);
    const cidA = await new FsBlobStore(join(TMP, "node-a", "blobs")).put(fromA);
    const cidB = await new FsBlobStore(join(TMP, "node-b", "blobs")).put(fromB);

    assert.deepEqual(await b.storeFor(async () => [addr(1)]).get(cidA), fromA);
    assert.deepEqual(await a.storeFor(async () => [addr(2)]).get(cidB), fromB);
    assert.ok(await new FsBlobStore(join(TMP, "node-b", "blobs")).has(cidA), "kept after the fetch");

    // Without the directory entry of a holder, nobody is asked: the same blob is not found from account 5.
    const unknown = new Uint8Array([1, 2, 3]);
    await new FsBlobStore(join(TMP, "node-a", "blobs")).put(unknown);
    await assert.rejects(b.storeFor(async () => [addr(5), addr(2)]).get(cidOf(unknown)), /no peer is known/);
    await stopNode(a);
    await stopNode(b);
  });

  it("a restart whose URL is already announced sends no transaction; another URL is announced", async () => {
    const first = await nodeOn("node-c", 3, ["http: { port: 0, publicUrl: http://node-c.example:8600 }"]);
    assert.equal(await endpointOf(directory, addr(3)), "http://node-c.example:8600");
    assert.equal(lines.at(-1)?.announced, true);
    await stopNode(first);

    const before = await chain.publicClient.getTransactionCount({ address: addr(3) });
    const again = await nodeOn("node-c", 3, ["http: { port: 0, publicUrl: http://node-c.example:8600 }"]);
    assert.equal(lines.find((l) => l.msg === `serving on ${again.url}`)?.announced, false);
    assert.equal(await chain.publicClient.getTransactionCount({ address: addr(3) }), before, "no gas spent");
    await stopNode(again);

    const moved = await nodeOn("node-c", 3, ["http: { port: 0, publicUrl: http://node-c.example:8700/ }"]);
    assert.equal(moved.publicUrl, "http://node-c.example:8700");
    assert.equal(await endpointOf(directory, addr(3)), "http://node-c.example:8700");
    await stopNode(moved);
  });

  it("an oracle node fetches its model's weights from another operator's node", async () => {
    const weights = encodeModel({
      architecture: "mlp-2-2-1-sigmoid",
      scaleBits: 16,
      tensors: [
        { name: "dense0.kernel", shape: [2, 2], values: [1.5, -0.5, 0.75, 1.25] },
        { name: "dense0.bias", shape: [2], values: [0.1, -0.2] },
        { name: "dense1.kernel", shape: [2, 1], values: [0.9, -1.1] },
        { name: "dense1.bias", shape: [1], values: [0.3] },
      ],
    });
    // The model's owner (account 0) announces nothing: only the first operator's node holds the weights.
    const weightsCid = cidOf(weights);
    const registry = await openRegistry(chain);
    const { modelId } = await registerModel(registry, "directory-test");
    await addVersion(registry, modelId, { weightsCid });
    await setModelSpec(chain, modelId, 1, 2);
    for (const account of [10, 11]) await transferMind(chain, addr(account), parseEther("500"));
    await new FsBlobStore(join(TMP, "operator-a", "blobs")).put(weights);
    const role = `roles: { oracle: { models: ["${modelId}@1"], pollMs: 200 } }`;

    const a = await nodeOn("operator-a", 10, ["http: { port: 0 }", role]);
    const b = await nodeOn("operator-b", 11, ["http: { port: 0 }", role]);
    assert.deepEqual(await new FsBlobStore(join(TMP, "operator-b", "blobs")).get(weightsCid), weights);
    await stopNode(b);
    await stopNode(a);
  });
});
