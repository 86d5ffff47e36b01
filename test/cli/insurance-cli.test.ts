/**
 * `ledgermind insurance` end to end, as separate processes on one development chain (anvil, started here):
 * `demo --part insurance` registers the yield-risk model as 1@1 and its operators (operator node processes,
 * stopped when the demo ends, their stakes kept); then a pool is created, funded, a season opened and a
 * policy bought; the contract's refusals come back as one-line errors; after the season a region is reported
 * and assessed. No operator runs any more, so the oracle request stays open: the policy cannot be settled,
 * nor its region-season expired. The usage errors that need no deployment run beside them, each in a scratch
 * data dir of its own, on the embedded chain.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, parseEther } from "viem";
import { devAccounts } from "../../src/chain/accounts.ts";
import { type DevNode, startDevNode } from "../../src/chain/devnode.ts";
import { FEATURE_NAMES, normalizeFeatures, toOracleInput } from "../../src/oracle/yield-data.ts";
import { assertOk, assertOneLineError, cliWith, parseJson, type Run } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-insurance-cli-"));
const DATA = join(TMP, "data");
let devChain: DevNode | undefined;
after(async () => {
  await devChain?.stop();
  rmSync(TMP, { recursive: true, force: true });
});

/** `ledgermind --data-dir DATA --rpc CHAIN ...args`, killed after 60 s unless told otherwise. */
const { cli } = cliWith(() => ({ dataDir: DATA, rpc: devChain?.url, timeoutMs: 60_000 }));

const FARMER = (devAccounts(6)[5] as { address: Address }).address;
const CONDITIONS = { rainfallDeficit: 0.6, heatDays: 20, soilMoisture: 0.12, growingDegreeDays: 1800 };
const CONDITIONS_ARG = Object.entries(CONDITIONS)
  .map(([k, v]) => `${k}=${v}`)
  .join(",");

interface StatusJson {
  address: string;
  balance: string;
  owed: string;
  committed: string;
  reserved: string;
  free: string;
  policies: {
    policyId: string;
    farmer: string;
    region: number;
    season: number;
    status: string;
    coverage: string;
    premium: string;
    payout: string;
    score?: number;
  }[];
}

const wei = (mind: string) => parseEther(mind).toString();

