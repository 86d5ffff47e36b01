/**
 * The CLI end to end, as separate processes: `node --import tsx src/cli/main.ts ...`, asserting on exit
 * codes, stdout and stderr. Three groups run side by side, each in its own temp data dir:
 *   - the embedded chain shared by consecutive processes (register, version, show, blobs, bad input);
 *   - the demo on the embedded chain, then `model verify` against it (tampered files, CIDs, forged ML-DSA);
 *   - `ledgermind chain` (anvil): deploy + demo over --rpc, a lying RPC that forges ECDSA, no deployment.
 * Each CLI process takes seconds to start, so the processes are few and each checks several things.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type AbiEvent,
  type Address,
  bytesToHex,
  decodeEventLog,
  encodeAbiParameters,
  type Hex,
  hexToBytes,
  toEventSelector,
} from "viem";
import { devAccounts } from "../../src/chain/accounts.ts";
import { connect } from "../../src/chain/connect.ts";
import { startDevNode } from "../../src/chain/devnode.ts";
import { ModelRegistry } from "../../src/chain/generated/contracts.ts";
import { encodeModel } from "../../src/ml/encoding.ts";
import {
  type AttestationMessage,
  attestationDomain,
  PQ_SIGNATURE_BYTES,
  pqKeyHash,
  signAttestation,
  VERDICTS,
} from "../../src/registry/attestation.ts";
import { getVersion, openRegistry, submitAttestation } from "../../src/registry/client.ts";
import { encodeModelCard, type ModelCard } from "../../src/registry/model-card.ts";
import { loadOrCreatePqKey } from "../../src/registry/pq-keystore.ts";
import { cidOf } from "../../src/storage/cid.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TMP = mkdtempSync(join(tmpdir(), "ledgermind-cli-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

const DEPLOYER = (devAccounts(1)[0] as { address: Address }).address;
const AUDITOR = (devAccounts(2)[1] as { address: Address }).address;

// ---------------------------------------------------------------------------------------------------------
// Running the CLI

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment the CLI sees: none of the variables that change its keys or its error output. */
function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of [
    "LEDGERMIND_DEBUG",
    "LEDGERMIND_KEYS",
    "LEDGERMIND_MLDSA_SEED",
    "NODE_TEST_CONTEXT",
    "NODE_OPTIONS",
    "FORCE_COLOR",
  ]) {
    delete env[name];
  }
  return env;
}

function spawnCli(args: string[]): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    cwd: ROOT,
    env: cliEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs the CLI to completion (killing it after `timeoutMs`). */
function cli(args: string[], timeoutMs = 90_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const show = (r: Run) =>
  `exit ${r.code}${r.signal ? ` (${r.signal})` : ""}\n--stdout--\n${r.stdout}\n--stderr--\n${r.stderr}`;

function assertOk(r: Run): void {
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stderr, "", show(r));
}

/** A failure as the CLI must report one: a non-zero exit and exactly one `ledgermind: ...` line on stderr. */
function assertOneLineError(r: Run, pattern: RegExp, code?: number): string {
  assert.notEqual(r.code, 0, show(r));
  assert.equal(r.signal, null, show(r));
  if (code !== undefined) assert.equal(r.code, code, show(r));
  assert.doesNotMatch(r.stderr, /^\s+at /m, `a stack trace:\n${show(r)}`);
  const lines = r.stderr.split("\n");
  assert.equal(lines.pop(), "", `stderr must end with a newline:\n${show(r)}`);
  assert.equal(lines.length, 1, `exactly one line on stderr:\n${show(r)}`);
  const line = lines[0] as string;
  assert.ok(line.startsWith("ledgermind: "), `stderr must start with "ledgermind: ":\n${show(r)}`);
  assert.match(line, pattern, show(r));
  return line;
}

function parseJson<T>(r: Run): T {
  assertOk(r);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    assert.fail(`stdout is not one JSON document:\n${show(r)}`);
  }
}

/** A port nothing listens on (until someone takes it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Fixtures

/** A small model in the canonical encoding (LMQ1). */
function weightsFile(seed: number): Uint8Array {
  return encodeModel({
    architecture: "mlp-3-2",
    tensors: [
      { name: "dense/kernel", shape: [3, 2], values: [0.5, -0.25, 0.125, seed, -1, 2] },
      { name: "dense/bias", shape: [2], values: [0.01, -0.02] },
    ],
  });
}

