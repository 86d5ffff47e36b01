// CropInsurance on an embedded chain, shared by test/contracts/crop-insurance.test.ts and
// crop-insurance-attacks.test.ts: funded dev accounts in fixed roles, a pool deployed with its test oracle
// (or the real InferenceOracle), typed helpers bound to it, and the set of custom errors the tests reached.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  type Abi,
  type Address,
  decodeErrorResult,
  type Hex,
  keccak256,
  maxUint256,
  parseEther,
  parseEventLogs,
  stringToHex,
  type TransactionReceipt,
} from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll, type Manifest, TOKEN_SUPPLY } from "../../src/chain/deploy.ts";
import { CropInsurance, InsuranceTestOracle, MindToken } from "../../src/chain/generated/contracts.ts";
import { ContractRefusedError, decodeRevert, sendAndWait } from "../../src/chain/tx.ts";
import { toOracleInput } from "../../src/oracle/yield-data.ts";

export const SOURCE = readFileSync(new URL("../../contracts/CropInsurance.sol", import.meta.url), "utf8");
export const insAbi = CropInsurance.abi;
export const oracleAbi = InsuranceTestOracle.abi;
export const tokenAbi = MindToken.abi;
/** The test oracle's ABI plus the insurer's errors, so refusals bubbling through the oracle decode. */
export const oracleCallAbi = [...oracleAbi, ...insAbi.filter((item) => item.type === "error")] as const;

export const ONE = 1_000_000n;
export const E = (n: number | string) => parseEther(String(n));
export const MODEL_ID = 7n;
export const MODEL_VERSION = 3;
export const DIGEST = keccak256(stringToHex("yield-model weights"));
export const OTHER_DIGEST = keccak256(stringToHex("some other weights"));

// Roles (dev account indices).
export const OWNER = 0;
export const UNDERWRITERS = [1, 2, 3];
export const FARMERS = [4, 5, 6, 7, 8, 9];
export const REPORTER = 10;
export const STRANGER = 11;

export interface Params {
  premiumBps: number;
  deductible: number;
  featureCount: number;
  salesCloseBefore: bigint;
  assessmentWindow: bigint;
  oracleFee: bigint;
  weightsDigest: Hex;
}

export const DEFAULT_PARAMS: Params = {
  premiumBps: 500,
  deductible: 200_000,
  featureCount: 4,
  salesCloseBefore: 100n,
  assessmentWindow: 3600n,
  oracleFee: E(1),
  weightsDigest: DIGEST,
};

export let chain: LedgerChain;
export let token: Address;

/** Every custom error name a test saw the contracts raise. */
export const observedErrors = new Set<string>();

/**
 * Starts an embedded chain, deploys MIND (with `full`, every contract of the project, the real
 * InferenceOracle and ModelRegistry included, whose manifest it returns), and gives every role 1,000,000
 * MIND: the state every helper here works on. Close it with `chain.close()`.
 */
