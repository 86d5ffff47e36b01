import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Address, formatEther, type Hex, parseEther } from "viem";
import type { LocalAccount } from "../chain/accounts.ts";
import { mindBalance, transferMind } from "../chain/token.ts";
import { openTasks } from "../learning/client.ts";
import { loadRows } from "../learning/data-source.ts";
import { canonicalOf } from "../learning/simulate.ts";
import {
  allowAlgorithm,
  buyAccess,
  grantAccess,
  openMarket,
  publishDataset,
  revokeAccess,
} from "../market/client.ts";
import { type ComputeJobAsk, ComputeJobError, computeJob } from "../market/compute-client.ts";
import { encodeCanonical } from "../ml/encoding.ts";
import { initialWeights } from "../ml/models.ts";
import type { Consortium } from "../node/consortium.ts";
import { mnistTestDigits, versionAccuracy } from "../node/devnet.ts";
import { addVersion, openRegistry, registerModel } from "../registry/client.ts";
import { FsBlobStore } from "../storage/fs-blob-store.ts";

/**
 * The data market: a hospital publishes its records as a data NFT and provides them for compute-to-data from
 * its own node process (the rows, a CSV file, never leave it); a lab, refused until it pays, buys a period of
 * access, has its model trained next to the data, and registers the update (checked against the provider's
 * receipt on-chain) as the model's next version with the dataset as its provenance; a researcher with a
 * patient-style grant runs an evaluation, and once the grant is revoked the next job is refused. Accounts 17
 * to 19: the other parts use 0 to 16.
 */
export const MARKET_DEMO = {
  hospital: 17,
  lab: 18,
  researcher: 19,
  price: "2",
  /** The hospital's records: client 0's shard of this MNIST split (a non-IID slice of real digits). */
  split: { clients: 4, validators: 1, alpha: 0.5, seed: 11, samplesPerClient: 1_500, index: 0 },
  architecture: "logreg-784-10",
  training: { epochs: 3, batch: 32, lr: 0.1 },
} as const;

export interface MarketDemoResult {
  datasetId: bigint;
  metadataCid: string;
  records: number;
  modelId: bigint;
  /** The lab's first job, before it paid: refused. */
  refusedWithoutAccess: string;
  paid: { cost: bigint; toHospital: bigint };
  job: { id: Hex; resultCid: string; receiptTx: Hex };
  trainedVersion: number;
  accuracyBefore: number;
  accuracyAfter: number;
  /** The researcher's evaluation under the grant: accuracy on the hospital's records. */
  grantedEvaluation: number;
  refusedAfterRevoke: string;
  seconds: number;
}

const mind = (wei: bigint) => Number(formatEther(wei)).toFixed(2);

