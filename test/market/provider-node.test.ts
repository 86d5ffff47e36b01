/**
 * Compute-to-data end to end, the MedRec case (issue 13): a hospital publishes its records as a dataset on the
 * DataMarket and provides it from its own `ledgermind node` process (roles.provider, reading a CSV file of its
 * own); a researcher's signed training job is refused without access, runs once the hospital grants it, and
 * its result (checked against the receipt the provider recorded on-chain) becomes a registry version whose
 * provenance names the dataset; after the grant is revoked, or has expired, the next job is refused. The
 * researcher's side runs once through the CLI (`ledgermind data compute`).
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Address } from "viem";
import type { LocalAccount } from "../../src/chain/accounts.ts";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { type DevNode, startDevNode } from "../../src/chain/devnode.ts";
import { advanceTime } from "../../src/chain/time.ts";
import { loadRows } from "../../src/learning/data-source.ts";
import {
  allowAlgorithm,
  getReceipt,
  grantAccess,
  type Market,
  openMarket,
  publishDataset,
  revokeAccess,
} from "../../src/market/client.ts";
import { type ComputeJobAsk, ComputeJobError, computeJob } from "../../src/market/compute-client.ts";
import { jobDigest } from "../../src/market/job.ts";
import { decodeModel, encodeCanonical } from "../../src/ml/encoding.ts";
import { freePort } from "../../src/node/free-port.ts";
import { type NodeProcess, startNodeProcess } from "../../src/node/process.ts";
import {
  addVersion,
  getVersion,
  openRegistry,
  type Registry,
  registerModel,
} from "../../src/registry/client.ts";
import { sha256Digest } from "../../src/storage/cid.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import { assertOneLineError, cli } from "../cli/cli-process.ts";
import { baseModel } from "./provider-fixture.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-provider-node-"));
const HOSPITAL = 1;
const RESEARCHER = 2;
const SPLIT = { clients: 4, validators: 1, alpha: 100, seed: 21, samplesPerClient: 150 };

describe("a hospital's provider node (compute-to-data, patient-style consent)", { timeout: 300_000 }, () => {
  let chainNode: DevNode;
  let chain: LedgerChain;
  let market: Market;
  let registry: Registry;
  let node: NodeProcess;
  let researcher: LocalAccount;
  let datasetId: bigint;
  let metadataCid: string;
  let model: { modelId: bigint; version: number };
  let ask: ComputeJobAsk;
  const run = () =>
    computeJob(node.url, ask, {
      account: researcher,
      domain: { chainId: chain.chainId, market: market.address },
    });

  before(async () => {
    chainNode = await startDevNode({ port: 0 });
    const dir = join(TMP, "hospital");
    chain = await connect({ rpc: chainNode.url, dataDir: dir });
    await deployAll(chain);
    researcher = chain.accounts[RESEARCHER] as LocalAccount;
    // What the hospital's node serves: the model's weights and the dataset's metadata, in its own folder.
    const store = new FsBlobStore(join(dir, "blobs"));
    registry = await openRegistry(chain);
    const { modelId } = await registerModel(registry, "ward-digits", HOSPITAL);
    const weightsCid = await store.put(encodeCanonical(baseModel()));
    const { version } = await addVersion(registry, modelId, { weightsCid }, HOSPITAL);
    model = { modelId, version };
    market = await openMarket(chain);
    ({ datasetId, metadataCid } = await publishDataset(
      market,
      {
        store,
        metadata: {
          format: "ledgermind.dataset/1",
          name: "ward digits",
          description: "a hospital's records, never shared: 28x28 scans with their labels",
          schema: { label: "int", pixels: "784 x uint8" },
          licence: "LicenseRef-research-only",
          size: { rows: 150, bytes: 0 },
        },
        pricePerPeriod: 0n,
        period: 86_400,
      },
      HOSPITAL,
    ));
    await allowAlgorithm(market, { datasetId, algorithm: model }, HOSPITAL);
    // The records: a CSV file only the hospital's node reads.
    const rows = loadRows({ mnist: { ...SPLIT, index: 0 } });
    const width = rows.x.length / rows.n;
    const lines = Array.from({ length: rows.n }, (_, r) =>
      [
        rows.y[r],
        ...Array.from(rows.x.subarray(r * width, (r + 1) * width), (v) => Math.round(v * 255)),
      ].join(","),
    );
    writeFileSync(join(TMP, "records.csv"), `${lines.join("\n")}\n`);
    const port = await freePort();
    const config = join(TMP, "hospital.yaml");
    writeFileSync(
      config,
      [
        "dataDir: hospital",
        `chain: { rpc: ${chainNode.url} }`,
        `account: ${HOSPITAL}`,
        `http: { port: ${port} }`,
        `roles:\n  provider: { datasets: [ { id: ${datasetId}, data: { csv: { path: records.csv, divideBy: 255 } } } ] }`,
      ].join("\n"),
    );
    node = await startNodeProcess({
      name: "hospital",
      config,
      url: `http://127.0.0.1:${port}`,
      log: join(TMP, "hospital.log"),
    });
    ask = { datasetId, model, kind: "train", params: { epochs: 1, batch: 32, lr: 0.1 } };
  });

  after(async () => {
    await node?.stop();
    await chain?.close();
    await chainNode?.stop();
    rmSync(TMP, { recursive: true, force: true });
  });

  it("no access: the job is refused (403) and nothing is recorded", async () => {
    await assert.rejects(
      run(),
      (e: unknown) => e instanceof ComputeJobError && e.status === 403 && /has no access/.test(e.message),
    );
  });

  it("granted: the job trains next to the data; its update matches the receipt on-chain and becomes a version citing the dataset", async () => {
    const { timestamp } = await chain.publicClient.getBlock();
    await grantAccess(
      market,
      { datasetId, account: researcher.address, expiresAt: Number(timestamp) + 3_600 },
      HOSPITAL,
    );
    const { job, bytes, signed } = await run();
    const trained = decodeModel(bytes);
    assert.equal(trained.architecture, baseModel().architecture);
    const receipt = await getReceipt(
      market,
      jobDigest({ chainId: chain.chainId, market: market.address }, signed.request),
    );
    assert.ok(receipt, "the provider recorded a receipt");
    assert.equal(receipt.resultDigest, sha256Digest(bytes));
    assert.equal(receipt.resultDigest, job.resultDigest);
    assert.equal(receipt.buyer, researcher.address as Address);
    // The model's owner registers the update as its next version, the dataset's metadata as its provenance.
    const store = new FsBlobStore(join(TMP, "hospital", "blobs"));
    const { version } = await addVersion(
      registry,
      model.modelId,
      { weightsCid: await store.put(bytes), parent: model, datasets: [metadataCid] },
      HOSPITAL,
    );
    const record = await getVersion(registry, model.modelId, version);
    assert.deepEqual(record.datasets, [metadataCid]);
  });

  it("through the CLI: `data compute` finds the provider in the node directory and writes the checked result", async () => {
    const lab = join(TMP, "lab");
    mkdirSync(join(lab, "deployments"), { recursive: true });
    copyFileSync(join(TMP, "hospital", "deployments", "1337.json"), join(lab, "deployments", "1337.json"));
    const out = join(TMP, "update.lmq");
    const args = [
      "data",
      "compute",
      "--dataset",
      String(datasetId),
      "--model",
      `${model.modelId}@${model.version}`,
    ];
    const ok = await cli([...args, "--out", out, "--account", String(RESEARCHER)], {
      dataDir: lab,
      rpc: chainNode.url,
      timeoutMs: 120_000,
    });
    assert.equal(ok.code, 0, `${ok.stderr}\n${ok.stdout}`);
    assert.match(ok.stdout, /^result \S+ \(receipt in transaction 0x[0-9a-f]{64}\), written to /m);
    assert.equal(decodeModel(readFileSync(out)).architecture, baseModel().architecture);
    // An account the hospital never granted: one line, no stack trace, nothing written.
    const refused = await cli([...args, "--out", join(TMP, "stranger.lmq"), "--account", "5"], {
      dataDir: lab,
      rpc: chainNode.url,
      timeoutMs: 120_000,
    });
    assertOneLineError(refused, /the provider answered 403: .* has no access to dataset/, 1);
  });

  it("revoked consent, still asking: the next job is refused", async () => {
    await revokeAccess(market, { datasetId, account: researcher.address }, HOSPITAL);
    await assert.rejects(run(), (e: unknown) => e instanceof ComputeJobError && e.status === 403);
  });

  it("expired consent: a grant until a date refuses the job after it", async () => {
    const { timestamp } = await chain.publicClient.getBlock();
    await grantAccess(
      market,
      { datasetId, account: researcher.address, expiresAt: Number(timestamp) + 600 },
      HOSPITAL,
    );
    await advanceTime(chain, 601);
    await assert.rejects(run(), (e: unknown) => e instanceof ComputeJobError && e.status === 403);
  });
});
