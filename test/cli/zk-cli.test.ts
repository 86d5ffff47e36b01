/**
 * `ledgermind zk` end to end, as separate processes on a development chain (anvil): `zk build` records a
 * verifier and a weights commitment for a registered version, `zk prove` writes a proof, `zk verify` checks
 * it on-chain (a tampered proof exits 1), and `oracle serve --zk-secret` settles a request by a proof.
 */

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, parseEther } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { type DevNode, startDevNode } from "../../src/chain/devnode.ts";
import { transferMind } from "../../src/chain/token.ts";
import {
  computeAnswer,
  openOracle,
  requestInference,
  setModelSpec,
  toFixedInput,
  waitForResult,
} from "../../src/oracle/client.ts";
import { createOperator } from "../../src/oracle/operator.ts";
import { addVersion, getZkVerifier, openRegistry, registerModel } from "../../src/registry/client.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import { YIELD_RISK_WEIGHTS } from "../oracle/yield-risk-weights.ts";
import { cliWith, show } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-zk-cli-"));
const DATA = join(TMP, "data");
const { cli, spawnCli } = cliWith(() => ({ dataDir: DATA, rpc: url, timeoutMs: 240_000 }));

const INPUT = "0.55,0.35,0.3,0.8";
const FIXED_INPUT = toFixedInput([0.55, 0.35, 0.3, 0.8]);
const ANSWER = computeAnswer(YIELD_RISK_WEIGHTS, FIXED_INPUT);
const SECRET = join(DATA, "zk", "model-1-v1.json");

let node: DevNode;
let url: string;
let chain: LedgerChain;

before(async () => {
  node = await startDevNode({ port: 0 });
  url = node.url;
  chain = await connect({ rpc: url, dataDir: DATA });
  await deployAll(chain);
  const reg = await openRegistry(chain);
  const weightsCid = await new FsBlobStore(join(DATA, "blobs")).put(YIELD_RISK_WEIGHTS);
  const { modelId } = await registerModel(reg, "crop-yield-risk");
  await addVersion(reg, modelId, { weightsCid });
  await addVersion(reg, modelId, { weightsCid });
  await setModelSpec(chain, modelId, 1, 4, 0);
  for (const i of [3, 4])
    await transferMind(chain, (chain.accounts[i] as { address: Address }).address, parseEther("500"));
});

after(async () => {
  await chain?.close();
  await node?.stop();
  rmSync(TMP, { recursive: true, force: true });
});

