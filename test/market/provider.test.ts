import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ComputeJobError, submitJob } from "../../src/market/compute-client.ts";
import { jobDigest, jobFromJson, signResultAccess } from "../../src/market/job.ts";
import { NonceLog } from "../../src/market/nonces.ts";
import { algorithmId } from "../../src/market/protocol.ts";
import type { JobRecord } from "../../src/market/provider.ts";
import { decodeModel, encodeCanonical } from "../../src/ml/encoding.ts";
import { cidFromDigest } from "../../src/storage/cid.ts";
import {
  ALGORITHM,
  ARCHITECTURE,
  baseModel,
  DP_DATASET,
  PLAIN_DATASET,
  type ProviderFixture,
  startProvider,
  TRAIN,
} from "./provider-fixture.ts";

const DP = { ...TRAIN, dp: { epsilon: 0.4, clipNorm: 1 } };

describe("compute-to-data provider", () => {
  let f: ProviderFixture;
  before(async () => {
    f = await startProvider();
  });
  after(() => f.close());

  /** What a refusal must leave as it was: receipts, job records, the budget and the nonce log. */
  const snapshot = () => ({
    receipts: f.market.receipts.length,
    jobs: existsSync(join(f.stateDir, "jobs")) ? readdirSync(join(f.stateDir, "jobs")).length : 0,
    spent: f.provider.spent(DP_DATASET, f.buyer.address),
  });
  /** Posts `body`, expects `status` and a message matching `message`, and that nothing was run or recorded. */
  const refused = async (body: unknown, status: number, message: RegExp) => {
    const before = snapshot();
    const answer = await f.post(body);
    assert.equal(answer.status, status, JSON.stringify(answer.body));
    assert.match(String(answer.body.error), message);
    assert.deepEqual(snapshot(), before);
    if (typeof body === "object" && body !== null && "request" in body) {
      try {
        const { request } = jobFromJson(body);
        assert.equal(new NonceLog(join(f.stateDir, "nonces.log")).has(request.buyer, request.nonce), false);
      } catch {}
    }
  };

  it("runs a training job next to the data: the buyer gets the canonical update, checked, and the receipt is recorded", async () => {
    const raw = await f.sign();
    const signed = jobFromJson(raw);
    const { job, bytes } = await submitJob(f.url, signed, { account: f.buyer, domain: f.domain });
    assert.equal(job.status, "done");
    assert.equal(job.id, jobDigest(f.domain, signed.request));
    const model = decodeModel(bytes);
    assert.equal(model.architecture, ARCHITECTURE);
    assert.notDeepEqual(encodeCanonical(model), encodeCanonical(baseModel()), "the job trained");
    assert.equal(job.resultCid, cidFromDigest(job.resultDigest as `0x${string}`));
    assert.deepEqual(f.market.receipts.at(-1), {
      datasetId: PLAIN_DATASET,
      requestDigest: job.id,
      algorithm: ALGORITHM,
      resultDigest: job.resultDigest,
      buyer: f.buyer.address,
    });
    assert.equal(job.receiptTx?.length, 66);
  });

  it("runs an evaluation job: metrics only", async () => {
    const signed = jobFromJson(await f.sign({ kind: "evaluate" }));
    const { bytes } = await submitJob(f.url, signed, { account: f.buyer, domain: f.domain });
    const metrics = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, number>;
    assert.deepEqual(Object.keys(metrics).sort(), ["accuracy", "loss", "samples"]);
    assert.ok((metrics.accuracy as number) >= 0 && (metrics.accuracy as number) <= 1);
  });

  it("a DP job spends its epsilon and returns a clipped, noised update; the budget refuses the job past it", async () => {
    const first = await submitJob(f.url, jobFromJson(await f.sign({ datasetId: DP_DATASET, params: DP })), {
      account: f.buyer,
      domain: f.domain,
    });
    assert.equal(first.job.dp?.epsilon, 0.4);
    assert.ok(
      (first.job.dp?.noiseMultiplier as number) > 1,
      "sigma of the replace-adjacency Gaussian mechanism",
    );
    assert.equal(f.provider.spent(DP_DATASET, f.buyer.address), 0.4);
    await submitJob(f.url, jobFromJson(await f.sign({ datasetId: DP_DATASET, params: DP })), {
      account: f.buyer,
      domain: f.domain,
    });
    assert.equal(f.provider.spent(DP_DATASET, f.buyer.address), 0.8);
    await refused(
      await f.sign({ datasetId: DP_DATASET, params: DP }),
      403,
      /privacy budget .* is exhausted: 0\.8 of 1/,
    );
  });

  it("refuses a malformed request (400)", async () => {
    await refused("{not json", 400, /not JSON/);
    const good = (await f.sign()) as { request: Record<string, unknown> };
    await refused({ ...good, request: { ...good.request, kind: "dump" } }, 400, /request\.kind/);
  });

  it("refuses a bad signature (401): a request naming the buyer, signed by a stranger", async () => {
    await refused(await f.sign({}, f.stranger), 401, /bad signature/);
  });

  it("refuses an expired request (401)", async () => {
    await refused(await f.sign({ expiresAt: f.clock.now }), 401, /expired/);
  });

  it("refuses a replayed nonce (409): the same signed request twice", async () => {
    const raw = await f.sign({ kind: "evaluate" });
    const first = await f.post(raw);
    assert.equal(first.status, 202);
    await f.provider.wait((first.body as unknown as JobRecord).id, 30_000);
    await refused(raw, 409, /already used/);
  });

  it("nonce replay race: the same request sent twice at once runs once", async () => {
    const raw = await f.sign({ kind: "evaluate" });
    const answers = await Promise.all([f.post(raw), f.post(raw)]);
    assert.deepEqual(answers.map((a) => a.status).sort(), [202, 409]);
    const accepted = answers.find((a) => a.status === 202)?.body as unknown as JobRecord;
    await f.provider.wait(accepted.id, 30_000);
  });

  it("refuses an unknown dataset (404)", async () => {
    await refused(await f.sign({ datasetId: 99n }), 404, /no dataset 99/);
  });

  it("refuses without access (403): a stranger who never bought nor was granted", async () => {
    await refused(await f.sign({ buyer: f.stranger.address }), 403, /has no access/);
  });

  it("refuses expired access (403): the grant ran out", async () => {
    f.market.grant(PLAIN_DATASET, f.stranger.address, f.clock.now + 10n);
    const raw = await f.sign({ buyer: f.stranger.address, expiresAt: f.clock.now + 600n });
    f.clock.now += 11n;
    try {
      await refused(raw, 403, /has no access/);
    } finally {
      f.clock.now -= 11n;
    }
  });

  it("refuses revoked access (403): the owner revoked the grant", async () => {
    f.market.grant(PLAIN_DATASET, f.stranger.address, f.clock.now + 3_600n);
    f.market.revoke(PLAIN_DATASET, f.stranger.address);
    await refused(await f.sign({ buyer: f.stranger.address }), 403, /has no access/);
  });

  it("refuses a disallowed algorithm (403): another model version", async () => {
    await refused(
      await f.sign({ modelId: 7n, version: 2, algorithm: algorithmId({ modelId: 7n, version: 2 }) }),
      403,
      /is not allowed on dataset 1/,
    );
  });

  it("refuses an oversized request (413): a body over the cap, and more training than the provider runs", async () => {
    const good = (await f.sign()) as Record<string, unknown>;
    await refused({ ...good, padding: "x".repeat(64 * 1024) }, 413, /larger than this provider reads/);
    await refused(await f.sign({ params: { ...TRAIN, epochs: 100_000 } }), 413, /more than this provider's/);
  });

  it("refuses a job without DP on a dataset that requires it (403)", async () => {
    await refused(await f.sign({ datasetId: DP_DATASET }), 403, /only differentially private/);
    await refused(
      await f.sign({ datasetId: DP_DATASET, kind: "evaluate", params: DP }),
      403,
      /only differentially private/,
    );
  });

  it("serves a result only to its buyer: another account's access and none at all are refused", async () => {
    const { job } = await submitJob(f.url, jobFromJson(await f.sign({ kind: "evaluate" })), {
      account: f.buyer,
      domain: f.domain,
    });
    const digest = job.resultDigest as `0x${string}`;
    const url = `${f.url}/compute/results/${job.resultCid}`;
    const expiresAt = f.clock.now + 60n;
    const headers = async (account: typeof f.buyer) => ({
      "x-ledgermind-expires": expiresAt.toString(),
      "x-ledgermind-signature": await signResultAccess(account, f.domain, {
        resultDigest: digest,
        expiresAt,
      }),
    });
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(url, { headers: await headers(f.stranger) })).status, 404);
    assert.equal((await fetch(url, { headers: await headers(f.buyer) })).status, 200);
  });

  it("a failed receipt fails the job and withholds its result", async () => {
    f.market.failReceipts = true;
    try {
      await assert.rejects(
        submitJob(f.url, jobFromJson(await f.sign({ kind: "evaluate" })), {
          account: f.buyer,
          domain: f.domain,
        }),
        (e) => e instanceof ComputeJobError && /receipt transaction reverted/.test(e.message),
      );
    } finally {
      f.market.failReceipts = false;
    }
  });
});

describe("compute-to-data provider across a restart", () => {
  it("nonce replay after restart: a request run before the restart is refused after it (409)", async () => {
    const first = await startProvider();
    let second: ProviderFixture | undefined;
    try {
      const raw = await first.sign({ kind: "evaluate" });
      const { job } = await submitJob(first.url, jobFromJson(raw), {
        account: first.buyer,
        domain: first.domain,
      });
      await first.close(true);
      second = await startProvider({ stateDir: first.stateDir });
      const again = await second.post(raw);
      assert.equal(again.status, 409);
      assert.match(String(again.body.error), /already used/);
      // The job's record survived the restart too.
      assert.equal(second.provider.job(job.id)?.status, "done");
    } finally {
      await (second ?? first).close();
    }
  });
});
