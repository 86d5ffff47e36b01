import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  type Abi,
  type Address,
  decodeErrorResult,
  type Hex,
  isAddressEqual,
  keccak256,
  maxUint256,
  parseEther,
  parseEventLogs,
  stringToHex,
  type TransactionReceipt,
  zeroAddress,
  zeroHash,
} from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { TOKEN_SUPPLY } from "../../src/chain/deploy.ts";
import { CropInsurance, InsuranceTestOracle, MindToken } from "../../src/chain/generated/contracts.ts";
import { ContractRefusedError, decodeRevert, sendAndWait } from "../../src/chain/tx.ts";
import { createRng } from "../../src/ml/partition.ts";
import { inferFixed } from "../../src/oracle/fixed-point.ts";
import { generateYieldData, toOracleInput } from "../../src/oracle/yield-data.ts";
import { trainYieldModel } from "../../src/oracle/yield-model.ts";

const SOURCE = readFileSync(new URL("../../contracts/CropInsurance.sol", import.meta.url), "utf8");
const insAbi = CropInsurance.abi;
const oracleAbi = InsuranceTestOracle.abi;
const tokenAbi = MindToken.abi;
/** The test oracle's ABI plus the insurer's errors, so refusals bubbling through the oracle decode. */
const oracleCallAbi = [...oracleAbi, ...insAbi.filter((item) => item.type === "error")] as const;

const ONE = 1_000_000n;
const E = (n: number | string) => parseEther(String(n));
const MODEL_ID = 7n;
const MODEL_VERSION = 3;
const DIGEST = keccak256(stringToHex("yield-model weights"));
const OTHER_DIGEST = keccak256(stringToHex("some other weights"));

// Roles (dev account indices).
const OWNER = 0;
const UNDERWRITERS = [1, 2, 3];
const FARMERS = [4, 5, 6, 7, 8, 9];
const REPORTER = 10;
const STRANGER = 11;

interface Params {
  premiumBps: number;
  deductible: number;
  featureCount: number;
  retryAfter: bigint;
  oracleFee: bigint;
  weightsDigest: Hex;
}

const DEFAULT_PARAMS: Params = {
  premiumBps: 500,
  deductible: 200_000,
  featureCount: 4,
  retryAfter: 3600n,
  oracleFee: E(1),
  weightsDigest: DIGEST,
};

let chain: LedgerChain;
let token: Address;

/** Every custom error name a test saw the contracts raise. */
const observedErrors = new Set<string>();

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

function addr(i: number): Address {
  const a = chain.accounts[i];
  if (!a) throw new Error(`no dev account #${i}`);
  return a.address;
}

async function deploy(artifact: { abi: Abi; bytecode: Hex }, args: readonly unknown[]): Promise<Address> {
  const wallet = chain.wallet(OWNER);
  let receipt: TransactionReceipt;
  try {
    receipt = await sendAndWait(
      chain,
      wallet.deployContract({ abi: artifact.abi, bytecode: artifact.bytecode, args } as Parameters<
        typeof wallet.deployContract
      >[0]),
    );
  } catch (err) {
    throw decodeDeployRevert(err, artifact.abi);
  }
  if (!receipt.contractAddress) throw new Error("no contract created");
  return receipt.contractAddress;
}

/**
 * viem does not decode a constructor's custom error (no function ABI to decode against): the revert data
 * sits on an inner cause. Decodes it against the contract's ABI into a ContractRefusedError.
 */
function decodeDeployRevert(err: unknown, abi: Abi): unknown {
  let cause: unknown = err;
  for (let depth = 0; depth < 10 && cause && typeof cause === "object"; depth++) {
    const data = (cause as { data?: unknown }).data;
    if (typeof data === "string" && /^0x[0-9a-fA-F]{8}/.test(data)) {
      try {
        const decoded = decodeErrorResult({ abi, data: data as Hex });
        return new ContractRefusedError(decoded.errorName, decoded.args ?? []);
      } catch {
        return err;
      }
    }
    cause = (cause as { cause?: unknown }).cause;
  }
  return err;
}

/** Sends a call to `address` from account `from`; reverts become ContractRefusedError. */
function send(from: number, address: Address, abi: Abi, functionName: string, args: readonly unknown[] = []) {
  return sendAndWait(
    chain,
    chain
      .wallet(from)
      .writeContract({ address, abi, functionName, args } as Parameters<
        ReturnType<LedgerChain["wallet"]>["writeContract"]
      >[0]),
  );
}

