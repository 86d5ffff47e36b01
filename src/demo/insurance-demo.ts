import { join } from "node:path";
import { type Address, formatEther, parseEther } from "viem";
import type { LedgerChain } from "../chain/connect.ts";
import { advanceTime } from "../chain/time.ts";
import { mindBalance, transferMind } from "../chain/token.ts";
import {
  assessRegion,
  buyPolicy,
  claimPayout,
  deployInsurancePool,
  fundPool,
  openSeason,
  poolStatus,
  reportConditions,
  settlePolicy,
} from "../insurance/client.ts";
import { explainResult, getRequestStatus, openOracle, setModelSpec } from "../oracle/client.ts";
import { fromFixed } from "../oracle/fixed-point.ts";
import { createOperator, driveOperators, type InferenceOperator } from "../oracle/operator.ts";
import {
  encodeYieldData,
  FEATURE_COUNT,
  normalizeFeatures,
  type RawConditions,
  toOracleInput,
} from "../oracle/yield-data.ts";
import { trainYieldModel } from "../oracle/yield-model.ts";
import { addVersion, openRegistry, registerModel } from "../registry/client.ts";
import { encodeModelCard } from "../registry/model-card.ts";
import type { BlobStore } from "../storage/blob-store.ts";

/** Accounts: 0 deploys, underwrites and reports; 2-4 operate (4 is faulty); 5-8 farm. */
const OPERATORS = [2, 3, 4] as const;
const FAULTY = 4;
const FAULTY_OFFSET = 400_000n; // +0.4 on every answer
const FARMERS = [5, 6, 7, 8] as const;
const SEASON = 2026;
const COVERAGE = parseEther("1000");

/** One region per farmer, from a drought to a good year. */
const REGIONS: { region: number; label: string; conditions: RawConditions }[] = [
  {
    region: 1,
    label: "severe drought",
    conditions: { rainfallDeficit: 0.7, heatDays: 22, soilMoisture: 0.11, growingDegreeDays: 1900 },
  },
  {
    region: 2,
    label: "dry, hot season",
    conditions: { rainfallDeficit: 0.35, heatDays: 10, soilMoisture: 0.18, growingDegreeDays: 1700 },
  },
  {
    region: 3,
    label: "near-normal season",
    conditions: { rainfallDeficit: 0.12, heatDays: 3, soilMoisture: 0.26, growingDegreeDays: 1550 },
  },
  {
    region: 4,
    label: "good season",
    conditions: { rainfallDeficit: 0.0, heatDays: 0, soilMoisture: 0.31, growingDegreeDays: 1450 },
  },
];

export interface InsuranceDemoResult {
  model: { modelId: string; version: number; weightsCid: string; testMae: number; testR2: number };
  pool: string;
  policies: {
    policyId: string;
    farmer: Address;
    region: number;
    label: string;
    requestId: string;
    score: number;
    matchesRerun: boolean;
    payout: string;
  }[];
  operators: {
    address: Address;
    faulty: boolean;
    stakeBefore: string;
    stakeAfter: string;
    feesEarned: string;
  }[];
  pool_after: { balance: string; reserved: string; committed: string; owed: string };
}

/**
 * Parametric crop insurance end to end: a yield-risk model is trained and registered, three staked
 * operators serve it (one answers wrong values), farmers buy policies, the season ends, each region is
 * scored through the oracle's commit/reveal, payouts follow the scores, and the faulty operator is slashed.
 */