function validCard(datasetCid: string): ModelCard {
  return {
    schema: "ledgermind.model-card/1",
    name: "CLI test model",
    version: "1.0.0",
    description: "A three-input toy model used by the CLI tests.",
    intendedPurpose: {
      purpose: "Exercising the command line.",
      intendedUsers: ["the test suite"],
      outOfScopeUses: ["anything real"],
    },
    provider: { name: "Ledgermind tests", contact: "tests@example.org" },
    architecture: "mlp-3-2",
    dataProvenance: [
      {
        name: "Synthetic",
        cid: datasetCid,
        description: "Made up numbers.",
        licence: "CC0-1.0",
        collection: "Generated by the test.",
        preprocessing: "None.",
      },
    ],
    training: { procedure: "None.", hyperparameters: { epochs: 0 }, computeDescription: "None." },
    metrics: [{ name: "accuracy", value: 0.5, dataset: "synthetic", description: "top-1" }],
    knownLimitations: ["It is a toy."],
    risks: { identified: ["None."], foreseeableMisuse: ["Using it."], mitigations: [] },
    humanOversight: { measures: ["Read the output."], interpretationGuidance: "Do not." },
    lifecycle: { changes: [], monitoring: "None." },
    licence: "MIT",
  };
}

interface DemoJson {
  chainId: number;
  registry: string;
  modelId: string;
  versions: { version: number; weightsCid: string }[];
  attestation: { index: number; attester: string; verdict: string; claimCid: string };
  verification: { ok: boolean; problems: string[]; attestations: { verdict: string }[] };
  lineage: {
    modelId: string;
    version: number;
    weightsCid: string;
    parent?: { modelId: string; version: number };
  }[];
}

interface InsuranceJson {
  policies: { region: number; score: number; matchesRerun: boolean; payout: string }[];
  operators: { faulty: boolean; stakeBefore: string; stakeAfter: string; feesEarned: string }[];
  pool_after: { reserved: string; owed: string };
}

interface FullDemoJson {
  registry: DemoJson;
  insurance: InsuranceJson;
}

/** The oracle part: every score re-checks, payouts follow scores, only the faulty operator loses stake. */
function assertInsurance(ins: InsuranceJson): void {
  assert.equal(ins.policies.length, 4);
  for (const p of ins.policies) assert.equal(p.matchesRerun, true, `region ${p.region}'s result re-checks`);
  const byScore = [...ins.policies].sort((a, b) => a.score - b.score);
  for (let i = 1; i < byScore.length; i++) {
    assert.ok(Number(byScore[i]?.payout) >= Number(byScore[i - 1]?.payout), "a higher score never pays less");
  }
  assert.ok(Number(byScore.at(-1)?.payout) > 0, "the drought region is paid");
  assert.equal(Number(byScore[0]?.payout), 0, "the good season, under the deductible, pays nothing");
  const faulty = ins.operators.filter((o) => o.faulty);
  const honest = ins.operators.filter((o) => !o.faulty);
  assert.equal(faulty.length, 1);
  for (const o of faulty)
    assert.ok(Number(o.stakeAfter) < Number(o.stakeBefore), "the faulty operator is slashed");
  for (const o of honest) {
    assert.equal(o.stakeAfter, o.stakeBefore, "honest operators keep their stake");
    assert.ok(Number(o.feesEarned) > 0, "honest operators are paid");
  }
  assert.equal(ins.pool_after.reserved, "0");
  assert.equal(ins.pool_after.owed, "0", "every payout was claimed");
}

function assertDemo(demo: DemoJson, chainId: number): void {
  assert.equal(demo.chainId, chainId);
  assert.equal(demo.modelId, "1");
  assert.deepEqual(
    demo.versions.map((v) => v.version),
    [1, 2],
  );
  assert.notEqual(demo.versions[0]?.weightsCid, demo.versions[1]?.weightsCid);
  assert.equal(demo.lineage.length, 2);
  const [v2, v1] = demo.lineage;
  assert.equal(v2?.version, 2);
  assert.deepEqual(v2?.parent, { modelId: "1", version: 1 });
  assert.equal(v2?.weightsCid, demo.versions[1]?.weightsCid);
  assert.equal(v1?.version, 1);
  assert.equal(v1?.parent, undefined);
  assert.equal(v1?.weightsCid, demo.versions[0]?.weightsCid);
  assert.equal(demo.verification.ok, true, demo.verification.problems.join("; "));
  assert.deepEqual(demo.verification.problems, []);
  assert.deepEqual(
    demo.verification.attestations.map((a) => a.verdict),
    ["pass"],
  );
  assert.equal(demo.attestation.verdict, "pass");
  assert.equal(demo.attestation.attester, AUDITOR);
}