async function read<T>(
  address: Address,
  abi: Abi,
  functionName: string,
  args: readonly unknown[] = [],
): Promise<T> {
  try {
    return (await chain.publicClient.readContract({ address, abi, functionName, args })) as T;
  } catch (err) {
    throw decodeRevert(err);
  }
}

/** Asserts a refusal with exactly this custom error (and these arguments, when given), and records it. */
async function refused(p: Promise<unknown>, errorName: string, args?: readonly unknown[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ContractRefusedError, `expected ContractRefusedError, got ${String(err)}`);
    assert.equal(err.errorName, errorName, `expected ${errorName}, got ${err.message}`);
    if (args !== undefined) assert.deepEqual(err.args, args);
    observedErrors.add(err.errorName);
    return true;
  });
}

function balanceOf(a: Address): Promise<bigint> {
  return read(token, tokenAbi, "balanceOf", [a]);
}

async function now(): Promise<bigint> {
  return (await chain.publicClient.getBlock()).timestamp;
}

async function increaseTime(seconds: bigint | number): Promise<void> {
  const request = chain.publicClient.request as (args: {
    method: string;
    params: unknown[];
  }) => Promise<unknown>;
  await request({ method: "evm_increaseTime", params: [Number(seconds)] });
  await request({ method: "evm_mine", params: [] });
}

/** A deployed insurer with its test oracle, and typed helpers bound to them. */
class Insurer {
  constructor(
    readonly address: Address,
    readonly oracle: Address,
    readonly params: Params,
  ) {}

  static async deploy(params: Params = DEFAULT_PARAMS): Promise<Insurer> {
    const oracle = await deploy(InsuranceTestOracle, [token]);
    const address = await deploy(CropInsurance, [token, oracle, MODEL_ID, MODEL_VERSION, params]);
    const insurer = new Insurer(address, oracle, params);
    for (const i of [...UNDERWRITERS, ...FARMERS, OWNER]) {
      await send(i, token, tokenAbi, "approve", [address, maxUint256]);
    }
    return insurer;
  }

  send(from: number, functionName: string, args: readonly unknown[] = []): Promise<TransactionReceipt> {
    return send(from, this.address, insAbi, functionName, args);
  }

  oracleSend(functionName: string, args: readonly unknown[]): Promise<TransactionReceipt> {
    return send(STRANGER, this.oracle, oracleCallAbi as unknown as Abi, functionName, args);
  }

  read<T>(functionName: string, args: readonly unknown[] = []): Promise<T> {
    return read<T>(this.address, insAbi, functionName, args);
  }

  async pool(): Promise<{ balance: bigint; owed: bigint; reserved: bigint; free: bigint }> {
    const [balance, owed, reserved, free] = await this.read<[bigint, bigint, bigint, bigint]>("pool");
    return { balance, owed, reserved, free };
  }

  policy(id: bigint) {
    return this.read<{
      farmer: Address;
      region: number;
      season: number;
      status: number;
      coverage: bigint;
      premium: bigint;
      payout: bigint;
    }>("getPolicy", [id]);
  }

  assessment(region: number, season: number) {
    return this.read<{
      openPolicies: number;
      reported: boolean;
      scored: boolean;
      requestedAt: bigint;
      score: number;
      requestId: bigint;
      weightsDigest: Hex;
      features: readonly bigint[];
    }>("getAssessment", [region, season]);
  }

  request(id: bigint) {
    return read<{
      consumer: Address;
      modelId: bigint;
      version: number;
      inputCid: Hex;
      aggregation: number;
      fee: bigint;
      open: boolean;
      input: readonly bigint[];
    }>(this.oracle, oracleAbi, "getRequest", [id]);
  }

  async buy(farmer: number, region: number, season: number, coverage: bigint): Promise<bigint> {
    const receipt = await this.send(farmer, "buyPolicy", [region, season, coverage]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "PolicyBought" });
    assert.ok(log);
    return log.args.policyId;
  }

  async assess(region: number, season: number): Promise<bigint> {
    const receipt = await this.send(STRANGER, "assess", [region, season]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "AssessmentRequested" });
    assert.ok(log);
    return log.args.requestId;
  }

  async settle(policyId: bigint): Promise<bigint> {
    const receipt = await this.send(STRANGER, "settle", [policyId]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "PolicySettled" });
    assert.ok(log);
    return log.args.payout;
  }

  async openSeason(season: number, duration: bigint): Promise<bigint> {
    const end = (await now()) + duration;
    await this.send(OWNER, "openSeason", [season, end]);
    return end;
  }

  /** The payout formula, off-chain. */
  payout(coverage: bigint, score: bigint): bigint {
    const d = BigInt(this.params.deductible);
    if (score <= d) return 0n;
    if (score >= ONE) return coverage;
    return (coverage * (score - d)) / (ONE - d);
  }
}

