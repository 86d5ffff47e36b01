/**
 * JSON piped to another program arrives whole: the CLI used to exit before a pipe drained, cutting its
 * output at 64 KiB. `fl simulate --in-memory --json` of 30 clients over 60 rounds prints about 128 KB.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cli, show } from "./cli-process.ts";

describe("JSON output through a pipe", () => {
  it("fl simulate --json prints more than 64 KiB of complete JSON into a pipe", async () => {
    const r = await cli(
      [
        "--json",
        "fl",
        "simulate",
        "--in-memory",
        "--rounds",
        "60",
        "--clients",
        "30",
        "--samples-per-client",
        "20",
        "--validators",
        "1",
      ],
      { timeoutMs: 120_000 },
    );
    assert.equal(r.code, 0, show(r));
    assert.ok(r.stdout.length > 64 * 1024, `only ${r.stdout.length} bytes: the test needs more than 64 KiB`);
    const summary = JSON.parse(r.stdout) as { rounds: unknown[] };
    assert.equal(summary.rounds.length, 60);
  });
});
