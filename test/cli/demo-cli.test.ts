/**
 * `ledgermind demo`'s consortium parts as a user runs them: Ctrl-C while the federated task runs across its
 * node processes stops every process the demo started (the nodes and the development chain) and says so in
 * one line. The full demo's output is checked by cli.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { interruptAndCheck, processesNaming, watch } from "../node/leftovers.ts";
import { spawnCli } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-demo-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

describe("ledgermind demo across node processes", { timeout: 240_000 }, () => {
  it("Ctrl-C mid-task: every node process and the chain stop, one line says so", async () => {
    const dir = join(TMP, "interrupted");
    const child = spawnCli(["demo", "--part", "learning", "--dir", dir], { dataDir: TMP });
    const run = watch(child);
    try {
      await run.until(/^round 1: /m, 180_000);
      assert.ok(processesNaming(dir).length >= 8, "the eight node processes run");
      await interruptAndCheck(
        child,
        run,
        dir,
        /^ledgermind: interrupted: every process the demo started was stopped/m,
      );
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