export async function runInsuranceDemo(opts: {
  chain: LedgerChain;
  store: BlobStore;
  stateDir: string;
  log?: (line: string) => void;
}): Promise<InsuranceDemoResult> {
  const log = opts.log ?? (() => {});
  const { chain, store } = opts;
  const reg = await openRegistry(chain);
  const oracle = await openOracle(chain);

  const trained = await trainYieldModel();
  const m = trained.metrics;
  log(
    `trained the yield-risk model ${trained.architecture} on synthetic agronomic data: held-out MAE ${m.testFixed.mae.toFixed(3)}, R² ${m.testFixed.r2.toFixed(3)} (constant baseline MAE ${m.baseline.mae.toFixed(3)})`,
  );
  const weightsCid = await store.put(trained.canonical);
  const modelCardCid = await store.put(encodeModelCard(trained.card));
  const datasetCid = await store.put(encodeYieldData(trained.trainData));
  const { modelId } = await registerModel(reg, "maize-yield-risk");
  const { version } = await addVersion(reg, modelId, {
    weightsCid,
    datasets: [datasetCid],
    metrics: { mae: m.testFixed.mae, r2: m.testFixed.r2 },
    licence: "MIT",
    modelCardCid,
  });
  await setModelSpec(oracle, modelId, version, FEATURE_COUNT);
  log(`registered model ${modelId}@${version} (${weightsCid}); the oracle takes ${FEATURE_COUNT} features`);

  const operators: InferenceOperator[] = [];
  for (const account of OPERATORS) {
    const address = chain.wallet(account).account.address;
    if ((await mindBalance(chain, address)) < parseEther("500"))
      await transferMind(chain, address, parseEther("1000"));
    operators.push(
      await createOperator({
        chain,
        account,
        store,
        modelId,
        version,
        stateFile: join(opts.stateDir, `operator-${account}-${modelId}-${version}.json`),
        faultyOffset: account === FAULTY ? FAULTY_OFFSET : undefined,
      }),
    );
  }
  const stakesBefore = await Promise.all(operators.map((op) => op.info()));
  log(
    `operators ${operators.map((_, i) => chain.wallet(OPERATORS[i] as number).account.address.slice(0, 10)).join(", ")} staked ${formatEther(stakesBefore[0]?.stake ?? 0n)} MIND each (the last answers +${fromFixed(FAULTY_OFFSET)} too high)`,
  );

  const pool = await deployInsurancePool(chain, {
    modelId,
    version,
    weightsDigest: trained.weightsDigest,
    featureCount: FEATURE_COUNT,
    terms: {
      premiumRate: 0.08,
      deductible: 0.2,
      salesCloseBeforeSeconds: 60 * 86_400,
      assessmentWindowSeconds: 30 * 86_400,
      oracleFee: parseEther("3"),
    },
  });
  await fundPool(chain, pool.address, parseEther("20000"));
  const now = Number((await chain.publicClient.getBlock()).timestamp);
  await openSeason(chain, pool.address, SEASON, now + 90 * 86_400);
  log(
    `insurance pool ${pool.address} funded with 20000 MIND; season ${SEASON} ends in 90 days, its policies sell for 30`,
  );

  const bought: { policyId: bigint; farmer: Address; region: (typeof REGIONS)[number] }[] = [];
  for (const [i, account] of FARMERS.entries()) {
    const farmer = chain.wallet(account).account.address;
    const region = REGIONS[i] as (typeof REGIONS)[number];
    await transferMind(chain, farmer, parseEther("200"));
    const { policyId, premium } = await buyPolicy(
      chain,
      pool.address,
      { region: region.region, season: SEASON, coverage: COVERAGE },
      account,
    );
    bought.push({ policyId, farmer, region });
    log(
      `farmer ${farmer.slice(0, 10)} bought policy ${policyId} on region ${region.region}: coverage ${formatEther(COVERAGE)}, premium ${formatEther(premium)} MIND`,
    );
  }

  await advanceTime(chain, 91 * 86_400);
  log("the season ended (development chain: time advanced 91 days)");

  const policies: InsuranceDemoResult["policies"] = [];
  for (const { policyId, farmer, region } of bought) {
    await reportConditions(
      chain,
      pool.address,
      region.region,
      SEASON,
      toOracleInput(normalizeFeatures(region.conditions)),
    );
    const requestId = await assessRegion(chain, pool.address, region.region, SEASON);
    const events = await driveOperators(operators, {
      until: async () => (await getRequestStatus(oracle, requestId)).state !== "open",
    });
    const slashed = events.filter((e) => (e.type === "finalized" || e.type === "settled") && e.slashed);
    const explanation = await explainResult(reg, store, requestId);
    const payout = await settlePolicy(chain, pool.address, policyId);
    const score = fromFixed(explanation.onChain ?? 0n);
    const account = FARMERS[bought.findIndex((b) => b.policyId === policyId)] as number;
    if (payout > 0n) await claimPayout(chain, pool.address, account);
    policies.push({
      policyId: policyId.toString(),
      farmer,
      region: region.region,
      label: region.label,
      requestId: requestId.toString(),
      score,
      matchesRerun: explanation.matches === true,
      payout: formatEther(payout),
    });
    log(
      `region ${region.region} (${region.label}): oracle request ${requestId} -> risk score ${score.toFixed(3)}${explanation.matches ? " (matches a re-run from the registry)" : " (DOES NOT match a re-run)"}; reveals ${explanation.reveals.map((r) => fromFixed(r.output).toFixed(3)).join(", ")}; ${slashed.length ? "faulty operator slashed" : "nobody slashed"}; policy ${policyId} pays ${formatEther(payout)} MIND`,
    );
  }

  const stakesAfter = await Promise.all(operators.map((op) => op.info()));
  const operatorRows = operators.map((_, i) => ({
    address: chain.wallet(OPERATORS[i] as number).account.address,
    faulty: OPERATORS[i] === FAULTY,
    stakeBefore: formatEther(stakesBefore[i]?.stake ?? 0n),
    stakeAfter: formatEther(stakesAfter[i]?.stake ?? 0n),
    feesEarned: formatEther((stakesAfter[i]?.fees ?? 0n) - (stakesBefore[i]?.fees ?? 0n)),
  }));
  for (const o of operatorRows) {
    log(
      `operator ${o.address.slice(0, 10)}${o.faulty ? " (faulty)" : ""}: stake ${o.stakeBefore} -> ${o.stakeAfter} MIND, fees earned ${o.feesEarned} MIND`,
    );
  }
  const status = await poolStatus(chain, pool.address);
  log(
    `pool after payouts: balance ${formatEther(status.balance)}, reserved ${formatEther(status.reserved)}, committed ${formatEther(status.committed)}, owed ${formatEther(status.owed)} MIND`,
  );
  return {
    model: {
      modelId: modelId.toString(),
      version,
      weightsCid,
      testMae: m.testFixed.mae,
      testR2: m.testFixed.r2,
    },
    pool: pool.address,
    policies,
    operators: operatorRows,
    pool_after: {
      balance: formatEther(status.balance),
      reserved: formatEther(status.reserved),
      committed: formatEther(status.committed),
      owed: formatEther(status.owed),
    },
  };
}
