/**
 * DataMarket on the embedded EVM, through src/market/client.ts: publishing, paid access split exact to the
 * wei (a property test against the contract's own arithmetic and balances), grants with expiry and
 * revocation over moved time, allowed algorithms, providers and EIP-712 receipts; every refusal as its
 * custom error, attacks named after the attack, and every declared error observed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type Address,
  type Hex,
  keccak256,
  parseEther,
  parseEventLogs,
  toHex,
  verifyTypedData,
  zeroAddress,
} from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll, MARKET_PARAMS } from "../../src/chain/deploy.ts";
import { DataMarket } from "../../src/chain/generated/contracts.ts";
import { advanceTime } from "../../src/chain/time.ts";
import { mindBalance, transferMind } from "../../src/chain/token.ts";
import { ContractRefusedError, decodeRevert, sendAndWait } from "../../src/chain/tx.ts";
import {
  accessOf,
  allowAlgorithm,
  buyAccess,
  disallowAlgorithm,
  getDataset,
  getMetadata,
  getReceipt,
  grantAccess,
  hasAccess,
  isAllowed,
  listDatasets,
  type Market,
  openMarket,
  publishDataset,
  recordReceipt,
  revokeAccess,
  setPrice,
  setProvider,
  signReceipt,
} from "../../src/market/client.ts";
import {
  algorithmId,
  type ComputeReceipt,
  type DatasetMetadata,
  MAX_CID_BYTES,
  MAX_FEE_BPS,
  MAX_PERIOD_SECONDS,
  MAX_ROYALTY_BPS,
  receiptTypedData,
  splitPayment,
} from "../../src/market/protocol.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";

const abi = DataMarket.abi;
const SOURCE = readFileSync(new URL("../../contracts/DataMarket.sol", import.meta.url), "utf8");
const TMP = mkdtempSync(join(tmpdir(), "ledgermind-market-"));
const store = new FsBlobStore(TMP);
const DAY = 86_400;

const DEPLOYER = 0;
const PUBLISHER = 1;
const BUYER = 2;
const RESEARCHER = 3;
const ATTACKER = 4;
const SECOND_OWNER = 5;
const PROVIDER = 6;

let chain: LedgerChain;
let market: Market;
/** Every custom error name a test saw the contract raise, checked against the source at the end. */
const observedErrors = new Set<string>();

const addr = (i: number): Address => {
  const a = chain.accounts[i];
  if (!a) throw new Error(`no dev account #${i}`);
  return a.address;
};

const METADATA: DatasetMetadata = {
  format: "ledgermind.dataset/1",
  name: "ward admissions 2025",
  description: "anonymised admissions, one row per stay",
  schema: { age: "int", ward: "string", days: "int" },
  licence: "CC-BY-NC-4.0",
  size: { rows: 12_000, bytes: 480_000 },
};

async function refused(p: Promise<unknown>, errorName: string, args?: readonly unknown[]): Promise<void> {
  const decoded = p.catch((err: unknown) => {
    throw decodeRevert(err);
  });
  await assert.rejects(decoded, (err: unknown) => {
    assert.ok(err instanceof ContractRefusedError, `expected ContractRefusedError, got ${String(err)}`);
    assert.equal(err.errorName, errorName);
    if (args) assert.deepEqual(err.args, args);
    observedErrors.add(err.errorName);
    return true;
  });
}

async function now(): Promise<number> {
  return Number((await chain.publicClient.getBlock()).timestamp);
}

function publish(price = parseEther("10"), period = DAY, royaltyBps = 500, signer = PUBLISHER) {
  return publishDataset(
    market,
    { store, metadata: METADATA, pricePerPeriod: price, period, royaltyBps },
    signer,
  );
}

function rawPublish(
  signer: number,
  cid: string,
  digest: Hex,
  price: bigint,
  period: bigint,
  royalty: number,
) {
  return sendAndWait(chain, () =>
    chain.wallet(signer).writeContract({
      address: market.address,
      abi,
      functionName: "publish",
      args: [cid, digest, price, period, royalty],
    }),
  );
}

function transferDataset(from: number, to: Address, datasetId: bigint) {
  return sendAndWait(chain, () =>
    chain.wallet(from).writeContract({
      address: market.address,
      abi,
      functionName: "transferFrom",
      args: [addr(from), to, datasetId],
    }),
  );
}

