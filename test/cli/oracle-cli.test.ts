/**
 * `ledgermind oracle` end to end, as separate processes on a shared development chain (anvil, chain 1337):
 * `oracle spec`, two `oracle serve` operators in the background (one faulty) beside a second honest one
 * in-process (a result needs more than half of the revealed stake behind it), `oracle request --wait`,
 * `oracle show` (matches: exit 0; a colluding result: exit 1). The model, its weights and the operators'
 * MIND are set up through the library, to keep the number of (slow to start) CLI processes small.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, parseEther } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { type DevNode, startDevNode } from "../../src/chain/devnode.ts";
import { MindToken } from "../../src/chain/generated/contracts.ts";
import { sendAndWait } from "../../src/chain/tx.ts";
import { computeAnswer, requestInference, toFixedInput, waitForResult } from "../../src/oracle/client.ts";
import { type RunningOperator, startOperator } from "../../src/oracle/operator.ts";
import { addVersion, openRegistry, registerModel } from "../../src/registry/client.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import { YIELD_RISK_WEIGHTS } from "../oracle/yield-risk-weights.ts";
import { cliWith, show } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-oracle-cli-"));
const DATA = join(TMP, "data");

/** `ledgermind --data-dir DATA --rpc URL ...args` on the shared chain, killed after 60 s unless told otherwise. */
const { cli, spawnCli } = cliWith(() => ({ dataDir: DATA, rpc: url, timeoutMs: 60_000 }));

