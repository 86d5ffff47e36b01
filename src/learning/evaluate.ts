/**
 * The evaluation grid of `ledgermind fl evaluate` and the bench: every attack against the protocol and
 * against each aggregator alone, over data skews, federation sizes, attacker shares and seeds, on the
 * in-memory engine (simulate.ts, which makes the protocol's decisions).
 *
 * A cell is (model, alpha, clients, attacker share, seed, attack variant). Each cell runs the protocol
 * (validators, PROTOCOL_STRATEGY) and, without validators, plain FedAvg and each robust aggregator. Its
 * reference is not a clean run: on skewed data the attackers' shards hold digits nobody else has, so a
 * run without them can never be matched. The reference is the same run (seed, partition, attackers) in
 * which the attackers never show up, with the protocol; one reference serves every attack of its
 * (model, alpha, clients, share, seed).
 *
 * Runs are independent, so a pool of child processes runs them (one run at a time each, tfjs
 * initialised in each) and the parent appends every finished run as one JSON line to a results file:
 * a grid that was interrupted resumes where it stopped (runs are keyed by a stable id that names
 * everything that changes their outcome).
 *
 * Fair pay: the earnings of each trainer in a run without attackers, against its exact contribution
 * (the final accuracy of the run minus that of the same run without it), as a Spearman rank correlation.
 */
import { type ChildProcess, fork } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { formatEther } from "viem";
import type { AttackParams } from "./adversaries.ts";
import type { StrategyOptions } from "./index.ts";
import { participantAddress, type SimulationOptions } from "./simulate.ts";

/** The aggregation the protocol runs in the grid (the validators decide what it aggregates). */
export const PROTOCOL_STRATEGY = "fedavg";

/** The aggregators run alone, without validators, for comparison. */
export const BASELINE_STRATEGIES = ["fedavg", "median", "trimmed-mean", "krum", "multi-krum"] as const;
export type BaselineStrategy = (typeof BASELINE_STRATEGIES)[number];

/** What a cell runs: the protocol, then each aggregator alone. */
export const CELL_RUNS = ["protocol", ...BASELINE_STRATEGIES] as const;
export type CellRun = (typeof CELL_RUNS)[number];

/**
 * An attack's strength, as the engine's RunOptions.attackParams reads it: sign-flip scale or backdoor
 * boost, ALIE's z, noise sigma, or noise at `norm` times the honest update's norm.
 */
export type VariantParams = Pick<AttackParams, "scale" | "z" | "sigma" | "norm">;

/** An attack as the grid runs it: the engine's name, its parameters and the label printed. */
export interface AttackVariant {
  label: string;
  attack: string;
  params: VariantParams;
}

/**
 * Every attack of the grid, the strongest known ones included (issue 10). ALIE takes z from n and f
 * (Baruch et al.), which the engine derives when z is not given.
 */
export const ATTACK_VARIANTS: readonly AttackVariant[] = [
  { label: "label-flip", attack: "label-flip", params: {} },
  { label: "sign-flip x1", attack: "sign-flip", params: { scale: 1 } },
  { label: "sign-flip x2", attack: "sign-flip", params: { scale: 2 } },
  { label: "sign-flip x5", attack: "sign-flip", params: { scale: 5 } },
  { label: "noise sigma 1", attack: "gaussian-noise", params: { sigma: 1 } },
  { label: "noise-norm x1", attack: "noise-norm", params: { norm: 1 } },
  { label: "noise-norm x3", attack: "noise-norm", params: { norm: 3 } },
  { label: "alie", attack: "alie", params: {} },
  { label: "fang-trim", attack: "fang-trim", params: {} },
  { label: "fang-krum", attack: "fang-krum", params: {} },
  { label: "min-max", attack: "min-max", params: {} },
  { label: "min-sum", attack: "min-sum", params: {} },
  { label: "backdoor", attack: "backdoor", params: {} },
  { label: "free-ride", attack: "free-ride", params: {} },
  { label: "copy", attack: "copy", params: {} },
  { label: "copy-noise", attack: "copy-noise", params: {} },
];

/** The variant of a label ("sign-flip x2") or of its slug ("sign-flip-x2"). */
export function variantByLabel(text: string): AttackVariant {
  const found = ATTACK_VARIANTS.find((v) => v.label === text || slug(v.label) === text);
  if (!found) {
    throw new RangeError(
      `unknown attack variant "${text}"; expected one of ${ATTACK_VARIANTS.map((v) => slug(v.label)).join(", ")}`,
    );
  }
  return found;
}

