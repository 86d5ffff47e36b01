import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type Address,
  isAddressEqual,
  maxUint256,
  parseEventLogs,
  type TransactionReceipt,
  zeroAddress,
  zeroHash,
} from "viem";
import { CropInsurance } from "../../src/chain/generated/contracts.ts";
import { ContractRefusedError } from "../../src/chain/tx.ts";
import { createRng } from "../../src/ml/partition.ts";
import { inferFixed } from "../../src/oracle/fixed-point.ts";
import { generateYieldData, toOracleInput } from "../../src/oracle/yield-data.ts";
import { trainYieldModel } from "../../src/oracle/yield-model.ts";
import {
  addr,
  balanceOf,
  chain,
  DEFAULT_PARAMS,
  DIGEST,
  declaredErrors,
  deploy,
  E,
  FARMERS,
  FEATURES,
  Insurer,
  increaseTime,
  insAbi,
  MODEL_ID,
  MODEL_VERSION,
  now,
  ONE,
  OTHER_DIGEST,
  OWNER,
  observedErrors,
  oracleAbi,
  type Params,
  REPORTER,
  read,
  refused,
  STRANGER,
  send,
  setNextTimestamp,
  setUpChain,
  token,
  tokenAbi,
  UNDERWRITERS,
} from "./crop-insurance-fixture.ts";

// ---------------------------------------------------------------------------------------------------------

