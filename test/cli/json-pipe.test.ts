/**
 * JSON piped to another program arrives whole: the CLI used to exit before a pipe drained, cutting its
 * output at 64 KiB (a pipe's buffer). The check is `fl simulate ... --json | node -e
 * 'JSON.parse(require("fs").readFileSync(0))'` on more than 1 MB: 128 clients over 64 rounds print about
 * 1.08 MB (each round lists every participant's score and reward). The reader starts a second late, so the
 * pipe is full when the command ends (node's own child stdio is a socket pair, and a quick reader hides the
 * cut).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { cliEnv, ROOT } from "./cli-process.ts";

const ARGS = "--json fl simulate --in-memory --rounds 60 --clients 30 --samples-per-client 20 --validators 1";
const ARGS_OVER_1MB =
  "--json fl simulate --in-memory --rounds 64 --clients 128 --samples-per-client 5 --validators 1";

/** The reader: parses all of standard input as JSON, then says how many bytes and rounds it got. */
const READER = `const b = require("fs").readFileSync(0); const j = JSON.parse(b); console.log(b.length, j.rounds.length)`;

describe("JSON output through a pipe", () => {
  it("fl simulate --json | node -e 'JSON.parse(...readFileSync(0))' parses more than 1 MB", async () => {
    const { stdout } = await promisify(execFile)(
      "sh",
      [
        "-c",
        `"${process.execPath}" --import tsx src/cli/main.ts ${ARGS_OVER_1MB} | { sleep 1; "${process.execPath}" -e '${READER}'; }`,
      ],
      { cwd: ROOT, env: cliEnv(), timeout: 300_000 },
    );
    const [bytes, rounds] = stdout.trim().split(" ").map(Number);
    assert.ok((bytes as number) > 1_000_000, `only ${bytes} bytes: the test needs more than 1 MB`);
    assert.equal(rounds, 64);
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