const slug = (label: string) => label.replace(/\s+/g, "-");

/** What the grid varies; training settings are `fl simulate`'s defaults. */
export interface GridSpec {
  name: string;
  architecture: string;
  alphas: readonly number[];
  clients: readonly number[];
  /** Attacker shares: attackers = round(share * clients), at least 1. */
  shares: readonly number[];
  variants: readonly AttackVariant[];
  seeds: readonly number[];
  rounds: number;
  runs: readonly CellRun[];
  /** Digits per client on average (tests: small runs); default the whole pool. */
  samplesPerClient?: number;
}

/**
 * 15 rounds: softmax regression on MNIST is within a point of its plateau by then at lr 0.1 (the
 * issue's reproductions use 15 rounds too), and the full grid stays within a night on 2 cores.
 */
export const GRID_ROUNDS = 15;

/** `fl simulate`'s defaults, the same for every run of a grid. */
export const GRID_TRAINING = { localEpochs: 1, lr: 0.1, batch: 32, validators: 3 } as const;

const byLabels = (...labels: string[]) => labels.map(variantByLabel);

export const GRIDS = {
  full: {
    name: "full",
    architecture: "logreg-784-10",
    alphas: [0.1, 0.3, 1.0],
    clients: [10, 30],
    shares: [0.1, 0.3],
    variants: ATTACK_VARIANTS,
    seeds: [1, 2, 3],
    rounds: GRID_ROUNDS,
    runs: CELL_RUNS,
  },
  mlp: {
    name: "mlp",
    architecture: "mlp-784-128-10",
    alphas: [0.1, 1.0],
    clients: [10],
    shares: [0.3],
    variants: ATTACK_VARIANTS,
    seeds: [1],
    rounds: GRID_ROUNDS,
    runs: CELL_RUNS,
  },
  /** The bench's: the hardest skew and IID-like data, the strongest attacks, one seed (98 runs). */
  reduced: {
    name: "reduced",
    architecture: "logreg-784-10",
    alphas: [0.1, 1.0],
    clients: [10],
    shares: [0.3],
    variants: byLabels(
      "label-flip",
      "sign-flip x1",
      "noise-norm x1",
      "alie",
      "fang-trim",
      "min-max",
      "min-sum",
      "backdoor",
    ),
    seeds: [1],
    rounds: GRID_ROUNDS,
    runs: CELL_RUNS,
  },
} as const satisfies Record<string, GridSpec>;

/** The engine's options of one run, without callbacks (they cross to a worker as JSON). */
export type EngineOptions = Omit<SimulationOptions, "onRound" | "onValidation">;

export type RunKind = CellRun | "reference" | "fair-pay";

/** One run of a grid. */
export interface GridRun {
  /** Stable: names everything that changes the outcome, so a results file can be resumed. */
  id: string;
  /** The cell it belongs to (a reference: the cells' common prefix). */
  cell: string;
  kind: RunKind;
  options: EngineOptions;
  /** Keep every participant's earnings in the result (fair pay), not only the honest sum and min. */
  keepEarnings?: boolean;
}

/** A cell's coordinates (the JSON of a report carries them). */
export interface Cell {
  id: string;
  architecture: string;
  alpha: number;
  clients: number;
  share: number;
  byzantine: number;
  seed: number;
  variant: string;
  /** The reference run's id. */
  reference: string;
}

/** Attackers of a share of clients: rounded, at least one. */
export function attackersOf(share: number, clients: number): number {
  return Math.max(1, Math.round(share * clients));
}

/** What sets a run apart beyond its cell's coordinates. */
type RunModel = Pick<GridSpec, "architecture" | "rounds" | "samplesPerClient">;

function baseOptions(spec: RunModel, alpha: number, clients: number, seed: number) {
  return {
    ...GRID_TRAINING,
    architecture: spec.architecture,
    alpha,
    clients,
    seed,
    rounds: spec.rounds,
    ...(spec.samplesPerClient === undefined ? {} : { samplesPerClient: spec.samplesPerClient }),
  };
}

