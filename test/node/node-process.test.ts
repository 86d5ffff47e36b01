/**
 * `ledgermind node --config FILE` as its own process on a shared development chain (anvil, chain 1337):
 * it fetches the model's weights from a peer (checked by CID), operates the model beside a second
 * operator, answers `oracle request --wait`, serves the weights at /blobs/CID, reports /health and
 * /metrics, and stops on SIGTERM with exit 0 and nothing left running. Also: a bad config is one line,
 * exit 2. The model, its weights and MIND are set up through the library, as in oracle-cli.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseEther } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { type DevNode, startDevNode } from "../../src/chain/devnode.ts";
import { transferMind } from "../../src/chain/token.ts";
import { encodeModel } from "../../src/ml/encoding.ts";
import { computeAnswer, setModelSpec, toFixedInput } from "../../src/oracle/client.ts";
import { type RunningOperator, startOperator } from "../../src/oracle/operator.ts";
import { addVersion, openRegistry, registerModel } from "../../src/registry/client.ts";
import { type BlobServer, createBlobServer } from "../../src/storage/blob-server.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import { assertOneLineError, type CliProcess, cliWith, show } from "../cli/cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-node-"));
/** The deployer's folder: the manifest and the weights the node fetches from a peer. */
const DATA = join(TMP, "deployer");
/** The CLI's own --data-dir, never used by `node` (its folder is the config's). */
const { cli, spawnCli } = cliWith(() => ({ dataDir: join(TMP, "cli"), timeoutMs: 60_000 }));

const WEIGHTS = encodeModel({
  architecture: "mlp-2-2-1-sigmoid",
  scaleBits: 16,
  tensors: [
    { name: "dense0.kernel", shape: [2, 2], values: [1.5, -0.5, 0.75, 1.25] },
    { name: "dense0.bias", shape: [2], values: [0.1, -0.2] },
    { name: "dense1.kernel", shape: [2, 1], values: [0.9, -1.1] },
    { name: "dense1.bias", shape: [1], values: [0.3] },
  ],
});
const INPUT = [0.4, 0.7];

let dev: DevNode;
let chain: LedgerChain;
let peer: BlobServer;
let second: RunningOperator | undefined;
let proc: CliProcess | undefined;
let weightsCid: string;

before(async () => {
  dev = await startDevNode({ port: 0 });
  chain = await connect({ rpc: dev.url, dataDir: DATA });
  await deployAll(chain);
  const store = new FsBlobStore(join(DATA, "blobs"));
  weightsCid = await store.put(WEIGHTS);
  const { modelId } = await registerModel(await openRegistry(chain), "node-test");
  await addVersion(await openRegistry(chain), modelId, { weightsCid });
  await setModelSpec(chain, modelId, 1, INPUT.length);
  for (const account of [1, 4])
    await transferMind(
      chain,
      (chain.accounts[account] as { address: `0x${string}` }).address,
      parseEther("500"),
    );
  peer = await createBlobServer(store);
});

after(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  await second?.stop();
  await peer?.close();
  await chain?.close();
  await dev?.stop();
  rmSync(TMP, { recursive: true, force: true });
});

