/**
 * The market's pure pieces: the fee split's rounding and caps, algorithm ids, the receipt's typed data and
 * the metadata JSON's checks. The split is also checked against the contract in market.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeAbiParameters, hashTypedData, keccak256 } from "viem";
import {
  algorithmId,
  type DatasetMetadata,
  encodeMetadata,
  InvalidMetadataError,
  MarketInputError,
  parseMetadata,
  receiptTypedData,
  splitPayment,
} from "../../src/market/protocol.ts";

const METADATA: DatasetMetadata = {
  format: "ledgermind.dataset/1",
  name: "glucose",
  description: "",
  schema: { t: "int", mgdl: "float" },
  licence: "CC0-1.0",
  size: { rows: 10, bytes: 200 },
  privacyBudget: { epsilon: 2, delta: 1e-5 },
};

describe("splitPayment", () => {
  it("rounds the fee and the royalty down and gives the owner the remainder", () => {
    assert.deepEqual(splitPayment(1000n, 100, 500, false), { ownerShare: 940n, fee: 10n, royalty: 50n });
    assert.deepEqual(splitPayment(99n, 1000, 2000, false), { ownerShare: 71n, fee: 9n, royalty: 19n });
    assert.deepEqual(splitPayment(99n, 1000, 2000, true), { ownerShare: 90n, fee: 9n, royalty: 0n });
    assert.deepEqual(splitPayment(0n, 1000, 2000, false), { ownerShare: 0n, fee: 0n, royalty: 0n });
  });

  it("refuses rates above the caps and negative costs, as the contract does", () => {
    assert.throws(() => splitPayment(1n, 1001, 0, true), MarketInputError);
    assert.throws(() => splitPayment(1n, 0, 2001, true), MarketInputError);
    assert.throws(() => splitPayment(1n, 1.5, 0, true), MarketInputError);
    assert.throws(() => splitPayment(-1n, 0, 0, true), MarketInputError);
  });
});

describe("algorithmId", () => {
  it("hashes a model version as abi.encode(uint256, uint32) and keeps a digest as it is", () => {
    assert.equal(
      algorithmId({ modelId: 7n, version: 2 }),
      keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "uint32" }], [7n, 2])),
    );
    const digest = `0x${"AB".repeat(32)}` as const;
    assert.equal(algorithmId({ digest }), digest.toLowerCase());
    assert.notEqual(algorithmId({ modelId: 7n, version: 2 }), algorithmId({ modelId: 7n, version: 3 }));
  });

  it("refuses a digest that is not 32 bytes and a version out of range", () => {
    assert.throws(() => algorithmId({ digest: "0x1234" }), MarketInputError);
    assert.throws(() => algorithmId({ modelId: 1n, version: 0 }), MarketInputError);
  });
});

describe("receiptTypedData", () => {
  it("binds a receipt to its market and chain", () => {
    const receipt = {
      datasetId: 1n,
      requestDigest: `0x${"11".repeat(32)}`,
      algorithm: `0x${"22".repeat(32)}`,
      resultDigest: `0x${"33".repeat(32)}`,
      buyer: `0x${"44".repeat(20)}`,
    } as const;
    const a = hashTypedData(receiptTypedData(`0x${"55".repeat(20)}`, 1337, receipt));
    assert.notEqual(a, hashTypedData(receiptTypedData(`0x${"66".repeat(20)}`, 1337, receipt)));
    assert.notEqual(a, hashTypedData(receiptTypedData(`0x${"55".repeat(20)}`, 1, receipt)));
  });
});

describe("dataset metadata", () => {
  it("round-trips through its bytes", () => {
    assert.deepEqual(parseMetadata(encodeMetadata(METADATA)), METADATA);
  });

  it("names the field that is wrong", () => {
    const bad = (patch: Record<string, unknown>) =>
      new TextEncoder().encode(JSON.stringify({ ...METADATA, ...patch }));
    assert.throws(() => parseMetadata(bad({ format: "x" })), /format/);
    assert.throws(() => parseMetadata(bad({ name: "" })), /name/);
    assert.throws(() => parseMetadata(bad({ schema: { a: 1 } })), /schema/);
    assert.throws(() => parseMetadata(bad({ size: { rows: -1, bytes: 0 } })), /size/);
    assert.throws(() => parseMetadata(bad({ sampleDigest: "0x12" })), /sampleDigest/);
    assert.throws(() => parseMetadata(bad({ privacyBudget: { epsilon: 0, delta: 0 } })), /privacyBudget/);
    assert.throws(() => parseMetadata(new Uint8Array([0xff])), InvalidMetadataError);
  });
});