function prefixOf(spec: RunModel, alpha: number, clients: number, seed: number): string {
  const samples = spec.samplesPerClient === undefined ? "" : `/n${spec.samplesPerClient}`;
  return `${spec.architecture}/a${alpha}/c${clients}/s${seed}/r${spec.rounds}${samples}`;
}

/** What an aggregator alone is told: f = the attackers where it takes f, their share as trimmed-mean's beta. */
export function baselineOptions(
  strategy: BaselineStrategy,
  byzantine: number,
  clients: number,
): StrategyOptions {
  if (strategy === "krum" || strategy === "multi-krum") return { f: byzantine };
  // beta must stay below one half; at most 30% attackers in the grid.
  if (strategy === "trimmed-mean") return { beta: Math.min(byzantine / clients, 0.49) };
  return {};
}

/** Every cell and run of a grid, references first (each computed once, shared by its cells). */
export function gridRuns(spec: GridSpec): { cells: Cell[]; runs: GridRun[] } {
  const cells: Cell[] = [];
  const references = new Map<string, GridRun>();
  const cellRuns: GridRun[] = [];
  for (const alpha of spec.alphas)
    for (const clients of spec.clients)
      for (const share of spec.shares)
        for (const seed of spec.seeds) {
          const byzantine = attackersOf(share, clients);
          const base = baseOptions(spec, alpha, clients, seed);
          const prefix = `${prefixOf(spec, alpha, clients, seed)}/f${byzantine}`;
          const referenceId = `${prefix}/no-show/reference`;
          if (!references.has(referenceId)) {
            references.set(referenceId, {
              id: referenceId,
              cell: prefix,
              kind: "reference",
              options: {
                ...base,
                byzantine,
                attack: "no-show",
                strategy: PROTOCOL_STRATEGY,
                withProtocol: true,
              },
            });
          }
          for (const variant of spec.variants) {
            const id = `${prefix}/${slug(variant.label)}`;
            cells.push({
              id,
              architecture: spec.architecture,
              alpha,
              clients,
              share,
              byzantine,
              seed,
              variant: variant.label,
              reference: referenceId,
            });
            for (const kind of spec.runs) {
              const attack = {
                byzantine,
                attack: variant.attack,
                attackParams: variant.params as AttackParams,
              };
              cellRuns.push({
                id: `${id}/${kind}`,
                cell: id,
                kind,
                options:
                  kind === "protocol"
                    ? { ...base, ...attack, strategy: PROTOCOL_STRATEGY, withProtocol: true }
                    : {
                        ...base,
                        ...attack,
                        strategy: kind,
                        strategyOptions: baselineOptions(kind, byzantine, clients),
                        withProtocol: false,
                      },
              });
            }
          }
        }
  return { cells, runs: [...references.values(), ...cellRuns] };
}

/** Narrows a grid to some alphas, seeds, variants (labels or slugs) or runs; absent filters keep all. */
export function narrowGrid(
  spec: GridSpec,
  filter: {
    alphas?: readonly number[];
    seeds?: readonly number[];
    variants?: readonly string[];
    runs?: readonly string[];
    rounds?: number;
    samplesPerClient?: number;
  },
): GridSpec {
  for (const run of filter.runs ?? []) {
    if (!(CELL_RUNS as readonly string[]).includes(run)) {
      throw new RangeError(`unknown run "${run}"; expected some of ${CELL_RUNS.join(", ")}`);
    }
  }
  return {
    ...spec,
    ...(filter.alphas ? { alphas: filter.alphas } : {}),
    ...(filter.seeds ? { seeds: filter.seeds } : {}),
    ...(filter.variants ? { variants: filter.variants.map(variantByLabel) } : {}),
    ...(filter.runs ? { runs: filter.runs as CellRun[] } : {}),
    ...(filter.rounds === undefined ? {} : { rounds: filter.rounds }),
    ...(filter.samplesPerClient === undefined ? {} : { samplesPerClient: filter.samplesPerClient }),
  };
}

/** The fair-pay grid's settings: 10 trainers, no attackers, the two skews the issue names. */
export const FAIR_PAY_ALPHAS = [0.1, 1.0] as const;

/**
 * Fair pay of (alpha, seed): one protocol run without attackers that keeps every trainer's earnings,
 * and for each trainer i the same run (seed, partition) in which i is absent: never shows up, is
 * neither counted nor slashed.
 */
