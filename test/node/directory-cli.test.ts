/**
 * `ledgermind node announce URL` and `ledgermind node endpoints [ADDRESS...]` as separate processes on the
 * embedded chain of one data folder: an announcement is listed, a refused URL is the contract's sentence
 * on one line (exit 1), a mistyped address and a missing --config are usage errors (exit 2).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { assertOk, assertOneLineError, cliWith, parseJson } from "../cli/cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-directory-cli-"));
const { cli } = cliWith({ dataDir: join(TMP, "data"), timeoutMs: 120_000 });
/** The second development account (index 2), whose node the test announces. */
const ACCOUNT_2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const ACCOUNT_3 = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";

after(() => rmSync(TMP, { recursive: true, force: true }));

describe("ledgermind node announce | endpoints (embedded chain)", { concurrency: false }, () => {
  it("nothing announced yet: says so", async () => {
    assert.equal(assertOk(await cli(["node", "endpoints"])), "no node has announced a URL\n");
  });

  it("announces an account's URL, then lists it; asked by address, one without an entry says so", async () => {
    assert.equal(
      assertOk(await cli(["node", "announce", "http://10.0.0.2:8600", "--account", "2"])),
      `${ACCOUNT_2} serves its blobs at http://10.0.0.2:8600\n`,
    );
    assert.equal(assertOk(await cli(["node", "endpoints"])), `${ACCOUNT_2} http://10.0.0.2:8600\n`);
    assert.deepEqual(parseJson(await cli(["--json", "node", "endpoints", ACCOUNT_3, ACCOUNT_2])), [
      { node: ACCOUNT_3, url: null },
      { node: ACCOUNT_2, url: "http://10.0.0.2:8600" },
    ]);
  });

  it("a URL the directory refuses is its sentence on one line, exit 1; nothing changes", async () => {
    assertOneLineError(
      await cli(["node", "announce", "ftp://10.0.0.2", "--account", "2"]),
      /^ledgermind: the URL must start with http:\/\/ or https:\/\/ \(lower case\) and name a host \(UnsupportedScheme\)$/,
      1,
    );
    assert.equal(
      assertOk(await cli(["node", "endpoints", ACCOUNT_2])),
      `${ACCOUNT_2} http://10.0.0.2:8600\n`,
    );
  });

  it("usage errors: a mistyped address, node without --config; exit 2", async () => {
    const [address, bare] = await Promise.all([cli(["node", "endpoints", "0xdead"]), cli(["node"])]);
    assertOneLineError(address, /^ledgermind: the account "0xdead" is not a valid address/, 2);
    assertOneLineError(
      bare,
      /^ledgermind: node needs --config FILE \(or a subcommand: announce, endpoints\)$/,
      2,
    );
  });
});