/** The node's JSON log lines so far. */
function logLines(out: string): Record<string, unknown>[] {
  return out
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("ledgermind node (anvil, separate processes)", { concurrency: false }, () => {
  it("a config that is not valid, or --rpc beside it, is one line, exit 2", async () => {
    const file = join(TMP, "bad.yaml");
    writeFileSync(file, `chain: { rpc: ${dev.url} }\nroles: { oracle: { models: ["one"] } }\n`);
    const [r, rpc] = await Promise.all([
      cli(["node", "--config", file]),
      cli(["--rpc", dev.url, "node", "--config", file]),
    ]);
    assertOneLineError(r, /^ledgermind: .*bad\.yaml: roles\.oracle\.models\[0\]: expected MODEL@VERSION/, 2);
    assertOneLineError(
      rpc,
      /^ledgermind: node takes its chain from the config \(chain\.rpc\), not from --rpc$/,
      2,
    );
  });

  it("operates its model, serves blobs, /health and /metrics, and stops cleanly on SIGTERM", async () => {
    const configFile = join(TMP, "node.yaml");
    writeFileSync(
      configFile,
      [
        "dataDir: node-a",
        `chain: { rpc: ${dev.url}, deployment: deployer/deployments/1337.json }`,
        "account: 1",
        "http: { port: 0 }",
        `peers: [${peer.url}]`,
        'roles: { oracle: { models: ["1@1"], pollMs: 100 } }',
        "",
      ].join("\n"),
    );
    const child = spawnCli(["node", "--config", configFile]);
    proc = child;
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const deadline = Date.now() + 45_000;
    while (!logLines(out).some((l) => l.msg && String(l.msg).startsWith("serving on "))) {
      if (child.exitCode !== null || Date.now() > deadline)
        assert.fail(`no "serving" line (exit ${child.exitCode}):\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const serving = logLines(out).find((l) => String(l.msg).startsWith("serving on ")) as { url: string };
    const url = serving.url;
    assert.ok(
      logLines(out).some((l) => l.event === "ready" && l.model === "1@1" && l.weightsCid === weightsCid),
      "the operator's events are log lines",
    );

    second = await startOperator({
      chain,
      account: 4,
      store: new FsBlobStore(join(DATA, "blobs")),
      modelId: 1n,
      version: 1,
      stateFile: join(TMP, "second.json"),
      pollMs: 100,
    });
    const r = await cli(
      [
        "--json",
        "oracle",
        "request",
        "--model",
        "1@1",
        "--input",
        INPUT.join(","),
        "--wait",
        "--timeout",
        "40",
      ],
      { dataDir: DATA, rpc: dev.url },
    );
    assert.equal(r.code, 0, show(r));
    const result = JSON.parse(r.stdout).result as { state: string; output: string };
    assert.equal(result.state, "finalized");
    assert.equal(result.output, computeAnswer(WEIGHTS, toFixedInput(INPUT)).toString());

    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    const h = (await health.json()) as Record<string, unknown>;
    assert.equal(h.status, "ok");
    assert.equal(h.chainId, 1337);
    assert.deepEqual(h.roles, ["oracle"]);
    assert.deepEqual(h.models, ["1@1"]);
    assert.equal(h.account, (chain.accounts[1] as { address: string }).address);
    assert.ok(typeof h.blockNumber === "number" && h.blockNumber > 0, JSON.stringify(h));
    assert.ok(typeof h.uptimeS === "number", JSON.stringify(h));

    const blob = await fetch(`${url}/blobs/${weightsCid}`);
    assert.equal(blob.status, 200);
    assert.deepEqual(
      new Uint8Array(await blob.arrayBuffer()),
      WEIGHTS,
      "the weights it fetched from the peer",
    );

    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /^ledgermind_node_oracle_requests_answered_total\{model="1@1"\} 1$/m);
    assert.match(
      metrics,
      /^ledgermind_node_oracle_operator_events_total\{type="committed",model="1@1"\} 1$/m,
    );
    assert.match(metrics, /^ledgermind_node_blob_requests_total\{status="200"\} 1$/m);
    assert.match(metrics, new RegExp(`^ledgermind_node_blob_bytes_served_total ${WEIGHTS.length}$`, "m"));
    assert.match(metrics, /^ledgermind_node_http_requests_total\{route="\/health",status="200"\} 1$/m);
    assert.match(metrics, /^ledgermind_node_chain_block_height [1-9]\d*$/m);
    assert.match(metrics, /^ledgermind_node_oracle_stake_mind\{model="1@1"\} 100$/m);
    assert.match(metrics, /^ledgermind_node_process_cpu_seconds_total /m);

    const stoppedAt = Date.now();
    child.kill("SIGTERM");
    assert.equal(await exited, 0, `${out}\n${err}`);
    assert.ok(Date.now() - stoppedAt < 5_000, `stopped in ${Date.now() - stoppedAt} ms`);
    assert.equal(err, "", "nothing on stderr");
    const lines = logLines(out);
    assert.equal(lines.at(-1)?.msg, "stopped", "the last line says it stopped");
    assert.throws(() => process.kill(child.pid as number, 0), /ESRCH/, "no process left");
  });
});
