import { join } from "node:path";
import { type Address, formatEther, parseEther } from "viem";
import { advanceTime } from "../chain/time.ts";
import { transferMind } from "../chain/token.ts";
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
import type { Consortium, ConsortiumNode, NodeSpec } from "../node/consortium.ts";
import { answerPath } from "../node/devnet.ts";
import { explainResult, operatorInfoOf, setModelSpec, waitForResult } from "../oracle/client.ts";
import { fromFixed } from "../oracle/fixed-point.ts";
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
import { FsBlobStore } from "../storage/fs-blob-store.ts";
import { buildZkVersion } from "../zk/build.ts";

/**
 * Accounts (after the learning part's 0 to 7): 0 deploys, underwrites and reports; 8 to 10 operate from the
 * start (10 answers +0.4 too high), 11 joins for the second phase, 8 alone proves in the third; 12 to 16 farm
 * (12 insures two regions).
 */
const OPERATORS = [8, 9, 10] as const;
const FAULTY = 10;
const FAULTY_OFFSET = 0.4;
const LATE_OPERATOR = 11;
/** The honest operator killed in the second phase: not the first, which keeps the oracle's block clock. */
const KILLED = 9;
const FARMERS = [12, 13, 14, 15, 16, 12] as const;
/** The honest operator that, alone, settles the last region by a zero-knowledge proof. */
const PROVER = 8;
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
  {
    region: 5,
    label: "moderate drought",
    conditions: { rainfallDeficit: 0.5, heatDays: 15, soilMoisture: 0.15, growingDegreeDays: 1800 },
  },
  {
    region: 6,
    label: "dry season",
    conditions: { rainfallDeficit: 0.45, heatDays: 12, soilMoisture: 0.16, growingDegreeDays: 1750 },
  },
];
/** Regions assessed while every operator runs; then one is killed; the last is proven. */
const FIRST_PHASE = 4;
const PROOF_PHASE = 5;

/** The oracle did not settle a demo request. */
export class InsuranceDemoError extends Error {
  override name = "InsuranceDemoError";
}

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
    /**
     * How the oracle answered: a report its operators signed, commit-reveal when none could land, or one
     * operator's zero-knowledge proof, checked on-chain.
     */
    path: "signed report" | "commit-reveal" | "zero-knowledge proof";
    /** The operator processes running when it was asked. */
    operatorsRunning: number;
    payout: string;
  }[];
  operators: {
    address: Address;
    faulty: boolean;
    /** SIGKILLed before the last request. */
    killed: boolean;
    stakeBefore: string;
    stakeAfter: string;
    feesEarned: string;
  }[];
  pool_after: { balance: string; reserved: string; committed: string; owed: string };
  /** The version made provable before the last region: its circuit, verifier and weights commitment. */
  zk: { architecture: string; constraints: number; verifier: Address; commitment: string };
}

const mind = (wei: bigint) => formatEther(wei);

/** The operator node of `account`: its name, and its roles (one model; the first keeps the block clock). */
function operatorSpec(account: number, model: string, first: boolean): NodeSpec {
  const faulty = account === FAULTY ? `, faultyOffset: ${FAULTY_OFFSET}` : "";
  return {
    name: `operator-${account}`,
    account,
    roles: `  oracle: { models: ["${model}"], fundFrom: 0, pollMs: 200${first ? "" : ", mine: false"}${faulty} }`,
  };
}

/** The prover's node: the same account in a new process that proves its answers with the version's salt. */
function proverSpec(account: number, model: string, zkSecret: string): NodeSpec {
  return {
    name: `operator-${account}-zk`,
    account,
    roles: `  oracle: { models: ["${model}"], pollMs: 200, zkSaltFiles: [${JSON.stringify(zkSecret)}] }`,
  };
}

/**
 * Parametric crop insurance end to end, the oracle answered by operator node processes: a yield-risk model is
 * trained and registered, three staked operators serve it (one answers +0.4 too high), farmers buy
 * policies, the season ends, each region is scored through the oracle and payouts follow the scores. With
 * three equal stakes the two honest operators hold exactly 2/3, not more, so no signed report can land and
 * commit-reveal decides, slashing the faulty operator; its stake then falls below the oracle's minimum, so
 * the honest ones hold all the active stake and the next requests settle by signed report. Then a fourth
 * operator joins, one honest operator's process is killed (SIGKILL), and the last region still settles: the
 * two honest operators left hold exactly 2/3 of the active stake, so commit-reveal decides again. Last, the
 * owner makes the version provable (circuit, verifier, weights commitment) and one honest operator, alone,
 * settles the sixth region by a zero-knowledge proof that the contract checks.
 */
