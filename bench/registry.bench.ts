import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileContracts } from "../src/chain/compile.ts";
import { connect } from "../src/chain/connect.ts";
import { pqKeygen } from "../src/registry/attestation.ts";
import { addVersion, attest, ensurePqKeyBound, openRegistry, registerModel } from "../src/registry/client.ts";
import { cidOf } from "../src/storage/cid.ts";
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