/** A background `oracle serve`: its output so far, and a way to wait for a line. */
class Server {
  readonly child: ChildProcess;
  out = "";
  err = "";
  constructor(args: string[]) {
    this.child = spawnCli(["oracle", "serve", ...args]);
    this.child.stdout?.on("data", (c: Buffer) => {
      this.out += c.toString();
    });
    this.child.stderr?.on("data", (c: Buffer) => {
      this.err += c.toString();
    });
  }
  async waitFor(pattern: RegExp, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pattern.test(this.out)) {
      if (this.child.exitCode !== null || Date.now() > deadline)
        assert.fail(
          `no ${pattern} from oracle serve (exit ${this.child.exitCode}):\n${this.out}\n${this.err}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  stop(): Promise<number | null> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve(this.child.exitCode);
      this.child.once("exit", (code) => resolve(code));
      this.child.kill("SIGTERM");
    });
  }
}

const INPUT = "0.55,0.35,0.3,0.8";
const HONEST = computeAnswer(YIELD_RISK_WEIGHTS, toFixedInput([0.55, 0.35, 0.3, 0.8]));

let node: DevNode;
let url: string;
let chain: LedgerChain;
const servers: Server[] = [];
let colluder: RunningOperator | undefined;
let second: RunningOperator | undefined;

before(async () => {
  node = await startDevNode({ port: 0 });
  url = node.url;
  chain = await connect({ rpc: url, dataDir: DATA });
  const manifest = await deployAll(chain);
  const reg = await openRegistry(chain);
  const weightsCid = await new FsBlobStore(join(DATA, "blobs")).put(YIELD_RISK_WEIGHTS);
  const { modelId } = await registerModel(reg, "crop-yield-risk");
  await addVersion(reg, modelId, { weightsCid });
  for (const i of [1, 3, 4]) {
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
  await colluder?.stop();
  await second?.stop();
  await Promise.all(servers.map((s) => s.stop()));
  await chain?.close();
  await node?.stop();
  rmSync(TMP, { recursive: true, force: true });
});

describe("ledgermind oracle (anvil, separate processes)", { concurrency: false }, () => {
  it("spec declares the input size; a malformed model reference is a one-line usage error", async () => {
    const [ok, bad] = await Promise.all([
      cli(["oracle", "spec", "--model", "1@1", "--input-size", "4"]),
      cli(["oracle", "request", "--model", "1", "--input", INPUT]),
    ]);
    assert.equal(ok.code, 0, show(ok));
    assert.match(ok.stdout, /model 1@1 takes 4 input value\(s\) \(gas \d+\)/);
    assert.equal(bad.code, 2, show(bad));
    assert.match(bad.stderr, /^ledgermind: expected MODEL@VERSION .*\n$/);
  });

  it("two `oracle serve` operators and an in-process one answer `oracle request --wait`; the faulty one is slashed", async () => {
    second = await startOperator({
      chain,
      account: 4,
      store: new FsBlobStore(join(DATA, "blobs")),
      modelId: 1n,
      version: 1,
      stateFile: join(TMP, "second.json"),
      pollMs: 100,
    });
    servers.push(new Server(["--model", "1@1", "--account", "1", "--poll-ms", "100"]));
    servers.push(
      new Server([
        "--model",
        "1@1",
        "--account",
        "2",
        "--fund-from",
        "0",
        // Above the minimum, so that its first slash leaves it active for the colluding request below;
        // below the honest pair's 200, so that they hold the majority of the stake.
        "--stake",
        "150",
        "--faulty-offset",
        "0.5",
        "--poll-ms",
        "100",
      ]),
    );
    await Promise.all(servers.map((s) => s.waitFor(/serving model 1@1, weights 0x[0-9a-f]{64} verified/)));
    const [first, faulty] = servers as [Server, Server];
    assert.match(first.out, /registered with a stake of 100 MIND \(block \d+, gas \d+\)/);
    assert.match(faulty.out, /registered with a stake of 150 MIND \(block \d+, gas \d+\)/);

    const r = await cli([
      "--json",
      "oracle",
      "request",
      "--model",
      "1@1",
      "--input",
      INPUT,
      "--fee",
      "2",
      "--wait",
    ]);
    assert.equal(r.code, 0, show(r));
    const json = JSON.parse(r.stdout);
    assert.equal(json.requestId, "1");
    assert.equal(json.result.state, "finalized");
    assert.equal(json.result.output, HONEST.toString());

    const honest = first;
    await honest.waitFor(/request 1 (was settled|: result)|finalized request 1/);
    await faulty.waitFor(/request 1 (was settled|: result)|finalized request 1/);
    for (const s of servers) {
      assert.match(s.out, /committed request 1 \(block \d+, gas \d+\)/);
      assert.match(s.out, /revealed request 1: \d+\.\d+ \(block \d+, gas \d+\)/);
    }
    assert.match(faulty.out, /this operator was slashed 15 MIND/);
    assert.doesNotMatch(honest.out, /slashed/);
    assert.equal(honest.err + faulty.err, "");
  });

  it("`oracle show` re-runs the model: matches (exit 0)", async () => {
    const r = await cli(["oracle", "show", "1"]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /request 1: finalized/);
    assert.match(r.stdout, /model +1@1 \(median\)/);
    assert.match(r.stdout, /weights +0x[0-9a-f]{64} \(b[a-z2-7]+\)/);
    assert.match(r.stdout, /verdict +matches/);
  });

  it("a result two colluding operators pushed: `oracle show` says by how much it differs (exit 1)", async () => {
    colluder = await startOperator({
      chain,
      account: 3,
      store: new FsBlobStore(join(DATA, "blobs")),
      modelId: 1n,
      version: 1,
      stateFile: join(TMP, "colluder.json"),
      faultyOffset: 500_000n,
      pollMs: 100,
    });
    const { requestId } = await requestInference(chain, {
      modelId: 1n,
      version: 1,
      input: toFixedInput([0.55, 0.35, 0.3, 0.8]),
    });
    const status = await waitForResult(chain, requestId, { timeoutMs: 30_000 });
    assert.equal(
      status.output,
      HONEST + 500_000n,
      "h+0.5 has more than half of the revealed stake (135 + 100 of 435) behind it",
    );
    const r = await cli(["oracle", "show", requestId.toString()]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stdout, /MISMATCH: the on-chain result differs from the re-run by 0\.5 \(500000\)/);
    assert.match(
      r.stderr,
      /^ledgermind: request 2: the on-chain result .* differs from the model's .* by 0\.5\n$/,
    );
  });

  it("`oracle serve` stops on SIGTERM, keeping its state", async () => {
    const codes = await Promise.all(servers.map((s) => s.stop()));
    assert.deepEqual(codes, [0, 0]);
    for (const s of servers)
      assert.match(s.out, /stopped; state kept in .*operator-1337-0x[0-9a-f]{40}-1@1\.json/);
  });
});
