/**
 * `ledgermind devnet` as a user runs it: a chain and five node processes run a federated task and oracle
 * requests, print the results and exit 0 leaving no process behind; Ctrl-C while the nodes start stops
 * every process it started. Processes are found by the devnet folder in their command lines, and the
 * chain by its port.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { assertOk, cli, spawnCli } from "../cli/cli-process.ts";
import { interruptAndCheck, listening, logTails, processesNaming, watch } from "./leftovers.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-devnet-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

describe("ledgermind devnet", { timeout: 300_000 }, () => {
  it("--nodes 5: a federated task and oracle answers across processes, exit 0, nothing left running", async () => {
    const dir = join(TMP, "run");
    const run = await cli(["devnet", "--nodes", "5", "--dir", dir], { dataDir: TMP, timeoutMs: 240_000 });
    // A failure shows stderr and the nodes' last log lines before the long stdout.
    if (run.code !== 0) assert.fail(`exit ${run.code}\n${run.stderr}\n${logTails(dir)}\n${run.stdout}`);
    const out = assertOk(run);
    assert.match(out, /^node 4 \(trainer\) serving on http:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(
      out,
      /^round 2\/2: 2 of 2 updates accepted, aggregated as version 3, test accuracy 0\.\d+$/m,
    );
    assert.match(out, /; 0 members slashed; \d+ KiB of blobs served between nodes$/m);
    assert.match(out, /^oracle answers: severe drought 0\.\d+ \(signed report\), /m);
    const chain = /^development chain on (http:\/\/\S+)$/m.exec(out)?.[1];
    assert.ok(chain, out);
    assert.deepEqual(processesNaming(dir), [], "no node process left");
    assert.equal(await listening(chain), false, "the chain stopped");
  });

  it("Ctrl-C while the nodes start: every process it started stops, and it says so", async () => {
    const dir = join(TMP, "interrupted");
    const child = spawnCli(["devnet", "--nodes", "4", "--dir", dir], { dataDir: TMP });
    const run = watch(child);
    try {
      await run.until(/^oracle model /m, 120_000);
      await new Promise((r) => setTimeout(r, 1_500)); // node processes are starting
      await interruptAndCheck(child, run, dir, /interrupted/);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
