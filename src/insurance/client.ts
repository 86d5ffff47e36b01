import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Address, type Hex, parseEventLogs } from "viem";
import type { LedgerChain } from "../chain/connect.ts";
import { requireDeployment } from "../chain/deploy.ts";
import { CropInsurance } from "../chain/generated/contracts.ts";
import { approveMind } from "../chain/token.ts";
import { sendAndWait } from "../chain/tx.ts";

/** The oracle's and the pool's fixed point: 1_000_000 = 1.0. */
const ONE = 1_000_000;

export class InsuranceError extends Error {
  override name = "InsuranceError";
}

export interface InsuranceTerms {
  /** Premium as a fraction of coverage, e.g. 0.08. */
  premiumRate: number;
  /** Scores up to this fraction pay nothing, e.g. 0.2. */
  deductible: number;
  /** Seconds before a season's end at which its sales close (at least 1): conditions are largely known then. */
  salesCloseBeforeSeconds: number;
  /**
   * Seconds after a season's end during which its regions may be assessed; a region-season with no score by
   * then may be expired, its premiums refunded (at least 1).
   */
  assessmentWindowSeconds: number;
  /** Fee offered to the oracle per assessment. */
  oracleFee: bigint;
}

export interface PoolRecord {
  address: Address;
  modelId: string;
  version: number;
  weightsDigest: Hex;
  block: string;
}

function poolsFile(chain: LedgerChain): string {
  return join(chain.dataDir, "deployments", `${chain.manifestKey}.insurance.json`);
}

/** Deploys a CropInsurance pool priced by a registered model version, and remembers it as the default. */
export async function deployInsurancePool(
  chain: LedgerChain,
  opts: { modelId: bigint; version: number; weightsDigest: Hex; featureCount: number; terms: InsuranceTerms },
  account = 0,
): Promise<PoolRecord> {
  const manifest = await requireDeployment(chain);
  const { terms } = opts;
  if (!(terms.premiumRate > 0 && terms.premiumRate <= 1))
    throw new InsuranceError("premium rate must be in (0, 1]");
  if (!(terms.deductible >= 0 && terms.deductible < 1))
    throw new InsuranceError("deductible must be in [0, 1)");
  for (const [name, value] of [
    ["sales close", terms.salesCloseBeforeSeconds],
    ["assessment window", terms.assessmentWindowSeconds],
  ] as const) {
    if (!(Number.isSafeInteger(value) && value > 0))
      throw new InsuranceError(`${name} must be a whole number of seconds above 0, got ${value}`);
  }
  const wallet = chain.wallet(account);
  const receipt = await sendAndWait(chain, () =>
    wallet.deployContract({
      abi: CropInsurance.abi,
      bytecode: CropInsurance.bytecode,
      args: [
        manifest.contracts.MindToken.address,
        manifest.contracts.InferenceOracle.address,
        opts.modelId,
        opts.version,
        {
          premiumBps: Math.round(terms.premiumRate * 10_000),
          deductible: Math.round(terms.deductible * ONE),
          featureCount: opts.featureCount,
          salesCloseBefore: BigInt(terms.salesCloseBeforeSeconds),
          assessmentWindow: BigInt(terms.assessmentWindowSeconds),
          oracleFee: terms.oracleFee,
          weightsDigest: opts.weightsDigest,
        },
      ],
    }),
  );
  if (!receipt.contractAddress) throw new InsuranceError("deploying CropInsurance created no contract");
  const record: PoolRecord = {
    address: receipt.contractAddress,
    modelId: opts.modelId.toString(),
    version: opts.version,
    weightsDigest: opts.weightsDigest,
    block: receipt.blockNumber.toString(),
  };
  if (chain.manifestKey !== "ephemeral") {
    mkdirSync(join(chain.dataDir, "deployments"), { recursive: true });
    writeFileSync(poolsFile(chain), `${JSON.stringify(record, null, 2)}\n`);
  }
  return record;
}

