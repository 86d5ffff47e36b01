// Compute-to-data overhead: one training job of a few seconds through the provider (HTTP on 127.0.0.1, the
// buyer's EIP-712 signature, every check, access and the allowed algorithm read from the DataMarket, the
// base model from the registry, the result stored by CID, the receipt signed and recorded on-chain, the
// buyer's signed fetch and digest check) against the same job run directly on the same rows. The chain is
// the embedded EVM with the real contracts. Runs alternate, after a warm-up of each path, and the ratio is of
// the medians.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LocalAccount } from "../src/chain/accounts.ts";
import { connect } from "../src/chain/connect.ts";
import { deployAll } from "../src/chain/deploy.ts";
import { chainMarketAccess, registryModels } from "../src/market/chain-access.ts";
import { allowAlgorithm, grantAccess, openMarket, publishDataset } from "../src/market/client.ts";
import { runComputeJob } from "../src/market/compute.ts";
import { computeJob } from "../src/market/compute-client.ts";
import { privateRows } from "../src/market/private-data.ts";
import { ComputeProvider, computeRoutes } from "../src/market/provider.ts";
import { initBackend } from "../src/ml/backend.ts";
import { encodeCanonical } from "../src/ml/encoding.ts";
import { createModel } from "../src/ml/models.ts";
import { addVersion, openRegistry, registerModel } from "../src/registry/client.ts";
import { createBlobServer } from "../src/storage/blob-server.ts";
import { FsBlobStore } from "../src/storage/fs-blob-store.ts";
import { ARCHITECTURE, baseModel } from "../test/market/provider-fixture.ts";
import type { Figures } from "./results-file.ts";

const PARAMS = { epochs: 60, batch: 32, lr: 0.1 };
const RUNS = 3;
const OWNER = 1;
const BUYER = 2;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

export async function benchComputeOverhead(): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), "ledgermind-bench-c2d-"));
  await initBackend();
  const chain = await connect({ ephemeral: true });
  const model = createModel(ARCHITECTURE, 0);
  try {
    await deployAll(chain);
    const data = privateRows({
      mnist: { clients: 2, validators: 1, alpha: 100, seed: 5, samplesPerClient: 2_500, index: 0 },
    });
    const store = new FsBlobStore(join(dir, "blobs"));
    const registry = await openRegistry(chain);
    const { modelId } = await registerModel(registry, "bench", OWNER);
    const { version } = await addVersion(
      registry,
      modelId,
      { weightsCid: await store.put(encodeCanonical(baseModel())) },
      OWNER,
    );
    const market = await openMarket(chain);
    const { datasetId } = await publishDataset(
      market,
      {
        store,
        metadata: {
          format: "ledgermind.dataset/1",
          name: "bench digits",
          description: "MNIST digits standing in for private records",
          schema: { label: "uint8", pixels: "784 x float" },
          licence: "MIT",
          size: { rows: data.samples, bytes: 0 },
        },
        pricePerPeriod: 0n,
        period: 86_400,
      },
      OWNER,
    );
    await allowAlgorithm(market, { datasetId, algorithm: { modelId, version } }, OWNER);
    const buyer = chain.accounts[BUYER] as LocalAccount;
    const { timestamp } = await chain.publicClient.getBlock();
    await grantAccess(
      market,
      { datasetId, account: buyer.address, expiresAt: Number(timestamp) + 86_400 },
      OWNER,
    );
    const provider = new ComputeProvider({
      domain: { chainId: chain.chainId, market: market.address },
      market: chainMarketAccess(market, OWNER),
      models: registryModels(registry, () => store),
      datasets: new Map([[datasetId, { data }]]),
      results: new FsBlobStore(join(dir, "results")),
      stateDir: join(dir, "state"),
    });
    const server = await createBlobServer(new FsBlobStore(join(dir, "served")), {
      port: 0,
      routes: (app) => computeRoutes(app, provider),
    });
    try {
      const domain = { chainId: chain.chainId, market: market.address };
      const direct = async () => {
        const t = performance.now();
        await runComputeJob({
          model,
          base: baseModel(),
          data: data.rows(),
          kind: "train",
          params: PARAMS,
          seed: "bench",
        });
        return (performance.now() - t) / 1000;
      };
      const provided = async () => {
        const t = performance.now();
        await computeJob(
          server.url,
          { datasetId, model: { modelId, version }, kind: "train", params: PARAMS },
          { account: buyer, domain },
        );
        return (performance.now() - t) / 1000;
      };
      await direct();
      await provided();
      const directS: number[] = [];
      const providerS: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        directS.push(await direct());
        providerS.push(await provided());
      }
      return {
        "data.c2d_rows": data.samples,
        "data.c2d_direct_s": round(median(directS), 3),
        "data.c2d_provider_s": round(median(providerS), 3),
        "data.c2d_overhead_ratio": round(median(providerS) / median(directS), 3),
      };
    } finally {
      await provider.close();
      await server.close();
    }
  } finally {
    model.dispose();
    await chain.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
