import type { Command } from "commander";
import { type Address, formatEther } from "viem";
import type { LedgerChain } from "../chain/connect.ts";
import {
  assessRegion,
  buyPolicy,
  claimPayout,
  collectOracleRefunds,
  defaultPool,
  deployInsurancePool,
  expireRegion,
  fundPool,
  openSeason,
  poolStatus,
  reportConditions,
  settlePolicy,
} from "../insurance/client.ts";
import {
  FEATURE_COUNT,
  FEATURE_NAMES,
  normalizeFeatures,
  type RawConditions,
  toOracleInput,
} from "../oracle/yield-data.ts";
import { getVersion, openRegistry } from "../registry/client.ts";
import {
  emit,
  globalOptions,
  parseAccount,
  parseAddress,
  parseMind,
  parseModelRef,
  UsageError,
  withChain,
} from "./context.ts";

function parseUint(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 0xffffffff)
    throw new UsageError(`${what} must be a whole number, got "${text}"`);
  return Number(text);
}

/** `rainfallDeficit=0.4,heatDays=12,...`: the raw conditions, every feature named exactly once. */
export function parseConditions(text: string): RawConditions {
  const usage = `--conditions takes ${FEATURE_NAMES.map((n) => `${n}=NUMBER`).join(",")}`;
  const out: Record<string, number> = {};
  for (const entry of text.split(",")) {
    const m = entry.trim().match(/^([A-Za-z]+)=(-?\d+(?:\.\d+)?)$/);
    const name = m?.[1];
    if (!m || !name || !(FEATURE_NAMES as readonly string[]).includes(name)) throw new UsageError(usage);
    if (name in out) throw new UsageError(`--conditions names ${name} twice`);
    out[name] = Number(m[2]);
  }
  const missing = FEATURE_NAMES.filter((n) => !(n in out));
  if (missing.length > 0) throw new UsageError(`--conditions lacks ${missing.join(", ")}`);
  return out as unknown as RawConditions;
}

function pool(chain: LedgerChain, o: { pool?: string }): Address {
  if (o.pool === undefined) return defaultPool(chain);
  return parseAddress(o.pool, "--pool");
}

