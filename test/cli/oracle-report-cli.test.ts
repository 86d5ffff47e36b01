/**
 * Signed reports between `ledgermind oracle serve` processes on a shared development chain (anvil, chain
 * 1337): three operators started with `--listen` and `--peer` answer a request through one report (no
 * reveal, all three signers); one of them killed with SIGKILL, the two left hold exactly 2/3 of the stake,
 * which is not enough for a report, and commit-reveal answers instead. A `--peer` without `--listen` is a
 * usage error. The model and the operators' MIND are set up through the library.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, decodeFunctionData, parseEther } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { type DevNode, startDevNode } from "../../src/chain/devnode.ts";
import { InferenceOracle, MindToken } from "../../src/chain/generated/contracts.ts";
import { sendAndWait } from "../../src/chain/tx.ts";
import {
  computeAnswer,
  type Oracle,
  openOracle,
  requestInference,
  setModelSpec,
  toFixedInput,
  waitForResult,
} from "../../src/oracle/client.ts";
import { addVersion, openRegistry, registerModel } from "../../src/registry/client.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import { YIELD_RISK_WEIGHTS } from "../oracle/yield-risk-weights.ts";
import { type CliProcess, cliWith, show } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-oracle-report-cli-"));
const DATA = join(TMP, "data");
const OPS = [1, 2, 3];

const { cli, spawnCli } = cliWith(() => ({ dataDir: DATA, rpc: url, timeoutMs: 60_000 }));

const INPUT = toFixedInput([0.55, 0.35, 0.3, 0.8]);
const HONEST = computeAnswer(YIELD_RISK_WEIGHTS, INPUT);

/** A background `oracle serve --listen`: its output so far. */
class Server {
  readonly child: CliProcess;
  out = "";
  err = "";
  constructor(args: string[]) {
    this.child = spawnCli(["oracle", "serve", ...args]);
    this.child.stdout.on("data", (c: Buffer) => {
      this.out += c.toString();
    });
    this.child.stderr.on("data", (c: Buffer) => {
      this.err += c.toString();
    });
  }
  async waitFor(pattern: RegExp, ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pattern.test(this.out)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null || Date.now() > deadline)
        assert.fail(
          `no ${pattern} from oracle serve (exit ${this.child.exitCode}):\n${this.out}\n${this.err}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once("exit", () => resolve());
      this.child.kill(signal);
    });
  }
}

/** A port nobody listens on now, for `--listen` (peers must know each other's URL before they start). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

let node: DevNode;
let url: string;
let chain: LedgerChain;
let oracle: Oracle;
const servers: Server[] = [];

async function finalizedBy(requestId: bigint): Promise<{ fn: string; signers?: readonly Address[] }> {
  const [done] = await chain.publicClient.getContractEvents({
    address: oracle.address,
    abi: InferenceOracle.abi,
    eventName: "InferenceFinalized",
    args: { requestId },
    fromBlock: 0n,
  });
  assert.ok(done, `request ${requestId} has no InferenceFinalized log`);
  const tx = await chain.publicClient.getTransaction({ hash: done.transactionHash });
  const call = decodeFunctionData({ abi: InferenceOracle.abi, data: tx.input });
  return {
    fn: call.functionName,
    signers: call.functionName === "submitReport" ? (call.args[2] as readonly Address[]) : undefined,
  };
}

async function reveals(requestId: bigint): Promise<number> {
  const logs = await chain.publicClient.getContractEvents({
    address: oracle.address,
    abi: InferenceOracle.abi,
    eventName: "Revealed",
    args: { requestId },
    fromBlock: 0n,
  });
  return logs.length;
}

before(async () => {
  node = await startDevNode({ port: 0 });
  url = node.url;
  chain = await connect({ rpc: url, dataDir: DATA });
  const manifest = await deployAll(chain);
  oracle = await openOracle(chain);
  const reg = await openRegistry(chain);
  const weightsCid = await new FsBlobStore(join(DATA, "blobs")).put(YIELD_RISK_WEIGHTS);
  const { modelId } = await registerModel(reg, "crop-yield-risk");
  await addVersion(reg, modelId, { weightsCid });
  await setModelSpec(chain, modelId, 1, INPUT.length);
  for (const i of OPS) {
    await sendAndWait(chain, () =>
      chain.wallet(0).writeContract({
        address: manifest.contracts.MindToken.address,
        abi: MindToken.abi,
        functionName: "transfer",
        args: [(chain.accounts[i] as { address: Address }).address, parseEther("500")],
      }),
    );
  }
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop("SIGKILL")));
  await chain?.close();
  await node?.stop();
  rmSync(TMP, { recursive: true, force: true });
});

describe("ledgermind oracle serve --listen --peer (anvil, separate processes)", {
  concurrency: false,
}, () => {
  it("--peer without --listen is a one-line usage error", async () => {
    const r = await cli(["oracle", "serve", "--model", "1@1", "--peer", "http://127.0.0.1:9"]);
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /^ledgermind: --peer needs --listen: .*\n$/);
  });

  it("three operator processes answer a request through one signed report, without a reveal", async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    for (const [k, i] of OPS.entries()) {
      servers.push(
        new Server([
          "--model",
          "1@1",
          "--account",
          String(i),
          "--poll-ms",
          "100",
          "--listen",
          `127.0.0.1:${ports[k]}`,
          "--peer",
          urls.filter((_, j) => j !== k).join(","),
          "--leader-timeout-ms",
          "1000",
          "--report-window-ms",
          "6000",
        ]),
      );
    }
    await Promise.all(
      servers.map((s) => s.waitFor(/reports: serving on http:\/\/127\.0\.0\.1:\d+, 2 peer\(s\)/)),
    );
    const { requestId } = await requestInference(chain, { modelId: 1n, version: 1, input: INPUT });
    const status = await waitForResult(chain, requestId, { timeoutMs: 30_000 });
    assert.equal(status.output, HONEST);
    const how = await finalizedBy(requestId);
    assert.equal(how.fn, "submitReport");
    assert.equal(how.signers?.length, 3);
    assert.equal(await reveals(requestId), 0);
    const leaders = servers.filter((s) => /submitted the report for request 1 /.test(s.out));
    assert.equal(leaders.length, 1, servers.map((s) => s.out).join("\n---\n"));
    for (const s of servers) await s.waitFor(/request 1 was settled by another party: finalized/);
    assert.equal(servers.map((s) => s.err).join(""), "");
  });

  it("one operator killed (SIGKILL): two of three cannot sign a report, and commit-reveal answers", async () => {
    await (servers[0] as Server).stop("SIGKILL");
    const { requestId } = await requestInference(chain, { modelId: 1n, version: 1, input: INPUT });
    const status = await waitForResult(chain, requestId, { timeoutMs: 60_000 });
    assert.equal(status.output, HONEST);
    assert.equal((await finalizedBy(requestId)).fn, "finalize");
    assert.equal(await reveals(requestId), 2);
    for (const s of servers.slice(1)) {
      assert.match(s.out, /could not lead a report for request 2|revealed request 2/);
      assert.doesNotMatch(s.out, /submitted the report for request 2 /);
    }
  });
});