function declaredErrors(): string[] {
  return [...SOURCE.matchAll(/^\s*error\s+(\w+)\s*\(/gm)].map((m) => m[1] as string);
}

/** Drought-ish normalized features as the oracle's fixed-point input. */
const FEATURES = toOracleInput([0.4, 0.3, 0.2, 0.6]);

// ---------------------------------------------------------------------------------------------------------

describe("CropInsurance", () => {
  let ins: Insurer;

  before(async () => {
    chain = await connect({ ephemeral: true });
    token = await deploy(MindToken, [addr(OWNER), TOKEN_SUPPLY]);
    for (const i of [...UNDERWRITERS, ...FARMERS, REPORTER, STRANGER]) {
      await send(OWNER, token, tokenAbi, "transfer", [addr(i), E(1_000_000)]);
    }
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
    await refused(attempt(token, oracle, { retryAfter: 0n }), "InvalidParams");
    const ok = await attempt(token, oracle, { premiumBps: 10_000, deductible: 999_999 });
    assert.equal(await read(ok, insAbi, "deductible"), 999_999);
    assert.ok(isAddressEqual(await read(ok, insAbi, "reporter"), addr(OWNER)));
    assert.ok(isAddressEqual(await read(ok, insAbi, "owner"), addr(OWNER)));
    assert.equal(await read(ok, insAbi, "modelId"), MODEL_ID);
    assert.equal(await read(ok, insAbi, "modelVersion"), MODEL_VERSION);
    assert.equal(await read(ok, insAbi, "expectedWeightsDigest"), DIGEST);
  });

  it("lets underwriters fund the pool for shares of its equity", async () => {
    await refused(ins.send(1, "fund", [0n]), "ZeroAmount");
    const receipt = await ins.send(1, "fund", [E(100_000)]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "Funded" });
    assert.ok(log && isAddressEqual(log.args.funder, addr(1)));
    assert.equal(log.args.amount, E(100_000));
    assert.equal(log.args.shares, E(100_000));
    await ins.send(2, "fund", [E(50_000)]);
    assert.equal(await ins.read("sharesOf", [addr(2)]), E(50_000));
    assert.equal(await ins.read("totalShares"), E(150_000));
    const pool = await ins.pool();
    assert.deepEqual(pool, { balance: E(150_000), owed: 0n, reserved: 0n, free: E(150_000) });
  });

  it("lets only the owner open a season, once, ending in the future", async () => {
    const t = await now();
    await refused(ins.send(STRANGER, "openSeason", [1, t + 1000n]), "OwnableUnauthorizedAccount");
    await refused(ins.send(OWNER, "openSeason", [1, t]), "InvalidEndTime", [t]);
    const receipt = await ins.send(OWNER, "openSeason", [1, t + 1000n]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "SeasonOpened" });
    assert.equal(log?.args.season, 1);
    assert.equal(log?.args.endTime, t + 1000n);
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
    // 150k capital: a 200k policy (premium 10k) would leave 40k uncovered.
    await refused(ins.send(4, "buyPolicy", [1, 1, E(200_000)]), "InsufficientCapital", [
      E(200_000),
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
    assert.equal(pool.reserved, E(130_000));
    assert.equal(pool.balance, E(150_000) + E(6_500));
    assert.equal(pool.free, E(26_500));
    // Exactly the free capital plus its own premium fits; one wei more does not.
    const fits = (E(26_500) * 10_000n) / 9_500n; // coverage c with c <= free + ceil(5 % of c)
    await refused(ins.send(8, "buyPolicy", [1, 1, fits + E(1)]), "InsufficientCapital", [
      fits + E(1),
      E(26_500) + ((fits + E(1)) * 500n + 9_999n) / 10_000n,
    ]);
    assert.equal((await ins.assessment(1, 1)).openPolicies, 2);
  });

  it("takes the conditions of a region-season from the reporter, once, after the season", async () => {
    await refused(ins.send(OWNER, "reportConditions", [1, 1, FEATURES]), "SeasonNotEnded");
    await refused(ins.send(OWNER, "setReporter", [zeroAddress]), "ZeroAddress");
    await ins.send(OWNER, "setReporter", [addr(REPORTER)]);
    await refused(ins.send(OWNER, "reportConditions", [1, 1, FEATURES]), "NotReporter", [addr(OWNER)]);
    await refused(ins.send(REPORTER, "reportConditions", [1, 8, FEATURES]), "SeasonNotOpen", [8]);
    await refused(ins.send(STRANGER, "assess", [1, 1]), "SeasonNotEnded");

    await increaseTime(1000);
    await refused(ins.send(8, "buyPolicy", [1, 1, E(1)]), "SeasonEnded");
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
    assert.equal(poolAfter.reserved, poolBefore.reserved);
    assert.equal(await read(token, tokenAbi, "allowance", [ins.address, ins.oracle]), 0n);

    const a = await ins.assessment(1, 1);
    await refused(ins.send(STRANGER, "assess", [1, 1]), "AssessmentPending", [0n, a.requestedAt + 3600n]);
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
    const receipt = await ins.oracleSend("fulfill", [0n, 600_000n, DIGEST]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "Assessed" });
    assert.deepEqual(
      [log?.args.region, log?.args.season, log?.args.requestId, log?.args.output, log?.args.score],
      [1, 1, 0n, 600_000n, 600_000n],
    );
    const a = await ins.assessment(1, 1);
    assert.deepEqual([a.scored, a.score, a.weightsDigest, a.requestedAt], [true, 600_000, DIGEST, 0n]);
    await refused(ins.send(STRANGER, "assess", [1, 1]), "AlreadyAssessed", [1, 1]);
    await refused(ins.oracleSend("deliver", [ins.address, 0n, 900_000n, DIGEST]), "UnknownRequest", [0n]);
  });

  it("retries an assessment whose request failed and was refunded", async () => {
    const first = await ins.assess(2, 1);
    const balance = (await ins.pool()).balance;
    await ins.oracleSend("refund", [first]);
    assert.equal((await ins.pool()).balance, balance + E(1), "the refunded fee is back in the pool");
    await refused(ins.send(STRANGER, "assess", [2, 1]), "AssessmentPending");
    await increaseTime(3600);
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
    const { free } = await ins.pool();
    await ins.send(OWNER, "setOracleFee", [free + 1n]);
    await refused(ins.send(STRANGER, "assess", [3, 1]), "InsufficientCapital", [free + 1n, free]);
    await ins.send(OWNER, "setOracleFee", [E(1)]);
  });

  it("settles policies in proportion to the score above the deductible; farmers pull payouts", async () => {
    // Region 1 scored 0.6 with a 0.2 deductible: half the coverage.
    const reservedBefore = (await ins.pool()).reserved;
    assert.equal(await ins.settle(1n), E(20_000));
    assert.equal(await ins.settle(2n), E(30_000));
    await refused(ins.send(STRANGER, "settle", [1n]), "PolicyNotActive", [1n]);
    // Region 2 scored 0.15, under the deductible: nothing.
    assert.equal(await ins.settle(3n), 0n);
    const pool = await ins.pool();
    assert.equal(reservedBefore - pool.reserved, E(120_000));
    assert.equal(pool.owed, E(50_000));
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

  it("lets underwriters withdraw their share, only from unreserved capital", async () => {
    await refused(ins.send(1, "withdraw", [0n]), "ZeroAmount");
    await refused(ins.send(1, "withdraw", [E(100_001)]), "InsufficientShares", [E(100_001), E(100_000)]);
    // Reserve most of the pool with a large policy so that underwriter 1's share exceeds the free capital.
    const end = await ins.openSeason(3, 500n);
    const { free } = await ins.pool();
    // Buying coverage c (premium 5 % of c) leaves free - 0.95 c unreserved: leave about 5k.
    const big = ((free - E(5_000)) * 10_000n) / 9_500n;
    const bigId = await ins.buy(9, 6, 3, big);
    const pool = await ins.pool();
    const totalShares = await ins.read<bigint>("totalShares");
    const worth = (E(100_000) * (pool.balance - pool.owed + 1n)) / (totalShares + 1n);
    assert.ok(worth > pool.free);
    await refused(ins.send(1, "withdraw", [E(100_000)]), "InsufficientCapital", [worth, pool.free]);

    // A part that fits is paid at the current share value (premiums earned, fees and payouts borne).
    const shares = E(5_000);
    const expected = (shares * (pool.balance - pool.owed + 1n)) / (totalShares + 1n);
    const before = await balanceOf(addr(1));
    const receipt = await ins.send(1, "withdraw", [shares]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "Withdrawn" });
    assert.deepEqual([log?.args.shares, log?.args.amount], [shares, expected]);
    assert.equal((await balanceOf(addr(1))) - before, expected);
    assert.equal(await ins.read("sharesOf", [addr(1)]), E(95_000));

    // Late funders buy in at the current share value.
    const poolNow = await ins.pool();
    const sharesNow = await ins.read<bigint>("totalShares");
    const r = await ins.send(3, "fund", [E(1_000)]);
    const [funded] = parseEventLogs({ abi: insAbi, logs: r.logs, eventName: "Funded" });
    assert.equal(funded?.args.shares, (E(1_000) * (sharesNow + 1n)) / (poolNow.balance - poolNow.owed + 1n));

    // Once the big policy settles without payout, its reserve is free again.
    await increaseTime(end - (await now()));
    await ins.send(REPORTER, "reportConditions", [6, 3, FEATURES]);
    await ins.oracleSend("fulfill", [await ins.assess(6, 3), 100_000n, DIGEST]);
    await ins.settle(bigId);
    await ins.send(1, "withdraw", [E(95_000)]);
    assert.equal(await ins.read("sharesOf", [addr(1)]), 0n);
  });

  it("settles end to end with the trained yield model run by the oracle's integer inference", async () => {
    const model = await trainYieldModel({ trainSize: 1500, testSize: 200, epochs: 10 });
    const insurer = await Insurer.deploy({ ...DEFAULT_PARAMS, weightsDigest: model.weightsDigest });
    await insurer.send(1, "fund", [E(10_000)]);
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

  it("property: random fund/buy/assess/score/claim sequences keep the pool solvent and tokens conserved", async () => {
    const params: Params = {
      premiumBps: 800,
      deductible: 250_000,
      featureCount: 4,
      retryAfter: 600n,
      oracleFee: E(10),
      weightsDigest: DIGEST,
    };
    const p = await Insurer.deploy(params);
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
      key: string;
      settled: boolean;
    }
    const seasonEnds = new Map<number, bigint>();
    const policies = new Map<bigint, ModelPolicy>();
    const reported = new Set<string>();
    const scores = new Map<string, bigint>();
    const openRequests = new Set<bigint>();
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
    const openSeasons = () => seasons().filter((s) => (seasonEnds.get(s) as bigint) > time + 1n);
    const keysToReport = () =>
      [...new Set([...policies.values()].map((q) => q.key))].filter(
        (k) => !reported.has(k) && (seasonEnds.get(unkey(k)[1]) as bigint) <= time,
      );
    const keysToAssess = () =>
      [...reported].filter(
        (k) => !scores.has(k) && [...policies.values()].some((q) => q.key === k && !q.settled),
      );
    const policiesToSettle = () =>
      [...policies.entries()].filter(([, q]) => !q.settled && scores.has(q.key)).map(([id]) => id);
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
        run: (sensible) => p.send(pick(UNDERWRITERS), "fund", [sensible ? E(50 + rng.int(5_000)) : 0n]),
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
          const end = sensible ? time + BigInt(400 + rng.int(1200)) : time - BigInt(rng.int(100));
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
          const id = sensible ? pick([...openRequests]) : BigInt(rng.int(50));
          return p.oracleSend("fulfill", [id, randomOutput(), rng.next() < 0.1 ? OTHER_DIGEST : DIGEST]);
        },
      },
      {
        weight: 3,
        name: "refund",
        enabled: () => openRequests.size > 0,
        run: (sensible) => p.oracleSend("refund", [sensible ? pick([...openRequests]) : BigInt(rng.int(50))]),
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
      if (rng.next() < 0.15) await increaseTime(100 + rng.int(700));
      time = await now();
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
                key: key(log.args.region, log.args.season),
                settled: false,
              });
              break;
            case "ConditionsReported":
              reported.add(key(log.args.region, log.args.season));
              break;
            case "AssessmentRequested":
              openRequests.add(log.args.requestId);
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
            case "Claimed":
              assert.equal(log.args.amount, claimable.get(log.args.farmer), "claimed what was owed");
              claimable.set(log.args.farmer, 0n);
              claimedTotal += log.args.amount;
              break;
          }
        }
        const oracleLogs = receipt.logs.filter((l) => isAddressEqual(l.address, p.oracle));
        for (const log of parseEventLogs({ abi: oracleAbi, logs: oracleLogs, eventName: "Refunded" })) {
          openRequests.delete(log.args.requestId);
        }
      }

      // Invariants, after every step.
      const pool = await p.pool();
      assert.ok(pool.balance >= pool.owed + pool.reserved, `step ${step}: liabilities exceed the balance`);
      assert.equal(pool.balance, inflow - outflow, `step ${step}: balance is not inflows minus outflows`);
      assert.ok(outflow <= inflow, `step ${step}: the pool paid out more than it took in`);
      let reserved = 0n;
      for (const policy of policies.values()) if (!policy.settled) reserved += policy.coverage;
      assert.equal(pool.reserved, reserved, `step ${step}: reserved != open coverage`);
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
