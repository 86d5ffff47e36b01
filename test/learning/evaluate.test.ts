/**
 * The evaluation grid (src/learning/evaluate.ts): its definition (counts, stable ids, the reduced grid
 * inside the full one), resuming from a results file, the report and its tables, Spearman's rank
 * correlation against hand-computed values, fair pay's runs and report, the engine's absent clients, and
 * a tiny real grid end to end through `ledgermind fl evaluate` on two workers.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  ATTACK_VARIANTS,
  attackersOf,
  averageRanks,
  baselineOptions,
  CELL_RUNS,
  fairPayReport,
  fairPayRuns,
  formatReport,
  GRIDS,
  type GridRun,
  gridReport,
  gridRuns,
  markdownReport,
  narrowGrid,
  PROTOCOL_STRATEGY,
  parseResults,
  pendingRuns,
  type RunResult,
  runResult,
  spearman,
  variantByLabel,
} from "../../src/learning/evaluate.ts";
import { participantAddress, simulateFederated } from "../../src/learning/simulate.ts";
import { cli, show } from "../cli/cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-evaluate-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

/** A result of `run` with the given accuracy and figures. */
function resultOf(run: GridRun, finalAccuracy: number, extra: Partial<RunResult> = {}): RunResult {
  return {
    id: run.id,
    cell: run.cell,
    kind: run.kind,
    finalAccuracy,
    falseSlashes: 0,
    attackersSlashed: 0,
    attackerRounds: 0,
    backdoorSuccess: null,
    honestEarnings: null,
    seconds: 1,
    ...extra,
  };
}

describe("grid definition", () => {
  it("the full grid: 3 alphas x 2 sizes x 2 shares x 3 seeds x 16 attacks, six runs a cell, one reference per (alpha, size, share, seed)", () => {
    assert.equal(ATTACK_VARIANTS.length, 16);
    const { cells, runs } = gridRuns(GRIDS.full);
    assert.equal(cells.length, 3 * 2 * 2 * 3 * 16);
    assert.equal(runs.filter((r) => r.kind === "reference").length, 36);
    assert.equal(runs.length, 36 + cells.length * CELL_RUNS.length);
    assert.equal(new Set(runs.map((r) => r.id)).size, runs.length, "run ids are unique");
    // references come first, so that drops can be reported as soon as cells finish
    assert.ok(runs.slice(0, 36).every((r) => r.kind === "reference"));
  });

  it("the MLP subset and the reduced grid have the sizes the brief gives", () => {
    const mlp = gridRuns(GRIDS.mlp);
    assert.equal(mlp.cells.length, 2 * 16);
    assert.equal(mlp.runs.length, 2 + 32 * 6);
    assert.ok(mlp.runs.every((r) => r.options.architecture === "mlp-784-128-10"));
    const reduced = gridRuns(GRIDS.reduced);
    assert.equal(reduced.cells.length, 2 * 8);
    assert.equal(reduced.runs.length, 2 + 16 * 6);
  });

  it("the reduced grid's runs are runs of the full grid, with the same options", () => {
    const full = new Map(gridRuns(GRIDS.full).runs.map((r) => [r.id, r]));
    for (const run of gridRuns(GRIDS.reduced).runs) {
      assert.deepEqual(full.get(run.id), run, run.id);
    }
  });

  it("ids are stable and name what changes a run's outcome", () => {
    const { runs } = gridRuns(GRIDS.reduced);
    assert.equal(runs[0]?.id, "logreg-784-10/a0.1/c10/s1/r15/f3/no-show/reference");
    const signFlip = runs.find((r) => r.id === "logreg-784-10/a1/c10/s1/r15/f3/sign-flip-x1/krum");
    assert.ok(signFlip);
    assert.deepEqual(signFlip.options.attackParams, { scale: 1 });
    assert.equal(signFlip.options.withProtocol, false);
    assert.deepEqual(signFlip.options.strategyOptions, { f: 3 });
    const narrowed = gridRuns(narrowGrid(GRIDS.reduced, { rounds: 2, samplesPerClient: 50 })).runs;
    assert.equal(narrowed[0]?.id, "logreg-784-10/a0.1/c10/s1/r2/n50/f3/no-show/reference");
  });

  it("each cell runs the protocol with PROTOCOL_STRATEGY and validators, the aggregators alone without", () => {
    const { runs } = gridRuns(GRIDS.reduced);
    for (const run of runs) {
      if (run.kind === "protocol" || run.kind === "reference") {
        assert.equal(run.options.strategy, PROTOCOL_STRATEGY);
        assert.equal(run.options.withProtocol, true);
      } else {
        assert.equal(run.options.strategy, run.kind);
        assert.equal(run.options.withProtocol, false);
      }
      assert.equal(run.options.rounds, 15);
      assert.equal(run.options.lr, 0.1);
    }
    assert.equal(runs.find((r) => r.kind === "reference")?.options.attack, "no-show");
  });

  it("attackers are the rounded share of clients, at least one; aggregators are told f or beta", () => {
    assert.equal(attackersOf(0.1, 10), 1);
    assert.equal(attackersOf(0.3, 10), 3);
    assert.equal(attackersOf(0.3, 30), 9);
    assert.equal(attackersOf(0.01, 10), 1);
    assert.deepEqual(baselineOptions("multi-krum", 9, 30), { f: 9 });
    assert.deepEqual(baselineOptions("trimmed-mean", 3, 10), { beta: 0.3 });
    assert.deepEqual(baselineOptions("median", 3, 10), {});
  });

  it("variants are found by label or slug; unknown variants and runs are RangeErrors", () => {
    assert.deepEqual(variantByLabel("sign-flip-x2").params, { scale: 2 });
    assert.equal(variantByLabel("noise-norm x3").params.norm, 3);
    assert.throws(() => variantByLabel("sign-flip x3"), RangeError);
    assert.throws(() => narrowGrid(GRIDS.full, { runs: ["fedprox"] }), RangeError);
  });
});

