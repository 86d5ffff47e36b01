/**
 * The CLI's conventions, checked in this process (no CLI is spawned): contract errors as sentences for
 * every error of every contract, the help pages (examples, placeholders, defaults, global options), input
 * validation, exit codes, the data folder check and the wait for a held chain.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  type Abi,
  ContractFunctionExecutionError,
  ContractFunctionRevertedError,
  encodeErrorResult,
  parseEther,
  zeroAddress,
} from "viem";
import {
  CONTRACT_ERRORS,
  decodeContractError,
  describeContractError,
  ERROR_SENTENCES,
  errorArgsByName,
} from "../../src/chain/errors.ts";
import * as contracts from "../../src/chain/generated/contracts.ts";
import { ChainLockedError } from "../../src/chain/journal.ts";
import { acquireChainLock } from "../../src/chain/lock.ts";
import { ContractRefusedError, decodeRevert } from "../../src/chain/tx.ts";
import {
  DataDirError,
  ensureDataDir,
  makeFolder,
  parseName,
  parseRpc,
  parseVersion,
  UsageError,
} from "../../src/cli/context.ts";
import { errorLine, exitCodeOf } from "../../src/cli/errors.ts";
import { ATTACK_HELP_NAMES } from "../../src/cli/fl.ts";
import { allCommands, commandPath, EXAMPLES } from "../../src/cli/help.ts";
import { createProgram, VERSION, versionFlagIsCommands } from "../../src/cli/program.ts";
import { parseTarget } from "../../src/cli/token.ts";
import { InvalidCidError } from "../../src/storage/cid.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-conventions-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

type ErrorItem = { name: string; inputs: readonly { type: string; name?: string }[] };

/** Every (contract, custom error) pair of the generated ABIs. */
const EVERY_ERROR: [string, ErrorItem][] = Object.entries(contracts).flatMap(([contract, value]) =>
  typeof value === "object" && "abi" in value
    ? (value.abi as readonly { type: string }[])
        .filter((item) => item.type === "error")
        .map((item) => [contract, item as unknown as ErrorItem] as [string, ErrorItem])
    : [],
);

/** A plausible value of an ABI type: what a revert would carry. */
function sample(type: string): unknown {
  if (type === "address") return zeroAddress;
  if (type === "string") return "a string";
  if (type.startsWith("bytes")) return `0x${"ab".repeat(Number(type.slice(5)) || 32)}`;
  if (type === "uint8" || type === "uint16") return 3;
  return 1_700_000_000n;
}