export function registerInsuranceCommands(program: Command): void {
  const ins = program
    .command("insurance")
    .description("parametric crop insurance paid on the oracle's risk score");
  const poolOption = ["--pool <ADDRESS>", "the pool (default: the last one created on this chain)"] as const;

  ins
    .command("create")
    .description("deploy a pool priced by a registered yield-risk model version")
    .requiredOption("--model <MODEL@VERSION>", "the risk model")
    .option("--premium <RATE>", "premium as a fraction of coverage", "0.08")
    .option("--deductible <SCORE>", "scores up to this pay nothing", "0.2")
    .option("--oracle-fee <MIND>", "fee per assessment", "1")
    .option(
      "--sales-close <SECONDS>",
      "sales close this long before a season's end, when its weather is largely known",
      String(30 * 86_400),
    )
    .option(
      "--assessment-window <SECONDS>",
      "after a season's end, how long its regions may be assessed before they can be expired and refunded",
      String(30 * 86_400),
    )
    .action(async (o, cmd: Command) => {
      const opts = globalOptions(cmd);
      const { modelId, version } = parseModelRef(o.model);
      await withChain(opts, async (chain) => {
        const record = await getVersion(await openRegistry(chain), modelId, version);
        const created = await deployInsurancePool(chain, {
          modelId,
          version,
          weightsDigest: record.weightsDigest,
          featureCount: FEATURE_COUNT,
          terms: {
            premiumRate: Number(o.premium),
            deductible: Number(o.deductible),
            salesCloseBeforeSeconds: parseUint(o.salesClose, "--sales-close"),
            assessmentWindowSeconds: parseUint(o.assessmentWindow, "--assessment-window"),
            oracleFee: parseMind(o.oracleFee, "--oracle-fee"),
          },
        });
        emit(opts, created, () => [
          `insurance pool ${created.address} priced by model ${modelId}@${version}`,
        ]);
      });
    });

  ins
    .command("fund <AMOUNT>")
    .description("add capital (MIND) to the pool")
    .option(...poolOption)
    .option("--account <INDEX>", "which configured account pays")
    .action(async (amount: string, o, cmd: Command) => {
      const opts = globalOptions(cmd);
      const value = parseMind(amount, "amount");
      await withChain(opts, async (chain) => {
        const { shares } = await fundPool(chain, pool(chain, o), value, parseAccount(o.account));
        emit(opts, { funded: value, shares }, () => [`funded the pool with ${amount} MIND`]);
      });
    });

  ins
    .command("season <SEASON>")
    .description("open a season: policies sell until it ends, then regions are assessed")
    .requiredOption("--ends-in <SECONDS>", "seconds from now")
    .option(...poolOption)
    .action(async (season: string, o, cmd: Command) => {
      const opts = globalOptions(cmd);
      const s = parseUint(season, "season");
      const seconds = parseUint(o.endsIn, "--ends-in");
      await withChain(opts, async (chain) => {
        const now = Number((await chain.publicClient.getBlock()).timestamp);
        await openSeason(chain, pool(chain, o), s, now + seconds);
        emit(opts, { season: s, endTime: now + seconds }, () => [
          `season ${s} open until ${new Date((now + seconds) * 1000).toISOString()}`,
        ]);
      });
    });

  ins
    .command("buy")
    .description("buy a policy on a region and season")
    .requiredOption("--region <N>", "the region")
    .requiredOption("--season <N>", "the season")
    .requiredOption("--coverage <MIND>", "the most it pays")
    .option(...poolOption)
    .option("--account <INDEX>", "which configured account is the farmer")
    .action(async (o, cmd: Command) => {
      const opts = globalOptions(cmd);
      const coverage = parseMind(o.coverage, "--coverage");
      await withChain(opts, async (chain) => {
        const { policyId, premium } = await buyPolicy(
          chain,
          pool(chain, o),
          { region: parseUint(o.region, "--region"), season: parseUint(o.season, "--season"), coverage },
          parseAccount(o.account),
        );
        emit(opts, { policyId, premium, coverage }, () => [
          `policy ${policyId}: coverage ${o.coverage} MIND, premium ${formatEther(premium)} MIND`,
        ]);
      });
    });

  ins
    .command("report")
    .description("report a region-season's observed conditions (the pool's reporter only)")
    .requiredOption("--region <N>", "the region")
    .requiredOption("--season <N>", "the season")
    .requiredOption("--conditions <LIST>", FEATURE_NAMES.map((n) => `${n}=X`).join(","))
    .option(...poolOption)
    .action(async (o, cmd: Command) => {
      const opts = globalOptions(cmd);
      const features = toOracleInput(normalizeFeatures(parseConditions(o.conditions)));
      await withChain(opts, async (chain) => {
        await reportConditions(
          chain,
          pool(chain, o),
          parseUint(o.region, "--region"),
          parseUint(o.season, "--season"),
          features,
        );
        emit(opts, { features }, () => [`conditions reported for region ${o.region}, season ${o.season}`]);
      });
    });

  ins
    .command("assess")
    .description("ask the oracle to score a region-season after the season ended (anyone may)")
    .requiredOption("--region <N>", "the region")
    .requiredOption("--season <N>", "the season")
    .option(...poolOption)
    .action(async (o, cmd: Command) => {
      const opts = globalOptions(cmd);
      await withChain(opts, async (chain) => {
        const requestId = await assessRegion(
          chain,
          pool(chain, o),
          parseUint(o.region, "--region"),
          parseUint(o.season, "--season"),
        );
        emit(opts, { requestId }, () => [`assessment requested: oracle request ${requestId}`]);
      });
    });

  ins
    .command("expire")
    .description("expire a region-season left unscored past its assessment window: premiums are refunded")
    .requiredOption("--region <N>", "the region")
    .requiredOption("--season <N>", "the season")
    .option(...poolOption)
    .action(async (o, cmd: Command) => {
      const opts = globalOptions(cmd);
      await withChain(opts, async (chain) => {
        const { coverage, premiums } = await expireRegion(
          chain,
          pool(chain, o),
          parseUint(o.region, "--region"),
          parseUint(o.season, "--season"),
        );
        emit(opts, { coverage, premiums }, () => [
          `region ${o.region}, season ${o.season} expired: ${formatEther(coverage)} MIND of coverage released, ${formatEther(premiums)} MIND of premiums to refund`,
        ]);
      });
    });

  ins
    .command("collect-refunds")
    .description("move the refunds of failed oracle requests back into the pool (anyone may)")
    .option(...poolOption)
    .action(async (o, cmd: Command) => {
      const opts = globalOptions(cmd);
      await withChain(opts, async (chain) => {
        const amount = await collectOracleRefunds(chain, pool(chain, o));
        emit(opts, { amount }, () => [
          `collected ${formatEther(amount)} MIND of oracle refunds into the pool`,
        ]);
      });
    });

  ins
    .command("settle <POLICY>")
    .description("settle a policy of a scored region-season (its payout) or an expired one (its premium)")
    .option(...poolOption)
    .action(async (policy: string, o, cmd: Command) => {
      const opts = globalOptions(cmd);
      await withChain(opts, async (chain) => {
        const payout = await settlePolicy(chain, pool(chain, o), BigInt(parseUint(policy, "policy")));
        emit(opts, { payout }, () => [`policy ${policy} settled: payout ${formatEther(payout)} MIND`]);
      });
    });

  ins
    .command("claim")
    .description("withdraw the payouts owed to the account")
    .option(...poolOption)
    .option("--account <INDEX>", "which configured account is the farmer")
    .action(async (o, cmd: Command) => {
      const opts = globalOptions(cmd);
      await withChain(opts, async (chain) => {
        const amount = await claimPayout(chain, pool(chain, o), parseAccount(o.account));
        emit(opts, { amount }, () => [`claimed ${formatEther(amount)} MIND`]);
      });
    });

  ins
    .command("status")
    .description("the pool's capital, reserves and policies")
    .option(...poolOption)
    .action(async (o, cmd: Command) => {
      const opts = globalOptions(cmd);
      await withChain(
        opts,
        async (chain) => {
          const s = await poolStatus(chain, pool(chain, o));
          emit(opts, s, () => [
            `pool ${s.address}: balance ${formatEther(s.balance)}, reserved ${formatEther(s.reserved)}, committed ${formatEther(s.committed)}, owed ${formatEther(s.owed)}, free ${formatEther(s.free)} MIND`,
            ...s.policies.map(
              (p) =>
                `  policy ${p.policyId} region ${p.region} season ${p.season} ${p.status}: coverage ${formatEther(p.coverage)}, score ${p.score === undefined ? "pending" : p.score.toFixed(3)}, payout ${formatEther(p.payout)}`,
            ),
          ]);
        },
        { readOnly: true },
      );
    });
}