export function fairPayRuns(
  alpha: number,
  seed: number,
  clients = 10,
  spec: RunModel = {
    architecture: GRIDS.full.architecture,
    rounds: GRID_ROUNDS,
  },
): GridRun[] {
  const cell = `fair-pay/${prefixOf(spec, alpha, clients, seed)}`;
  const options: EngineOptions = {
    ...baseOptions(spec, alpha, clients, seed),
    byzantine: 0,
    attack: "none",
    strategy: PROTOCOL_STRATEGY,
    withProtocol: true,
  };
  return [
    { id: `${cell}/all`, cell, kind: "fair-pay", options, keepEarnings: true },
    ...Array.from({ length: clients }, (_, i) => ({
      id: `${cell}/without-${i}`,
      cell,
      kind: "fair-pay" as const,
      options: { ...options, absent: [i] },
    })),
  ];
}

/** What a finished run leaves in the results file. */
export interface RunResult {
  id: string;
  cell: string;
  kind: RunKind;
  finalAccuracy: number;
  /** Final test cross-entropy; absent in older results files. */
  finalLoss?: number;
  /** Honest trainer-rounds slashed. */
  falseSlashes: number;
  /** Attacker-rounds slashed, of attackerRounds. */
  attackersSlashed: number;
  /** Attacker-rounds left out without a slash (excluded, unpaid); absent in older results files. */
  attackersExcluded?: number;
  attackerRounds: number;
  /** The final model's backdoor success rate on triggered test digits (null: the engine does not measure it). */
  backdoorSuccess: number | null;
  /** MIND wei over the run, summed and least over honest participants (null: the engine pays nothing). */
  honestEarnings: { sum: string; min: string } | null;
  /** Every participant's earnings (fair-pay runs that keep them). */
  earnings?: Record<string, string>;
  seconds: number;
}

/** The engine's summary as the grid reads it: earnings and backdoorSuccess are newer fields. */
export interface SummaryFigures {
  finalAccuracy: number;
  finalLoss: number;
  falseSlashes: number;
  attackersSlashed: number;
  attackersExcluded?: number;
  attackers: readonly string[];
  participants: readonly string[];
  rounds: readonly unknown[];
  seconds: number;
  earnings?: Record<string, string>;
  backdoorSuccess?: number;
}

/** A run's result from the engine's summary. */
export function runResult(run: GridRun, summary: SummaryFigures): RunResult {
  const attackers = new Set(summary.attackers);
  const honest = summary.participants.filter((p) => !attackers.has(p));
  let honestEarnings: RunResult["honestEarnings"] = null;
  if (summary.earnings && honest.length > 0) {
    const amounts = honest.map((p) => BigInt(summary.earnings?.[p] ?? "0"));
    const sum = amounts.reduce((a, b) => a + b, 0n);
    // Math.min takes no bigints.
    let min = amounts[0] as bigint;
    for (const amount of amounts) if (amount < min) min = amount;
    honestEarnings = { sum: sum.toString(), min: min.toString() };
  }
  return {
    id: run.id,
    cell: run.cell,
    kind: run.kind,
    finalAccuracy: summary.finalAccuracy,
    finalLoss: summary.finalLoss,
    falseSlashes: summary.falseSlashes,
    attackersSlashed: summary.attackersSlashed,
    attackersExcluded: summary.attackersExcluded ?? 0,
    attackerRounds: summary.attackers.length * summary.rounds.length,
    backdoorSuccess: summary.backdoorSuccess ?? null,
    honestEarnings,
    ...(run.keepEarnings && summary.earnings ? { earnings: summary.earnings } : {}),
    seconds: summary.seconds,
  };
}

/**
 * The results in a results file's text, by id; a line that does not parse (a write cut by an
 * interruption) is ignored, so that its run runs again.
 */
export function parseResults(text: string): Map<string, RunResult> {
  const results = new Map<string, RunResult>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const result = JSON.parse(line) as RunResult;
      if (typeof result.id === "string" && typeof result.finalAccuracy === "number")
        results.set(result.id, result);
    } catch {
      // an interrupted append: run again
    }
  }
  return results;
}

export function readResults(file: string): Map<string, RunResult> {
  return existsSync(file) ? parseResults(readFileSync(file, "utf8")) : new Map();
}

