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
import { listening, processesNaming } from "../node/leftovers.ts";
import { spawnCli } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-demo-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

describe("ledgermind demo across node processes", { timeout: 240_000 }, () => {
  it("Ctrl-C mid-task: every node process and the chain stop, one line says so", async () => {
    const dir = join(TMP, "interrupted");
    const child = spawnCli(["demo", "--part", "learning", "--dir", dir], { dataDir: TMP });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    let err = "";
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const deadline = Date.now() + 180_000;
      while (!/^round 1: /m.test(out)) {
        assert.ok(child.exitCode === null, `the demo ended early: ${out}${err}`);
        assert.ok(Date.now() < deadline, `no round settled: ${out}${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(processesNaming(dir).length >= 8, "the eight node processes run");
      child.kill("SIGINT");
      const code = await exited;
      assert.notEqual(code, 0);
      assert.match(err, /^ledgermind: interrupted: every process the demo started was stopped/m);
      assert.doesNotMatch(err, /\n\s+at /, "no stack trace");
      const chain = /^development chain on (http:\/\/\S+)$/m.exec(out)?.[1];
      assert.ok(chain, out);
      assert.deepEqual(processesNaming(dir), [], "no node process left");
      assert.equal(await listening(chain), false, "the chain stopped");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
