/**
 * `ledgermind data` end to end, as separate processes on the embedded chain of one data folder: a hospital
 * (account 1) publishes a dataset, a lab (account 2) buys access, a researcher (account 3) is granted then
 * revoked; an algorithm is allowed by model version; the contract's refusals come back as one-line errors
 * (exit 1) and bad arguments as usage errors (exit 2), before anything connects.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Address, parseEther } from "viem";
import { devAccounts } from "../../src/chain/accounts.ts";
import { algorithmId } from "../../src/market/protocol.ts";
import { assertOk, assertOneLineError, cliWith, parseJson, writeWardsMetadata } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-data-cli-"));
const DATA = join(TMP, "data");
after(() => rmSync(TMP, { recursive: true, force: true }));

const { cli } = cliWith({ dataDir: DATA, timeoutMs: 60_000 });

const [HOSPITAL, LAB, RESEARCHER] = devAccounts(4)
  .slice(1)
  .map((a) => (a as { address: Address }).address);

const METADATA_FILE = writeWardsMetadata(TMP);

describe("ledgermind data (the embedded chain, separate processes)", { concurrency: false }, () => {
  it("publish, list and show a dataset", async () => {
    const published = parseJson<{ datasetId: string; metadataCid: string; gasUsed: string }>(
      await cli([
        "--json",
        "data",
        "publish",
        "--metadata",
        METADATA_FILE,
        "--price",
        "5",
        "--period",
        "1d",
        "--account",
        "1",
      ]),
    );
    assert.equal(published.datasetId, "1");
    const list = parseJson<{ id: string; owner: string; pricePerPeriod: string; period: number }[]>(
      await cli(["--json", "data", "list"]),
    );
    assert.deepEqual(
      list.map((d) => ({ id: d.id, owner: d.owner, price: d.pricePerPeriod, period: d.period })),
      [{ id: "1", owner: HOSPITAL, price: parseEther("5").toString(), period: 86_400 }],
    );
    const shown = assertOk(await cli(["data", "show", "1"]));
    assert.match(shown, /^dataset 1: owner 0x[0-9a-fA-F]{40}, 5 MIND per 86400 s, metadata bafkrei/);
    assert.match(shown, /ward admissions: one row per stay \(CC-BY-NC-4.0, 1200 rows\)/);
  });

  it("buy: a buyer without MIND is told so in one line; funded, it buys two periods", async () => {
    assertOneLineError(
      await cli(["data", "buy", "1", "--periods", "2", "--account", "2"]),
      /holds 0 MIND but the access costs 10 MIND/,
      1,
    );
    assertOk(await cli(["token", "transfer", "2", "100"]));
    const bought = parseJson<{ cost: string; paidUntil: number }>(
      await cli(["--json", "data", "buy", "1", "--periods", "2", "--account", "2"]),
    );
    assert.equal(bought.cost, parseEther("10").toString());
    const access = parseJson<{ hasAccess: boolean; paidUntil: number }>(
      await cli(["--json", "data", "access", "1", LAB as string]),
    );
    assert.deepEqual(access.hasAccess, true);
    assert.equal(access.paidUntil, bought.paidUntil);
  });

  it("grant, access, revoke: consent given and withdrawn; a second revocation is refused", async () => {
    assert.match(
      assertOk(await cli(["data", "grant", "1", "3", "--for", "1h", "--account", "1"])),
      new RegExp(`^granted ${RESEARCHER} access to dataset 1 until `),
    );
    assert.match(assertOk(await cli(["data", "access", "1", "3"])), /has access to dataset 1/);
    assert.match(
      assertOk(await cli(["data", "revoke", "1", "3", "--account", "1"])),
      /grant on dataset 1; it has no access now\n$/,
    );
    assert.match(assertOk(await cli(["data", "access", "1", "3"])), /has no access to dataset 1/);
    assertOneLineError(
      await cli(["data", "revoke", "1", "3", "--account", "1"]),
      /holds no live grant on dataset 1 to revoke .*\(NoGrant\)$/,
      1,
    );
  });

  it("consent forgery: a stranger's grant is refused by the contract", async () => {
    assertOneLineError(
      await cli(["data", "grant", "1", "4", "--for", "1d", "--account", "4"]),
      /does not own dataset 1: only its owner may do this \(NotDatasetOwner\)$/,
      1,
    );
  });

  it("allow: a model version's algorithm id is the one the TypeScript helper computes", async () => {
    const allowed = parseJson<{ algorithm: string }>(
      await cli(["--json", "data", "allow", "1", "--model", "2@1", "--account", "1"]),
    );
    assert.equal(allowed.algorithm, algorithmId({ modelId: 2n, version: 1 }));
    assertOneLineError(
      await cli(["data", "allow", "1", "--model", "2@1", "--account", "1"]),
      /\(AlgorithmAlreadyAllowed\)$/,
      1,
    );
  });

  it("an unknown dataset is one line, exit 1", async () => {
    assertOneLineError(
      await cli(["data", "show", "9"]),
      /^ledgermind: there is no dataset 9 \(UnknownDataset\)$/,
      1,
    );
  });

  it("usage errors exit 2 before anything connects", async () => {
    const bad = join(TMP, "bad.json");
    writeFileSync(bad, JSON.stringify({ format: "ledgermind.dataset/1", name: "x" }));
    const scratch = { dataDir: join(TMP, "scratch") };
    for (const [args, pattern] of [
      [["data", "show", "x"], /dataset id is a positive integer/],
      [["data", "publish", "--metadata", bad], /--metadata .*bad\.json: dataset metadata: description/],
      [["data", "publish", "--metadata", join(TMP, "missing.json")], /cannot be read \(ENOENT\)/],
      [["data", "grant", "1", "3", "--for", "soon"], /--for takes a duration/],
      [["data", "allow", "1"], /exactly one of --model/],
      [["data", "allow", "1", "--digest", "0x12"], /--digest takes 32 bytes/],
      [["data", "buy", "1", "--periods", "0"], /--periods takes an integer from 1/],
      [["data", "serve", "--dataset", "1", "--csv", bad], /data serve needs --rpc URL/],
      [
        ["--rpc", "http://127.0.0.1:9", "data", "serve", "--dataset", "1", "--csv", join(TMP, "none.csv")],
        /--csv .*none\.csv: no such file/,
      ],
      [
        ["data", "compute", "--dataset", "1", "--model", "1@1", "--kind", "sell", "--out", "x"],
        /--kind is train or evaluate/,
      ],
      [["data", "compute", "--dataset", "1", "--model", "1@1", "--out", bad], /--out .*bad\.json exists/],
    ] as const)
      assertOneLineError(await cli(args, scratch), pattern, 2);
  });
});
