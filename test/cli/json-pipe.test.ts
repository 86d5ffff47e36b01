/**
 * JSON piped to another program arrives whole: the CLI used to exit before a pipe drained, cutting its
 * output at 64 KiB (a pipe's buffer). `fl simulate --in-memory --json` of 30 clients over 60 rounds prints
 * about 128 KB. The CLI writes into a real pipe whose reader starts a second late, so the pipe is full
 * when the command ends (node's own child stdio is a socket pair, and a quick reader hides the cut).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { cliEnv, ROOT } from "./cli-process.ts";

const ARGS = "--json fl simulate --in-memory --rounds 60 --clients 30 --samples-per-client 20 --validators 1";

describe("JSON output through a pipe", () => {
  it("fl simulate --json into a slow pipe prints more than 64 KiB of complete JSON", async () => {
    const { stdout } = await promisify(execFile)(
      "sh",
      ["-c", `"${process.execPath}" --import tsx src/cli/main.ts ${ARGS} | { sleep 1; cat; }`],
      { cwd: ROOT, env: cliEnv(), maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
    );
    assert.ok(stdout.length > 64 * 1024, `only ${stdout.length} bytes: the test needs more than 64 KiB`);
    const summary = JSON.parse(stdout) as { rounds: unknown[] };
    assert.equal(summary.rounds.length, 60);
  });

  it("a reader that stops early (| head -c 100) gets its bytes and no error on stderr", async () => {
    const { stdout, stderr } = await promisify(execFile)(
      "sh",
      ["-c", `"${process.execPath}" --import tsx src/cli/main.ts ${ARGS} | head -c 100`],
      { cwd: ROOT, env: cliEnv(), timeout: 120_000 },
    );
    assert.equal(stdout.length, 100);
    assert.equal(stderr, "");
  });
});
