/**
 * `ledgermind fl` and `ledgermind token` as separate processes: `fl simulate` on a fresh chain (reproducible
 * with --seed, the poisoner slashed, gas per round, --baseline, --in-memory giving the same accuracies),
 * and a real task step by step on one embedded chain persisted in a temp data dir (create, join, status,
 * start) with the contract's refusals as one-line errors; a trainer on a dataset whose access is revoked
 * releases its whole stake (fl release), leaves (fl leave) and withdraws.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Address } from "viem";
import { devAccounts } from "../../src/chain/accounts.ts";
import { encodeCanonical } from "../../src/ml/encoding.ts";
import { assertOk, assertOneLineError, cliWith, parseJson, show, writeWardsMetadata } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-fl-cli-"));
const DATA = join(TMP, "data");
after(() => rmSync(TMP, { recursive: true, force: true }));
const { cli } = cliWith({ dataDir: DATA, timeoutMs: 120_000 });

const TRAINER = (devAccounts(6)[5] as { address: Address }).address;
const SMALL = [
  "--clients",
  "4",
  "--validators",
  "3",
  "--rounds",
  "2",
  "--samples-per-client",
  "150",
  "--seed",
  "3",
];

interface SimulationJson {
  finalAccuracy: number;
  falseSlashes: number;
  attackersSlashed: number;
  attackers: string[];
  baselineAccuracy?: number;
  rounds: {
    round: number;
    accuracy: number;
    accepted: number;
    gas?: { total: string };
    newVersion?: number;
  }[];
}

describe("ledgermind fl simulate", { concurrency: true }, () => {
  it("is reproducible with --seed; slashes the attacker every round; reports gas and registry versions", async () => {
    // Noise far beyond any honest step is evidence of malice: slashed (a large sign flip is only excluded).
    const args = ["--json", "fl", "simulate", ...SMALL, "--byzantine", "1", "--attack", "noise"];
    const [a, b] = await Promise.all([cli(args), cli(args)]);
    const first = parseJson<SimulationJson>(a);
    const second = parseJson<SimulationJson>(b);
    // Gas may differ by a few units: validators' salts are random, and zero bytes of calldata cost less.
    const decisions = (j: SimulationJson) => j.rounds.map((r) => [r.accuracy, r.accepted, r.newVersion]);
    assert.deepEqual(decisions(first), decisions(second));
    assert.equal(first.rounds.length, 2);
    assert.equal(first.attackers.length, 1);
    assert.equal(first.attackersSlashed, 2, show(a));
    assert.equal(first.falseSlashes, 0, show(a));
    for (const r of first.rounds) {
      assert.equal(r.accepted, 3);
      assert.ok(Number(r.gas?.total) > 1_000_000, `gas of round ${r.round}`);
    }
    assert.deepEqual(
      first.rounds.map((r) => r.newVersion),
      [2, 3],
    );
  });

  it("prints a line per round and a summary; --baseline runs without attackers; --in-memory agrees", async () => {
    const [human, memory] = await Promise.all([
      cli(["fl", "simulate", ...SMALL, "--byzantine", "1", "--attack", "noise", "--baseline"]),
      cli(["--json", "fl", "simulate", ...SMALL, "--byzantine", "1", "--attack", "noise", "--in-memory"]),
    ]);
    const out = assertOk(human);
    const lines = out.split("\n").filter((l) => /^round \d\/2 {2}accuracy/.test(l));
    assert.equal(lines.length, 2, out);
    for (const line of lines)
      assert.match(line, /slashed 1 \(1 attackers, 0 honest\) {2}rewards [\d.]+ MIND {2}gas [\d,]+/);
    assert.match(out, /^without attackers: 0\.\d{4} \(the attack costs -?[\d.]+ points\)$/m);
    assert.match(out, /^attackers slashed 2 of 2 attacker-rounds \(detection 100\.0%\)$/m);
    // The engine alone makes the same decisions on the same data, so its accuracies are the protocol's.
    const engine = parseJson<SimulationJson>(memory);
    const printed = lines.map((l) => Number(l.match(/accuracy (\S+)/)?.[1]));
    assert.deepEqual(
      engine.rounds.map((r) => Number(r.accuracy.toFixed(4))),
      printed,
    );
    assert.equal(engine.rounds[0]?.gas, undefined);
  });

  it("refuses bad options with one line and exit 2", async () => {
    const [attack, byzantine, model] = await Promise.all([
      cli(["fl", "simulate", "--attack", "bogus"]),
      cli(["fl", "simulate", "--clients", "4", "--byzantine", "4"]),
      cli(["fl", "simulate", "--model", "resnet"]),
    ]);
    assertOneLineError(attack, /--attack must be one of .*sign-flip/, 2);
    assertOneLineError(byzantine, /--byzantine takes an integer from 0 to 3/, 2);
    assertOneLineError(model, /--model must be/, 2);
  });
});

describe("ledgermind fl create | join | start | status on the embedded chain", { concurrency: false }, () => {
  it("registers a model, creates a funded task, joins, refuses what the contract refuses", async () => {
    const weights = join(TMP, "w.lmq");
    writeFileSync(
      weights,
      encodeCanonical({
        architecture: "logreg-784-10",
        scaleBits: 16,
        tensors: [{ name: "b", shape: [10], ints: new Int32Array(10) }],
      }),
    );
    assertOk(await cli(["model", "register", "--name", "fl-cli"]));
    assertOk(await cli(["model", "version", "1", "--weights", weights]));

    const created = assertOk(
      await cli(["fl", "create", "--model", "1@1", "--rounds", "2", "--reward", "50", "--trainers", "2"]),
    );
    assert.equal(created, "task 1: model 1@1, 2 rounds of 50 MIND\n");

    assertOneLineError(
      await cli(["fl", "join", "1", "--as", "trainer", "--stake", "20", "--account", "5"]),
      /holds 0 MIND .* transfer MIND to it first/,
      1,
    );
    assert.match(assertOk(await cli(["token", "transfer", "5", "100"])), /now holds 100$/m);
    assertOneLineError(
      await cli(["fl", "join", "1", "--as", "trainer", "--stake", "5", "--account", "5"]),
      /StakeTooLow/,
      1,
    );
    assert.equal(
      assertOk(await cli(["fl", "join", "1", "--as", "trainer", "--stake", "20", "--account", "5"])),
      `${TRAINER} is a trainer of task 1, staking 20 MIND\n`,
    );
    assert.match(assertOk(await cli(["token", "balance", "5"])), /holds 80 MIND/);
    assertOneLineError(await cli(["fl", "start", "1"]), /NotEnoughValidators/, 1);
    assertOneLineError(await cli(["fl", "join", "1", "--as", "auditor", "--stake", "1"]), /--as takes/, 2);

    const status = parseJson<{
      state: { roundCount: number; poolLeft: string };
      members: { account: string; role: string; stake: string }[];
    }>(await cli(["--json", "fl", "status", "1"]));
    assert.equal(status.state.roundCount, 0);
    assert.equal(status.state.poolLeft, "100000000000000000000");
    assert.deepEqual(status.members, [
      {
        account: TRAINER,
        role: "trainer",
        stake: "20000000000000000000",
        earned: "0",
        commitRound: 0,
        status: 1,
      },
    ]);
  });

  it("a trainer whose dataset access is revoked takes its whole stake back (fl release), leaves and withdraws", async () => {
    const metadata = writeWardsMetadata(TMP);
    assertOk(await cli(["data", "publish", "--metadata", metadata, "--price", "5", "--period", "1d"]));
    assert.match(
      assertOk(
        await cli(["fl", "create", "--model", "1@1", "--rounds", "1", "--reward", "10", "--dataset", "1"]),
      ),
      /^task 2: .* on dataset\(s\) 1$/m,
    );
    const join2 = ["fl", "join", "2", "--as", "trainer", "--stake", "20", "--account", "5"];
    assertOneLineError(await cli(join2), /access to dataset 1/, 1);
    assertOk(await cli(["data", "grant", "1", "5", "--for", "1d"]));
    assertOk(await cli(join2));
    assert.match(assertOk(await cli(["token", "balance", "5"])), /holds 60 MIND/);
    // Still allowed in: nothing to release.
    assertOneLineError(
      await cli(["fl", "release", "2", "--dataset", "1", "--account", "5"]),
      /AccessNotLost/,
      1,
    );

    assertOk(await cli(["data", "revoke", "1", "5"]));
    const released = parseJson<{ released: string; withdrawable: string }>(
      await cli(["--json", "fl", "release", "2", "--dataset", "1", "--account", "5"]),
    );
    assert.equal(released.released, "20000000000000000000", "the whole stake, nothing slashed");
    assert.equal(released.withdrawable, "20000000000000000000");
    assertOneLineError(
      await cli(["fl", "release", "2", "--dataset", "1", "--account", "5"]),
      /NothingToWithdraw/,
      1,
    );
    assert.equal(
      assertOk(await cli(["fl", "leave", "2", "--as", "trainer", "--account", "5"])),
      "left task 2 as a trainer; withdrawable 20 MIND\n",
    );
    assert.equal(assertOk(await cli(["fl", "withdraw", "--account", "5"])), "withdrew 20 MIND\n");
    assert.match(assertOk(await cli(["token", "balance", "5"])), /holds 80 MIND/);
    assertOneLineError(await cli(["fl", "release", "2", "--account", "5"]), /--dataset/, 2);
  });
});