describe("ledgermind insurance (a development chain, separate processes)", { concurrency: false }, () => {
  let demoPool = "";
  let pool = "";
  let requestId = "";
  // Input mistakes caught before any contract is reached: started beside the demo, on scratch data dirs.
  let notAnAddress: Promise<Run>;
  let emptyValue: Promise<Run>;
  before(async () => {
    devChain = await startDevNode({ port: 0 });
    const scratch = (name: string) => ({ dataDir: join(TMP, name), rpc: undefined });
    notAnAddress = cli(["insurance", "status", "--pool", "0x123"], scratch("scratch-pool"));
    emptyValue = cli(
      [
        "insurance",
        "report",
        "--region",
        "9",
        "--season",
        "7",
        "--conditions",
        "rainfallDeficit=0.6,heatDays=,soilMoisture=0.12,growingDegreeDays=1800",
      ],
      scratch("scratch-conditions"),
    );
  });

  it("--json demo --part insurance registers model 1@1 and runs a full insurance flow", async () => {
    // About 20 s, and 45 s more where no earlier run left the crop circuit's keys in the zk cache.
    const run = await cli(["--json", "demo", "--part", "insurance"], { timeoutMs: 300_000 });
    const demo = parseJson<{
      registry?: unknown;
      insurance: { model: { modelId: string; version: number }; pool: string; policies: unknown[] };
    }>(run);
    assert.equal(demo.registry, undefined, "--part insurance skips the registry demo");
    assert.equal(demo.insurance.model.modelId, "1");
    assert.equal(demo.insurance.model.version, 1);
    assert.equal(demo.insurance.policies.length, 6);
    demoPool = demo.insurance.pool.toLowerCase();
    // The demo's farmers are accounts 12 to 16: account 5, this test's farmer, gets its MIND here.
    assertOk(await cli(["token", "transfer", "5", "1000"]));
  });

  it("create, fund, season, buy (premium 8 MIND at the default 0.08), then status", async () => {
    // Sales close 10 minutes before a season's end; regions may be assessed for a day after it.
    const created = assertOk(
      await cli([
        "insurance",
        "create",
        "--model",
        "1@1",
        "--sales-close",
        "600",
        "--assessment-window",
        "86400",
      ]),
    );
    const m = created.match(/^insurance pool (0x[0-9a-fA-F]{40}) priced by model 1@1\n$/);
    assert.ok(m, created);
    pool = m[1] as string;
    assert.notEqual(pool.toLowerCase(), demoPool, "a new pool, not the demo's");

    assert.equal(assertOk(await cli(["insurance", "fund", "5000"])), "funded the pool with 5000 MIND\n");
    assert.match(
      assertOk(await cli(["insurance", "season", "7", "--ends-in", "3600"])),
      /^season 7 open until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z\n$/,
    );
    const buy = ["insurance", "buy", "--region", "9", "--season", "7", "--coverage", "100", "--account", "5"];
    assert.equal(assertOk(await cli(buy)), "policy 1: coverage 100 MIND, premium 8 MIND\n");

    const s = parseJson<StatusJson>(await cli(["--json", "insurance", "status"]));
    assert.equal(s.address.toLowerCase(), pool.toLowerCase(), "status defaults to the pool created last");
    assert.equal(s.balance, wei("5008"));
    // The coverage, and the 1 MIND oracle fee of the region-season's assessment, set aside with its first policy.
    assert.equal(s.reserved, wei("101"));
    assert.equal(s.owed, "0");
    assert.equal(s.committed, "0");
    assert.equal(s.free, wei("4907"));
    assert.equal(s.policies.length, 1);
    assert.equal(s.policies[0]?.score, undefined, "no score before the oracle answers");
    assert.deepEqual(s.policies[0], {
      policyId: "1",
      farmer: FARMER,
      region: 9,
      season: 7,
      status: "active",
      coverage: wei("100"),
      premium: wei("8"),
      payout: "0",
    });
  });

  it("more coverage than the pool can pay: InsufficientCapital, in MIND; a malformed --conditions: usage error", async () => {
    // The usage error is found before connecting, so it may run beside a command holding the chain.
    const [capital, conditions] = await Promise.all([
      cli(["insurance", "buy", "--region", "9", "--season", "7", "--coverage", "10000", "--account", "5"]),
      cli(["insurance", "report", "--region", "9", "--season", "7", "--conditions", "rainfallDeficit=abc"]),
    ]);
    // Free 4907 + the premium of 800 that would come in: 5707 MIND can be reserved, not 10000.
    assertOneLineError(
      capital,
      /^ledgermind: the pool cannot take on or pay 10000 MIND: only 5707 MIND is unreserved \(InsufficientCapital\)$/,
      1,
    );
    const line = assertOneLineError(conditions, /--conditions/, 2);
    for (const name of FEATURE_NAMES) assert.ok(line.includes(`${name}=`), `names ${name}: ${line}`);
  });

  it("assess before the season ended: SeasonNotEnded, with the end as a date", async () => {
    assertOneLineError(
      await cli(["insurance", "assess", "--region", "9", "--season", "7"]),
      /^ledgermind: season 7 has not ended: it ends at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z \(SeasonNotEnded\)$/,
      1,
    );
  });

  it("buy on a season never opened: SeasonNotOpen; a --pool that is not an address: usage error", async () => {
    assertOneLineError(
      await cli(["insurance", "buy", "--region", "9", "--season", "8", "--coverage", "10", "--account", "5"]),
      /^ledgermind: season 8 was never opened \(SeasonNotOpen\)$/,
      1,
    );
    assertOneLineError(await notAnAddress, /^ledgermind: --pool "0x123" is not a valid address /, 2);
  });

  it("a --conditions value left empty is a usage error, not 0", async () => {
    // On a scratch data dir with no pool: should the value get through, nothing is reported anywhere.
    const r = await emptyValue;
    assertOneLineError(r, /--conditions/, 2);
  });

  it("after the season: report, assess (an oracle request), which stays open: settle is refused", async () => {
    assert.match(assertOk(await cli(["advance-time", "4000"])), /^chain time is now \S+Z\n$/);
    assert.equal(
      assertOk(
        await cli(["insurance", "report", "--region", "9", "--season", "7", "--conditions", CONDITIONS_ARG]),
      ),
      "conditions reported for region 9, season 7\n",
    );
    const assessed = assertOk(await cli(["insurance", "assess", "--region", "9", "--season", "7"]));
    const m = assessed.match(/^assessment requested: oracle request ([1-9]\d*)\n$/);
    assert.ok(m, assessed);
    requestId = m[1] as string;
    assert.ok(Number(requestId) > 6, "the demo's six assessments came first");

    const shown = parseJson<{
      requestId: string;
      state: string;
      modelId: string;
      version: number;
      input: string[];
      reveals: unknown[];
    }>(await cli(["--json", "oracle", "show", requestId]));
    assert.equal(shown.requestId, requestId);
    assert.equal(shown.state, "open", "no operator runs: the request waits");
    assert.equal(shown.modelId, "1");
    assert.equal(shown.version, 1);
    assert.deepEqual(shown.reveals, []);
    assert.deepEqual(
      shown.input,
      toOracleInput(normalizeFeatures(CONDITIONS)).map(String),
      "the oracle was asked about the reported conditions",
    );

    const status = assertOk(await cli(["insurance", "status"]));
    // The oracle fee (1 MIND) was paid from what was set aside for it; the refused purchase left nothing behind.
    assert.match(
      status,
      /^pool 0x[0-9a-fA-F]{40}: balance 5007, reserved 100, committed 0, owed 0, free 4907 MIND\n/,
    );
    assert.match(status, /\n {2}policy 1 region 9 season 7 active: coverage 100, score pending, payout 0\n$/);
    assert.equal(status.split("\n").length, 3, status);

    assertOneLineError(
      await cli(["insurance", "settle", "1"]),
      /^ledgermind: region 9, season 7 has no score yet and has not expired: .* \(NotAssessed\)$/,
      1,
    );
  });

  it("expire within the assessment window: AssessmentStillOpen; collect-refunds with none: NothingToCollect", async () => {
    assertOneLineError(
      await cli(["insurance", "expire", "--region", "9", "--season", "7"]),
      /^ledgermind: region 9, season 7 may be assessed until \d{4}-\d\d-\d\dT[\d:.]+Z: it cannot expire before \(AssessmentStillOpen\)$/,
      1,
    );
    assertOneLineError(
      await cli(["insurance", "collect-refunds"]),
      /^ledgermind: the oracle holds no refund for this pool \(NothingToCollect\)$/,
      1,
    );
  });

  it("claim with nothing owed: NothingToClaim", async () => {
    assertOneLineError(
      await cli(["insurance", "claim", "--account", "5"]),
      /^ledgermind: nothing to claim \(NothingToClaim\)$/,
      1,
    );
  });
  it("assess on a model version no operator serves: the oracle's NotEnoughOperators as a sentence", async () => {
    // The oracle refuses inside CropInsurance.assess; its error is not in the pool's ABI. This used to
    // print `The contract function "assess" reverted with the following signature:` and nothing after.
    const weights = join(TMP, "unserved.bin");
    writeFileSync(weights, "weights of a version nobody serves");
    assertOk(await cli(["model", "version", "1", "--weights", weights, "--format", "raw"]));
    assertOk(await cli(["oracle", "spec", "--model", "1@2", "--input-size", "4"]));
    const created = assertOk(
      await cli([
        "insurance",
        "create",
        "--model",
        "1@2",
        "--sales-close",
        "600",
        "--assessment-window",
        "86400",
      ]),
    );
    const unserved = created.match(/^insurance pool (0x[0-9a-fA-F]{40})/)?.[1] as string;
    assert.ok(unserved, created);
    const onPool = (...args: string[]) => cli(["insurance", ...args, "--pool", unserved]);
    assertOk(await onPool("fund", "100"));
    assertOk(await onPool("season", "1", "--ends-in", "1200"));
    assertOk(await onPool("buy", "--region", "1", "--season", "1", "--coverage", "10", "--account", "5"));
    assertOk(await cli(["advance-time", "1300"]));
    assertOk(await onPool("report", "--region", "1", "--season", "1", "--conditions", CONDITIONS_ARG));
    assertOneLineError(
      await onPool("assess", "--region", "1", "--season", "1"),
      /^ledgermind: the model version has 0 active operator\(s\); a request needs \d+: start more with `ledgermind oracle serve` \(NotEnoughOperators\)$/,
      1,
    );
  });
});