/** The pool `ledgermind insurance create` deployed last on this chain. */
export function defaultPool(chain: LedgerChain): Address {
  const file = poolsFile(chain);
  if (!existsSync(file)) {
    throw new InsuranceError(
      `no insurance pool on chain ${chain.chainId}: run \`ledgermind insurance create\` or pass --pool`,
    );
  }
  return (JSON.parse(readFileSync(file, "utf8")) as PoolRecord).address;
}

function write(chain: LedgerChain, pool: Address, account: number) {
  return <const F extends string>(functionName: F, args: readonly unknown[]) =>
    sendAndWait(chain, () =>
      chain
        .wallet(account)
        .writeContract({ address: pool, abi: CropInsurance.abi, functionName, args } as never),
    );
}

/**
 * Adds capital for shares. `minShares` defaults to the shares the pool quotes now (`previewFund`), so a price
 * that moves before the deposit lands (a score, another deposit) makes it fail rather than mint fewer.
 */
export async function fundPool(
  chain: LedgerChain,
  pool: Address,
  amount: bigint,
  account = 0,
  minShares?: bigint,
): Promise<{ shares: bigint }> {
  const least =
    minShares ??
    (await chain.publicClient.readContract({
      address: pool,
      abi: CropInsurance.abi,
      functionName: "previewFund",
      args: [amount],
    }));
  await approveMind(chain, pool, amount, account);
  const receipt = await write(chain, pool, account)("fund", [amount, least]);
  const [log] = parseEventLogs({ abi: CropInsurance.abi, eventName: "Funded", logs: receipt.logs });
  if (!log) throw new InsuranceError("fund emitted no Funded event");
  return { shares: log.args.shares };
}

export async function openSeason(
  chain: LedgerChain,
  pool: Address,
  season: number,
  endTime: number,
): Promise<void> {
  await write(chain, pool, 0)("openSeason", [season, BigInt(endTime)]);
}

export async function reportConditions(
  chain: LedgerChain,
  pool: Address,
  region: number,
  season: number,
  features: readonly bigint[],
  account = 0,
): Promise<void> {
  await write(chain, pool, account)("reportConditions", [region, season, features]);
}

export async function buyPolicy(
  chain: LedgerChain,
  pool: Address,
  opts: { region: number; season: number; coverage: bigint },
  account: number,
): Promise<{ policyId: bigint; premium: bigint }> {
  const premium = await chain.publicClient.readContract({
    address: pool,
    abi: CropInsurance.abi,
    functionName: "premiumFor",
    args: [opts.coverage],
  });
  await approveMind(chain, pool, premium, account);
  const receipt = await write(chain, pool, account)("buyPolicy", [opts.region, opts.season, opts.coverage]);
  const [log] = parseEventLogs({ abi: CropInsurance.abi, eventName: "PolicyBought", logs: receipt.logs });
  if (!log) throw new InsuranceError("buyPolicy emitted no PolicyBought event");
  return { policyId: log.args.policyId, premium };
}

/** Requests the oracle's score of a region-season; returns the oracle's request id. */
export async function assessRegion(
  chain: LedgerChain,
  pool: Address,
  region: number,
  season: number,
  account = 0,
): Promise<bigint> {
  const receipt = await write(chain, pool, account)("assess", [region, season]);
  const [log] = parseEventLogs({
    abi: CropInsurance.abi,
    eventName: "AssessmentRequested",
    logs: receipt.logs,
  });
  if (!log) throw new InsuranceError("assess emitted no AssessmentRequested event");
  return log.args.requestId;
}

/**
 * Expires a region-season left unscored past its assessment window: its coverage is released and each policy
 * refunds its premium once settled. Anyone may.
 */
export async function expireRegion(
  chain: LedgerChain,
  pool: Address,
  region: number,
  season: number,
  account = 0,
): Promise<{ coverage: bigint; premiums: bigint }> {
  const receipt = await write(chain, pool, account)("expire", [region, season]);
  const [log] = parseEventLogs({
    abi: CropInsurance.abi,
    eventName: "AssessmentExpired",
    logs: receipt.logs,
  });
  if (!log) throw new InsuranceError("expire emitted no AssessmentExpired event");
  return { coverage: log.args.coverage, premiums: log.args.premiums };
}