describe("resume", () => {
  it("runs already in the results file are skipped; a cut last line runs again", () => {
    const { runs } = gridRuns(narrowGrid(GRIDS.reduced, { variants: ["label-flip"] }));
    const done = runs.slice(0, 3).map((r) => resultOf(r, 0.8));
    const text = `${done.map((r) => JSON.stringify(r)).join("\n")}\n${JSON.stringify(resultOf(runs[3] as GridRun, 0.7)).slice(0, 40)}`;
    const parsed = parseResults(text);
    assert.deepEqual(
      [...parsed.keys()],
      done.map((r) => r.id),
    );
    const pending = pendingRuns(runs, parsed);
    assert.equal(pending.length, runs.length - 3);
    assert.equal(pending[0]?.id, runs[3]?.id);
  });
});

describe("results and report", () => {
  it("runResult reads earnings and backdoorSuccess when the engine gives them, null otherwise", () => {
    const run = gridRuns(GRIDS.reduced).runs[1] as GridRun;
    const [a, b, c] = [0, 1, 2].map(participantAddress) as [string, string, string];
    const base = {
      finalAccuracy: 0.9,
      finalLoss: 0.35,
      falseSlashes: 1,
      attackersSlashed: 5,
      attackers: [c],
      participants: [a, b, c],
      rounds: [1, 2, 3],
      seconds: 2,
    };
    const plain = runResult(run, base);
    assert.equal(plain.backdoorSuccess, null);
    assert.equal(plain.honestEarnings, null);
    assert.equal(plain.attackerRounds, 3);
    assert.equal(plain.finalLoss, 0.35);
    const paid = runResult(run, {
      ...base,
      backdoorSuccess: 0.12,
      earnings: { [a]: "30", [b]: "7", [c]: "1" },
    });
    assert.equal(paid.backdoorSuccess, 0.12);
    assert.deepEqual(paid.honestEarnings, { sum: "37", min: "7" });
    assert.equal(paid.earnings, undefined, "kept only for fair pay");
  });

  const grid = gridRuns(narrowGrid(GRIDS.reduced, { alphas: [0.1], variants: ["label-flip", "backdoor"] }));
  const byId = new Map(grid.runs.map((r) => [r.id, r]));
  const at = (suffix: string) => byId.get(`logreg-784-10/a0.1/c10/s1/r15/f3/${suffix}`) as GridRun;
  const results = new Map<string, RunResult>(
    [
      resultOf(at("no-show/reference"), 0.8, { backdoorSuccess: 0.02, falseSlashes: 1 }),
      resultOf(at("label-flip/protocol"), 0.79, {
        attackersSlashed: 40,
        attackerRounds: 45,
        honestEarnings: { sum: "9000000000000000000", min: "500000000000000000" },
      }),
      resultOf(at("label-flip/fedavg"), 0.6),
      resultOf(at("label-flip/krum"), 0.75),
      resultOf(at("backdoor/protocol"), 0.78, { backdoorSuccess: 0.1, falseSlashes: 2, attackerRounds: 45 }),
    ].map((r) => [r.id, r]),
  );
  const report = gridReport("reduced", grid, results);

  it("drops are against the no-show reference, totals count honest slashes of protocol runs and references", () => {
    const flip = report.cells.find((c) => c.variant === "label-flip");
    assert.ok(flip);
    assert.equal(flip.referenceAccuracy, 0.8);
    assert.ok(Math.abs((flip.runs.protocol?.dropPts as number) - 1) < 1e-9);
    assert.ok(Math.abs((flip.runs.fedavg?.dropPts as number) - 20) < 1e-9);
    assert.equal(flip.runs.median, undefined);
    const t = report.totals;
    assert.equal(t.runs, 1 + 2 * 6);
    assert.equal(t.done, 5);
    assert.equal(t.falseSlashes, 3);
    assert.equal(t.attackersSlashed, 40);
    assert.equal(t.attackerRounds, 90);
    assert.ok(Math.abs((t.worstProtocolDropPts as number) - 2) < 1e-9);
    assert.equal(t.worstProtocolDropCell, "logreg-784-10/a0.1/c10/s1/r15/f3/backdoor");
    assert.ok(Math.abs((t.worstBackdoorAsrPts as number) - 8) < 1e-9);
    assert.ok(Math.abs((t.worstDropPts.fedavg as number) - 20) < 1e-9);
    assert.equal(t.leastHonestEarnings, "500000000000000000");
  });

  it("formats a table per group, a row per attack, and the totals; Markdown the same rows", () => {
    const lines = formatReport(report);
    const header = lines.findIndex((l) => l.startsWith("attack "));
    assert.ok(lines.includes("logreg-784-10, alpha 0.1, 10 clients, 3 attackers (30%)"));
    assert.match(
      lines[header] as string,
      /protocol acc\s+drop\s+honest slashed\s+caught \(slashed\+excluded\)\s+ASR %\s+fedavg drop/,
    );
    const flip = lines[header + 2] as string;
    assert.match(flip, /^label-flip\s+1\s+0\.7900\s+1\.0\s+0\s+40\+0\/45\s+-\s+20\.0\s+-\s+-\s+5\.0\s+-$/);
    assert.match(lines[header + 3] as string, /^backdoor\s+1\s+0\.7800\s+2\.0\s+2\s+0\+0\/45\s+10\.0/);
    // columns line up: every row of the table is as wide as its header
    assert.equal(flip.length, (lines[header] as string).length);
    assert.ok(lines.includes("honest trainer-rounds slashed (protocol and references): 3"));
    assert.ok(lines.includes("least an honest participant earned in a protocol run: 0.5 MIND"));
    const md = markdownReport(report).split("\n");
    assert.ok(
      md.includes("| label-flip | 1 | 0.7900 | 1.0 | 0 | 40+0/45 | - | 20.0 | - | - | 5.0 | - |"),
      md.join("\n"),
    );
    assert.ok(md.some((l) => /^\|( ---:? \|)+$/.test(l)));
  });
});

