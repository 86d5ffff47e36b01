import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hashTypedData } from "viem";
import { devAccounts, type LocalAccount } from "../../src/chain/accounts.ts";
import {
  BadJobSignatureError,
  JOB_TYPES,
  type JobRequest,
  jobDigest,
  jobDomain,
  jobFromJson,
  jobToJson,
  MalformedJobError,
  paramsDigest,
  signJob,
  verifyJob,
} from "../../src/market/job.ts";
import { algorithmId } from "../../src/market/protocol.ts";

const [buyer, other] = devAccounts(2) as [LocalAccount, LocalAccount];
const domain = { chainId: 31337, market: "0x5FbDB2315678afecb367f032d93F642f64180aa3" } as const;
const request = (over: Partial<JobRequest> = {}): JobRequest => ({
  datasetId: 1n,
  algorithm: algorithmId({ modelId: 7n, version: 2 }),
  kind: "train",
  modelId: 7n,
  version: 2,
  params: { epochs: 2, batch: 32, lr: 0.1, dp: { epsilon: 0.5, clipNorm: 1 } },
  nonce: 42n,
  expiresAt: 2_000_000_000n,
  buyer: buyer.address,
  ...over,
});

describe("job requests (EIP-712)", () => {
  it("the digest is the EIP-712 hash of the typed request under the market's domain", () => {
    const r = request();
    const expected = hashTypedData({
      domain: {
        name: "Ledgermind DataMarket",
        version: "1",
        chainId: 31337,
        verifyingContract: domain.market,
      },
      types: JOB_TYPES,
      primaryType: "JobRequest",
      message: {
        datasetId: 1n,
        algorithm: r.algorithm,
        kind: "train",
        modelId: 7n,
        version: 2,
        paramsDigest: paramsDigest(r.params),
        nonce: 42n,
        expiresAt: 2_000_000_000n,
        buyer: buyer.address,
      },
    });
    assert.equal(jobDigest(domain, r), expected);
    assert.deepEqual(jobDomain(domain).name, "Ledgermind DataMarket");
  });

  it("a signed request verifies to its buyer, also after a round trip through JSON", async () => {
    const signed = await signJob(buyer, domain, request());
    assert.equal(await verifyJob(domain, signed), buyer.address);
    const back = jobFromJson(JSON.parse(JSON.stringify(jobToJson(signed))));
    assert.deepEqual(back, signed);
    assert.equal(await verifyJob(domain, back), buyer.address);
  });

  it("forged buyer: a request signed by another key naming the buyer is refused", async () => {
    const signed = await signJob(other, domain, request({ buyer: other.address }));
    const forged = { ...signed, request: { ...signed.request, buyer: buyer.address } };
    await assert.rejects(verifyJob(domain, forged), BadJobSignatureError);
  });

  it("changed parameters after signing: a larger epsilon or more epochs breaks the signature", async () => {
    const signed = await signJob(buyer, domain, request());
    for (const params of [
      { epochs: 2, batch: 32, lr: 0.1, dp: { epsilon: 0.9, clipNorm: 1 } },
      { epochs: 3, batch: 32, lr: 0.1, dp: { epsilon: 0.5, clipNorm: 1 } },
      { epochs: 2, batch: 32, lr: 0.1 },
    ]) {
      await assert.rejects(
        verifyJob(domain, { ...signed, request: { ...signed.request, params } }),
        BadJobSignatureError,
      );
    }
  });

  it("cross-market replay: a request signed for another market or chain is refused", async () => {
    const signed = await signJob(buyer, domain, request());
    await assert.rejects(verifyJob({ ...domain, chainId: 1 }, signed), BadJobSignatureError);
    await assert.rejects(
      verifyJob({ ...domain, market: "0x0000000000000000000000000000000000000001" }, signed),
      BadJobSignatureError,
    );
  });

  it("signJob refuses to sign a request naming another buyer", async () => {
    await assert.rejects(signJob(other, domain, request()), BadJobSignatureError);
  });

  it("malformed requests name the field that is wrong", async () => {
    const good = jobToJson(await signJob(buyer, domain, request())) as {
      request: Record<string, unknown>;
      signature: string;
    };
    const cases: [unknown, RegExp][] = [
      [null, /body/],
      [{ ...good, request: { ...good.request, datasetId: 1 } }, /request\.datasetId/],
      [{ ...good, request: { ...good.request, kind: "exfiltrate" } }, /request\.kind/],
      [{ ...good, request: { ...good.request, buyer: "0x12" } }, /request\.buyer/],
      [
        { ...good, request: { ...good.request, params: { epochs: 0, batch: 1, lr: 0.1 } } },
        /request\.params\.epochs/,
      ],
      [
        {
          ...good,
          request: {
            ...good.request,
            params: { epochs: 1, batch: 1, lr: 0.1, dp: { epsilon: 2, clipNorm: 1 } },
          },
        },
        /request\.params\.dp\.epsilon/,
      ],
      [{ ...good, request: { ...good.request, rows: "all" } }, /rows/],
      [{ ...good, request: { ...good.request, expiresAt: (2n ** 64n).toString() } }, /request\.expiresAt/],
      [
        { ...good, request: { ...good.request, algorithm: algorithmId({ modelId: 7n, version: 3 }) } },
        /not model 7 version 2's algorithm/,
      ],
    ];
    for (const [raw, message] of cases)
      assert.throws(
        () => jobFromJson(raw),
        (e) => e instanceof MalformedJobError && message.test(e.message),
      );
  });

  it("the params digest is canonical: the same numbers give the same digest whatever the key order", () => {
    const a = paramsDigest({ epochs: 1, batch: 8, lr: 0.05 });
    const b = paramsDigest(JSON.parse('{"lr":0.05,"batch":8,"epochs":1}'));
    assert.equal(a, b);
    assert.notEqual(a, paramsDigest({ epochs: 1, batch: 8, lr: 0.050000001 }));
  });
});