function setMarketFee(signer: number, feeBps: number, recipient: Address) {
  return sendAndWait(chain, () =>
    chain.wallet(signer).writeContract({
      address: market.address,
      abi,
      functionName: "setMarketFee",
      args: [feeBps, recipient],
    }),
  );
}

const digest = (label: string): Hex => keccak256(toHex(label));

before(async () => {
  chain = await connect({ ephemeral: true });
  await deployAll(chain);
  market = await openMarket(chain);
  for (const account of [BUYER, RESEARCHER, ATTACKER, SECOND_OWNER])
    await transferMind(chain, addr(account), parseEther("100000"));
});

after(async () => {
  await chain?.close();
  rmSync(TMP, { recursive: true, force: true });
});

describe("DataMarket", { concurrency: false }, () => {
  it("the TypeScript caps are the contract's", async () => {
    const read = (functionName: "MAX_FEE_BPS" | "MAX_ROYALTY_BPS" | "MAX_PERIOD" | "MAX_CID_BYTES") =>
      chain.publicClient.readContract({ address: market.address, abi, functionName });
    assert.equal(await read("MAX_FEE_BPS"), MAX_FEE_BPS);
    assert.equal(await read("MAX_ROYALTY_BPS"), MAX_ROYALTY_BPS);
    assert.equal(await read("MAX_PERIOD"), BigInt(MAX_PERIOD_SECONDS));
    assert.equal(await read("MAX_CID_BYTES"), BigInt(MAX_CID_BYTES));
    assert.equal(
      await chain.publicClient.readContract({ address: market.address, abi, functionName: "feeBps" }),
      MARKET_PARAMS.feeBps,
    );
  });

  it("publishes a data NFT whose metadata is fetched back by CID, with its ERC-2981 royalty", async () => {
    const { datasetId, metadataCid, receipt } = await publish();
    const [event] = parseEventLogs({ abi, logs: receipt.logs, eventName: "DatasetPublished" });
    assert.equal(event?.args.publisher, addr(PUBLISHER));
    const d = await getDataset(market, datasetId);
    assert.deepEqual(
      {
        owner: d.owner,
        publisher: d.publisher,
        provider: d.provider,
        period: d.period,
        royaltyBps: d.royaltyBps,
      },
      {
        owner: addr(PUBLISHER),
        publisher: addr(PUBLISHER),
        provider: addr(PUBLISHER),
        period: DAY,
        royaltyBps: 500,
      },
    );
    assert.equal(d.metadataCid, metadataCid);
    assert.deepEqual(await getMetadata(store, d), METADATA);
    assert.ok((await listDatasets(market)).some((x) => x.id === datasetId));
    const read = chain.publicClient;
    assert.equal(
      await read.readContract({ address: market.address, abi, functionName: "tokenURI", args: [datasetId] }),
      `ipfs://${metadataCid}`,
    );
    assert.deepEqual(
      await read.readContract({
        address: market.address,
        abi,
        functionName: "royaltyInfo",
        args: [datasetId, 10_000n],
      }),
      [addr(PUBLISHER), 500n],
    );
    assert.equal(
      await read.readContract({
        address: market.address,
        abi,
        functionName: "supportsInterface",
        args: ["0x2a55205a"],
      }),
      true,
      "ERC-2981",
    );
    assert.equal(await hasAccess(market, datasetId, addr(PUBLISHER)), true, "the owner always has access");
    assert.equal(await hasAccess(market, datasetId, addr(BUYER)), false);
  });

  it("refuses bad terms at publication", async () => {
    const cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    const d = digest("meta");
    await refused(rawPublish(PUBLISHER, "", d, 1n, 60n, 0), "EmptyMetadata", []);
    await refused(rawPublish(PUBLISHER, "b".repeat(129), d, 1n, 60n, 0), "MetadataCidTooLong", [129n, 128n]);
    await refused(rawPublish(PUBLISHER, cid, `0x${"0".repeat(64)}`, 1n, 60n, 0), "EmptyDigest", []);
    await refused(rawPublish(PUBLISHER, cid, d, 1n, 0n, 0), "InvalidPeriod", [
      0n,
      BigInt(MAX_PERIOD_SECONDS),
    ]);
    const tooLong = BigInt(MAX_PERIOD_SECONDS + 1);
    await refused(rawPublish(PUBLISHER, cid, d, 1n, tooLong, 0), "InvalidPeriod", [
      tooLong,
      BigInt(MAX_PERIOD_SECONDS),
    ]);
    await refused(rawPublish(PUBLISHER, cid, d, 1n, 60n, 2001), "RoyaltyTooHigh", [2001, 2000]);
  });

  it("a purchase pays owner + market fee exactly, extends from the current expiry, and ends on time", async () => {
    const price = parseEther("3.333333333333333333");
    const { datasetId } = await publish(price, DAY, 700);
    const before = {
      buyer: await mindBalance(chain, addr(BUYER)),
      owner: await mindBalance(chain, addr(PUBLISHER)),
      fee: await mindBalance(chain, addr(DEPLOYER)),
    };
    const first = await buyAccess(market, { datasetId, periods: 2 }, BUYER);
    const start = Number(
      (await chain.publicClient.getBlock({ blockNumber: first.receipt.blockNumber })).timestamp,
    );
    assert.equal(first.paidUntil, start + 2 * DAY);
    const split = splitPayment(price * 2n, MARKET_PARAMS.feeBps, 700, true);
    assert.equal(split.royalty, 0n, "no royalty while the publisher owns it");
    assert.equal(await mindBalance(chain, addr(BUYER)), before.buyer - price * 2n);
    assert.equal(await mindBalance(chain, addr(PUBLISHER)), before.owner + split.ownerShare);
    assert.equal(await mindBalance(chain, addr(DEPLOYER)), before.fee + split.fee);
    assert.equal(await mindBalance(chain, market.address), 0n, "the market holds nothing");
    assert.equal(await hasAccess(market, datasetId, addr(BUYER)), true);

    const second = await buyAccess(market, { datasetId }, BUYER);
    assert.equal(second.paidUntil, start + 3 * DAY, "extends from the current expiry, not from now");
    await advanceTime(chain, 3 * DAY - ((await now()) - start) - 1);
    assert.equal(await hasAccess(market, datasetId, addr(BUYER)), true, "one second left");
    await advanceTime(chain, 1);
    assert.equal(await hasAccess(market, datasetId, addr(BUYER)), false, "no access at the expiry itself");

    const third = await buyAccess(market, { datasetId }, BUYER);
    const at = Number(
      (await chain.publicClient.getBlock({ blockNumber: third.receipt.blockNumber })).timestamp,
    );
    assert.equal(third.paidUntil, at + DAY, "after expiry a purchase starts from now");
  });

  it("after a sale of the data NFT, the publisher's royalty and the new owner's share are exact", async () => {
    const price = parseEther("7.77");
    const { datasetId } = await publish(price, DAY, 1_250);
    await transferDataset(PUBLISHER, addr(SECOND_OWNER), datasetId);
    const before = [PUBLISHER, SECOND_OWNER, DEPLOYER, BUYER].map((i) => mindBalance(chain, addr(i)));
    const [pub, owner, fee, buyer] = await Promise.all(before);
    const { receipt } = await buyAccess(market, { datasetId, periods: 3 }, BUYER);
    const cost = price * 3n;
    const split = splitPayment(cost, MARKET_PARAMS.feeBps, 1_250, false);
    assert.ok(split.royalty > 0n);
    const [event] = parseEventLogs({ abi, logs: receipt.logs, eventName: "AccessBought" });
    assert.deepEqual(
      { ownerShare: event?.args.ownerShare, fee: event?.args.fee, royalty: event?.args.royalty },
      split,
    );
    assert.equal(await mindBalance(chain, addr(PUBLISHER)), (pub as bigint) + split.royalty);
    assert.equal(await mindBalance(chain, addr(SECOND_OWNER)), (owner as bigint) + split.ownerShare);
    assert.equal(await mindBalance(chain, addr(DEPLOYER)), (fee as bigint) + split.fee);
    assert.equal(await mindBalance(chain, addr(BUYER)), (buyer as bigint) - cost);
    assert.equal(split.ownerShare + split.fee + split.royalty, cost);
  });

  it("price front-run: an owner who raises the price before a purchase is refused, not paid", async () => {
    const price = parseEther("5");
    const { datasetId } = await publish(price);
    const quoted = (await getDataset(market, datasetId)).pricePerPeriod * 2n;
    // The owner sees the purchase coming and doubles the price first.
    await setPrice(market, { datasetId, pricePerPeriod: price * 2n }, PUBLISHER);
    const balance = await mindBalance(chain, addr(BUYER));
    await refused(buyAccess(market, { datasetId, periods: 2, maxCost: quoted }, BUYER), "CostAboveMax", [
      price * 4n,
      quoted,
    ]);
    assert.equal(await mindBalance(chain, addr(BUYER)), balance, "nothing paid");
    assert.equal(await hasAccess(market, datasetId, addr(BUYER)), false);
  });

  it("refuses unknown datasets, off-sale datasets, zero periods and strangers' owner calls", async () => {
    const unknown = 999_999n;
    await refused(buyAccess(market, { datasetId: unknown, maxCost: 1n }, BUYER), "UnknownDataset", [unknown]);
    await refused(getDataset(market, unknown), "UnknownDataset", [unknown]);
    await refused(
      grantAccess(
        market,
        { datasetId: unknown, account: addr(BUYER), expiresAt: (await now()) + 60 },
        PUBLISHER,
      ),
      "UnknownDataset",
      [unknown],
    );
    assert.equal(await hasAccess(market, unknown, addr(BUYER)), false);
    const { datasetId } = await publish(0n);
    await refused(buyAccess(market, { datasetId, maxCost: 0n }, BUYER), "NotForSale", [datasetId]);
    await setPrice(market, { datasetId, pricePerPeriod: 1n }, PUBLISHER);
    await refused(
      sendAndWait(chain, () =>
        chain.wallet(BUYER).writeContract({
          address: market.address,
          abi,
          functionName: "buyAccess",
          args: [datasetId, 0, 0n],
        }),
      ),
      "ZeroPeriods",
      [],
    );
    for (const call of [
      () => setPrice(market, { datasetId, pricePerPeriod: 0n }, ATTACKER),
      () => setProvider(market, { datasetId, provider: addr(ATTACKER) }, ATTACKER),
      () => allowAlgorithm(market, { datasetId, algorithm: { digest: digest("x") } }, ATTACKER),
      () => revokeAccess(market, { datasetId, account: addr(BUYER) }, ATTACKER),
    ])
      await refused(call(), "NotDatasetOwner", [datasetId, addr(ATTACKER)]);
  });

  it("consent forgery: nobody but the owner grants access, not even an approved operator of the NFT", async () => {
    const { datasetId } = await publish();
    await sendAndWait(chain, () =>
      chain.wallet(PUBLISHER).writeContract({
        address: market.address,
        abi,
        functionName: "approve",
        args: [addr(ATTACKER), datasetId],
      }),
    );
    await refused(
      grantAccess(market, { datasetId, account: addr(ATTACKER), expiresAt: (await now()) + DAY }, ATTACKER),
      "NotDatasetOwner",
      [datasetId, addr(ATTACKER)],
    );
    assert.equal(await hasAccess(market, datasetId, addr(ATTACKER)), false);
  });

  it("a grant gives access until its expiry; revocation ends it at once; expired and revoked grants refuse", async () => {
    const { datasetId } = await publish(0n);
    const t = await now();
    await refused(
      grantAccess(market, { datasetId, account: addr(RESEARCHER), expiresAt: t }, PUBLISHER),
      "ExpiryNotInFuture",
    );
    await grantAccess(market, { datasetId, account: addr(RESEARCHER), expiresAt: t + 100 }, PUBLISHER);
    assert.deepEqual(await accessOf(market, datasetId, addr(RESEARCHER)), {
      paidUntil: 0,
      grantedUntil: t + 100,
      hasAccess: true,
    });
    assert.equal(
      await chain.publicClient.readContract({
        address: market.address,
        abi,
        functionName: "accessExpiry",
        args: [datasetId, addr(RESEARCHER)],
      }),
      BigInt(t + 100),
    );
    await advanceTime(chain, 101);
    assert.equal(await hasAccess(market, datasetId, addr(RESEARCHER)), false, "expired");
    await refused(revokeAccess(market, { datasetId, account: addr(RESEARCHER) }, PUBLISHER), "NoGrant", [
      datasetId,
      addr(RESEARCHER),
    ]);

    await grantAccess(
      market,
      { datasetId, account: addr(RESEARCHER), expiresAt: (await now()) + DAY },
      PUBLISHER,
    );
    assert.equal(await hasAccess(market, datasetId, addr(RESEARCHER)), true);
    const r = await revokeAccess(market, { datasetId, account: addr(RESEARCHER) }, PUBLISHER);
    const [event] = parseEventLogs({ abi, logs: r.logs, eventName: "AccessRevoked" });
    assert.deepEqual(event?.args, { datasetId, account: addr(RESEARCHER) });
    assert.equal(await hasAccess(market, datasetId, addr(RESEARCHER)), false, "revoked");
  });

  it("paid-time confiscation: revoking a buyer's grant leaves the time it paid for", async () => {
    const { datasetId } = await publish(parseEther("1"), DAY);
    const { paidUntil } = await buyAccess(market, { datasetId }, BUYER);
    await grantAccess(
      market,
      { datasetId, account: addr(BUYER), expiresAt: (await now()) + 10 * DAY },
      PUBLISHER,
    );
    await revokeAccess(market, { datasetId, account: addr(BUYER) }, PUBLISHER);
    const access = await accessOf(market, datasetId, addr(BUYER));
    assert.deepEqual(access, { paidUntil, grantedUntil: 0, hasAccess: true });
    await refused(revokeAccess(market, { datasetId, account: addr(BUYER) }, PUBLISHER), "NoGrant");
  });

  it("allows and disallows algorithms; TypeScript and Solidity ids agree", async () => {
    const { datasetId } = await publish();
    const model = { modelId: 12n, version: 3 };
    assert.equal(
      await chain.publicClient.readContract({
        address: market.address,
        abi,
        functionName: "modelAlgorithm",
        args: [model.modelId, model.version],
      }),
      algorithmId(model),
    );
    const { algorithm } = await allowAlgorithm(market, { datasetId, algorithm: model }, PUBLISHER);
    assert.equal(await isAllowed(market, datasetId, model), true);
    assert.equal(await isAllowed(market, datasetId, { modelId: 12n, version: 4 }), false);
    await refused(
      allowAlgorithm(market, { datasetId, algorithm: model }, PUBLISHER),
      "AlgorithmAlreadyAllowed",
      [datasetId, algorithm],
    );
    await refused(
      allowAlgorithm(market, { datasetId, algorithm: { digest: `0x${"0".repeat(64)}` } }, PUBLISHER),
      "EmptyDigest",
    );
    await disallowAlgorithm(market, { datasetId, algorithm: model }, PUBLISHER);
    assert.equal(await isAllowed(market, datasetId, model), false);
    await refused(
      disallowAlgorithm(market, { datasetId, algorithm: model }, PUBLISHER),
      "AlgorithmNotAllowed",
      [datasetId, algorithm],
    );
  });

  describe("compute receipts", () => {
    let datasetId: bigint;
    const algorithm = algorithmId({ digest: digest("train-logreg") });
    const job = (label: string, buyer = addr(RESEARCHER)): ComputeReceipt => ({
      datasetId,
      requestDigest: digest(`request ${label}`),
      algorithm,
      resultDigest: digest(`result ${label}`),
      buyer,
    });

    before(async () => {
      ({ datasetId } = await publish(0n));
      await allowAlgorithm(market, { datasetId, algorithm: { digest: algorithm } }, PUBLISHER);
      await setProvider(market, { datasetId, provider: addr(PROVIDER) }, PUBLISHER);
      await grantAccess(
        market,
        { datasetId, account: addr(RESEARCHER), expiresAt: (await now()) + 30 * DAY },
        PUBLISHER,
      );
    });

    it("the provider records a receipt once; anyone verifies its signature from the event alone", async () => {
      assert.equal((await getDataset(market, datasetId)).provider, addr(PROVIDER));
      const r = job("ok");
      const tx = await recordReceipt(market, r, PROVIDER);
      const [event] = parseEventLogs({ abi, logs: tx.logs, eventName: "ReceiptRecorded" });
      assert.ok(event);
      const { provider, signature, ...fields } = event.args;
      assert.equal(provider, addr(PROVIDER));
      assert.equal(
        await verifyTypedData({
          address: provider,
          ...receiptTypedData(market.address, chain.chainId, { ...fields }),
          signature,
        }),
        true,
      );
      const stored = await getReceipt(market, r.requestDigest);
      assert.deepEqual({ ...stored, recordedAt: undefined }, { ...r, recordedAt: undefined });
      assert.equal(await getReceipt(market, digest("never")), undefined);
    });

    it("replayed receipt: a request digest is recorded once", async () => {
      const r = job("replay");
      await recordReceipt(market, r, PROVIDER);
      await refused(
        recordReceipt(market, { ...r, resultDigest: digest("other") }, PROVIDER),
        "ReceiptAlreadyRecorded",
        [r.requestDigest],
      );
    });

    it("receipt by a non-provider: the owner and strangers are refused once a provider is named", async () => {
      await refused(recordReceipt(market, job("owner"), PUBLISHER), "NotProvider", [
        datasetId,
        addr(PUBLISHER),
      ]);
      await refused(recordReceipt(market, job("stranger"), ATTACKER), "NotProvider", [
        datasetId,
        addr(ATTACKER),
      ]);
    });

    it("bad receipt signature: a stranger's key, or the provider's signature over other values", async () => {
      const r = job("forged");
      const strangers = await signReceipt(market, r, ATTACKER);
      await refused(recordReceipt(market, { ...r, signature: strangers }, PROVIDER), "BadReceiptSignature", [
        addr(ATTACKER),
        addr(PROVIDER),
      ]);
      const forOther = await signReceipt(market, { ...r, resultDigest: digest("swapped") }, PROVIDER);
      await refused(recordReceipt(market, { ...r, signature: forOther }, PROVIDER), "BadReceiptSignature");
      await refused(recordReceipt(market, { ...r, signature: "0x1234" }, PROVIDER), "BadReceiptSignature", [
        zeroAddress,
        addr(PROVIDER),
      ]);
      assert.equal(await getReceipt(market, r.requestDigest), undefined, "nothing recorded");
    });

    it("refuses a disallowed algorithm, a buyer without access, and zero digests", async () => {
      await refused(
        recordReceipt(market, { ...job("algo"), algorithm: digest("other algorithm") }, PROVIDER),
        "AlgorithmNotAllowed",
      );
      await refused(recordReceipt(market, job("no access", addr(BUYER)), PROVIDER), "NoAccess", [
        datasetId,
        addr(BUYER),
      ]);
      await refused(
        recordReceipt(market, { ...job("zero"), resultDigest: `0x${"0".repeat(64)}` }, PROVIDER),
        "EmptyDigest",
      );
    });

    it("revoked and expired access: the next receipt is refused", async () => {
      await recordReceipt(market, job("before revocation"), PROVIDER);
      await revokeAccess(market, { datasetId, account: addr(RESEARCHER) }, PUBLISHER);
      await refused(recordReceipt(market, job("after revocation"), PROVIDER), "NoAccess", [
        datasetId,
        addr(RESEARCHER),
      ]);
      await grantAccess(
        market,
        { datasetId, account: addr(RESEARCHER), expiresAt: (await now()) + 60 },
        PUBLISHER,
      );
      await recordReceipt(market, job("granted again"), PROVIDER);
      await advanceTime(chain, 61);
      await refused(recordReceipt(market, job("after expiry"), PROVIDER), "NoAccess");
    });

    it("stale provider after a sale: the previous owner's provider can no longer record", async () => {
      const sold = (await publish(0n)).datasetId;
      await allowAlgorithm(market, { datasetId: sold, algorithm: { digest: algorithm } }, PUBLISHER);
      await setProvider(market, { datasetId: sold, provider: addr(PROVIDER) }, PUBLISHER);
      await transferDataset(PUBLISHER, addr(SECOND_OWNER), sold);
      assert.equal((await getDataset(market, sold)).provider, addr(SECOND_OWNER));
      const r = { ...job("sold", addr(SECOND_OWNER)), datasetId: sold };
      await refused(recordReceipt(market, r, PROVIDER), "NotProvider", [sold, addr(PROVIDER)]);
      await recordReceipt(market, r, SECOND_OWNER);
    });
  });

  it("the market fee: only the market's owner sets it, capped, to a non-zero recipient", async () => {
    await refused(setMarketFee(ATTACKER, 0, addr(ATTACKER)), "OwnableUnauthorizedAccount", [addr(ATTACKER)]);
    await refused(setMarketFee(DEPLOYER, MAX_FEE_BPS + 1, addr(DEPLOYER)), "MarketFeeTooHigh", [
      MAX_FEE_BPS + 1,
      MAX_FEE_BPS,
    ]);
    await refused(setMarketFee(DEPLOYER, 10, zeroAddress), "ZeroAddress", []);
  });

  it("stray MIND sent to the market is not locked: its owner rescues it", async () => {
    await transferMind(chain, market.address, 5n, BUYER);
    await sendAndWait(chain, () =>
      chain.wallet(DEPLOYER).writeContract({
        address: market.address,
        abi,
        functionName: "rescue",
        args: [market.token, addr(BUYER)],
      }),
    );
    assert.equal(await mindBalance(chain, market.address), 0n);
  });

  it("fee property: on random inputs the contract's split equals splitPayment and sums to the cost", async () => {
    let seed = 0x5eed_1234;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const randomCost = () => {
      const pick = rand(4);
      if (pick === 0) return BigInt(rand(10_000));
      if (pick === 1) return BigInt(rand(1e9)) * 10n ** BigInt(rand(19));
      if (pick === 2) return 10n ** 27n - BigInt(rand(1e9));
      return BigInt(rand(1e9)) * BigInt(rand(1e9)) + BigInt(rand(1e9));
    };
    for (let i = 0; i < 300; i++) {
      const cost = randomCost();
      const feeBps = rand(MAX_FEE_BPS + 1);
      const royaltyBps = rand(MAX_ROYALTY_BPS + 1);
      const ownerIsPublisher = rand(2) === 0;
      const [ownerShare, fee, royalty] = await chain.publicClient.readContract({
        address: market.address,
        abi,
        functionName: "splitPayment",
        args: [cost, feeBps, royaltyBps, ownerIsPublisher],
      });
      const ours = splitPayment(cost, feeBps, royaltyBps, ownerIsPublisher);
      assert.deepEqual(
        { ownerShare, fee, royalty },
        ours,
        `inputs ${cost} ${feeBps} ${royaltyBps} ${ownerIsPublisher}`,
      );
      assert.equal(ownerShare + fee + royalty, cost);
    }
    await refused(
      chain.publicClient.readContract({
        address: market.address,
        abi,
        functionName: "splitPayment",
        args: [1n, MAX_FEE_BPS + 1, 0, true],
      }),
      "MarketFeeTooHigh",
    );
  });

  it("fee property, paid for real: random prices, fees, royalties and periods move balances exact to the wei", async () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 8; i++) {
      const feeBps = rand(MAX_FEE_BPS + 1);
      await setMarketFee(DEPLOYER, feeBps, addr(DEPLOYER));
      const price = BigInt(rand(1e9)) * 10n ** BigInt(rand(10)) + 1n;
      const royaltyBps = rand(MAX_ROYALTY_BPS + 1);
      const { datasetId } = await publish(price, 1 + rand(DAY), royaltyBps);
      const sold = rand(2) === 0;
      if (sold) await transferDataset(PUBLISHER, addr(SECOND_OWNER), datasetId);
      const periods = 1 + rand(5);
      const accounts = [BUYER, PUBLISHER, SECOND_OWNER, DEPLOYER];
      const before = await Promise.all(accounts.map((a) => mindBalance(chain, addr(a))));
      await buyAccess(market, { datasetId, periods }, BUYER);
      const after = await Promise.all(accounts.map((a) => mindBalance(chain, addr(a))));
      const delta = after.map((v, j) => v - (before[j] as bigint));
      const split = splitPayment(price * BigInt(periods), feeBps, royaltyBps, !sold);
      assert.equal(delta[0], -(price * BigInt(periods)), "the buyer pays the cost");
      assert.equal(delta[1], sold ? split.royalty : split.ownerShare, "the publisher");
      assert.equal(delta[2], sold ? split.ownerShare : 0n, "the new owner");
      assert.equal(delta[3], split.fee, "the market's fee recipient");
      assert.equal(await mindBalance(chain, market.address), 0n);
    }
    await setMarketFee(DEPLOYER, MARKET_PARAMS.feeBps, addr(DEPLOYER));
  });

  it("every custom error declared in DataMarket.sol was observed", () => {
    const declared = [...SOURCE.matchAll(/^\s*error\s+(\w+)\s*\(/gm)].map((m) => m[1] as string);
    assert.ok(declared.length >= 20, `found ${declared.length} declared errors`);
    const missing = declared.filter((e) => !observedErrors.has(e));
    assert.deepEqual(missing, []);
  });
});