describe("spearman", () => {
  it("is 1 for the same order, -1 for the reverse, NaN for a constant sample", () => {
    assert.equal(spearman([1, 2, 3], [10, 20, 30]), 1);
    assert.equal(spearman([1, 2, 3], [3, 2, 1]), -1);
    assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])));
  });

  it("matches 1 - 6 sum d^2 / (n (n^2 - 1)) without ties: 0.8 for one swap pair of five", () => {
    assert.ok(Math.abs(spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) - 0.8) < 1e-12);
  });

  it("gives ties their average rank: [5,6,7,8,7] against 1..5 is 8 / sqrt(95)", () => {
    assert.deepEqual(averageRanks([10, 20, 10, 30]), [1.5, 3, 1.5, 4]);
    assert.deepEqual(averageRanks([5, 6, 7, 8, 7]), [1, 2, 3.5, 5, 3.5]);
    assert.ok(Math.abs(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) - 8 / Math.sqrt(95)) < 1e-12);
  });

  it("refuses samples of different lengths or fewer than two pairs", () => {
    assert.throws(() => spearman([1, 2], [1]), RangeError);
    assert.throws(() => spearman([1], [1]), RangeError);
  });
});

describe("fair pay", () => {
  const runs = fairPayRuns(0.1, 1, 4);

  it("one run with every trainer keeping earnings, then one without each trainer, same seed and partition", () => {
    assert.equal(runs.length, 5);
    assert.equal(runs[0]?.id, "fair-pay/logreg-784-10/a0.1/c4/s1/r15/all");
    assert.equal(runs[0]?.keepEarnings, true);
    assert.deepEqual(
      runs.slice(1).map((r) => r.options.absent),
      [[0], [1], [2], [3]],
    );
    assert.ok(runs.every((r) => r.options.byzantine === 0 && r.options.withProtocol && r.options.seed === 1));
  });

  it("contribution is accuracy with everyone minus without the trainer; Spearman against earnings", () => {
    const earnings = Object.fromEntries([40, 10, 30, 20].map((e, i) => [participantAddress(i), String(e)]));
    const results = new Map<string, RunResult>();
    const add = (r: RunResult) => results.set(r.id, r);
    add(resultOf(runs[0] as GridRun, 0.9, { earnings, finalLoss: 0.3 }));
    assert.equal(fairPayReport(runs, results), null, "incomplete until every run is done");
    // Without trainer i: the accuracy, and a loss that ranks trainers 1 and 3 the other way round.
    const without = [
      [0.85, 0.5],
      [0.89, 0.34],
      [0.86, 0.32],
      [0.88, 0.4],
    ] as const;
    for (const [i, [acc, loss]] of without.entries())
      add(resultOf(runs[i + 1] as GridRun, acc, { finalLoss: loss }));
    const report = fairPayReport(runs, results);
    assert.ok(report);
    assert.deepEqual(
      report.trainers.map((t) => Math.round(t.contribution * 100) / 100),
      [0.05, 0.01, 0.04, 0.02],
    );
    assert.deepEqual(
      report.trainers.map((t) => Math.round((t.lossContribution ?? Number.NaN) * 100) / 100),
      [0.2, 0.04, 0.02, 0.1],
    );
    assert.equal(report.spearman, 1);
    // Ranks 4,2,1,3 against the earnings' 4,1,3,2: 1 - 6 * 6 / (4 * 15).
    assert.equal(report.spearmanLoss, 0.4);
    results.set(runs[1]?.id as string, resultOf(runs[1] as GridRun, 0.85));
    assert.equal(
      fairPayReport(runs, results)?.spearmanLoss,
      null,
      "a result without its loss: no loss ranking",
    );
    results.set(runs[0]?.id as string, resultOf(runs[0] as GridRun, 0.9));
    assert.equal(fairPayReport(runs, results)?.spearman, null, "no earnings: no correlation");
  });

  it("the engine's absent client neither submits, nor counts as a no-show, nor is slashed", async () => {
    const options = {
      clients: 4,
      alpha: 1,
      seed: 2,
      validators: 3,
      samplesPerClient: 40,
      rounds: 1,
      localEpochs: 1,
      lr: 0.1,
      batch: 32,
      byzantine: 0,
      attack: "none",
      strategy: "fedavg",
      withProtocol: true,
    };
    const summary = await simulateFederated({ ...options, absent: [1] });
    const round = summary.rounds[0];
    assert.ok(round);
    assert.equal(round.submitted, 3);
    assert.equal(round.noShows, 0);
    assert.equal(round.slashed, 0);
    assert.equal(summary.falseSlashes, 0);
    assert.equal(round.scores[participantAddress(1)], undefined);
    await assert.rejects(simulateFederated({ ...options, absent: [4] }), RangeError);
  });
});

