import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileContracts } from "../src/chain/compile.ts";
import { connect } from "../src/chain/connect.ts";
import { pqKeygen } from "../src/registry/attestation.ts";
import { addVersion, attest, ensurePqKeyBound, openRegistry, registerModel } from "../src/registry/client.ts";
import { hashModel, manifestDigest } from "../src/registry/manifest.ts";
import { cidFromDigest, cidOf } from "../src/storage/cid.ts";
import type { Figures } from "./results-file.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

/** Compile time, cold (empty cache) then cached, in one run. */
export function benchCompile(): Figures {
  const cacheDir = mkdtempSync(join(tmpdir(), "lm-bench-compile-"));
  try {
    let t = performance.now();
    compileContracts({ cacheDir });
    const cold = (performance.now() - t) / 1000;
    t = performance.now();
    const cached = compileContracts({ cacheDir });
    if (!cached.fromCache) throw new Error("the second compile missed the cache");
    const warm = (performance.now() - t) / 1000;
    return { "time.compile.cold_s": round(cold, 2), "time.compile.cached_s": round(warm, 3) };
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

/** Gas of the registry's transactions on a fresh chain: deterministic for the same inputs. */
export async function benchRegistryGas(): Promise<Figures> {
  const chain = await connect({ ephemeral: true });
  try {
    const reg = await openRegistry(chain);
    await registerModel(reg, "warm-up"); // the first model ever also initializes modelCount
    const { modelId, gasUsed: registerGas } = await registerModel(reg, "bench-model");
    const spec = (i: number) => ({
      weightsCid: cidOf(bytes(`weights ${i}`)),
      datasets: [0, 1, 2].map((d) => cidOf(bytes(`dataset ${d}`))),
      metrics: { accuracy: 0.9123, loss: 0.3141, f1: 0.9, auc: 0.97 },
      trainingRunCid: cidOf(bytes(`run ${i}`)),
      licence: "Apache-2.0",
      modelCardCid: cidOf(bytes(`card ${i}`)),
    });
    const first = await addVersion(reg, modelId, spec(1));
    const second = await addVersion(reg, modelId, { ...spec(2), parent: { modelId, version: 1 } });
    const pqKey = pqKeygen(new Uint8Array(32).fill(7));
    const bindStart = await chain.publicClient.getBlockNumber();
    await ensurePqKeyBound(reg, pqKey, 1);
    const bindBlock = await chain.publicClient.getBlock({ blockNumber: bindStart + 1n });
    const attestation = await attest(reg, {
      modelId,
      version: 2,
      claimCid: cidOf(bytes("claim")),
      verdict: "pass",
      pqKey,
      account: 1,
    });
    return {
      "gas.registry.registerModel": Number(registerGas),
      "gas.registry.addVersion": Number(second.gasUsed),
      "gas.registry.addVersion.first": Number(first.gasUsed),
      "gas.registry.bindPqKey": Number(bindBlock.gasUsed),
      "gas.registry.attest": Number(attestation.gasUsed),
    };
  } finally {
    await chain.close();
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Bytes in the bench's model folder: four 256 MB shards. Never in tests: they hash a few MB. */
const FOLDER_SHARDS = 4;
const SHARD_BYTES = 256 * 2 ** 20;

/**
 * Hashing a 1 GB folder as a manifest (streaming), against `sha256sum` on the same files in the same
 * run, and the gas of a version recording a folder's manifest.
 */
export async function benchFolderHashing(): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), "lm-bench-folder-"));
  try {
    const chunk = randomBytes(2 ** 20);
    for (let i = 0; i < FOLDER_SHARDS; i++) {
      const fd = openSync(join(dir, `model-0000${i + 1}-of-0000${FOLDER_SHARDS}.safetensors`), "w");
      for (let b = 0; b < SHARD_BYTES; b += chunk.length) writeSync(fd, chunk);
      closeSync(fd);
    }
    const files = readdirSync(dir).map((f) => join(dir, f));
    execFileSync("sha256sum", files); // warms the page cache for both, so neither measures the disk alone
    let t = performance.now();
    execFileSync("sha256sum", files);
    const reference = (performance.now() - t) / 1000;
    t = performance.now();
    const manifest = await hashModel(dir);
    const ours = (performance.now() - t) / 1000;
    const mb = (FOLDER_SHARDS * SHARD_BYTES) / 2 ** 20;
    const chain = await connect({ ephemeral: true });
    try {
      const reg = await openRegistry(chain);
      await registerModel(reg, "warm-up");
      const { modelId } = await registerModel(reg, "bench-folder");
      await addVersion(reg, modelId, { weightsCid: cidOf(bytes("first")) });
      const folder = await addVersion(reg, modelId, {
        weightsCid: cidFromDigest(manifestDigest(manifest)),
        format: "safetens",
        parent: { modelId, version: 1 },
        licence: "Apache-2.0",
        modelCardCid: cidOf(bytes("card")),
      });
      return {
        "registry.hash_mb_per_s": round(mb / ours, 1),
        "registry.sha256sum_mb_per_s": round(mb / reference, 1),
        "registry.hash_ratio_vs_sha256sum": round(reference / ours, 3),
        "gas.registry.addVersion.folder": Number(folder.gasUsed),
      };
    } finally {
      await chain.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