/** Moves the refunds of failed oracle requests from the oracle back into the pool. Anyone may. */
export async function collectOracleRefunds(chain: LedgerChain, pool: Address, account = 0): Promise<bigint> {
  const receipt = await write(chain, pool, account)("collectOracleRefunds", []);
  const [log] = parseEventLogs({
    abi: CropInsurance.abi,
    eventName: "OracleRefundsCollected",
    logs: receipt.logs,
  });
  if (!log) throw new InsuranceError("collectOracleRefunds emitted no OracleRefundsCollected event");
  return log.args.amount;
}

/** Settles a policy: its payout (scored region-season) or its premium (expired one) becomes claimable. */
export async function settlePolicy(
  chain: LedgerChain,
  pool: Address,
  policyId: bigint,
  account = 0,
): Promise<bigint> {
  const receipt = await write(chain, pool, account)("settle", [policyId]);
  const [settled] = parseEventLogs({
    abi: CropInsurance.abi,
    eventName: "PolicySettled",
    logs: receipt.logs,
  });
  if (settled) return settled.args.payout;
  const [refunded] = parseEventLogs({
    abi: CropInsurance.abi,
    eventName: "PolicyRefunded",
    logs: receipt.logs,
  });
  if (!refunded) throw new InsuranceError("settle emitted neither PolicySettled nor PolicyRefunded");
  return refunded.args.premium;
}

export async function claimPayout(chain: LedgerChain, pool: Address, account: number): Promise<bigint> {
  const receipt = await write(chain, pool, account)("claim", []);
  const [log] = parseEventLogs({ abi: CropInsurance.abi, eventName: "Claimed", logs: receipt.logs });
  return log?.args.amount ?? 0n;
}

export interface PolicyView {
  policyId: bigint;
  farmer: Address;
  region: number;
  season: number;
  status: "active" | "settled" | "refunded";
  coverage: bigint;
  premium: bigint;
  payout: bigint;
  /** The region-season's score (0..1) once the oracle answered. */
  score?: number;
}

export interface PoolStatus {
  address: Address;
  balance: bigint;
  owed: bigint;
  /** Payouts and refunds of scored or expired region-seasons, not yet settled. */
  committed: bigint;
  reserved: bigint;
  free: bigint;
  policies: PolicyView[];
}

/** `CropInsurance.PolicyStatus` by its index (0, None, is never read: ids come from policyCount). */
const STATUS: Record<number, PolicyView["status"]> = { 1: "active", 2: "settled", 3: "refunded" };

export async function poolStatus(chain: LedgerChain, pool: Address): Promise<PoolStatus> {
  const read = <const F extends string>(functionName: F, args: readonly unknown[] = []) =>
    chain.publicClient.readContract({ address: pool, abi: CropInsurance.abi, functionName, args } as never);
  const [balance, owed, committed, reserved, free] = (await read("pool")) as readonly [
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
  ];
  const count = (await read("policyCount")) as bigint;
  const policies: PolicyView[] = [];
  for (let id = 1n; id <= count; id++) {
    const p = (await read("getPolicy", [id])) as {
      farmer: Address;
      region: number;
      season: number;
      status: number;
      coverage: bigint;
      premium: bigint;
      payout: bigint;
    };
    const a = (await read("getAssessment", [p.region, p.season])) as { scored: boolean; score: number };
    policies.push({
      policyId: id,
      farmer: p.farmer,
      region: p.region,
      season: p.season,
      status: STATUS[p.status] ?? "active",
      coverage: p.coverage,
      premium: p.premium,
      payout: p.payout,
      score: a.scored ? a.score / ONE : undefined,
    });
  }
  return { address: pool, balance, owed, committed, reserved, free, policies };
}