describe("ledgermind zk (anvil, separate processes)", { concurrency: false }, () => {
  it("zk build compiles, sets up, deploys the verifier and records it with the commitment; a second build is refused", async () => {
    const built = await cli(["zk", "build", "--model", "1@1"]);
    assert.equal(built.code, 0, show(built));
    assert.match(
      built.stdout,
      /model 1@1: circuit mlp-4-3-1-sigmoid with private weights \(\d+ constraints\), verifier 0x[0-9a-fA-F]{40}/,
    );
    assert.ok(existsSync(SECRET), "the salt file is kept");
    assert.equal(statSync(SECRET).mode & 0o777, 0o600);
    const secret = JSON.parse(readFileSync(SECRET, "utf8")) as { commitment: string; verifier: string };
    const recorded = await getZkVerifier(await openRegistry(chain), { modelId: 1n, version: 1 });
    assert.equal(recorded?.commitment, secret.commitment);
    assert.equal(recorded?.verifier, secret.verifier);
    const again = await cli(["zk", "build", "--model", "1@1"]);
    assert.equal(again.code, 2, show(again));
    assert.match(
      again.stderr,
      /^ledgermind: model 1@1 already has the zk verifier 0x[0-9a-fA-F]{40} \(its salt is in .*\)\n$/,
    );
  });

  it("zk prove writes a proof of the model's answer; zk verify accepts it on-chain and refuses a tampered one (exit 1)", async () => {
    const proofFile = join(TMP, "proof.json");
    const proved = await cli([
      "zk",
      "prove",
      "--model",
      "1@1",
      "--input",
      INPUT,
      "--account",
      "3",
      "--out",
      proofFile,
    ]);
    assert.equal(proved.code, 0, show(proved));
    const proof = JSON.parse(readFileSync(proofFile, "utf8")) as { answer: string; prover: string };
    assert.equal(BigInt(proof.answer), ANSWER);
    assert.equal(proof.prover, (chain.accounts[3] as { address: Address }).address);
    const valid = await cli(["zk", "verify", "--proof", proofFile]);
    assert.equal(valid.code, 0, show(valid));
    assert.match(valid.stdout, /^valid: model 1@1 answers /);
    const forged = join(TMP, "forged.json");
    writeFileSync(forged, JSON.stringify({ ...proof, answer: String(ANSWER + 1n) }));
    const invalid = await cli(["zk", "verify", "--proof", forged]);
    assert.equal(invalid.code, 1, show(invalid));
    assert.match(invalid.stdout, /^invalid: the verifier 0x[0-9a-fA-F]{40} refuses this proof/);
  });

  it("zk build --weights constant --input-bits 20: a circuit of this version; zk prove and zk verify use its plan from the salt file", async () => {
    const bad = await cli(["zk", "build", "--model", "1@2", "--weights", "public"]);
    assert.equal(bad.code, 2, show(bad));
    assert.equal(bad.stderr, "ledgermind: --weights must be private or constant, got public\n");
    const built = await cli(["zk", "build", "--model", "1@2", "--weights", "constant", "--input-bits", "20"]);
    assert.equal(built.code, 0, show(built));
    assert.match(
      built.stdout,
      /model 1@2: circuit mlp-4-3-1-sigmoid with constant weights \(\d+ constraints\)/,
    );
    const secret = JSON.parse(readFileSync(join(DATA, "zk", "model-1-v2.json"), "utf8")) as { plan: unknown };
    assert.deepEqual(secret.plan, { inputBits: 20, weights: "constant" });
    const proofFile = join(TMP, "proof-v2.json");
    const proved = await cli([
      "zk",
      "prove",
      "--model",
      "1@2",
      "--input",
      INPUT,
      "--account",
      "3",
      "--out",
      proofFile,
    ]);
    assert.equal(proved.code, 0, show(proved));
    assert.equal(BigInt((JSON.parse(readFileSync(proofFile, "utf8")) as { answer: string }).answer), ANSWER);
    const valid = await cli(["zk", "verify", "--proof", proofFile]);
    assert.equal(valid.code, 0, show(valid));
    // An input beyond the circuit's 20 bits (2.0 is 2,000,000 > 2^20 in fixed point) is refused before proving.
    const wide = await cli(["zk", "prove", "--model", "1@2", "--input", "2,0,0,0", "--account", "3"]);
    assert.notEqual(wide.code, 0, show(wide));
    assert.match(
      wide.stderr,
      /^ledgermind: input\[0\] = 2000000 is outside the proven range \[-2\^20, 2\^20\)/,
    );
  });

  it("oracle serve --zk-secret settles a request by one proof", async () => {
    const server = spawnCli([
      "oracle",
      "serve",
      "--model",
      "1@1",
      "--account",
      "4",
      "--poll-ms",
      "100",
      "--zk-secret",
      SECRET,
    ]);
    let out = "";
    server.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    try {
      const deadline = Date.now() + 120_000;
      while (!/serving model/.test(out) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /serving model 1@1/);
      // The oracle takes requests once two operators are active: a second one registers and stays idle,
      // so only the proof can settle the request.
      await createOperator({
        chain,
        account: 3,
        store: new FsBlobStore(join(DATA, "blobs")),
        modelId: 1n,
        version: 1,
        stateFile: join(TMP, "idle.json"),
      });
      const oracle = await openOracle(chain);
      const { requestId } = await requestInference(
        oracle,
        { modelId: 1n, version: 1, input: FIXED_INPUT, fee: 0n, aggregation: "median" },
        3,
      );
      const result = await waitForResult(oracle, requestId, { timeoutMs: 120_000 });
      assert.equal(result.output, ANSWER);
      while (!/by a zero-knowledge proof/.test(out) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      assert.match(out, new RegExp(`settled request ${requestId} by a zero-knowledge proof`));
    } finally {
      server.kill("SIGTERM");
      await new Promise((r) => server.once("exit", r));
    }
  });
});