/** The runs without a result yet, in order. */
export function pendingRuns(runs: readonly GridRun[], done: ReadonlyMap<string, RunResult>): GridRun[] {
  return runs.filter((r) => !done.has(r.id));
}

/** A worker's answer to one run. */
export type WorkerReply = { ok: true; result: RunResult } | { ok: false; id: string; error: string };

export interface PoolProgress {
  run: GridRun;
  result?: RunResult;
  error?: string;
  done: number;
  total: number;
  /** Seconds left at the pace so far. */
  eta: number;
}

/**
 * Runs `runs` on `workers` child processes (src/learning/evaluate-worker.ts), one run at a time each,
 * appending each result to `out` as it finishes. A run that fails is reported and not written, so a
 * later start retries it. Resolves with the results of this call and the failures.
 */
export async function runPool(
  runs: readonly GridRun[],
  options: { workers: number; out: string; onProgress?: (progress: PoolProgress) => void },
): Promise<{ results: RunResult[]; failed: { id: string; error: string }[] }> {
  if (!Number.isSafeInteger(options.workers) || options.workers < 1) {
    throw new RangeError(`runPool: workers must be a positive integer, got ${options.workers}`);
  }
  mkdirSync(dirname(options.out), { recursive: true });
  const results: RunResult[] = [];
  const failed: { id: string; error: string }[] = [];
  const queue = [...runs];
  const total = runs.length;
  const started = performance.now();
  let done = 0;
  // From the sources, the loader that runs this TypeScript runs the worker's too; compiled (the
  // package's dist/), the worker is JavaScript for plain Node. stdout goes to stderr, so that a
  // library's greeting never mixes with the command's JSON.
  const fromSource = import.meta.url.endsWith(".ts");
  const spawnWorker = () =>
    fork(new URL(`./evaluate-worker.${fromSource ? "ts" : "js"}`, import.meta.url), [], {
      execArgv: fromSource ? ["--import", import.meta.resolve("tsx")] : [],
      stdio: ["ignore", 2, 2, "ipc"],
    });
  const worker = async (): Promise<void> => {
    if (queue.length === 0) return;
    let child = spawnWorker();
    try {
      for (let run = queue.shift(); run !== undefined; run = queue.shift()) {
        let reply: WorkerReply;
        try {
          reply = await ask(child, run);
        } catch (err) {
          // A worker that died (out of memory, killed) fails its run; a fresh one takes the next.
          reply = { ok: false, id: run.id, error: (err as Error).message };
          child = spawnWorker();
        }
        done++;
        const elapsed = (performance.now() - started) / 1000;
        const eta = (elapsed / done) * (total - done);
        if (reply.ok) {
          appendFileSync(options.out, `${JSON.stringify(reply.result)}\n`);
          results.push(reply.result);
          options.onProgress?.({ run, result: reply.result, done, total, eta });
        } else {
          failed.push({ id: reply.id, error: reply.error });
          options.onProgress?.({ run, error: reply.error, done, total, eta });
        }
      }
    } finally {
      child.kill();
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.workers, runs.length) }, worker));
  return { results, failed };
}

function ask(child: ChildProcess, run: GridRun): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: WorkerReply) => {
      child.off("exit", onExit);
      resolve(reply);
    };
    const onExit = (code: number | null, signal: string | null) => {
      child.off("message", onMessage);
      reject(new Error(`evaluation worker exited (${signal ?? `code ${code}`}) during run ${run.id}`));
    };
    child.once("message", onMessage);
    child.once("exit", onExit);
    child.send(run);
  });
}

/** One run's figures in a report, against its cell's reference. */
export interface RunFigures {
  accuracy: number;
  /** 100 x (reference accuracy - accuracy); null without the reference. */
  dropPts: number | null;
  falseSlashes: number;
  attackersSlashed: number;
  attackersExcluded: number;
  attackerRounds: number;
  backdoorSuccess: number | null;
  honestEarnings: RunResult["honestEarnings"];
}

export interface CellReport extends Cell {
  referenceAccuracy: number | null;
  referenceBackdoorSuccess: number | null;
  runs: Partial<Record<CellRun, RunFigures>>;
}