/** Runs the data-market part of the demo on `consortium`'s chain: two node processes and three accounts. */
export async function runMarketDemo(o: {
  consortium: Consortium;
  log?: (line: string) => void;
}): Promise<MarketDemoResult> {
  const started = performance.now();
  const { consortium } = o;
  const log = o.log ?? (() => {});
  const chain = consortium.creator;
  const { hospital, lab, researcher } = MARKET_DEMO;
  const account = (i: number) => chain.accounts[i] as LocalAccount;
  const hospitalStore = new FsBlobStore(join(consortium.dir, "hospital", "blobs"));
  const labStore = new FsBlobStore(join(consortium.dir, "lab", "blobs"));

  // The lab's model, version 1: untrained weights, which its own node serves to the hospital's.
  const registry = await openRegistry(chain);
  const { modelId } = await registerModel(registry, "ward digit reader", lab);
  const base = canonicalOf(MARKET_DEMO.architecture, initialWeights(MARKET_DEMO.architecture, 3));
  await addVersion(registry, modelId, { weightsCid: await labStore.put(encodeCanonical(base)) }, lab);
  const model = { modelId, version: 1 };

  // The hospital's records and its dataset on the market, priced per 30 days, the lab's model allowed.
  const rows = loadRows({ mnist: MARKET_DEMO.split });
  const width = rows.x.length / rows.n;
  const csv = Array.from({ length: rows.n }, (_, r) =>
    [rows.y[r], ...Array.from(rows.x.subarray(r * width, (r + 1) * width), (v) => Math.round(v * 255))].join(
      ",",
    ),
  );
  const recordsFile = join(consortium.dir, "hospital-records.csv");
  writeFileSync(recordsFile, `${csv.join("\n")}\n`);
  const market = await openMarket(chain);
  const { datasetId, metadataCid } = await publishDataset(
    market,
    {
      store: hospitalStore,
      metadata: {
        format: "ledgermind.dataset/1",
        name: "ward digits 2026",
        description: "handwritten ward forms scanned at 28x28, with their labels; never leaves the hospital",
        schema: { label: "uint8", pixels: "784 x uint8" },
        licence: "LicenseRef-research-only",
        size: { rows: rows.n, bytes: csv.join("\n").length },
      },
      pricePerPeriod: parseEther(MARKET_DEMO.price),
      period: 30 * 86_400,
    },
    hospital,
  );
  await allowAlgorithm(market, { datasetId, algorithm: model }, hospital);
  consortium.checkAborted();

  const nodes = await consortium.start([
    {
      name: "hospital",
      account: hospital,
      roles: `  provider: { datasets: [ { id: ${datasetId}, data: { csv: { path: ${JSON.stringify(recordsFile)}, divideBy: 255 } } } ] }`,
    },
    { name: "lab", account: lab, roles: "  {}" },
  ]);
  const providerUrl = (nodes.find((n) => n.name === "hospital") as { url: string }).url;
  log(
    `hospital node (account ${hospital}) provides dataset ${datasetId} "ward digits 2026" (${rows.n} records, a CSV file only it reads) for compute-to-data; lab node (account ${lab}) serves its model ${modelId}@1`,
  );

  const domain = { chainId: chain.chainId, market: market.address };
  const train: ComputeJobAsk = { datasetId, model, kind: "train", params: MARKET_DEMO.training };
  const refusal = async (buyer: LocalAccount, ask: ComputeJobAsk): Promise<string> => {
    try {
      await computeJob(providerUrl, ask, { account: buyer, domain });
    } catch (error) {
      if (error instanceof ComputeJobError && error.status === 403) return error.message;
      throw error;
    }
    throw new Error(`the provider ran a job for ${buyer.address} without access`);
  };

  const refusedWithoutAccess = await refusal(account(lab), train);
  log(`lab without access: refused (${refusedWithoutAccess.replace(/^the provider answered /, "")})`);

  await transferMind(chain, account(lab).address as Address, parseEther("10"), 0);
  const hospitalBefore = await mindBalance(chain, account(hospital).address);
  const { cost } = await buyAccess(market, { datasetId }, lab);
  const toHospital = (await mindBalance(chain, account(hospital).address)) - hospitalBefore;
  log(
    `lab bought 30 days of access for ${mind(cost)} MIND: ${mind(toHospital)} to the hospital, ${mind(cost - toHospital)} market fee`,
  );

  const { job, bytes } = await computeJob(providerUrl, train, { account: account(lab), domain });
  const resultCid = await labStore.put(bytes);
  const { version: trainedVersion } = await addVersion(
    registry,
    modelId,
    { weightsCid: resultCid, parent: model, datasets: [metadataCid] },
    lab,
  );
  const test = await mnistTestDigits({ clients: 4, validators: 1, alpha: 0.5, seed: 11 });
  const tasks = await openTasks(chain);
  const accuracyBefore = await versionAccuracy(tasks, labStore, modelId, 1, test);
  const accuracyAfter = await versionAccuracy(tasks, labStore, modelId, trainedVersion, test);
  log(
    `compute-to-data training job ${job.id.slice(0, 10)}…: ${MARKET_DEMO.training.epochs} epochs next to the records, only the update came back, checked against the receipt the hospital recorded on-chain (transaction ${String(job.receiptTx).slice(0, 10)}…)`,
  );
  log(
    `registered as model ${modelId} version ${trainedVersion}, parent 1, dataset ${metadataCid.slice(0, 16)}… as its provenance: test accuracy ${accuracyBefore.toFixed(4)} -> ${accuracyAfter.toFixed(4)}`,
  );

  // Consent, MedRec-style: granted free until a date, revoked at any time. The researcher checks the trained
  // version on the records, which the hospital allows as well.
  const trained = { modelId, version: trainedVersion };
  await allowAlgorithm(market, { datasetId, algorithm: trained }, hospital);
  const evaluate: ComputeJobAsk = { ...train, model: trained, kind: "evaluate" };
  const { timestamp } = await chain.publicClient.getBlock();
  await grantAccess(
    market,
    { datasetId, account: account(researcher).address, expiresAt: Number(timestamp) + 7 * 86_400 },
    hospital,
  );
  const evaluation = await computeJob(providerUrl, evaluate, { account: account(researcher), domain });
  const grantedEvaluation = (JSON.parse(new TextDecoder().decode(evaluation.bytes)) as { accuracy: number })
    .accuracy;
  await revokeAccess(market, { datasetId, account: account(researcher).address }, hospital);
  const refusedAfterRevoke = await refusal(account(researcher), evaluate);
  log(
    `researcher (account ${researcher}) granted 7 days: evaluated version ${trainedVersion} on the records it never sees (accuracy ${grantedEvaluation.toFixed(4)}); grant revoked: the next job refused (403)`,
  );
  await consortium.stop(nodes);
  return {
    datasetId,
    metadataCid,
    records: rows.n,
    modelId,
    refusedWithoutAccess,
    paid: { cost, toHospital },
    job: { id: job.id, resultCid, receiptTx: job.receiptTx as Hex },
    trainedVersion,
    accuracyBefore,
    accuracyAfter,
    grantedEvaluation,
    refusedAfterRevoke,
    seconds: (performance.now() - started) / 1000,
  };
}