describe("fl evaluate (end to end)", () => {
  it("runs a tiny grid on 2 workers, writes one line per run, and a second start resumes with nothing to run", async () => {
    const out = join(TMP, "tiny.jsonl");
    const args = [
      "fl",
      "evaluate",
      "--grid",
      "reduced",
      "--alphas",
      "0.1",
      "--attacks",
      "label-flip",
      "--runs",
      "protocol",
      "--rounds",
      "2",
      "--samples-per-client",
      "50",
      "--workers",
      "2",
      "--out",
      out,
    ];
    const first = await cli(["--json", ...args], { timeoutMs: 180_000 });
    assert.equal(first.code, 0, show(first));
    const report = JSON.parse(first.stdout) as {
      totals: { runs: number; done: number };
      results: RunResult[];
      cells: { runs: { protocol?: { dropPts: number } } }[];
    };
    assert.equal(report.totals.runs, 2);
    assert.equal(report.totals.done, 2);
    assert.equal(report.results.length, 2);
    assert.equal(typeof report.cells[0]?.runs.protocol?.dropPts, "number");
    assert.match(first.stderr, /\[2\/2\] .*accuracy 0\.\d{4}/, show(first));
    assert.equal(readFileSync(out, "utf8").trim().split("\n").length, 2);

    const second = await cli(args, { timeoutMs: 120_000 });
    assert.equal(second.code, 0, show(second));
    assert.match(second.stderr, /2 runs, 2 already in .*, 0 to run/, show(second));
    assert.match(second.stdout, /^label-flip\s+1\s+/m, show(second));
    assert.equal(readFileSync(out, "utf8").trim().split("\n").length, 2, "nothing run twice");
  });

  it("refuses an unknown grid or attack as a usage error", async () => {
    const grid = await cli(["fl", "evaluate", "--grid", "huge"]);
    assert.equal(grid.code, 2, show(grid));
    assert.match(grid.stderr, /--grid must be one of full, reduced, mlp, fair-pay/);
    writeFileSync(join(TMP, "empty.jsonl"), "");
    const attack = await cli([
      "fl",
      "evaluate",
      "--attacks",
      "sign-flip-x3",
      "--out",
      join(TMP, "empty.jsonl"),
    ]);
    assert.equal(attack.code, 2, show(attack));
    assert.match(attack.stderr, /unknown attack variant "sign-flip-x3"/);
  });
});
