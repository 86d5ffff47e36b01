/**
 * The README's "Using the CLI" section runs as written: every `sh` block under that heading, in order,
 * in one fresh temporary folder, each by `bash -e`, with `ledgermind` on the PATH running this checkout's
 * CLI (a script in a temporary bin folder: `node --import tsx src/cli/main.ts "$@"`). Any command that
 * fails fails the test, naming the block's line in README.md and ending with the block's output.
 *
 * Blocks marked `<!-- readme-test: skip ... -->` (see readme-blocks.ts) are left out: the one that
 * installs the package from a registry. A block's background jobs are stopped when it ends, whatever
 * happened, so that a failed run leaves no development chain holding its port.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, describe, it } from "node:test";
import { cliEnv, ROOT } from "./cli-process.ts";
import { ReadmeSectionError, type ShellBlock, SKIP_MARKER, sectionShellBlocks } from "./readme-blocks.ts";

const SECTION = "Using the CLI";
/** The port `ledgermind chain` listens on by default, which the README's oracle block relies on. */
const DEV_CHAIN_PORT = 8545;
/** How long one block may run: the oracle block starts a chain and two operators (about a minute). */
const BLOCK_TIMEOUT_MS = 480_000;

describe("sectionShellBlocks", () => {
  const doc = [
    "# T",
    "## Other",
    "```sh",
    "not this one",
    "```",
    "## Using the CLI",
    "text",
    "<!-- readme-test: skip (installs from a registry) -->",
    "",
    "```sh",
    "npm install x",
    "```",
    "```sh",
    "echo one",
    "```",
    "```",
    "a plain block is not shell",
    "```",
    "````sh",
    "echo two",
    "```",
    "echo still two",
    "````",
    "## Next",
    "```sh",
    "not this one either",
    "```",
  ].join("\n");

  it("takes the sh blocks of the section only, in order, without the one marked to skip", () => {
    assert.deepEqual(sectionShellBlocks(doc, SECTION), [
      { code: "echo one", line: 13 },
      { code: "echo two\n```\necho still two", line: 19 },
    ]);
  });

  it("the marker is an HTML comment, with or without a reason", () => {
    assert.ok(SKIP_MARKER.test("<!-- readme-test: skip -->"));
    assert.ok(SKIP_MARKER.test("<!-- readme-test: skip (needs a registry) -->"));
    assert.ok(!SKIP_MARKER.test("readme-test: skip"));
  });

  it("a missing heading or a fence never closed is an error, not an empty list", () => {
    assert.throws(() => sectionShellBlocks("# T\n", SECTION), ReadmeSectionError);
    assert.throws(
      () => sectionShellBlocks("## Using the CLI\n```sh\necho\n", SECTION),
      /the code block at line 2 is never closed/,
    );
  });
});

const README = readFileSync(join(ROOT, "README.md"), "utf8");
const BLOCKS = sectionShellBlocks(README, SECTION);

/** A fresh folder to run the README in, and a bin folder whose `ledgermind` is this checkout's CLI. */
const TMP = mkdtempSync(join(tmpdir(), "ledgermind-readme-"));
const WORK = join(TMP, "work");
const BIN = join(TMP, "bin");
mkdirSync(WORK);
mkdirSync(BIN);
// tsx resolved here, absolutely: in the empty folder `--import tsx` would find no package.
const TSX = import.meta.resolve("tsx");
writeFileSync(
  join(BIN, "ledgermind"),
  `#!/bin/sh\nexec "${process.execPath}" --import "${TSX}" "${join(ROOT, "src/cli/main.ts")}" "$@"\n`,
);
chmodSync(join(BIN, "ledgermind"), 0o755);

after(() => rmSync(TMP, { recursive: true, force: true }));

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
      .once("error", () => resolve(false))
      .listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** The end of each log a block wrote (a background job's output goes there), for a failure message. */
function logTails(): string {
  return readdirSync(WORK)
    .filter((name) => name.endsWith(".log"))
    .map((name) => `\n--- ${name} (end) ---\n${readFileSync(join(WORK, name), "utf8").slice(-1500)}`)
    .join("");
}

interface BlockRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  timedOut: boolean;
}

/**
 * Runs one block with `bash -e -x` (the trace shows which command failed) in WORK. Its background jobs
 * are killed on exit by a trap; the whole process group is killed on a timeout, when no trap can run.
 */
function runBlock(block: ShellBlock): Promise<BlockRun> {
  const script = `trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n${block.code}\n`;
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-e", "-x", "-c", script], {
      cwd: WORK,
      env: { ...cliEnv(), PATH: `${BIN}${delimiter}${process.env.PATH ?? ""}` },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = "";
    const take = (c: Buffer) => {
      output += c.toString();
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        // already gone
      }
    }, BLOCK_TIMEOUT_MS);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, timedOut });
    });
  });
}

describe(`README "${SECTION}" runs as written, top to bottom, in an empty folder`, {
  concurrency: false,
}, () => {
  it("has blocks to run, none chaining commands with && (bash -e ignores a failure left of &&)", () => {
    assert.ok(BLOCKS.length >= 3, `only ${BLOCKS.length} runnable sh block(s) under "## ${SECTION}"`);
    for (const block of BLOCKS) {
      assert.doesNotMatch(block.code, /&&/, `the block at README.md line ${block.line}: one command a line`);
    }
  });

  let failed: number | undefined;
  for (const block of BLOCKS) {
    const first = (block.code.split("\n")[0] as string).replace(/\s+#.*$/, "").trim();
    it(`README.md line ${block.line}: ${first.slice(0, 60)}`, async (t) => {
      if (failed !== undefined) return t.skip(`the block at line ${failed} failed`);
      if (/^\s*ledgermind chain\b/m.test(block.code)) {
        assert.ok(
          await portFree(DEV_CHAIN_PORT),
          `port ${DEV_CHAIN_PORT} is in use: the block at README.md line ${block.line} starts \`ledgermind chain\` on it`,
        );
      }
      const started = performance.now();
      const r = await runBlock(block);
      t.diagnostic(`${((performance.now() - started) / 1000).toFixed(1)} s`);
      if (r.code === 0 && !r.timedOut) return;
      failed = block.line;
      assert.fail(
        `the block at README.md line ${block.line} ${r.timedOut ? `ran past ${BLOCK_TIMEOUT_MS / 1000} s` : `exited ${r.code ?? r.signal}`}; the logs it wrote first (background jobs write there), then its output (bash -x traces each command with +):${logTails()}\n--- output (end) ---\n${r.output.slice(-4000)}`,
      );
    });
  }
});