export interface GridTotals {
  runs: number;
  done: number;
  /** Honest trainer-rounds slashed over every protocol run and reference. */
  falseSlashes: number;
  attackersSlashed: number;
  attackersExcluded: number;
  attackerRounds: number;
  /** Worst protocol drop (points) over cells with at most 30% attackers. */
  worstProtocolDropPts: number | null;
  worstProtocolDropCell: string | null;
  /** Worst backdoor success rate of the protocol minus the reference's (points). */
  worstBackdoorAsrPts: number | null;
  /** Per run of a cell, its worst drop (points). */
  worstDropPts: Partial<Record<CellRun, number>>;
  /** The least an honest participant earned in a protocol run, MIND wei (null: no earnings measured). */
  leastHonestEarnings: string | null;
}

export interface GridReport {
  grid: string;
  cells: CellReport[];
  totals: GridTotals;
}

/** The grid's report from its results (runs without a result are absent from it). */
export function gridReport(
  name: string,
  grid: { cells: readonly Cell[]; runs: readonly GridRun[] },
  results: ReadonlyMap<string, RunResult>,
): GridReport {
  const totals: GridTotals = {
    runs: grid.runs.length,
    done: grid.runs.filter((r) => results.has(r.id)).length,
    falseSlashes: 0,
    attackersSlashed: 0,
    attackersExcluded: 0,
    attackerRounds: 0,
    worstProtocolDropPts: null,
    worstProtocolDropCell: null,
    worstBackdoorAsrPts: null,
    worstDropPts: {},
    leastHonestEarnings: null,
  };
  for (const run of grid.runs) {
    const r = results.get(run.id);
    if (!r || !(run.kind === "protocol" || run.kind === "reference")) continue;
    totals.falseSlashes += r.falseSlashes;
    if (run.kind === "protocol") {
      totals.attackersSlashed += r.attackersSlashed;
      totals.attackersExcluded += r.attackersExcluded ?? 0;
      totals.attackerRounds += r.attackerRounds;
      const least = r.honestEarnings?.min;
      if (
        least !== undefined &&
        (totals.leastHonestEarnings === null || BigInt(least) < BigInt(totals.leastHonestEarnings))
      ) {
        totals.leastHonestEarnings = least;
      }
    }
  }
  const cells = grid.cells.map((cell): CellReport => {
    const reference = results.get(cell.reference);
    const runs: CellReport["runs"] = {};
    for (const kind of CELL_RUNS) {
      const r = results.get(`${cell.id}/${kind}`);
      if (!r) continue;
      const dropPts = reference ? 100 * (reference.finalAccuracy - r.finalAccuracy) : null;
      runs[kind] = {
        accuracy: r.finalAccuracy,
        dropPts,
        falseSlashes: r.falseSlashes,
        attackersSlashed: r.attackersSlashed,
        attackersExcluded: r.attackersExcluded ?? 0,
        attackerRounds: r.attackerRounds,
        backdoorSuccess: r.backdoorSuccess,
        honestEarnings: r.honestEarnings,
      };
      if (dropPts !== null && dropPts > (totals.worstDropPts[kind] ?? Number.NEGATIVE_INFINITY)) {
        totals.worstDropPts[kind] = dropPts;
      }
      if (kind !== "protocol") continue;
      if (
        dropPts !== null &&
        cell.share <= 0.3 &&
        dropPts > (totals.worstProtocolDropPts ?? Number.NEGATIVE_INFINITY)
      ) {
        totals.worstProtocolDropPts = dropPts;
        totals.worstProtocolDropCell = cell.id;
      }
      if (r.backdoorSuccess !== null && reference?.backdoorSuccess != null) {
        const pts = 100 * (r.backdoorSuccess - reference.backdoorSuccess);
        if (pts > (totals.worstBackdoorAsrPts ?? Number.NEGATIVE_INFINITY)) totals.worstBackdoorAsrPts = pts;
      }
    }
    return {
      ...cell,
      referenceAccuracy: reference?.finalAccuracy ?? null,
      referenceBackdoorSuccess: reference?.backdoorSuccess ?? null,
      runs,
    };
  });
  return { grid: name, cells, totals };
}