describe("contract errors as sentences", () => {
  it("the ABIs declare errors (the iteration below is not empty)", () => {
    assert.ok(EVERY_ERROR.length > 100, `${EVERY_ERROR.length} errors`);
  });

  for (const [contract, error] of EVERY_ERROR) {
    it(`${contract}.${error.name}(${error.inputs.map((i) => i.type).join(",")}) has a sentence`, () => {
      assert.ok(ERROR_SENTENCES[error.name], `no sentence for ${error.name}`);
      const args = errorArgsByName(
        error.name,
        error.inputs.map((i) => sample(i.type)),
      );
      const line = describeContractError(error.name, args);
      assert.match(line, new RegExp(`\\(${error.name}\\)$`), "names the error at the end");
      assert.doesNotMatch(line, /undefined|NaN|Invalid Date|the contract refused/, line);
      // Decoding the encoded revert gives back the same sentence, whichever contract declared it.
      const data = encodeErrorResult({
        abi: [error] as unknown as Abi,
        errorName: error.name,
        args: error.inputs.map((i) => sample(i.type)),
      });
      const decoded = decodeContractError(data);
      assert.ok(decoded, "decodes");
      assert.equal(describeContractError(decoded.name, decoded.args), line);
    });
  }

  it("amounts are in MIND and times are dates", () => {
    assert.equal(
      describeContractError(
        "InsufficientCapital",
        errorArgsByName("InsufficientCapital", [parseEther("10000"), parseEther("5707.5")]),
      ),
      "the pool cannot take on or pay 10000 MIND: only 5707.5 MIND is unreserved (InsufficientCapital)",
    );
    assert.equal(
      describeContractError("SeasonNotEnded", errorArgsByName("SeasonNotEnded", [7, 1_700_000_000n])),
      "season 7 has not ended: it ends at 2023-11-14T22:13:20.000Z (SeasonNotEnded)",
    );
  });

  it("an error without a sentence falls back to its name and arguments", () => {
    assert.equal(
      describeContractError("Mystery", { region: 9, amount: 5n }),
      "the contract refused: Mystery(region=9, amount=5)",
    );
  });

  it("a ContractRefusedError prints its sentence", () => {
    assert.equal(
      errorLine(new ContractRefusedError("SeasonNotOpen", [8])),
      "season 8 was never opened (SeasonNotOpen)",
    );
  });

  it("insurance assess: the oracle's NotEnoughOperators, which CropInsurance's ABI lacks, is decoded", () => {
    // What viem throws when `assess` reverts inside the oracle: the data of an error its ABI does not know.
    const data = encodeErrorResult({
      abi: contracts.InferenceOracle.abi,
      errorName: "NotEnoughOperators",
      args: [0n, 1n],
    });
    const revert = new ContractFunctionRevertedError({
      abi: contracts.CropInsurance.abi,
      data,
      functionName: "assess",
    });
    const err = new ContractFunctionExecutionError(revert, {
      abi: contracts.CropInsurance.abi,
      functionName: "assess",
      args: [9, 7],
    });
    assert.match(err.message, /reverted with the following signature/, "viem alone cannot decode it");
    assert.equal(
      errorLine(err),
      "the model version has 0 active operator(s); a request needs 1: start more with `ledgermind oracle serve` (NotEnoughOperators)",
    );
  });

  it("the library decodes that nested error too: decodeRevert gives a ContractRefusedError naming it", () => {
    const data = encodeErrorResult({
      abi: contracts.InferenceOracle.abi,
      errorName: "NotEnoughOperators",
      args: [0n, 1n],
    });
    const err = new ContractFunctionExecutionError(
      new ContractFunctionRevertedError({ abi: contracts.CropInsurance.abi, data, functionName: "assess" }),
      { abi: contracts.CropInsurance.abi, functionName: "assess", args: [9, 7] },
    );
    const refused = decodeRevert(err);
    assert.ok(refused instanceof ContractRefusedError);
    assert.equal(refused.errorName, "NotEnoughOperators");
    assert.deepEqual(refused.args, [0n, 1n]);
  });

  it("Solidity's own Error(string) and Panic print their message, as ContractRefusedError too", () => {
    assert.equal(errorLine(new ContractRefusedError("Error", ["boom"])), "the contract refused: boom");
    assert.equal(
      errorLine(new ContractRefusedError("Panic", [17n])),
      "the contract panicked: an arithmetic operation overflowed",
    );
  });

  it("every name in the sentence table is an error some contract declares (or Solidity's own)", () => {
    const declared = new Set([...CONTRACT_ERRORS.map((e) => e.name), "Error", "Panic"]);
    for (const name of Object.keys(ERROR_SENTENCES)) assert.ok(declared.has(name), name);
  });
});

describe("help pages", () => {
  const program = createProgram();
  const commands = allCommands(program);

  it("every command has an example on its help page", () => {
    for (const cmd of commands) {
      const path = commandPath(cmd);
      assert.ok(EXAMPLES[path]?.length, `no example for "${path}"`);
      for (const example of EXAMPLES[path] ?? [])
        assert.ok(example.startsWith(`ledgermind `), `"${path}": ${example}`);
    }
  });

  it("one placeholder style: upper case, <FILE> or [WHO]", () => {
    for (const cmd of commands) {
      for (const option of cmd.options) {
        const placeholder = option.flags.match(/[<[][^>\]]+[>\]]/)?.[0];
        if (placeholder)
          assert.match(placeholder, /^[<[][A-Z0-9@=|_-]+[>\]]$/, `${commandPath(cmd)} ${option.flags}`);
      }
      for (const argument of cmd.registeredArguments)
        assert.match(argument.name(), /^[A-Z0-9@=|_-]+$/, `${commandPath(cmd)} ${argument.name()}`);
    }
  });

  it("defaults are written one way: (default: X), without quotes", () => {
    for (const cmd of commands) {
      const help = cmd.helpInformation().replace(/\s+/g, " ");
      for (const m of help.matchAll(/default\S* ./g))
        assert.match(m[0], /^default: [^"]/, `${commandPath(cmd)}: "${m[0]}" in ${help}`);
    }
  });

  it("global options are listed under subcommands; --version only on the program's page", () => {
    const show = commands.find((c) => commandPath(c) === "model show");
    assert.ok(show);
    let help = "";
    show.configureOutput({ writeOut: (text) => (help += text) }).outputHelp();
    assert.match(help, /Global Options:[\s\S]*--rpc <URL>[\s\S]*--data-dir <DIR>[\s\S]*--json/);
    assert.match(help, /Examples:\n {2}\$ ledgermind model show 1\n/, "the examples are on the page");
    assert.doesNotMatch(help, /-V, --version/);
    assert.match(program.helpInformation(), /-V, --version/);
    assert.match(VERSION, /^\d+\.\d+\.\d+/);
  });

  it("fl simulate --attack lists the attacks the README names, and no others", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const paragraph = readme.match(/^Attacks: ([\s\S]*?); strategies:/m)?.[1];
    assert.ok(paragraph, "the README's attack list");
    // Each attack is the first backticked word of its clause (options follow it in parentheses).
    const named = [...paragraph.replace(/\([^)]*\)/g, "").matchAll(/`([a-z-]+)`/g)].map((m) => m[1]);
    assert.deepEqual([...named].sort(), [...ATTACK_HELP_NAMES].sort());
    const simulate = commands.find((c) => commandPath(c) === "fl simulate");
    const attack = simulate?.options.find((o) => o.long === "--attack");
    assert.equal(attack?.description, `what the attackers do: ${ATTACK_HELP_NAMES.join(", ")}`);
  });

  it("--version after a command word is the command's own (model show 1 --version 2)", () => {
    assert.equal(versionFlagIsCommands(["--version"]), false);
    assert.equal(versionFlagIsCommands(["--data-dir", "x", "--version"]), false);
    assert.equal(versionFlagIsCommands(["model", "show", "1", "--version", "2"]), true);
    assert.equal(versionFlagIsCommands(["--rpc", "http://x", "model", "show", "--version=2"]), true);
  });
});