// ---------------------------------------------------------------------------------------------------------
// A lying RPC: forwards to a real one, but flips one byte of every Attested log's ECDSA signature.

const ATTESTED = ModelRegistry.abi.find(
  (item): item is Extract<(typeof ModelRegistry.abi)[number], { type: "event"; name: "Attested" }> =>
    item.type === "event" && item.name === "Attested",
) as AbiEvent;
const ATTESTED_TOPIC = toEventSelector(ATTESTED);

interface RpcLog {
  topics: Hex[];
  data: Hex;
}

function forgeEcdsa(log: RpcLog): RpcLog {
  const { args } = decodeEventLog({
    abi: ModelRegistry.abi,
    eventName: "Attested",
    data: log.data,
    topics: log.topics as [Hex, ...Hex[]],
  });
  const signature = hexToBytes(args.ecdsaSignature);
  signature[40] = (signature[40] as number) ^ 0x01; // a byte of s
  const data = encodeAbiParameters(
    ATTESTED.inputs.filter((input) => !input.indexed),
    [args.index, args.input, args.nonce, bytesToHex(signature), args.pqSignature],
  );
  return { ...log, data };
}

async function startLyingRpc(
  upstream: string,
): Promise<{ url: string; forged: () => number; close(): Promise<void> }> {
  let forged = 0;
  const server: Server = createHttpServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks).toString();
      const answer = await fetch(upstream, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      const requests = [JSON.parse(body)].flat() as { id: unknown; method: string }[];
      const parsed = (await answer.json()) as unknown;
      const responses = [parsed].flat() as { id: unknown; result?: unknown }[];
      for (const response of responses) {
        const request = requests.find((r) => r.id === response.id);
        if (request?.method !== "eth_getLogs" || !Array.isArray(response.result)) continue;
        response.result = (response.result as RpcLog[]).map((log) => {
          if (log.topics[0] !== ATTESTED_TOPIC) return log;
          forged++;
          return forgeEcdsa(log);
        });
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(Array.isArray(parsed) ? responses : responses[0]));
    } catch (err) {
      res.writeHead(502);
      res.end(String(err));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    forged: () => forged,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------------------------------------------------

describe("ledgermind CLI", { concurrency: true }, () => {
  describe("the embedded chain, shared by consecutive processes", { concurrency: false }, () => {
    const dir = mkdtempSync(join(TMP, "embedded-"));
    const at = (...args: string[]) => cli(["--data-dir", dir, ...args]);
    const weights = join(dir, "weights.lmq");
    const bytes = weightsFile(3);
    const datasetCid = cidOf(new TextEncoder().encode("synthetic dataset"));
    const card = join(dir, "card.json");
    let putCid = "";

    before(() => {
      writeFileSync(weights, bytes);
      writeFileSync(card, JSON.stringify(validCard(datasetCid)));
    });

    it("blob put prints the file's CID", async () => {
      const r = await at("blob", "put", weights);
      assertOk(r);
      putCid = r.stdout.trim();
      assert.equal(putCid, cidOf(bytes));
      assert.deepEqual(new Uint8Array(readFileSync(join(dir, "blobs", putCid))), bytes);
    });

    it("a model registered by one process is found by the next", async () => {
      const reg = await at("model", "register", "--name", "cli-test-model");
      assertOk(reg);
      assert.equal(reg.stdout, 'registered model 1 "cli-test-model"\n');

      const human = await at("model", "show", "1");
      assertOk(human);
      assert.match(human.stdout, /^model 1 "cli-test-model" owned by (0x[0-9a-fA-F]{40}), 0 version\(s\)$/m);
      assert.ok(human.stdout.includes(`owned by ${DEPLOYER}`), show(human));

      const info = parseJson<{ modelId: string; name: string; owner: string; versionCount: number }>(
        await at("--json", "model", "show", "1"),
      );
      assert.deepEqual(
        { modelId: info.modelId, name: info.name, owner: info.owner, versionCount: info.versionCount },
        { modelId: "1", name: "cli-test-model", owner: DEPLOYER, versionCount: 0 },
      );
    });

    it("model version stores the weights; model show --version returns the CID blob put printed", async () => {
      const added = await at(
        "model",
        "version",
        "1",
        "--weights",
        weights,
        "--card",
        card,
        "--metric",
        "accuracy=0.5",
        "--licence",
        "MIT",
      );
      assertOk(added);
      assert.equal(added.stdout, `model 1 version 1: weights ${putCid}\n`);

      const record = parseJson<{
        modelId: string;
        version: number;
        weightsCid: string;
        format: string;
        publisher: string;
        metrics: Record<string, number>;
        licence: string;
        modelCardCid: string;
        parent?: unknown;
      }>(await at("--json", "model", "show", "1", "--version", "1"));
      assert.equal(record.weightsCid, putCid);
      assert.equal(record.modelId, "1");
      assert.equal(record.version, 1);
      assert.equal(record.format, "LMQ1");
      assert.equal(record.publisher, DEPLOYER);
      assert.deepEqual(record.metrics, { accuracy: 0.5 });
      assert.equal(record.licence, "MIT");
      assert.equal(record.parent, undefined);
      assert.equal(record.modelCardCid, cidOf(encodeModelCard(validCard(datasetCid))));
      assert.ok(existsSync(join(dir, "blobs", record.modelCardCid)), "the card is stored by its CID");
    });

    it("blob put then blob get -o round-trips the bytes", async () => {
      const out = join(dir, "back.lmq");
      const r = await at("blob", "get", putCid, "-o", out);
      assertOk(r);
      assert.equal(r.stdout, `${putCid} -> ${out} (${bytes.length} bytes)\n`);
      assert.deepEqual(new Uint8Array(readFileSync(out)), bytes);
    });

    it("a missing weights file: one line naming it", async () => {
      const missing = join(dir, "no-such-weights.lmq");
      const r = await at("model", "version", "1", "--weights", missing);
      const line = assertOneLineError(r, /no such file/, 2);
      assert.ok(line.includes(missing), line);
      assert.equal(r.stdout, "");
    });

    it("a malformed CID in blob get: one line naming the CID", async () => {
      const r = await at("blob", "get", "bafkrei-not-a-cid");
      assertOneLineError(r, /Invalid CID "bafkrei-not-a-cid"/);
      assert.equal(r.stdout, "");
    });

    it("an unknown model: one line", async () => {
      const r = await at("model", "show", "99");
      assertOneLineError(r, /model 99 does not exist on chain 31337 \(1 models\)/, 1);
    });

    it("a non-numeric model id: one line, usage error", async () => {
      const r = await at("model", "show", "abc");
      assertOneLineError(r, /model id must be a positive integer, got "abc"/, 2);
    });

    it("an unknown command: one line", async () => {
      // A near miss, so that commander also suggests a command (today on a second line).
      assertOneLineError(await at("demoo"), /unknown command 'demoo'/, 2);
    });

    it("invalid metric syntax: one line, usage error", async () => {
      const r = await at("model", "version", "1", "--weights", weights, "--metric", "accuracy");
      assertOneLineError(r, /--metric takes NAME=NUMBER, got "accuracy"/, 2);
    });

    it("a model card failing the schema: one line naming the failing field", async () => {
      const bad = validCard(datasetCid) as unknown as { intendedPurpose: Record<string, unknown> };
      delete bad.intendedPurpose.purpose;
      const badCard = join(dir, "bad-card.json");
      writeFileSync(badCard, JSON.stringify(bad));
      const r = await at("model", "version", "1", "--weights", weights, "--card", badCard);
      const line = assertOneLineError(r, /Invalid model card: intendedPurpose\.purpose: /);
      assert.doesNotMatch(line, /dataProvenance|licence/, "only the failing field is named");
    });

    it("blob get of a blob corrupted on disk: one line naming the failed verification", async () => {
      const content = new TextEncoder().encode("a blob that will rot on disk");
      const cid = await new FsBlobStore(join(dir, "blobs")).put(content);
      const file = join(dir, "blobs", cid);
      const rotten = new Uint8Array(readFileSync(file));
      rotten[3] = (rotten[3] as number) ^ 0x20;
      writeFileSync(file, rotten);
      const out = join(dir, "rotten-out");
      const r = await at("blob", "get", cid, "-o", out);
      assertOneLineError(r, new RegExp(`Blob ${cid} failed verification`), 1);
      assert.equal(existsSync(out), false, "nothing is written from a corrupt blob");
    });
  });

  describe("the demo on the embedded chain, then model verify", { concurrency: false }, () => {
    const dir = mkdtempSync(join(TMP, "demo-"));
    const at = (...args: string[]) => cli(["--data-dir", dir, ...args]);
    let demo: DemoJson;
    const weightsOf = (version: 1 | 2) =>
      join(dir, "blobs", demo.versions[version - 1]?.weightsCid as string);

    it("--json demo: two versions, the second's parent is the first, verified, attested pass", async () => {
      const full = parseJson<FullDemoJson>(await cli(["--data-dir", dir, "--json", "demo"], 180_000));
      assertInsurance(full.insurance);
      demo = full.registry;
      assertDemo(demo, 31337);
      for (const v of demo.versions)
        assert.equal(cidOf(new Uint8Array(readFileSync(join(dir, "blobs", v.weightsCid)))), v.weightsCid);
    });

    it("model verify FILE: OK", async () => {
      const r = await at("model", "verify", weightsOf(2), "--model", "1", "--version", "2");
      assertOk(r);
      assert.match(
        r.stdout,
        /^OK: .* is model 1 version 2 \(bafkrei[a-z2-7]+\); 1 attestation\(s\), every signature valid/,
      );
    });

    it("a tampered copy of the file: exit 1, one line naming 'weights differ'", async () => {
      const tampered = new Uint8Array(readFileSync(weightsOf(2)));
      tampered[tampered.length - 5] = (tampered[tampered.length - 5] as number) ^ 0x01;
      const file = join(dir, "tampered.lmq");
      writeFileSync(file, tampered);
      const r = await at("model", "verify", file, "--model", "1", "--version", "2");
      const line = assertOneLineError(r, /weights differ/, 1);
      assert.ok(line.includes(cidOf(tampered)), line);
      assert.ok(line.includes(demo.versions[1]?.weightsCid as string), line);
      assert.match(r.stdout, /^MISMATCH: weights differ/);
    });

    it("--cid of other content: exit 1 naming the weights", async () => {
      const other = demo.versions[0]?.weightsCid as string;
      const r = await at("model", "verify", "--cid", other, "--model", "1", "--version", "2");
      const line = assertOneLineError(r, /weights differ/, 1);
      assert.ok(line.includes(other), line);
    });

    it("a malformed --cid: one line naming the CID", async () => {
      const r = await at(
        "model",
        "verify",
        "--cid",
        "bafkreinotreallyacid",
        "--model",
        "1",
        "--version",
        "2",
      );
      assertOneLineError(r, /Invalid CID "bafkreinotreallyacid"/);
    });

    it("an attestation whose ML-DSA signature is forged: exit 1, one line naming ML-DSA", async () => {
      // The contract checks ECDSA and only the ML-DSA signature's length: submit a genuine ECDSA signature
      // with 3309 random bytes as the ML-DSA one, on version 1.
      const chain = await connect({ dataDir: dir });
      try {
        const reg = await openRegistry(chain);
        const account = chain.accounts[1];
        assert.ok(account && account.address === AUDITOR);
        const pqKey = loadOrCreatePqKey(dir, account.address, {});
        const record = await getVersion(reg, 1n, 1);
        const nonce = await chain.publicClient.readContract({
          address: reg.address,
          abi: ModelRegistry.abi,
          functionName: "nonces",
          args: [account.address],
        });
        const message: AttestationMessage = {
          attester: account.address,
          modelId: 1n,
          version: 1,
          weightsDigest: record.weightsDigest,
          claimDigest: record.weightsDigest,
          verdict: VERDICTS.pass,
          pqKeyHash: pqKeyHash(pqKey.publicKey),
          nonce,
        };
        const { ecdsaSignature } = await signAttestation({
          account,
          pqKey,
          domain: attestationDomain(chain.chainId, reg.address),
          message,
        });
        const forged = bytesToHex(randomBytes(PQ_SIGNATURE_BYTES));
        const { index } = await submitAttestation(reg, message, ecdsaSignature, forged, 1);
        assert.equal(index, 0);
      } finally {
        await chain.close();
      }
      const r = await at("model", "verify", weightsOf(1), "--model", "1", "--version", "1");
      const line = assertOneLineError(r, /ML-DSA/, 1);
      assert.match(line, new RegExp(`attestation #0 by ${AUDITOR}: ML-DSA-65 signature does not verify`));
      assert.doesNotMatch(line, /ECDSA|weights differ/, "the ECDSA signature and the weights are fine");
    });
  });

  describe("ledgermind chain (anvil) over --rpc", { concurrency: false }, () => {
    const dir = mkdtempSync(join(TMP, "rpc-"));
    let chainProcess: ChildProcess | undefined;
    let url = "";
    let chainOutput = "";
    let demo: DemoJson | undefined;

    before(async () => {
      const port = await freePort();
      chainProcess = spawnCli(["--data-dir", dir, "chain", "--port", String(port)]);
      const child = chainProcess;
      url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no "listening" line in 60 s:\n${chainOutput}`)),
          60_000,
        );
        const onData = (chunk: Buffer) => {
          chainOutput += chunk.toString();
          const m = chainOutput.match(/listening on (http:\/\/\S+)/);
          if (m) {
            clearTimeout(timer);
            resolve(m[1] as string);
          }
        };
        child.stdout?.on("data", onData);
        child.stderr?.on("data", onData);
        child.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`ledgermind chain exited with ${code}:\n${chainOutput}`));
        });
      });
      assert.equal(url, `http://127.0.0.1:${port}`);
    });

    after(async () => {
      const child = chainProcess;
      if (!child) return;
      child.kill("SIGINT");
      if (!(await waitForExit(child, 15_000))) {
        child.kill("SIGKILL");
        await waitForExit(child, 5_000);
      }
    });

    it("deploy, then --json demo: succeeds on chain 1337", async () => {
      const deployed = await cli(["--data-dir", dir, "--rpc", url, "deploy"]);
      assertOk(deployed);
      assert.match(
        deployed.stdout,
        /^deployed on chain 1337:\n {2}MindToken {8}0x[0-9a-f]{40}\n {2}ModelRegistry {4}0x[0-9a-f]{40}\n {2}InferenceOracle {2}0x[0-9a-f]{40}\n {2}LearningTasks {3}0x[0-9a-f]{40}\n$/,
      );
      const manifest = JSON.parse(readFileSync(join(dir, "deployments", "1337.json"), "utf8")) as {
        chainId: number;
      };
      assert.equal(manifest.chainId, 1337);

      const full = parseJson<FullDemoJson>(
        await cli(["--data-dir", dir, "--rpc", url, "--json", "demo"], 180_000),
      );
      assertInsurance(full.insurance);
      demo = full.registry;
      assertDemo(demo, 1337);
    });

    it("a lying RPC that forges the ECDSA signature in the logs: exit 1, one line naming ECDSA", async () => {
      assert.ok(demo, "needs the demo's attested version");
      const file = join(dir, "blobs", demo.versions[1]?.weightsCid as string);
      const args = ["model", "verify", file, "--model", "1", "--version", "2"];

      const proxy = await startLyingRpc(url);
      try {
        const r = await cli(["--data-dir", dir, "--rpc", proxy.url, ...args]);
        assert.ok(proxy.forged() >= 1, "the proxy forged an Attested log");
        const line = assertOneLineError(r, /ECDSA/, 1);
        assert.match(line, new RegExp(`attestation #0 by ${AUDITOR}: ECDSA signature`));
        assert.doesNotMatch(line, /ML-DSA|weights differ/, "only the ECDSA signature was touched");
      } finally {
        await proxy.close();
      }
    });

    it("--rpc to a closed port: one line naming the endpoint", async () => {
      const closed = `http://127.0.0.1:${await freePort()}`;
      const r = await cli(["--data-dir", dir, "--rpc", closed, "model", "show", "1"]);
      const line = assertOneLineError(r, /no EVM JSON-RPC endpoint answers/, 1);
      assert.ok(line.includes(closed), line);
    });

    it("--rpc to a chain with no deployment: one line telling to deploy", async () => {
      const fresh = await startDevNode({ port: 0 });
      try {
        // A data dir whose manifest for chain 1337 is from another anvil: nothing at its addresses.
        const stale = await cli(["--data-dir", dir, "--rpc", fresh.url, "model", "show", "1"]);
        assertOneLineError(
          stale,
          /no Ledgermind deployment on chain 1337 \(no code at MindToken's 0x[0-9a-f]{40}\)/,
          1,
        );
      } finally {
        await fresh.stop();
      }
    });
  });
});