/** Rows of a printed table: one per attack variant of a group, its figures averaged over seeds. */
interface TableRow {
  variant: string;
  seeds: number;
  cells: string[];
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const fixed = (values: (number | null | undefined)[], digits: number, scale = 1): string => {
  const present = values.filter((v): v is number => typeof v === "number");
  return present.length === 0 ? "-" : (scale * mean(present)).toFixed(digits);
};

export const TABLE_HEADER = [
  "attack",
  "seeds",
  "protocol acc",
  "drop",
  "honest slashed",
  "caught (slashed+excluded)",
  "ASR %",
  ...BASELINE_STRATEGIES.map((s) => `${s} drop`),
];

/** A group of cells printed as one table: same model, alpha, clients and attacker share. */
export interface TableGroup {
  title: string;
  rows: TableRow[];
}

/** The report's tables: per (model, alpha, clients, share), a row per attack, figures averaged over seeds. */
export function tableGroups(report: GridReport): TableGroup[] {
  const groups = new Map<string, Map<string, CellReport[]>>();
  for (const cell of report.cells) {
    const title = `${cell.architecture}, alpha ${cell.alpha}, ${cell.clients} clients, ${cell.byzantine} attackers (${Math.round(100 * cell.share)}%)`;
    const group = groups.get(title) ?? new Map<string, CellReport[]>();
    groups.set(title, group);
    group.set(cell.variant, [...(group.get(cell.variant) ?? []), cell]);
  }
  return [...groups].map(([title, variants]) => ({
    title,
    rows: [...variants].map(([variant, cells]) => {
      const protocol = cells.map((c) => c.runs.protocol).filter((r) => r !== undefined);
      const slashed = protocol.reduce((a, r) => a + r.attackersSlashed, 0);
      const excluded = protocol.reduce((a, r) => a + r.attackersExcluded, 0);
      const attackerRounds = protocol.reduce((a, r) => a + r.attackerRounds, 0);
      return {
        variant,
        seeds: protocol.length,
        cells: [
          fixed(
            protocol.map((r) => r.accuracy),
            4,
          ),
          fixed(
            protocol.map((r) => r.dropPts),
            1,
          ),
          protocol.length === 0 ? "-" : String(protocol.reduce((a, r) => a + r.falseSlashes, 0)),
          attackerRounds === 0 ? "-" : `${slashed}+${excluded}/${attackerRounds}`,
          fixed(
            protocol.map((r) => r.backdoorSuccess),
            1,
            100,
          ),
          ...BASELINE_STRATEGIES.map((s) =>
            fixed(
              cells.map((c) => c.runs[s]?.dropPts),
              1,
            ),
          ),
        ],
      };
    }),
  }));
}

/** The totals block's lines. */
export function totalsLines(totals: GridTotals): string[] {
  const pts = (v: number | null | undefined) => (v === null || v === undefined ? "-" : `${v.toFixed(1)} pts`);
  return [
    `runs: ${totals.done} of ${totals.runs} done`,
    `honest trainer-rounds slashed (protocol and references): ${totals.falseSlashes}`,
    `attacker-rounds caught by the protocol: ${totals.attackersSlashed} slashed and ${totals.attackersExcluded} excluded (unpaid, left out) of ${totals.attackerRounds}`,
    `worst protocol drop vs the no-show reference (<= 30% attackers): ${pts(totals.worstProtocolDropPts)}${totals.worstProtocolDropCell ? ` (${totals.worstProtocolDropCell})` : ""}`,
    `worst backdoor success above the no-attack rate (protocol): ${pts(totals.worstBackdoorAsrPts)}`,
    `worst drop per aggregation: ${CELL_RUNS.map((k) => `${k} ${pts(totals.worstDropPts[k])}`).join(", ")}`,
    `least an honest participant earned in a protocol run: ${totals.leastHonestEarnings === null ? "-" : `${formatEther(BigInt(totals.leastHonestEarnings))} MIND`}`,
  ];
}

/** The report as aligned text tables, then the totals. */
export function formatReport(report: GridReport): string[] {
  const lines: string[] = [
    `grid ${report.grid}: drops in points against the no-show reference; figures averaged over seeds`,
  ];
  for (const group of tableGroups(report)) {
    const rows = group.rows.map((r) => [r.variant, String(r.seeds), ...r.cells]);
    const widths = TABLE_HEADER.map((h, i) =>
      Math.max(h.length, ...rows.map((r) => (r[i] as string).length)),
    );
    const line = (cells: string[]) =>
      cells
        .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
        .join("  ");
    lines.push("", group.title, line(TABLE_HEADER), line(widths.map((w) => "-".repeat(w))));
    for (const row of rows) lines.push(line(row));
  }
  lines.push("", ...totalsLines(report.totals));
  return lines;
}

/** The report as Markdown tables (for the README). */
export function markdownReport(report: GridReport): string {
  const out: string[] = [];
  for (const group of tableGroups(report)) {
    out.push(`**${group.title}**`, "");
    out.push(
      `| ${TABLE_HEADER.join(" | ")} |`,
      `|${TABLE_HEADER.map((_, i) => (i === 0 ? " --- " : " ---: ")).join("|")}|`,
    );
    for (const row of group.rows)
      out.push(`| ${[row.variant, String(row.seeds), ...row.cells].join(" | ")} |`);
    out.push("");
  }
  out.push(...totalsLines(report.totals).map((l) => `- ${l}`));
  return `${out.join("\n")}\n`;
}

/**
 * Spearman's rank correlation of two equally long samples: Pearson's correlation of their ranks, ties
 * given their average rank. NaN when either sample is constant (no ranking to agree with).
 */
export function spearman(xs: readonly number[], ys: readonly number[]): number {
  if (xs.length !== ys.length) {
    throw new RangeError(`spearman: samples differ in length (${xs.length} and ${ys.length})`);
  }
  if (xs.length < 2) throw new RangeError(`spearman: needs at least 2 pairs, got ${xs.length}`);
  const rx = averageRanks(xs);
  const ry = averageRanks(ys);
  const mx = mean(rx);
  const my = mean(ry);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < rx.length; i++) {
    const dx = (rx[i] as number) - mx;
    const dy = (ry[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx === 0 || syy === 0 ? Number.NaN : sxy / Math.sqrt(sxx * syy);
}

/** 1-based ranks, ties sharing the average of the ranks they span. */
export function averageRanks(values: readonly number[]): number[] {
  const order = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const ranks = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (
      end + 1 < order.length &&
      (order[end + 1] as { v: number }).v === (order[start] as { v: number }).v
    )
      end++;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) ranks[(order[k] as { i: number }).i] = rank;
    start = end + 1;
  }
  return ranks;
}

export interface FairPayReport {
  cell: string;
  alpha: number;
  seed: number;
  /** Final accuracy with every trainer. */
  accuracy: number;
  /**
   * contribution: final accuracy with every trainer less without this one (the issue's measure, in steps
   * of one test digit); lossContribution: the final test loss without it less with every trainer (null
   * when a results file predates finalLoss), which the same runs give without the accuracy's rounding.
   */
  trainers: {
    participant: string;
    earnings: string | null;
    contribution: number;
    lossContribution: number | null;
  }[];
  /** Spearman of earnings against contribution (null: no earnings, or missing runs). */
  spearman: number | null;
  /** Spearman of earnings against lossContribution (null as spearman, or without losses). */
  spearmanLoss: number | null;
}

/** Fair pay from the results of fairPayRuns(alpha, seed, clients); null until its runs are all done. */
export function fairPayReport(
  runs: readonly GridRun[],
  results: ReadonlyMap<string, RunResult>,
): FairPayReport | null {
  const [all, ...without] = runs;
  const full = all ? results.get(all.id) : undefined;
  if (!all || !full || without.some((r) => !results.has(r.id))) return null;
  const trainers = without.map((run, i) => {
    const participant = participantAddress(i);
    const withoutIt = results.get(run.id) as RunResult;
    return {
      participant,
      earnings: full.earnings?.[participant] ?? null,
      contribution: full.finalAccuracy - withoutIt.finalAccuracy,
      lossContribution:
        full.finalLoss === undefined || withoutIt.finalLoss === undefined
          ? null
          : withoutIt.finalLoss - full.finalLoss,
    };
  });
  const paid = trainers.every((t) => t.earnings !== null);
  const earnings = trainers.map((t) => Number(t.earnings));
  const rankAgainst = (contributions: readonly (number | null)[]): number | null => {
    if (!paid || contributions.some((c) => c === null)) return null;
    const rho = spearman(earnings, contributions as number[]);
    return Number.isNaN(rho) ? null : rho;
  };
  return {
    cell: all.cell,
    alpha: all.options.alpha,
    seed: Number(all.options.seed),
    accuracy: full.finalAccuracy,
    trainers,
    spearman: rankAgainst(trainers.map((t) => t.contribution)),
    spearmanLoss: rankAgainst(trainers.map((t) => t.lossContribution)),
  };
}
