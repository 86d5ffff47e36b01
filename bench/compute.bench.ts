// Compute-to-data overhead: one training job of a few seconds through the provider (HTTP on 127.0.0.1,
// EIP-712 signature, every check, the result stored by CID, the receipt through the in-memory MarketAccess
// that stands in for DataMarket, the buyer's signed fetch and digest check) against the same job run
// directly on the same rows. Runs alternate, after a warm-up of each path, and the ratio is of the medians.
import { runComputeJob } from "../src/market/compute.ts";
import { submitJob } from "../src/market/compute-client.ts";
import { jobFromJson } from "../src/market/job.ts";
import { privateRows } from "../src/market/private-data.ts";
import { createModel } from "../src/ml/models.ts";
import { ARCHITECTURE, baseModel, startProvider } from "../test/market/provider-fixture.ts";
import type { Figures } from "./results-file.ts";

const PARAMS = { epochs: 60, batch: 32, lr: 0.1 };
const RUNS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

export async function benchComputeOverhead(): Promise<Figures> {
  const data = privateRows({
    mnist: {
      clients: 2,
      validators: 1,
      alpha: 100,
      seed: 5,
      samplesPerClient: 2_500,
      index: 0,
    },
  });
  const f = await startProvider({ datasets: new Map([[1n, { data }]]) });
  const model = createModel(ARCHITECTURE, 0);
  try {
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
      const signed = jobFromJson(await f.sign({ datasetId: 1n, params: PARAMS }));
      await submitJob(f.url, signed, { account: f.buyer, domain: f.domain });
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
    model.dispose();
    await f.close();
  }
}