export async function runInsuranceDemo(opts: {
  consortium: Consortium;
  /** The model owner's blob store (the command's), where `oracle show` finds the weights afterwards. */
  store: BlobStore;
  log?: (line: string) => void;
}): Promise<InsuranceDemoResult> {
  const log = opts.log ?? (() => {});
  const { consortium, store } = opts;
  const chain = consortium.creator;
  const reg = await openRegistry(chain);
  // The model's publisher also hands its weights to the first operator's node, which serves them to the others.
  const firstOperator = new FsBlobStore(join(consortium.dir, `operator-${OPERATORS[0]}`, "blobs"));
  const trained = await trainYieldModel();
  const m = trained.metrics;
  log(
    `trained the yield-risk model ${trained.architecture} on synthetic agronomic data: held-out MAE ${m.testFixed.mae.toFixed(3)}, R² ${m.testFixed.r2.toFixed(3)} (constant baseline MAE ${m.baseline.mae.toFixed(3)})`,
  );
  const weightsCid = await store.put(trained.canonical);
  await firstOperator.put(trained.canonical);
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
  await setModelSpec(chain, modelId, version, FEATURE_COUNT);
  log(`registered model ${modelId}@${version} (${weightsCid}); the oracle takes ${FEATURE_COUNT} features`);

  const model = `${modelId}@${version}`;
  const short = (account: number) => chain.wallet(account).account.address.slice(0, 10);
  const infoOf = (account: number) =>
    operatorInfoOf(chain, modelId, version, chain.wallet(account).account.address);
  const nodes = new Map<number, ConsortiumNode>();
  // The first alone: it holds the weights and keeps the clock; the others find it as an operator of the version.
  for (const n of await consortium.start(
    OPERATORS.map((a, i) => operatorSpec(a, model, i === 0)),
    { firstAlone: true },
  ))
    nodes.set(n.account, n);
  const stakesBefore = new Map<number, { stake: bigint; fees: bigint }>();
  for (const a of OPERATORS) stakesBefore.set(a, await infoOf(a));
  log(
    `operator nodes ${OPERATORS.map(short).join(", ")} staked ${mind(stakesBefore.get(OPERATORS[0])?.stake ?? 0n)} MIND each (the last answers +${FAULTY_OFFSET} too high), each its own process exchanging signed observations over HTTP`,
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
  const killed = new Set<number>();
  const running = new Set<number>(OPERATORS);
  let zk: InsuranceDemoResult["zk"] | undefined;
  for (const [i, { policyId, farmer, region }] of bought.entries()) {
    consortium.checkNodes();
    if (i === FIRST_PHASE) {
      const [late] = await consortium.start([operatorSpec(LATE_OPERATOR, model, false)]);
      if (late) nodes.set(LATE_OPERATOR, late);
      running.add(LATE_OPERATOR);
      stakesBefore.set(LATE_OPERATOR, await infoOf(LATE_OPERATOR));
      log(`a fourth operator node (${short(LATE_OPERATOR)}) joined`);
      const victim = nodes.get(KILLED);
      if (victim) await consortium.kill(victim);
      killed.add(KILLED);
      running.delete(KILLED);
      log(`operator ${short(KILLED)} (honest) killed with SIGKILL: ${running.size} operator processes left`);
    }
    if (i === PROOF_PHASE) {
      await consortium.stop([...nodes.values()]);
      running.clear();
      const zkSecret = join(consortium.dir, "zk", `model-${modelId}-v${version}.json`);
      const built = await buildZkVersion(chain, store, {
        modelId,
        version,
        secretPath: zkSecret,
        // Its own steps only: snarkjs's step names and hashes are for `zk build`'s users.
        log: (line) => {
          if (/^(compiling|setup:)/.test(line)) log(`zk: ${line}`);
        },
      });
      zk = {
        architecture: built.architecture,
        constraints: built.constraints,
        verifier: built.secret.verifier,
        commitment: built.secret.commitment,
      };
      log(
        `model ${model} made provable: circuit ${built.architecture} (${built.constraints} constraints), verifier ${built.secret.verifier}, weights committed under a salt kept in ${zkSecret}`,
      );
      await new FsBlobStore(join(consortium.dir, `operator-${PROVER}-zk`, "blobs")).put(trained.canonical);
      const [prover] = await consortium.start([proverSpec(PROVER, model, zkSecret)]);
      if (prover) nodes.set(PROVER, prover);
      running.add(PROVER);
      log(`every operator node stopped; operator ${short(PROVER)} restarted alone, proving its answers`);
    }
    const watched = [...nodes.keys()];
    const before = new Map<number, bigint>();
    for (const a of watched) before.set(a, (await infoOf(a)).stake);
    await reportConditions(
      chain,
      pool.address,
      region.region,
      SEASON,
      toOracleInput(normalizeFeatures(region.conditions)),
    );
    const requestId = await assessRegion(chain, pool.address, region.region, SEASON);
    const status = await waitForResult(chain, requestId, {
      timeoutMs: 90_000,
      ...(consortium.signal ? { signal: consortium.signal } : {}),
    });
    if (status.state !== "finalized")
      throw new InsuranceDemoError(
        `oracle request ${requestId} for region ${region.region} ${status.state}: see the operator logs in ${consortium.dir}`,
      );
    const slashed: number[] = [];
    for (const a of watched) if ((await infoOf(a)).stake < (before.get(a) ?? 0n)) slashed.push(a);
    const explanation = await explainResult(reg, store, requestId);
    const path = explanation.fulfilment === "proof" ? "zero-knowledge proof" : answerPath(status);
    const payout = await settlePolicy(chain, pool.address, policyId);
    const score = fromFixed(explanation.onChain ?? 0n);
    const account = FARMERS[i] as number;
    if (payout > 0n) await claimPayout(chain, pool.address, account);
    const operatorsRunning = running.size;
    policies.push({
      policyId: policyId.toString(),
      farmer,
      region: region.region,
      label: region.label,
      requestId: requestId.toString(),
      score,
      matchesRerun: explanation.matches === true,
      path,
      operatorsRunning,
      payout: formatEther(payout),
    });
    const answers =
      path === "signed report"
        ? "one report signed by the agreeing operators"
        : path === "zero-knowledge proof"
          ? "one proof, checked on-chain by the version's verifier"
          : `reveals ${explanation.reveals.map((r) => fromFixed(r.output).toFixed(3)).join(", ")}`;
    const who = slashed.map((a) => (a === FAULTY ? "the faulty operator" : short(a)));
    log(
      `region ${region.region} (${region.label}): oracle request ${requestId} -> risk score ${score.toFixed(3)} by ${path} (${operatorsRunning} operator ${operatorsRunning === 1 ? "process" : "processes"} running; ${answers})${explanation.matches ? ", matches a re-run from the registry" : ", DOES NOT match a re-run"}; ${who.length ? `${who.join(", ")} slashed` : "nobody slashed"}; policy ${policyId} pays ${formatEther(payout)} MIND`,
    );
  }

  if (!zk) throw new InsuranceDemoError("the demo ended before its proof phase");
  const operatorRows: InsuranceDemoResult["operators"] = [];
  for (const a of nodes.keys()) {
    const after = await infoOf(a);
    const before = stakesBefore.get(a) ?? after;
    operatorRows.push({
      address: chain.wallet(a).account.address,
      faulty: a === FAULTY,
      killed: killed.has(a),
      stakeBefore: formatEther(before.stake),
      stakeAfter: formatEther(after.stake),
      feesEarned: formatEther(after.fees - before.fees),
    });
  }
  await consortium.stop([...nodes.values()]);
  for (const o of operatorRows) {
    log(
      `operator ${o.address.slice(0, 10)}${o.faulty ? " (faulty)" : ""}${o.killed ? " (killed)" : ""}: stake ${o.stakeBefore} -> ${o.stakeAfter} MIND, fees earned ${o.feesEarned} MIND`,
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
    zk,
    pool_after: {
      balance: formatEther(status.balance),
      reserved: formatEther(status.reserved),
      committed: formatEther(status.committed),
      owed: formatEther(status.owed),
    },
  };
}