export async function setUpChain(opts: { full?: boolean } = {}): Promise<Manifest | undefined> {
  chain = await connect({ ephemeral: true });
  let manifest: Manifest | undefined;
  if (opts.full) {
    manifest = await deployAll(chain);
    token = manifest.contracts.MindToken.address;
  } else {
    token = await deploy(MindToken, [addr(OWNER), TOKEN_SUPPLY]);
  }
  for (const i of [...UNDERWRITERS, ...FARMERS, REPORTER, STRANGER]) {
    await send(OWNER, token, tokenAbi, "transfer", [addr(i), E(1_000_000)]);
  }
  return manifest;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

export function addr(i: number): Address {
  const a = chain.accounts[i];
  if (!a) throw new Error(`no dev account #${i}`);
  return a.address;
}

export async function deploy(
  artifact: { abi: Abi; bytecode: Hex },
  args: readonly unknown[],
): Promise<Address> {
  const wallet = chain.wallet(OWNER);
  let receipt: TransactionReceipt;
  try {
    receipt = await sendAndWait(chain, () =>
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
export function decodeDeployRevert(err: unknown, abi: Abi): unknown {
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
export function send(
  from: number,
  address: Address,
  abi: Abi,
  functionName: string,
  args: readonly unknown[] = [],
) {
  return sendAndWait(chain, () =>
    chain
      .wallet(from)
      .writeContract({ address, abi, functionName, args } as Parameters<
        ReturnType<LedgerChain["wallet"]>["writeContract"]
      >[0]),
  );
}

export async function read<T>(
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
export async function refused(
  p: Promise<unknown>,
  errorName: string,
  args?: readonly unknown[],
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ContractRefusedError, `expected ContractRefusedError, got ${String(err)}`);
    assert.equal(err.errorName, errorName, `expected ${errorName}, got ${err.message}`);
    if (args !== undefined) assert.deepEqual(err.args, args);
    observedErrors.add(err.errorName);
    return true;
  });
}

export function balanceOf(a: Address): Promise<bigint> {
  return read(token, tokenAbi, "balanceOf", [a]);
}

export async function now(): Promise<bigint> {
  return (await chain.publicClient.getBlock()).timestamp;
}

/**
 * Makes the next block's timestamp `timestamp` exactly, whatever the wall clock says (the embedded chain
 * otherwise stamps blocks with the wall clock plus any offset): runs that depend on time then replay alike.
 * With `mine`, also mines that block now.
 */
export async function setNextTimestamp(timestamp: bigint, mine = false): Promise<void> {
  const request = chain.publicClient.request as (args: {
    method: string;
    params: unknown[];
  }) => Promise<unknown>;
  await request({ method: "evm_setNextBlockTimestamp", params: [Number(timestamp)] });
  if (mine) await request({ method: "evm_mine", params: [] });
}

export async function increaseTime(seconds: bigint | number): Promise<void> {
  const request = chain.publicClient.request as (args: {
    method: string;
    params: unknown[];
  }) => Promise<unknown>;
  await request({ method: "evm_increaseTime", params: [Number(seconds)] });
  await request({ method: "evm_mine", params: [] });
}

/** A pool's accounts, as `CropInsurance.pool()` returns them. */
export interface PoolAccounts {
  balance: bigint;
  owed: bigint;
  committed: bigint;
  reserved: bigint;
  free: bigint;
}

/** A deployed insurer with its oracle (the test oracle unless told otherwise), and typed helpers bound to them. */
export class Insurer {
  constructor(
    readonly address: Address,
    readonly oracle: Address,
    readonly params: Params,
  ) {}

  static async deploy(
    params: Params = DEFAULT_PARAMS,
    model: { oracle?: Address; modelId: bigint; version: number } = {
      modelId: MODEL_ID,
      version: MODEL_VERSION,
    },
  ): Promise<Insurer> {
    const oracle = model.oracle ?? (await deploy(InsuranceTestOracle, [token]));
    const address = await deploy(CropInsurance, [token, oracle, model.modelId, model.version, params]);
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

  async pool(): Promise<PoolAccounts> {
    const [balance, owed, committed, reserved, free] =
      await this.read<[bigint, bigint, bigint, bigint, bigint]>("pool");
    return { balance, owed, committed, reserved, free };
  }

  /** Funds from `underwriter`, accepting exactly the shares previewed; returns them. */
  async fund(underwriter: number, amount: bigint): Promise<bigint> {
    const preview = await this.read<bigint>("previewFund", [amount]);
    const receipt = await this.send(underwriter, "fund", [amount, preview]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "Funded" });
    assert.equal(log?.args.shares, preview);
    return preview;
  }

  /** Burns every share of `underwriter`; returns the tokens it received. */
  async withdrawAll(underwriter: number): Promise<bigint> {
    const shares = await this.read<bigint>("sharesOf", [addr(underwriter)]);
    const receipt = await this.send(underwriter, "withdraw", [shares]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "Withdrawn" });
    assert.ok(log);
    return log.args.amount;
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
      expired: boolean;
      requested: boolean;
      score: number;
      feeReserve: bigint;
      coverage: bigint;
      premiums: bigint;
      committed: bigint;
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

  /** Settles a policy of an expired region-season; returns the premium refunded. */
  async refund(policyId: bigint): Promise<bigint> {
    const receipt = await this.send(STRANGER, "settle", [policyId]);
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "PolicyRefunded" });
    assert.ok(log);
    return log.args.premium;
  }

  /** Moves the oracle's refunds into the pool; returns the amount. */
  async collect(): Promise<bigint> {
    const receipt = await this.send(STRANGER, "collectOracleRefunds");
    const [log] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "OracleRefundsCollected" });
    assert.ok(log);
    return log.args.amount;
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

export function declaredErrors(): string[] {
  return [...SOURCE.matchAll(/^\s*error\s+(\w+)\s*\(/gm)].map((m) => m[1] as string);
}

/** Drought-ish normalized features as the oracle's fixed-point input. */
export const FEATURES = toOracleInput([0.4, 0.3, 0.2, 0.6]);
