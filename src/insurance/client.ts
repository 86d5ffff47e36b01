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
  /** Seconds after which an unanswered assessment may be requested again. */
  retryAfterSeconds: number;
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
  const wallet = chain.wallet(account);
  const receipt = await sendAndWait(
    chain,
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
          retryAfter: BigInt(terms.retryAfterSeconds),
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
    sendAndWait(
      chain,
      chain
        .wallet(account)
        .writeContract({ address: pool, abi: CropInsurance.abi, functionName, args } as never),
    );
}

export async function fundPool(
  chain: LedgerChain,
  pool: Address,
  amount: bigint,
  account = 0,
): Promise<void> {
  await approveMind(chain, pool, amount, account);
  await write(chain, pool, account)("fund", [amount]);
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

export async function settlePolicy(
  chain: LedgerChain,
  pool: Address,
  policyId: bigint,
  account = 0,
): Promise<bigint> {
  const receipt = await write(chain, pool, account)("settle", [policyId]);
  const [log] = parseEventLogs({ abi: CropInsurance.abi, eventName: "PolicySettled", logs: receipt.logs });
  if (!log) throw new InsuranceError("settle emitted no PolicySettled event");
  return log.args.payout;
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
  status: "active" | "settled";
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
  reserved: bigint;
  free: bigint;
  policies: PolicyView[];
}

export async function poolStatus(chain: LedgerChain, pool: Address): Promise<PoolStatus> {
  const read = <const F extends string>(functionName: F, args: readonly unknown[] = []) =>
    chain.publicClient.readContract({ address: pool, abi: CropInsurance.abi, functionName, args } as never);
  const [balance, owed, reserved, free] = (await read("pool")) as readonly [bigint, bigint, bigint, bigint];
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
      status: p.status === 2 ? "settled" : "active",
      coverage: p.coverage,
      premium: p.premium,
      payout: p.payout,
      score: a.scored ? a.score / ONE : undefined,
    });
  }
  return { address: pool, balance, owed, reserved, free, policies };
}