describe("input validation and exit codes", () => {
  it("an address that is not one says so, not that an account must be an index", () => {
    assert.throws(
      () => parseTarget("0xdead"),
      (err: unknown) => err instanceof UsageError && /"0xdead" is not a valid address/.test(err.message),
    );
    assert.equal(parseTarget("3"), 3);
    assert.equal(
      parseTarget("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
      "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    );
  });

  it("empty names are refused", () => {
    assert.throws(() => parseName("", "--name"), /--name must not be empty/);
    assert.throws(() => parseName("   ", "--name"), /--name must not be empty/);
  });

  it("a version too large for the contract names the bound", () => {
    assert.throws(() => parseVersion("99999999999999"), /at most 4294967295/);
    assert.equal(parseVersion("4294967295"), 4294967295);
    assert.throws(() => parseVersion("0"), /positive integer/);
  });

  it("usage errors exit 2 (a mistyped CID or --rpc too), failures 1", () => {
    assert.equal(exitCodeOf(new UsageError("x")), 2);
    assert.equal(exitCodeOf(new InvalidCidError("abc", "malformed")), 2);
    assert.throws(() => parseRpc("ftp://x"), UsageError);
    assert.equal(parseRpc("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
    assert.equal(exitCodeOf(new Error("failed")), 1);
    assert.equal(exitCodeOf(new ContractRefusedError("NothingToClaim", [])), 1);
  });

  it("a --data-dir that cannot exist (under /proc) is an error at once, not a hang", () => {
    const started = Date.now();
    assert.throws(() => ensureDataDir("/proc/ledgermind-test/data"), DataDirError);
    assert.ok(Date.now() - started < 2_000);
    const file = join(TMP, "a-file");
    writeFileSync(file, "");
    assert.throws(() => ensureDataDir(join(file, "data")), /ENOTDIR/);
    ensureDataDir(join(TMP, "new", "data"));
  });

  it("a --data-dir folder that another command made meanwhile is taken; a file in its place is not", () => {
    // Two commands started at once on a new --data-dir both find it missing; the second mkdir meets EEXIST.
    const dir = join(TMP, "made-meanwhile");
    makeFolder(dir);
    makeFolder(dir);
    const file = join(TMP, "a-file-not-a-folder");
    writeFileSync(file, "");
    assert.throws(() => makeFolder(file), /EEXIST/);
    assert.throws(() => ensureDataDir(join(file, "data")), DataDirError);
  });
});

describe("waiting for a held chain", () => {
  /** A live process that is not this one: its pid written in a lock file holds the folder. */
  function holder(seconds: number): ChildProcess {
    return spawn("sleep", [String(seconds)], { stdio: "ignore" });
  }

  it("waits while the holder lives, says so once with its pid, then takes the lock", async () => {
    const dir = join(TMP, "held");
    ensureDataDir(dir);
    const child = holder(1);
    writeFileSync(join(dir, "lock"), String(child.pid));
    const waited: number[] = [];
    const started = Date.now();
    const lock = await acquireChainLock(dir, "embedded", undefined, {
      timeoutMs: 20_000,
      onWait: (pid) => waited.push(pid),
    });
    lock.release();
    assert.deepEqual(waited, [child.pid]);
    assert.ok(Date.now() - started >= 500, "it waited for the holder");
  });

  it("gives up after the timeout with the holder's pid", async () => {
    const dir = join(TMP, "held-long");
    ensureDataDir(dir);
    const child = holder(30);
    try {
      writeFileSync(join(dir, "lock"), String(child.pid));
      const started = Date.now();
      await assert.rejects(
        acquireChainLock(dir, "embedded", undefined, { timeoutMs: 300 }),
        (err: unknown) => err instanceof ChainLockedError && err.holder.pid === child.pid,
      );
      assert.ok(Date.now() - started >= 300);
    } finally {
      child.kill();
    }
  });
});