describe("CropInsurance", () => {
  let ins: Insurer;

  before(async () => {
    await setUpChain();
    ins = await Insurer.deploy();
  });

  after(async () => {
    await chain?.close();
  });

  it("refuses deployments with a zero address or out-of-range parameters", async () => {
    const oracle = addr(STRANGER);
    const attempt = (t: Address, o: Address, params: Partial<Params>) =>
      deploy(CropInsurance, [t, o, MODEL_ID, MODEL_VERSION, { ...DEFAULT_PARAMS, ...params }]);
    await refused(attempt(zeroAddress, oracle, {}), "ZeroAddress");
    await refused(attempt(token, zeroAddress, {}), "ZeroAddress");
    await refused(attempt(token, oracle, { premiumBps: 0 }), "InvalidParams");
    await refused(attempt(token, oracle, { premiumBps: 10_001 }), "InvalidParams");
    await refused(attempt(token, oracle, { deductible: 1_000_000 }), "InvalidParams");
    await refused(attempt(token, oracle, { featureCount: 0 }), "InvalidParams");
    await refused(attempt(token, oracle, { salesCloseBefore: 0n }), "InvalidParams");
    await refused(attempt(token, oracle, { assessmentWindow: 0n }), "InvalidParams");
    const ok = await attempt(token, oracle, { premiumBps: 10_000, deductible: 999_999 });
    assert.equal(await read(ok, insAbi, "deductible"), 999_999);
    assert.ok(isAddressEqual(await read(ok, insAbi, "reporter"), addr(OWNER)));
    assert.ok(isAddressEqual(await read(ok, insAbi, "owner"), addr(OWNER)));
    assert.equal(await read(ok, insAbi, "modelId"), MODEL_ID);
    assert.equal(await read(ok, insAbi, "modelVersion"), MODEL_VERSION);
    assert.equal(await read(ok, insAbi, "expectedWeightsDigest"), DIGEST);
    assert.equal(await read(ok, insAbi, "salesCloseBefore"), 100n);
    assert.equal(await read(ok, insAbi, "assessmentWindow"), 3600n);
  });

  it("lets underwriters fund the pool for shares of its equity, with a least number of shares", async () => {
    await refused(ins.send(1, "fund", [0n, 0n]), "ZeroAmount");
    assert.equal(await ins.read("previewFund", [E(100_000)]), E(100_000));
    await refused(ins.send(1, "fund", [E(100_000), E(100_000) + 1n]), "TooFewShares", [
      E(100_000),
      E(100_000) + 1n,
    ]);
    const receipt = await ins.send(1, "fund", [E(100_000), E(100_000)]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "Funded" });
    assert.ok(log && isAddressEqual(log.args.funder, addr(1)));
    assert.equal(log.args.amount, E(100_000));
    assert.equal(log.args.shares, E(100_000));
    assert.equal(await ins.fund(2, E(50_000)), E(50_000));
    assert.equal(await ins.read("sharesOf", [addr(2)]), E(50_000));
    assert.equal(await ins.read("totalShares"), E(150_000));
    const pool = await ins.pool();
    assert.deepEqual(pool, { balance: E(150_000), owed: 0n, committed: 0n, reserved: 0n, free: E(150_000) });
  });

  it("lets only the owner open a season, once, ending after a sales window", async () => {
    const t = await now();
    await refused(ins.send(STRANGER, "openSeason", [1, t + 1000n]), "OwnableUnauthorizedAccount");
    await refused(ins.send(OWNER, "openSeason", [1, t]), "InvalidEndTime", [t]);
    // Sales close 100 s before the end: a season ending within 100 s would never sell.
    await refused(ins.send(OWNER, "openSeason", [1, t + 100n]), "InvalidEndTime", [t + 100n]);
    const receipt = await ins.send(OWNER, "openSeason", [1, t + 1000n]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "SeasonOpened" });
    assert.equal(log?.args.season, 1);
    assert.equal(log?.args.endTime, t + 1000n);
    assert.equal(log?.args.salesClose, t + 900n);
    await refused(ins.send(OWNER, "openSeason", [1, t + 5000n]), "SeasonAlreadyOpen", [1]);
    assert.equal(await ins.read("seasonEnd", [1]), t + 1000n);
  });

  it("sells policies for a premium and refuses any it could not pay in full", async () => {
    await refused(ins.send(4, "buyPolicy", [1, 9, E(10)]), "SeasonNotOpen", [9]);
    await refused(ins.send(4, "buyPolicy", [1, 1, 0n]), "ZeroAmount");
    await refused(ins.send(4, "buyPolicy", [1, 1, 2n ** 200n]), "SafeCastOverflowedUintDowncast", [
      128,
      2n ** 200n,
    ]);
    // 150k capital: a 200k policy (premium 10k), the region-season's first, with its 1 MIND oracle fee set
    // aside, would leave 40k uncovered.
    await refused(ins.send(4, "buyPolicy", [1, 1, E(200_000)]), "InsufficientCapital", [
      E(200_001),
      E(160_000),
    ]);

    const before = await balanceOf(addr(4));
    const id = await ins.buy(4, 1, 1, E(40_000));
    assert.equal(id, 1n);
    assert.equal(before - (await balanceOf(addr(4))), E(2_000)); // 5 %
    const p = await ins.policy(id);
    assert.ok(isAddressEqual(p.farmer, addr(4)));
    assert.deepEqual(
      [p.region, p.season, p.status, p.coverage, p.premium, p.payout],
      [1, 1, 1, E(40_000), E(2_000), 0n],
    );
    assert.equal(await ins.read("premiumFor", [E(40_000)]), E(2_000));
    assert.equal(await ins.read("premiumFor", [1n]), 1n, "premiums round up");

    await ins.buy(5, 1, 1, E(60_000));
    await ins.buy(6, 2, 1, E(20_000));
    await ins.buy(7, 3, 1, E(10_000));
    const pool = await ins.pool();
    // The coverage, and one oracle fee for each of the three region-seasons.
    assert.equal(pool.reserved, E(130_003));
    assert.equal(pool.balance, E(150_000) + E(6_500));
    assert.equal(pool.free, E(26_497));
    // Exactly the free capital plus its own premium fits; one wei more does not.
    const fits = (pool.free * 10_000n) / 9_500n; // coverage c with c <= free + ceil(5 % of c)
    await refused(ins.send(8, "buyPolicy", [1, 1, fits + E(1)]), "InsufficientCapital", [
      fits + E(1),
      pool.free + ((fits + E(1)) * 500n + 9_999n) / 10_000n,
    ]);
    const a = await ins.assessment(1, 1);
    assert.deepEqual(
      [a.openPolicies, a.coverage, a.premiums, a.committed, a.feeReserve],
      [2, E(100_000), E(5_000), 0n, E(1)],
    );
    // Entry at the optimistic equity (open policies pay nothing), exit at the pessimistic one (they pay in full).
    assert.equal(
      await ins.read("previewFund", [E(1_000)]),
      (E(1_000) * (E(150_000) + 1n)) / (pool.balance + 1n),
    );
    assert.equal(
      await ins.read("previewWithdraw", [E(100_000)]),
      (E(100_000) * (pool.free + 1n)) / (E(150_000) + 1n),
    );
  });

  it("takes the conditions of a region-season from the reporter, once, after the season", async () => {
    await refused(ins.send(OWNER, "reportConditions", [1, 1, FEATURES]), "SeasonNotEnded");
    await refused(ins.send(OWNER, "setReporter", [zeroAddress]), "ZeroAddress");
    await ins.send(OWNER, "setReporter", [addr(REPORTER)]);
    await refused(ins.send(OWNER, "reportConditions", [1, 1, FEATURES]), "NotReporter", [addr(OWNER)]);
    await refused(ins.send(REPORTER, "reportConditions", [1, 8, FEATURES]), "SeasonNotOpen", [8]);
    await refused(ins.send(STRANGER, "assess", [1, 1]), "SeasonNotEnded");
    await refused(ins.send(STRANGER, "expire", [1, 1]), "AssessmentStillOpen");

    // Sales close 100 s before the season's end, when its weather is largely known.
    const end = await ins.read<bigint>("seasonEnd", [1]);
    await increaseTime(end - 100n - (await now()));
    await refused(ins.send(8, "buyPolicy", [1, 1, E(1)]), "SalesClosed", [1, end - 100n]);
    await refused(ins.send(REPORTER, "reportConditions", [1, 1, FEATURES]), "SeasonNotEnded", [1, end]);
    await increaseTime(100);
    await refused(ins.send(8, "buyPolicy", [1, 1, E(1)]), "SalesClosed", [1, end - 100n]);
    await refused(ins.send(REPORTER, "reportConditions", [1, 1, FEATURES.slice(0, 3)]), "WrongFeatureCount", [
      4n,
      3n,
    ]);
    const receipt = await ins.send(REPORTER, "reportConditions", [1, 1, FEATURES]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "ConditionsReported" });
    assert.deepEqual(log?.args.features, FEATURES);
    await refused(
      ins.send(REPORTER, "reportConditions", [1, 1, FEATURES]),
      "ConditionsAlreadyReported",
      [1, 1],
    );
    await ins.send(REPORTER, "reportConditions", [2, 1, FEATURES]);
    const a = await ins.assessment(1, 1);
    assert.equal(a.reported, true);
    assert.deepEqual(a.features, FEATURES);
  });

  it("asks the oracle once per region-season, paying the fee from the pool", async () => {
    await refused(ins.send(STRANGER, "assess", [5, 1]), "NothingToAssess", [5, 1]);
    await refused(ins.send(STRANGER, "assess", [3, 1]), "NoConditions", [3, 1]);
    const poolBefore = await ins.pool();
    const id = await ins.assess(1, 1);
    assert.equal(id, 0n, "the test oracle counts from 0; the insurer must not mistake 0 for none");
    const r = await ins.request(id);
    assert.ok(isAddressEqual(r.consumer, ins.address));
    assert.deepEqual(
      [r.modelId, r.version, r.inputCid, r.aggregation, r.fee, r.open],
      [MODEL_ID, MODEL_VERSION, zeroHash, 0, E(1), true],
    );
    assert.deepEqual(r.input, FEATURES);
    assert.equal(await balanceOf(ins.oracle), E(1));
    const poolAfter = await ins.pool();
    assert.equal(poolBefore.balance - poolAfter.balance, E(1));
    assert.equal(
      poolBefore.reserved - poolAfter.reserved,
      E(1),
      "paid from the fee set aside at the first sale",
    );
    assert.equal(poolAfter.free, poolBefore.free);
    assert.equal((await ins.assessment(1, 1)).feeReserve, 0n);
    assert.equal(await read(token, tokenAbi, "allowance", [ins.address, ins.oracle]), 0n);

    // While the oracle holds the request open, neither a second request (a second fee) nor an expiry.
    assert.equal(await read(ins.oracle, oracleAbi, "isPending", [id]), true);
    await refused(ins.send(STRANGER, "assess", [1, 1]), "AssessmentPending", [0n]);
    await refused(ins.send(STRANGER, "settle", [1n]), "NotAssessed", [1, 1]);
    await refused(ins.send(STRANGER, "settle", [999n]), "UnknownPolicy", [999n]);
  });

  it("takes answers only from the oracle, for live requests, from the registered weights", async () => {
    await refused(ins.send(STRANGER, "onInference", [0n, 600_000n, DIGEST]), "OnlyOracle", [addr(STRANGER)]);
    await refused(ins.oracleSend("deliver", [ins.address, 12_345n, 600_000n, DIGEST]), "UnknownRequest", [
      12_345n,
    ]);
    await refused(ins.oracleSend("fulfill", [0n, 600_000n, OTHER_DIGEST]), "WrongWeights", [
      DIGEST,
      OTHER_DIGEST,
    ]);
    const before = await ins.pool();
    const receipt = await ins.oracleSend("fulfill", [0n, 600_000n, DIGEST]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "Assessed" });
    assert.deepEqual(
      [log?.args.region, log?.args.season, log?.args.requestId, log?.args.output, log?.args.score],
      [1, 1, 0n, 600_000n, 600_000n],
    );
    // Half the region's 100k coverage is owed from the moment it is scored, before any policy settles.
    assert.equal(log?.args.committed, E(50_000));
    const a = await ins.assessment(1, 1);
    assert.deepEqual([a.scored, a.score, a.weightsDigest, a.committed], [true, 600_000, DIGEST, E(50_000)]);
    const after = await ins.pool();
    assert.equal(before.reserved - after.reserved, E(100_000));
    assert.equal(after.committed - before.committed, E(50_000));
    assert.equal(after.free - before.free, E(50_000));
    await refused(ins.send(STRANGER, "assess", [1, 1]), "AlreadyAssessed", [1, 1]);
    await refused(ins.oracleSend("deliver", [ins.address, 0n, 900_000n, DIGEST]), "UnknownRequest", [0n]);
  });

  it("retries an assessment once the oracle no longer holds it open; collects the refund", async () => {
    await refused(ins.send(STRANGER, "collectOracleRefunds"), "NothingToCollect");
    const first = await ins.assess(2, 1);
    await refused(ins.send(STRANGER, "assess", [2, 1]), "AssessmentPending", [first]);
    const balance = (await ins.pool()).balance;
    await ins.oracleSend("refund", [first, 0n]);
    assert.equal(await read(ins.oracle, oracleAbi, "withdrawable", [ins.address]), E(1));
    assert.equal(await ins.collect(), E(1));
    assert.equal((await ins.pool()).balance, balance + E(1), "the refunded fee is back in the pool");
    assert.equal(await read(ins.oracle, oracleAbi, "withdrawable", [ins.address]), 0n);
    await refused(ins.oracleSend("withdraw", []), "NothingToWithdraw", [addr(STRANGER)]);
    // No waiting: the failed request is over at the oracle, so a new one abandons nothing live.
    const receipt = await ins.send(STRANGER, "assess", [2, 1]);
    const [abandoned] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "AssessmentAbandoned" });
    assert.equal(abandoned?.args.requestId, first);
    const [requested] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "AssessmentRequested" });
    const second = requested?.args.requestId as bigint;
    assert.notEqual(second, first);
    // A late answer to the abandoned request is refused; the live one is taken.
    await refused(ins.oracleSend("deliver", [ins.address, first, 900_000n, DIGEST]), "UnknownRequest", [
      first,
    ]);
    await ins.oracleSend("fulfill", [second, 150_000n, DIGEST]); // below the deductible
    assert.equal((await ins.assessment(2, 1)).score, 150_000);
  });

  it("pays the fee only from unreserved capital", async () => {
    await ins.send(REPORTER, "reportConditions", [3, 1, FEATURES]);
    // The fee set aside with the region-season's first policy (1 MIND) and the free capital pay it, no more.
    const available = (await ins.pool()).free + E(1);
    await ins.send(OWNER, "setOracleFee", [available + 1n]);
    await refused(ins.send(STRANGER, "assess", [3, 1]), "InsufficientCapital", [available + 1n, available]);
    await ins.send(OWNER, "setOracleFee", [E(1)]);
  });

  it("settles policies in proportion to the score above the deductible; farmers pull payouts", async () => {
    // Region 1 scored 0.6 with a 0.2 deductible: half the coverage.
    const poolBefore = await ins.pool();
    assert.equal(poolBefore.committed, E(50_000), "committed at scoring");
    assert.equal(poolBefore.reserved, E(10_001), "only region 3 is unscored: its coverage and oracle fee");
    assert.equal(await ins.settle(1n), E(20_000));
    assert.equal((await ins.assessment(1, 1)).committed, E(30_000));
    assert.equal(await ins.settle(2n), E(30_000));
    await refused(ins.send(STRANGER, "settle", [1n]), "PolicyNotActive", [1n]);
    // Region 2 scored 0.15, under the deductible: nothing.
    assert.equal(await ins.settle(3n), 0n);
    const pool = await ins.pool();
    assert.equal(pool.reserved, poolBefore.reserved, "settling moves committed to owed, nothing else");
    assert.equal(pool.committed, 0n);
    assert.equal(pool.owed, E(50_000));
    assert.equal(pool.free, poolBefore.free);
    assert.equal((await ins.policy(1n)).status, 2);
    assert.equal((await ins.policy(1n)).payout, E(20_000));
    assert.equal(await ins.read("claimable", [addr(4)]), E(20_000));

    const before = await balanceOf(addr(4));
    const receipt = await ins.send(4, "claim");
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "Claimed" });
    assert.equal(log?.args.amount, E(20_000));
    assert.equal((await balanceOf(addr(4))) - before, E(20_000));
    await refused(ins.send(4, "claim"), "NothingToClaim");
    await refused(ins.send(6, "claim"), "NothingToClaim");
    await ins.send(5, "claim");
    assert.equal((await ins.pool()).owed, 0n);
  });

  it("expires a region-season not scored by its deadline: coverage released, premiums refunded", async () => {
    // Region 3 of season 1: one policy (farmer 7, coverage 10k, premium 500), reported, never scored.
    const end = await ins.read<bigint>("seasonEnd", [1]);
    const deadline = end + 3600n;
    await refused(ins.send(STRANGER, "expire", [3, 1]), "AssessmentStillOpen", [3, 1, deadline]);
    await refused(ins.send(STRANGER, "expire", [3, 8]), "SeasonNotOpen", [8]);
    await refused(ins.send(STRANGER, "expire", [9, 1]), "NothingToAssess", [9, 1]);
    const late = await ins.assess(3, 1);
    await increaseTime(deadline - (await now()));
    await refused(ins.send(STRANGER, "assess", [3, 1]), "AssessmentClosed", [3, 1, deadline]);
    await refused(ins.send(STRANGER, "expire", [1, 1]), "AlreadyAssessed", [1, 1]);
    // The request made in time may still answer: no expiry while the oracle holds it open.
    await refused(ins.send(STRANGER, "expire", [3, 1]), "AssessmentPending", [late]);
    await ins.oracleSend("refund", [late, 0n]);

    const before = await ins.pool();
    const receipt = await ins.send(STRANGER, "expire", [3, 1]);
    const [expired] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "AssessmentExpired" });
    assert.deepEqual([expired?.args.coverage, expired?.args.premiums], [E(10_000), E(500)]);
    const [abandoned] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "AssessmentAbandoned" });
    assert.equal(abandoned?.args.requestId, late);
    const after = await ins.pool();
    assert.equal(before.reserved - after.reserved, E(10_000), "nothing of it stays reserved");
    assert.equal(after.committed - before.committed, E(500), "its premiums are set aside for the farmers");
    await refused(ins.send(STRANGER, "expire", [3, 1]), "AlreadyExpired", [3, 1]);
    await refused(ins.send(STRANGER, "assess", [3, 1]), "AlreadyExpired", [3, 1]);
    await refused(ins.oracleSend("deliver", [ins.address, late, 900_000n, DIGEST]), "UnknownRequest", [late]);

    assert.equal(await ins.refund(4n), E(500));
    const policy = await ins.policy(4n);
    assert.deepEqual([policy.status, policy.payout], [3, E(500)]);
    await refused(ins.send(STRANGER, "settle", [4n]), "PolicyNotActive", [4n]);
    const farmer = await balanceOf(addr(7));
    await ins.send(7, "claim");
    assert.equal((await balanceOf(addr(7))) - farmer, E(500));
    assert.equal((await ins.pool()).committed, 0n);
    assert.equal(await ins.collect(), E(1));
  });

  it("computes payouts linearly above the deductible, capped at the coverage", async () => {
    const coverage = E(1_000);
    for (const score of [
      0n,
      100_000n,
      200_000n,
      200_001n,
      350_000n,
      600_000n,
      999_999n,
      1_000_000n,
      5_000_000n,
    ]) {
      const onChain = await ins.read<bigint>("payoutFor", [coverage, score]);
      assert.equal(onChain, ins.payout(coverage, score), `score ${score}`);
      assert.ok(onChain <= coverage);
    }
    // Proportional: doubling the excess over the deductible doubles the payout.
    const p1 = await ins.read<bigint>("payoutFor", [coverage, 300_000n]);
    const p2 = await ins.read<bigint>("payoutFor", [coverage, 400_000n]);
    assert.equal(p2, 2n * p1);
    assert.equal(await ins.read<bigint>("payoutFor", [coverage, 600_000n]), coverage / 2n);

    // Through the oracle: outputs outside [0, 1] are clamped; above 1 pays the full coverage.
    const end = await ins.openSeason(2, 500n);
    const full = await ins.buy(8, 4, 2, E(3_000));
    const none = await ins.buy(9, 5, 2, E(3_000));
    await increaseTime(end - (await now()));
    await ins.send(REPORTER, "reportConditions", [4, 2, FEATURES]);
    await ins.send(REPORTER, "reportConditions", [5, 2, FEATURES]);
    const r4 = await ins.assess(4, 2);
    const r5 = await ins.assess(5, 2);
    await ins.oracleSend("fulfill", [r4, 2_500_000n, DIGEST]);
    await ins.oracleSend("fulfill", [r5, -400_000n, DIGEST]);
    assert.equal((await ins.assessment(4, 2)).score, 1_000_000);
    assert.equal((await ins.assessment(5, 2)).score, 0);
    assert.equal(await ins.settle(full), E(3_000));
    assert.equal(await ins.settle(none), 0n);
    await ins.send(8, "claim");
  });

  it("pays withdrawals at the pessimistic share value, never more than the free capital", async () => {
    await refused(ins.send(1, "withdraw", [0n]), "ZeroAmount");
    await refused(ins.send(1, "withdraw", [E(100_001)]), "InsufficientShares", [E(100_001), E(100_000)]);
    // Reserve most of the pool with a large policy: open coverage counts as a total loss for leavers.
    const end = await ins.openSeason(3, 500n);
    const { free } = await ins.pool();
    // Buying coverage c (premium 5 % of c) leaves free - 0.95 c unreserved: leave about 5k.
    const big = ((free - E(5_000)) * 10_000n) / 9_500n;
    const bigId = await ins.buy(9, 6, 3, big);
    const pool = await ins.pool();
    const totalShares = await ins.read<bigint>("totalShares");
    assert.ok(pool.free < E(5_100));
    // One share-wei is worth less than a token-wei now: refused rather than burnt for nothing.
    await refused(ins.send(1, "withdraw", [1n]), "ZeroAmount");

    const shares = E(5_000);
    const expected = (shares * (pool.free + 1n)) / (totalShares + 1n);
    assert.equal(await ins.read("previewWithdraw", [shares]), expected);
    const before = await balanceOf(addr(1));
    const receipt = await ins.send(1, "withdraw", [shares]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "Withdrawn" });
    assert.deepEqual([log?.args.shares, log?.args.amount], [shares, expected]);
    assert.equal((await balanceOf(addr(1))) - before, expected);
    assert.equal(await ins.read("sharesOf", [addr(1)]), E(95_000));
    // All of an underwriter's shares are worth at most the free capital, whoever holds the rest.
    assert.ok((await ins.read<bigint>("previewWithdraw", [E(95_000)])) <= (await ins.pool()).free);

    // Late funders buy in at the optimistic value: the open policy assumed to pay nothing.
    const poolNow = await ins.pool();
    const sharesNow = await ins.read<bigint>("totalShares");
    const minted = await ins.fund(3, E(1_000));
    assert.equal(
      minted,
      (E(1_000) * (sharesNow + 1n)) / (poolNow.balance - poolNow.owed - poolNow.committed + 1n),
    );

    // Once the big policy is scored without payout, its reserve is free again, and so is the share value.
    const exitBefore = await ins.read<bigint>("previewWithdraw", [E(95_000)]);
    await increaseTime(end - (await now()));
    await ins.send(REPORTER, "reportConditions", [6, 3, FEATURES]);
    await ins.oracleSend("fulfill", [await ins.assess(6, 3), 100_000n, DIGEST]);
    const scored = await ins.pool();
    assert.equal(scored.free - poolNow.free - E(1_000), big, "the reserve came back (its fee was set aside)");
    const worth = await ins.read<bigint>("previewWithdraw", [E(95_000)]);
    assert.equal(worth, (E(95_000) * (scored.free + 1n)) / ((await ins.read<bigint>("totalShares")) + 1n));
    assert.ok(worth > exitBefore * 10n, `worth ${worth}, ${exitBefore} while reserved`);
    await ins.settle(bigId);
    assert.equal(await ins.withdrawAll(1), worth);
    assert.equal(await ins.read("sharesOf", [addr(1)]), 0n);
  });

  it("settles end to end with the trained yield model run by the oracle's integer inference", async () => {
    const model = await trainYieldModel({ trainSize: 1500, testSize: 200, epochs: 10 });
    const insurer = await Insurer.deploy({ ...DEFAULT_PARAMS, weightsDigest: model.weightsDigest });
    await insurer.fund(1, E(10_000));
    const end = await insurer.openSeason(1, 300n);
    // Two regions: a calm season and a drought, as the generator would draw them.
    const data = generateYieldData(400, "e2e");
    let calm = -1;
    let drought = -1;
    for (let i = 0; i < data.n; i++) {
      if (calm < 0 && (data.expected[i] as number) < 0.05) calm = i;
      if (drought < 0 && (data.expected[i] as number) > 0.7) drought = i;
    }
    assert.ok(calm >= 0 && drought >= 0);
    const rows = [calm, drought].map((i) => toOracleInput(Array.from(data.x.subarray(i * 4, i * 4 + 4))));
    const ids = [await insurer.buy(4, 0, 1, E(1_000)), await insurer.buy(5, 1, 1, E(1_000))];
    await increaseTime(end - (await now()));
    for (let region = 0; region < 2; region++) {
      await insurer.send(OWNER, "reportConditions", [region, 1, rows[region]]);
      const requestId = await insurer.assess(region, 1);
      // The operator's side: read the request, run the canonical model in integers, answer.
      const request = await insurer.request(requestId);
      const [output] = inferFixed(model.canonical, [...request.input]);
      await insurer.oracleSend("fulfill", [requestId, output, model.weightsDigest]);
      const payout = await insurer.settle(ids[region] as bigint);
      assert.equal(payout, insurer.payout(E(1_000), output as bigint));
      if (region === 0) assert.equal(payout, 0n, `calm season scored ${output}`);
      else assert.ok(payout > E(500), `drought scored ${output}, paid ${payout}`);
    }
  });

  it("property: random fund/buy/assess/score/refund/expire/claim sequences keep the pool solvent and tokens conserved", async () => {
    const params: Params = {
      premiumBps: 800,
      deductible: 250_000,
      featureCount: 4,
      salesCloseBefore: 100n,
      assessmentWindow: 1_500n,
      oracleFee: E(10),
      weightsDigest: DIGEST,
    };
    const p = await Insurer.deploy(params);
    // The test oracle's `refund` pulls the stand-in for slashed stake from its caller.
    await send(STRANGER, token, tokenAbi, "approve", [p.oracle, maxUint256]);
    // CROP_INSURANCE_SEED explores other sequences (e.g. in a loop); the default is what CI runs.
    const rng = createRng(process.env.CROP_INSURANCE_SEED ?? "crop-insurance-property");
    const pick = <T>(items: readonly T[]): T => items[rng.int(items.length)] as T;
    const holders = [...new Set([OWNER, ...UNDERWRITERS, ...FARMERS, REPORTER, STRANGER].map(addr))];
    holders.push(p.address, p.oracle);
    const totalOf = async () => {
      let sum = 0n;
      for (const h of holders) sum += await balanceOf(h);
      return sum;
    };
    const initialTotal = await totalOf();

    // The test's own model of the contract, updated from events.
    interface ModelPolicy {
      farmer: Address;
      coverage: bigint;
      premium: bigint;
      key: string;
      settled: boolean;
    }
    const seasonEnds = new Map<number, bigint>();
    const policies = new Map<bigint, ModelPolicy>();
    const reported = new Set<string>();
    const scores = new Map<string, bigint>();
    const expired = new Set<string>();
    /** Region-seasons that made a request: the fee set aside with their first policy is spent. */
    const requestedKeys = new Set<string>();
    const openRequests = new Map<bigint, string>();
    let oracleRefunds = 0n;
    const claimable = new Map<Address, bigint>();
    const key = (region: number, season: number) => `${region}/${season}`;
    const unkey = (k: string) => k.split("/").map(Number) as [number, number];
    let paidOut = 0n;
    let claimedTotal = 0n;
    let inflow = 0n;
    let outflow = 0n;
    let positivePayouts = 0;
    const successes = new Map<string, number>();
    const refusals = new Map<string, number>();

    const shares = new Map<Address, bigint>();
    let time = await now();
    const seasons = () => [...seasonEnds.keys()];
    const anySeason = () => 1 + rng.int(seasonEnds.size + 2);
    const openSeasons = () => seasons().filter((s) => (seasonEnds.get(s) as bigint) - 100n > time + 1n);
    const deadlineOf = (k: string) => (seasonEnds.get(unkey(k)[1]) as bigint) + 1_500n;
    const pendingKeys = () => new Set(openRequests.values());
    const unsettledKeys = () => new Set([...policies.values()].filter((q) => !q.settled).map((q) => q.key));
    const decided = (k: string) => scores.has(k) || expired.has(k);
    const keysToReport = () =>
      [...new Set([...policies.values()].map((q) => q.key))].filter(
        (k) => !reported.has(k) && (seasonEnds.get(unkey(k)[1]) as bigint) <= time,
      );
    const keysToAssess = () =>
      [...reported].filter(
        (k) => !decided(k) && unsettledKeys().has(k) && !pendingKeys().has(k) && deadlineOf(k) > time + 1n,
      );
    const keysToExpire = () =>
      [...unsettledKeys()].filter((k) => !decided(k) && !pendingKeys().has(k) && deadlineOf(k) <= time);
    const policiesToSettle = () =>
      [...policies.entries()].filter(([, q]) => !q.settled && decided(q.key)).map(([id]) => id);
    const farmersOwed = () => FARMERS.filter((f) => (claimable.get(addr(f)) ?? 0n) > 0n);
    const underwritersWithShares = () => UNDERWRITERS.filter((u) => (shares.get(addr(u)) ?? 0n) > 0n);
    const randomOutput = () => {
      const u = rng.next();
      if (u < 0.1) return -BigInt(rng.int(300_000));
      if (u < 0.2) return ONE + BigInt(rng.int(1_000_000));
      return BigInt(rng.int(1_000_001));
    };

    /**
     * Each action: weight, whether a meaningful call exists now, and the call, either meaningful (`sensible`)
     * or with arbitrary arguments, which the contract must refuse cleanly or handle.
     */
    interface Action {
      weight: number;
      name: string;
      enabled: () => boolean;
      run: (sensible: boolean) => Promise<TransactionReceipt>;
    }
    const actions: Action[] = [
      {
        weight: 8,
        name: "fund",
        enabled: () => true,
        run: async (sensible) => {
          const amount = E(50 + rng.int(5_000));
          const preview = await p.read<bigint>("previewFund", [amount]);
          // Senseless: a zero amount, or more shares asked for than the price gives.
          const args = sensible ? [amount, preview] : rng.next() < 0.5 ? [0n, 0n] : [amount, preview + 1n];
          return p.send(pick(UNDERWRITERS), "fund", args);
        },
      },
      {
        weight: 5,
        name: "withdraw",
        enabled: () => underwritersWithShares().length > 0,
        run: (sensible) => {
          const u = sensible ? pick(underwritersWithShares()) : pick(UNDERWRITERS);
          const held = shares.get(addr(u)) ?? 0n;
          const amount = sensible ? (held * BigInt(1 + rng.int(100))) / 100n : held + 1n + BigInt(rng.int(3));
          return p.send(u, "withdraw", [amount]);
        },
      },
      {
        weight: 3,
        name: "openSeason",
        enabled: () => openSeasons().length < 2,
        run: (sensible) => {
          const season = sensible ? seasonEnds.size + 1 : anySeason();
          const end = sensible ? time + BigInt(400 + rng.int(1200)) : time + 100n - BigInt(rng.int(200));
          return p.send(OWNER, "openSeason", [season, end]);
        },
      },
      {
        weight: 20,
        name: "buyPolicy",
        enabled: () => openSeasons().length > 0,
        run: (sensible) => {
          const season = sensible ? pick(openSeasons()) : anySeason();
          const coverage = rng.next() < 0.1 ? E(20_000 + rng.int(200_000)) : E(10 + rng.int(3_000));
          return p.send(pick(FARMERS), "buyPolicy", [rng.int(3), season, coverage]);
        },
      },
      {
        weight: 8,
        name: "reportConditions",
        enabled: () => keysToReport().length > 0,
        run: (sensible) => {
          const [region, season] = sensible ? unkey(pick(keysToReport())) : [rng.int(3), anySeason()];
          const features = Array.from({ length: 4 }, () => BigInt(rng.int(1_000_001)));
          return p.send(OWNER, "reportConditions", [region, season, features]);
        },
      },
      {
        weight: 10,
        name: "assess",
        enabled: () => keysToAssess().length > 0,
        run: (sensible) => {
          const [region, season] = sensible ? unkey(pick(keysToAssess())) : [rng.int(3), anySeason()];
          return p.send(STRANGER, "assess", [region, season]);
        },
      },
      {
        weight: 12,
        name: "fulfill",
        enabled: () => openRequests.size > 0,
        run: (sensible) => {
          const id = sensible ? pick([...openRequests.keys()]) : BigInt(rng.int(50));
          return p.oracleSend("fulfill", [id, randomOutput(), rng.next() < 0.1 ? OTHER_DIGEST : DIGEST]);
        },
      },
      {
        weight: 3,
        name: "refund",
        enabled: () => openRequests.size > 0,
        run: (sensible) =>
          p.oracleSend("refund", [
            sensible ? pick([...openRequests.keys()]) : BigInt(rng.int(50)),
            E(rng.int(20)),
          ]),
      },
      {
        weight: 3,
        name: "collectOracleRefunds",
        enabled: () => oracleRefunds > 0n,
        run: () => p.send(STRANGER, "collectOracleRefunds"),
      },
      {
        weight: 4,
        name: "expire",
        enabled: () => keysToExpire().length > 0,
        run: (sensible) => {
          const [region, season] = sensible ? unkey(pick(keysToExpire())) : [rng.int(3), anySeason()];
          return p.send(STRANGER, "expire", [region, season]);
        },
      },
      {
        weight: 14,
        name: "settle",
        enabled: () => policiesToSettle().length > 0,
        run: (sensible) =>
          p.send(STRANGER, "settle", [
            sensible ? pick(policiesToSettle()) : BigInt(rng.int(policies.size + 2)),
          ]),
      },
      {
        weight: 8,
        name: "claim",
        enabled: () => farmersOwed().length > 0,
        run: (sensible) => p.send(sensible ? pick(farmersOwed()) : pick(FARMERS), "claim"),
      },
    ];

    for (let step = 0; step < 200; step++) {
      // Every block one second after the last (or a jump), whatever the load: the run replays exactly.
      if (rng.next() < 0.15) await setNextTimestamp(time + BigInt(100 + rng.int(700)), true);
      time = await now();
      await setNextTimestamp(time + 1n);
      // Mostly calls that make sense now (so the run gets deep into the life cycle), sometimes anything.
      const sensible = rng.next() < 0.8;
      const candidates = sensible ? actions.filter((a) => a.enabled()) : actions;
      let r = rng.int(candidates.reduce((sum, a) => sum + a.weight, 0));
      let action = candidates[0] as Action;
      for (const a of candidates) {
        action = a;
        r -= a.weight;
        if (r < 0) break;
      }
      const { name } = action;
      const run = () => action.run(sensible);
      let receipt: TransactionReceipt | undefined;
      try {
        receipt = await run();
        successes.set(name, (successes.get(name) ?? 0) + 1);
      } catch (err) {
        assert.ok(err instanceof ContractRefusedError, `step ${step} ${name}: ${String(err)}`);
        assert.ok(!["Panic", "Error"].includes(err.errorName), `step ${step} ${name}: ${err.message}`);
        observedErrors.add(err.errorName);
        refusals.set(err.errorName, (refusals.get(err.errorName) ?? 0) + 1);
      }
      if (receipt) {
        for (const log of parseEventLogs({ abi: tokenAbi, logs: receipt.logs, eventName: "Transfer" })) {
          if (isAddressEqual(log.args.to, p.address)) inflow += log.args.value;
          if (isAddressEqual(log.args.from, p.address)) outflow += log.args.value;
        }
        const mine = receipt.logs.filter((l) => isAddressEqual(l.address, p.address));
        for (const log of parseEventLogs({ abi: insAbi, logs: mine })) {
          switch (log.eventName) {
            case "SeasonOpened":
              seasonEnds.set(log.args.season, log.args.endTime);
              break;
            case "Funded":
              shares.set(log.args.funder, (shares.get(log.args.funder) ?? 0n) + log.args.shares);
              break;
            case "Withdrawn":
              shares.set(log.args.underwriter, (shares.get(log.args.underwriter) ?? 0n) - log.args.shares);
              break;
            case "PolicyBought":
              policies.set(log.args.policyId, {
                farmer: log.args.farmer,
                coverage: log.args.coverage,
                premium: log.args.premium,
                key: key(log.args.region, log.args.season),
                settled: false,
              });
              break;
            case "ConditionsReported":
              reported.add(key(log.args.region, log.args.season));
              break;
            case "AssessmentRequested":
              requestedKeys.add(key(log.args.region, log.args.season));
              assert.ok(!pendingKeys().has(key(log.args.region, log.args.season)), "a second live request");
              openRequests.set(log.args.requestId, key(log.args.region, log.args.season));
              break;
            case "AssessmentAbandoned":
              assert.ok(!openRequests.has(log.args.requestId), "abandoned a request the oracle held open");
              break;
            case "AssessmentExpired": {
              const k = key(log.args.region, log.args.season);
              assert.ok(!scores.has(k), "expired after a score");
              expired.add(k);
              break;
            }
            case "OracleRefundsCollected":
              assert.equal(log.args.amount, oracleRefunds, "collected every refund");
              oracleRefunds = 0n;
              break;
            case "Assessed":
              openRequests.delete(log.args.requestId);
              scores.set(key(log.args.region, log.args.season), log.args.score);
              break;
            case "PolicySettled": {
              const policy = policies.get(log.args.policyId);
              assert.ok(policy && !policy.settled, "settled twice");
              const score = scores.get(policy.key);
              assert.ok(score !== undefined, "settled before its region-season was scored");
              assert.equal(log.args.score, score);
              assert.equal(log.args.payout, p.payout(policy.coverage, score), "payout formula");
              assert.ok(log.args.payout <= policy.coverage, "payout above coverage");
              policy.settled = true;
              paidOut += log.args.payout;
              claimable.set(policy.farmer, (claimable.get(policy.farmer) ?? 0n) + log.args.payout);
              if (log.args.payout > 0n) positivePayouts++;
              break;
            }
            case "PolicyRefunded": {
              const policy = policies.get(log.args.policyId);
              assert.ok(policy && !policy.settled, "settled twice");
              assert.ok(expired.has(policy.key), "refunded a policy of a region-season that did not expire");
              assert.equal(log.args.premium, policy.premium, "refunds the premium");
              policy.settled = true;
              paidOut += log.args.premium;
              claimable.set(policy.farmer, (claimable.get(policy.farmer) ?? 0n) + log.args.premium);
              break;
            }
            case "Claimed":
              assert.equal(log.args.amount, claimable.get(log.args.farmer), "claimed what was owed");
              claimable.set(log.args.farmer, 0n);
              claimedTotal += log.args.amount;
              break;
          }
        }
        const oracleLogs = receipt.logs.filter((l) => isAddressEqual(l.address, p.oracle));
        for (const log of parseEventLogs({ abi: oracleAbi, logs: oracleLogs, eventName: "Refunded" })) {
          if (openRequests.delete(log.args.requestId)) oracleRefunds += log.args.fee;
        }
      }

      // Invariants, after every step.
      const pool = await p.pool();
      assert.ok(
        pool.balance >= pool.owed + pool.committed + pool.reserved,
        `step ${step}: liabilities exceed the balance`,
      );
      assert.equal(pool.balance, inflow - outflow, `step ${step}: balance is not inflows minus outflows`);
      assert.ok(outflow <= inflow, `step ${step}: the pool paid out more than it took in`);
      let reserved = 0n;
      let committed = 0n;
      for (const k of unsettledKeys()) if (!decided(k) && !requestedKeys.has(k)) reserved += params.oracleFee;
      for (const policy of policies.values()) {
        if (policy.settled) continue;
        const score = scores.get(policy.key);
        if (score !== undefined) committed += p.payout(policy.coverage, score);
        else if (expired.has(policy.key)) committed += policy.premium;
        else reserved += policy.coverage;
      }
      assert.equal(
        pool.reserved,
        reserved,
        `step ${step}: reserved != open coverage of undecided region-seasons`,
      );
      // Committed at scoring as payoutFor(total coverage): at least the policies' rounded-down payouts, at
      // most a wei per open policy more.
      assert.ok(pool.committed >= committed, `step ${step}: committed below the payouts still due`);
      assert.ok(pool.committed - committed <= BigInt(policies.size), `step ${step}: committed too high`);
      const totalShares = await p.read<bigint>("totalShares");
      assert.ok(
        (await p.read<bigint>("previewWithdraw", [totalShares])) <= pool.free,
        `step ${step}: exit > free`,
      );
      assert.equal(await read(p.oracle, oracleAbi, "withdrawable", [p.address]), oracleRefunds);
      assert.equal(pool.owed, paidOut - claimedTotal, `step ${step}: owed != settled payouts - claims`);
      assert.equal(await totalOf(), initialTotal, `step ${step}: tokens not conserved`);
      if (step % 25 === 24) {
        for (const f of FARMERS) {
          assert.equal(await p.read("claimable", [addr(f)]), claimable.get(addr(f)) ?? 0n);
        }
        for (const u of UNDERWRITERS)
          assert.equal(await p.read("sharesOf", [addr(u)]), shares.get(addr(u)) ?? 0n);
      }
    }

    console.log(
      `property run: successes ${JSON.stringify(Object.fromEntries(successes))}; ` +
        `refusals ${JSON.stringify(Object.fromEntries(refusals))}; positive payouts ${positivePayouts}`,
    );
    // The run must have exercised the interesting paths, not only refusals.
    for (const name of [
      "fund",
      "withdraw",
      "buyPolicy",
      "reportConditions",
      "assess",
      "fulfill",
      "settle",
      "claim",
    ]) {
      assert.ok((successes.get(name) ?? 0) >= 3, `too few successful ${name}`);
    }
    for (const name of ["refund", "collectOracleRefunds", "expire"]) {
      assert.ok((successes.get(name) ?? 0) >= 1, `no successful ${name}`);
    }
    assert.ok(positivePayouts >= 3, "too few positive payouts");
    assert.ok((refusals.get("InsufficientCapital") ?? 0) >= 1, "the capital limit was never hit");
  });

  it("reaches every custom error declared in CropInsurance.sol", () => {
    const declared = declaredErrors();
    assert.ok(declared.length >= 20, `only ${declared.length} errors parsed`);
    const missing = declared.filter((e) => !observedErrors.has(e));
    assert.deepEqual(missing, [], `never observed: ${missing.join(", ")}`);
  });
});
