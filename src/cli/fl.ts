import { join } from "node:path";
import { MultiBar } from "cli-progress";
import type { Command } from "commander";
import { formatEther, parseEventLogs } from "viem";
import { connect } from "../chain/connect.ts";
import { LearningTasks } from "../chain/generated/contracts.ts";
import { ATTACK_NAMES, type AttackParams } from "../learning/adversaries.ts";
import {
  addressOf,
  claim,
  createTask,
  defaultTaskParams,
  exitTask,
  getRound,
  getTask,
  joinTask,
  MAX_TRAINERS,
  MAX_VALIDATORS,
  type MemberRole,
  memberOf,
  openTasks,
  releaseStakeWithoutAccess,
  startRound,
  type Tasks,
  trainersOf,
  validatorsOf,
  withdraw,
  withdrawable,
} from "../learning/client.ts";
import type { GridRun } from "../learning/evaluate.ts";
import { STRATEGY_NAMES } from "../learning/index.ts";
import type { ProtocolRoundReport } from "../learning/protocol.ts";
import type { SimulationOptions } from "../learning/simulate.ts";
import {
  collect,
  emit,
  globalOptions,
  parseAccount,
  parseDatasetId,
  parseInteger,
  parseMind,
  parseModelRef,
  parsePositive,
  UsageError,
  withChain,
} from "./context.ts";

/** "noise" is the issue's and the bench's short name for gaussian-noise. */
const ATTACK_CHOICES = [...ATTACK_NAMES, "noise"];

/**
 * The attacks as the help and the README name them: "noise" for gaussian-noise, and without "none"
 * (no attacker is `--byzantine 0`). Both other names are still accepted.
 */
export const ATTACK_HELP_NAMES = ATTACK_NAMES.filter((n) => n !== "none").map((n) =>
  n === "gaussian-noise" ? "noise" : n,
);

interface SimulateFlags {
  clients: string;
  validators: string;
  byzantine: string;
  attack: string;
  strategy: string;
  rounds: string;
  alpha: string;
  seed: string;
  epochs: string;
  lr: string;
  batch: string;
  model: string;
  samplesPerClient?: string;
  baseline?: boolean;
  inMemory?: boolean;
  attackScale?: string;
  attackZ?: string;
  attackSigma?: string;
  attackNorm?: string;
  backdoorTarget?: string;
}

/** The attacks each strength flag applies to (a flag given for another attack is a usage error). */
const ATTACK_FLAGS = {
  "--attack-scale": ["sign-flip", "fang-trim", "backdoor"],
  "--attack-z": ["alie"],
  "--attack-sigma": ["gaussian-noise", "noise", "copy-noise"],
  "--attack-norm": ["noise-norm"],
} as const;

/** The attack's strength flags as AttackParams, checked against the attack they are given with. */
export function attackParamsOf(o: SimulateFlags): AttackParams {
  const given: [keyof typeof ATTACK_FLAGS, string | undefined][] = [
    ["--attack-scale", o.attackScale],
    ["--attack-z", o.attackZ],
    ["--attack-sigma", o.attackSigma],
    ["--attack-norm", o.attackNorm],
  ];
  for (const [flag, text] of given) {
    const attacks: readonly string[] = ATTACK_FLAGS[flag];
    if (text !== undefined && !attacks.includes(o.attack)) {
      throw new UsageError(`${flag} applies to --attack ${attacks.join(" or ")}, not "${o.attack}"`);
    }
  }
  const params: AttackParams = {};
  if (o.attackScale !== undefined) {
    params.scale = parsePositive(o.attackScale, "--attack-scale");
    if (o.attack === "fang-trim" && params.scale <= 1) {
      throw new UsageError(
        `--attack-scale is Fang's factor b for fang-trim and must exceed 1, got "${o.attackScale}"`,
      );
    }
  }
  if (o.attackZ !== undefined) {
    const z = Number(o.attackZ);
    if (!/^-?\d*\.?\d+(e-?\d+)?$/i.test(o.attackZ) || !Number.isFinite(z)) {
      throw new UsageError(
        `--attack-z takes a number (ALIE's shift in standard deviations), got "${o.attackZ}"`,
      );
    }
    params.z = z;
  }
  if (o.attackSigma !== undefined) params.sigma = parsePositive(o.attackSigma, "--attack-sigma");
  if (o.attackNorm !== undefined) params.norm = parsePositive(o.attackNorm, "--attack-norm");
  if (o.backdoorTarget !== undefined)
    params.target = parseInteger(o.backdoorTarget, "--backdoor-target", 0, 9);
  return params;
}

/** A round as printed: from the in-memory engine, or with the chain's rewards and gas from the protocol. */
export interface PrintedRound {
  round: number;
  accuracy: number;
  accepted: number;
  submitted: number;
  noShows: number;
  /** Trainers slashed. */
  slashed: number;
  attackersSlashed: number;
  falseSlashes: number;
  /** MIND credited to trainers and validators, in wei. */
  rewards?: bigint;
  gas?: bigint;
  seconds: number;
}

/** The figures of a run that the summary prints, common to the engine's and the protocol's summaries. */
export interface PrintedSummary {
  finalAccuracy: number;
  falseSlashes: number;
  attackersSlashed: number;
  /** The final model's backdoor success rate on trigger-stamped test digits (the in-memory engine). */
  backdoorSuccess?: number;
  /** Attacker-rounds left out without a slash (the in-memory engine reports it). */
  attackersExcluded?: number;
  detectionRate: number;
  attackers: readonly string[];
  rounds: readonly unknown[];
  seconds: number;
}

export function printedRound(r: ProtocolRoundReport): PrintedRound {
  return {
    ...r,
    slashed: r.slashed.filter((s) => s.role === "trainer").length,
    rewards: Object.values(r.rewards).reduce((a, b) => a + b, 0n),
    gas: r.gas.total,
  };
}

export function simulationOptions(o: SimulateFlags): SimulationOptions {
  const clients = parseInteger(o.clients, "--clients", 1, 1024);
  if (!ATTACK_CHOICES.includes(o.attack)) {
    throw new UsageError(`--attack must be one of ${ATTACK_HELP_NAMES.join(", ")}, got "${o.attack}"`);
  }
  if (!(STRATEGY_NAMES as readonly string[]).includes(o.strategy)) {
    throw new UsageError(`--strategy must be one of ${STRATEGY_NAMES.join(", ")}, got "${o.strategy}"`);
  }
  if (!/^(logreg-784-10|mlp-784(-\d+)+-10)$/.test(o.model)) {
    throw new UsageError(
      `--model must be logreg-784-10 or mlp-784-...-10 (for example mlp-784-64-10), got "${o.model}"`,
    );
  }
  const byzantine = parseInteger(o.byzantine, "--byzantine", 0, clients - 1);
  const attackParams = attackParamsOf(o);
  return {
    clients,
    validators: parseInteger(o.validators, "--validators", 1, 64),
    byzantine,
    attack: byzantine === 0 ? "none" : o.attack,
    strategy: o.strategy,
    rounds: parseInteger(o.rounds, "--rounds", 1, 10_000),
    alpha: parsePositive(o.alpha, "--alpha"),
    seed: parseInteger(o.seed, "--seed", 0),
    localEpochs: parseInteger(o.epochs, "--epochs", 1, 100),
    lr: parsePositive(o.lr, "--lr"),
    batch: parseInteger(o.batch, "--batch", 1, 10_000),
    architecture: o.model,
    ...(o.samplesPerClient === undefined
      ? {}
      : { samplesPerClient: parseInteger(o.samplesPerClient, "--samples-per-client", 1) }),
    ...(Object.keys(attackParams).length > 0 ? { attackParams } : {}),
    withProtocol: true,
  };
}

const mind = (wei: bigint) => Number(formatEther(wei)).toFixed(2);

/** One line per round: what a consortium watches while a task runs. */
export function roundLine(r: PrintedRound, rounds: number): string {
  const width = String(rounds).length;
  const parts = [
    `round ${String(r.round).padStart(width)}/${rounds}`,
    `accuracy ${r.accuracy.toFixed(4)}`,
    `accepted ${r.accepted}/${r.submitted + r.noShows}`,
    `slashed ${r.slashed}${r.slashed > 0 ? ` (${r.attackersSlashed} attackers, ${r.falseSlashes} honest)` : ""}`,
  ];
  if (r.rewards !== undefined) parts.push(`rewards ${mind(r.rewards)} MIND`);
  if (r.gas !== undefined) parts.push(`gas ${r.gas.toLocaleString("en-US")}`);
  parts.push(`${r.seconds.toFixed(1)} s`);
  return parts.join("  ");
}

export function summaryLines(
  options: SimulationOptions,
  summary: PrintedSummary,
  baseline?: PrintedSummary,
): string[] {
  const lines = [
    `final accuracy ${summary.finalAccuracy.toFixed(4)} after ${summary.rounds.length} rounds (${options.strategy}, attack ${options.attack}, ${summary.attackers.length} attackers of ${options.clients} trainers)`,
  ];
  if (baseline) {
    const drop = 100 * (baseline.finalAccuracy - summary.finalAccuracy);
    lines.push(
      `without attackers: ${baseline.finalAccuracy.toFixed(4)} (the attack costs ${drop.toFixed(1)} points)`,
    );
  }
  if (summary.attackers.length > 0) {
    const attackerRounds = summary.attackers.length * summary.rounds.length;
    lines.push(
      `attackers slashed ${summary.attackersSlashed} of ${attackerRounds} attacker-rounds (detection ${(100 * summary.detectionRate).toFixed(1)}%)`,
    );
    if (summary.attackersExcluded !== undefined) {
      lines.push(
        `attackers excluded (left out, unpaid, not slashed) ${summary.attackersExcluded} more attacker-rounds`,
      );
    }
  }
  if (options.attack === "backdoor" && summary.backdoorSuccess !== undefined) {
    lines.push(
      `backdoor success: ${(100 * summary.backdoorSuccess).toFixed(1)}% of trigger-stamped test digits`,
    );
  }
  lines.push(`honest trainers slashed (false slashes): ${summary.falseSlashes}`);
  lines.push(`done in ${summary.seconds.toFixed(1)} s`);
  return lines;
}

/**
 * Prints each round's line on stdout, under a progress bar on stderr when stderr is a terminal (the bar
 * redraws below the lines; piped output gets the lines only).
 */
function roundPrinter(total: number): { line: (text: string) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { line: (text) => console.log(text), stop: () => {} };
  const bars = new MultiBar({
    format: "  [{bar}] round {value}/{total}  eta {eta_formatted}",
    hideCursor: true,
    clearOnComplete: true,
    stream: process.stderr,
  });
  const bar = bars.create(total, 0);
  return {
    line: (text) => {
      // Both streams on one terminal: the bar's own log keeps the line above the bar.
      if (process.stdout.isTTY) bars.log(`${text}\n`);
      else console.log(text);
      bar.increment();
      bars.update(); // draws now, so the last round's line is not left in the log buffer
    },
    stop: () => bars.stop(),
  };
}

export function registerFlCommands(program: Command): void {
  const fl = program.command("fl").description("federated learning coordinated on-chain");
  registerTaskCommands(fl);

  registerEvaluateCommand(fl);

  fl.command("simulate")
    .description(
      "federated learning on real MNIST digits: non-IID clients, attackers, validators scoring every update, slashing",
    )
    .option("--clients <N>", "trainers", "10")
    .option("--validators <N>", "validators, each scoring on its own held-out digits", "3")
    .option("--byzantine <N>", "attackers among the trainers", "0")
    .option("--attack <NAME>", `what the attackers do: ${ATTACK_HELP_NAMES.join(", ")}`, "sign-flip")
    .option("--strategy <NAME>", `aggregation: ${STRATEGY_NAMES.join(", ")}`, "fedavg")
    .option("--rounds <N>", "rounds", "20")
    .option("--alpha <A>", "Dirichlet concentration of the label split (smaller: less IID)", "0.5")
    .option("--seed <N>", "makes a run reproducible", "1")
    .option("--epochs <N>", "local epochs per round", "1")
    .option("--lr <X>", "local learning rate", "0.1")
    .option("--batch <N>", "local batch size", "32")
    .option("--model <ID>", "logreg-784-10 or mlp-784-...-10", "logreg-784-10")
    .option("--samples-per-client <N>", "digits per client on average (default: all that are left)")
    .option(
      "--attack-scale <S>",
      "the attack's strength: sign-flip's scale, fang-trim's factor b, the backdoor's boost (default: 5, 2, clients / attackers)",
    )
    .option("--attack-z <Z>", "ALIE's shift in standard deviations (default: from clients and attackers)")
    .option("--attack-sigma <S>", "noise std in weight units (default: 1 for noise, 0.001 for copy-noise)")
    .option("--attack-norm <R>", "noise-norm's length, times the colluders' mean honest norm (default: 1)")
    .option(
      "--backdoor-target <C>",
      "the class the backdoor aims at, and that backdoorSuccess measures (default: 0)",
    )
    .option("--baseline", "also run without attackers (same seed) and report the accuracy the attack costs")
    .option(
      "--in-memory",
      "the engine alone: the same training and scoring, without the chain (no stakes, no gas)",
    )
    .action(async (o: SimulateFlags, cmd: Command) => {
      const opts = globalOptions(cmd);
      const options = simulationOptions(o);
      const printer = opts.json ? undefined : roundPrinter(options.rounds);
      const line = (r: PrintedRound) => printer?.line(roundLine(r, options.rounds));
      // Loaded on demand: tfjs takes a second to load, and only simulations train.
      const { simulateFederated } = await import("../learning/simulate.ts");
      const { runProtocol } = await import("../learning/protocol.ts");
      // On a fresh in-memory chain unless --rpc names one (deployed first with `ledgermind deploy`).
      const run = async (settings: SimulationOptions, onRound?: (r: PrintedRound) => void) => {
        if (o.inMemory) {
          const { finalModel: _model, ...summary } = await simulateFederated({
            ...settings,
            onRound: (r) =>
              onRound?.({ ...r, rewards: Object.values(r.rewards).reduce((x, y) => x + y, 0n) }),
          });
          return summary;
        }
        const chain = opts.rpc ? await connect({ rpc: opts.rpc, dataDir: opts.dataDir }) : undefined;
        try {
          return await runProtocol({
            ...settings,
            ...(chain ? { chain } : {}),
            onRound: (r) => onRound?.(printedRound(r)),
          });
        } finally {
          await chain?.close();
        }
      };
      const summary = await run(options, line).finally(() => printer?.stop());
      let baseline: PrintedSummary | undefined;
      if (o.baseline && options.byzantine > 0) {
        if (!opts.json) console.log("baseline: the same run without attackers...");
        baseline = await run({ ...options, byzantine: 0, attack: "none" });
      }
      emit(opts, { ...summary, ...(baseline ? { baselineAccuracy: baseline.finalAccuracy } : {}) }, () =>
        summaryLines(options, summary, baseline),
      );
    });
}

interface EvaluateFlags {
  grid: string;
  out?: string;
  workers: string;
  seeds?: string;
  alphas?: string;
  attacks?: string;
  runs?: string;
  rounds?: string;
  samplesPerClient?: string;
  markdown?: boolean;
}

const EVALUATE_GRIDS = ["full", "reduced", "mlp", "fair-pay"] as const;

/** A comma-separated list of `parse`d items (`--seeds 1,2,3`). */
function parseList<T>(text: string, option: string, parse: (item: string, option: string) => T): T[] {
  const items = text.split(",").map((t) => t.trim());
  if (items.some((t) => t === ""))
    throw new UsageError(`${option} takes a comma-separated list, got "${text}"`);
  return items.map((t) => parse(t, option));
}

function seconds(s: number): string {
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${s.toFixed(1)}s`;
}

/**
 * `fl evaluate`: the evaluation grid (src/learning/evaluate.ts) on a pool of worker processes, resumed
 * from its results file; a table per cell group and the totals, or the whole report with --json.
 */
function registerEvaluateCommand(fl: Command): void {
  fl.command("evaluate")
    .description(
      "the evaluation grid: every attack against the protocol and each aggregator alone, over skews, sizes, attacker shares and seeds (resumable)",
    )
    .option("--grid <NAME>", `which grid: ${EVALUATE_GRIDS.join(", ")}`, "full")
    .option(
      "--out <FILE>",
      "results file, one JSON line per run (default: <DATA-DIR>/fl-evaluate/<GRID>.jsonl)",
    )
    .option("--workers <N>", "worker processes, one run each at a time", "2")
    .option("--seeds <LIST>", "seeds, for example 1,2,3 (default: the grid's)")
    .option("--alphas <LIST>", "only these Dirichlet alphas of the grid")
    .option("--attacks <LIST>", "only these attack variants (for example label-flip,sign-flip-x2)")
    .option(
      "--runs <LIST>",
      "only these runs of each cell: protocol, fedavg, median, trimmed-mean, krum, multi-krum",
    )
    .option("--rounds <N>", "rounds per run (default: 15)")
    .option("--samples-per-client <N>", "digits per client on average (default: all that are left)")
    .option("--markdown", "print the tables as Markdown (for the README)")
    .action(async (o: EvaluateFlags, cmd: Command) => {
      const opts = globalOptions(cmd);
      if (!(EVALUATE_GRIDS as readonly string[]).includes(o.grid)) {
        throw new UsageError(`--grid must be one of ${EVALUATE_GRIDS.join(", ")}, got "${o.grid}"`);
      }
      const workers = parseInteger(o.workers, "--workers", 1, 64);
      const seeds =
        o.seeds === undefined ? undefined : parseList(o.seeds, "--seeds", (t, n) => parseInteger(t, n, 0));
      const alphas = o.alphas === undefined ? undefined : parseList(o.alphas, "--alphas", parsePositive);
      const rounds = o.rounds === undefined ? undefined : parseInteger(o.rounds, "--rounds", 1, 10_000);
      const samplesPerClient =
        o.samplesPerClient === undefined
          ? undefined
          : parseInteger(o.samplesPerClient, "--samples-per-client", 1);
      const ev = await import("../learning/evaluate.ts");
      const out = o.out ?? join(opts.dataDir, "fl-evaluate", `${o.grid}.jsonl`);

      let runs: GridRun[];
      let grid: ReturnType<typeof ev.gridRuns> | undefined;
      let fairPayGroups: GridRun[][] = [];
      try {
        if (o.grid === "fair-pay") {
          const base = {
            architecture: ev.GRIDS.full.architecture,
            rounds: rounds ?? ev.GRID_ROUNDS,
            ...(samplesPerClient === undefined ? {} : { samplesPerClient }),
          };
          fairPayGroups = (alphas ?? ev.FAIR_PAY_ALPHAS).flatMap((alpha) =>
            (seeds ?? [1]).map((seed) => ev.fairPayRuns(alpha, seed, 10, base)),
          );
          runs = fairPayGroups.flat();
        } else {
          const spec = ev.narrowGrid(ev.GRIDS[o.grid as keyof typeof ev.GRIDS], {
            alphas,
            seeds,
            rounds,
            samplesPerClient,
            variants: o.attacks === undefined ? undefined : parseList(o.attacks, "--attacks", (t) => t),
            runs: o.runs === undefined ? undefined : parseList(o.runs, "--runs", (t) => t),
          });
          grid = ev.gridRuns(spec);
          runs = grid.runs;
        }
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(err.message);
        throw err;
      }

      const previous = ev.readResults(out);
      const pending = ev.pendingRuns(runs, previous);
      process.stderr.write(
        `grid ${o.grid}: ${runs.length} runs, ${runs.length - pending.length} already in ${out}, ${pending.length} to run on ${workers} workers\n`,
      );
      const { failed } = await ev.runPool(pending, {
        workers,
        out,
        onProgress: (p) => {
          const what = p.result
            ? `accuracy ${p.result.finalAccuracy.toFixed(4)}  ${p.result.seconds.toFixed(1)} s`
            : `FAILED: ${p.error}`;
          process.stderr.write(`[${p.done}/${p.total}] ${p.run.id}  ${what}  eta ${seconds(p.eta)}\n`);
        },
      });
      const results = ev.readResults(out);
      const mine = runs.map((r) => results.get(r.id)).filter((r) => r !== undefined);
      if (failed.length > 0) {
        process.exitCode = 1;
        process.stderr.write(
          `${failed.length} runs failed (run again to retry them); the first: ${failed[0]?.error}\n`,
        );
      }
      if (o.grid === "fair-pay") {
        const reports = fairPayGroups.map((group) => ev.fairPayReport(group, results));
        emit(opts, { grid: o.grid, out, fairPay: reports, results: mine, failed }, () =>
          reports.flatMap((r, i) =>
            r === null
              ? [`${fairPayGroups[i]?.[0]?.cell}: incomplete`]
              : [
                  `${r.cell}: accuracy ${r.accuracy.toFixed(4)}, Spearman(earnings, contribution) ${r.spearman === null ? "- (no earnings)" : r.spearman.toFixed(3)}, against the loss contribution ${r.spearmanLoss === null ? "-" : r.spearmanLoss.toFixed(3)}`,
                  ...r.trainers.map(
                    (t) =>
                      `  ${t.participant}  contribution ${(100 * t.contribution).toFixed(2)} pts  earnings ${t.earnings === null ? "-" : `${mind(BigInt(t.earnings))} MIND`}`,
                  ),
                ],
          ),
        );
        return;
      }
      const report = ev.gridReport(o.grid, grid as NonNullable<typeof grid>, results);
      emit(opts, { ...report, out, results: mine, failed }, () =>
        o.markdown ? [ev.markdownReport(report)] : ev.formatReport(report),
      );
    });
}

function parseRole(text: string): MemberRole {
  if (text !== "trainer" && text !== "validator") {
    throw new UsageError(`--as takes trainer or validator, got "${text}"`);
  }
  return text;
}

function parseTaskId(text: string): bigint {
  if (!/^[1-9]\d*$/.test(text)) throw new UsageError(`task id must be a positive integer, got "${text}"`);
  return BigInt(text);
}

interface CreateFlags {
  model: string;
  rounds: string;
  reward: string;
  trainers: string;
  validators: string;
  minTrainerStake?: string;
  minValidatorStake?: string;
  slashBps?: string;
  quorumBps?: string;
  dataset: string[];
  account?: string;
}

/** `fl create | join | start | status | claim | withdraw`: a real task, step by step, from the shell. */
function registerTaskCommands(fl: Command): void {
  fl.command("create")
    .description(
      "create a task on a registered model version and fund its reward pool (you must own the model)",
    )
    .requiredOption("--model <MODEL@VERSION>", "the model version the first round starts from, e.g. 1@1")
    .option("--rounds <N>", "rounds the task runs at most", "10")
    .option("--reward <MIND>", "MIND paid out per round", "100")
    .option("--trainers <N>", "trainers expected (sizes the commit window on development chains)", "10")
    .option("--validators <N>", "validators expected, at least 3 (sizes the score windows)", "3")
    .option("--min-trainer-stake <MIND>", "least stake of a trainer (default: 10)")
    .option("--min-validator-stake <MIND>", "least stake of a validator (default: 20)")
    .option("--slash-bps <BPS>", "share of its stake a slashed member loses, in basis points (default: 1000)")
    .option(
      "--quorum-bps <BPS>",
      "share of the revealed validator stake, in basis points, whose attestations make an aggregate the next version: more than 5000 (default: 6667)",
    )
    .option(
      "--dataset <ID>",
      "a DataMarket dataset the task trains on: every trainer needs access to it to join and to commit (repeatable, at most 4)",
      collect,
      [],
    )
    .option("--account <INDEX>", "the creator's account index (the model's owner)")
    .action(async (o: CreateFlags, cmd: Command) => {
      const opts = globalOptions(cmd);
      const { modelId, version } = parseModelRef(o.model);
      const params = defaultTaskParams({
        modelId,
        baseVersion: version,
        rounds: parseInteger(o.rounds, "--rounds", 1, 0xffffffff),
        trainers: parseInteger(o.trainers, "--trainers", 1, MAX_TRAINERS),
        validators: parseInteger(o.validators, "--validators", 3, MAX_VALIDATORS),
        rewardPerRound: parseMind(o.reward, "--reward"),
      });
      if (o.minTrainerStake) params.minTrainerStake = parseMind(o.minTrainerStake, "--min-trainer-stake");
      if (o.minValidatorStake)
        params.minValidatorStake = parseMind(o.minValidatorStake, "--min-validator-stake");
      if (o.slashBps) params.slashBps = parseInteger(o.slashBps, "--slash-bps", 0, 10_000);
      if (o.quorumBps) params.quorumBps = parseInteger(o.quorumBps, "--quorum-bps", 5_001, 10_000);
      const datasets = o.dataset.map(parseDatasetId);
      await withChain(opts, async (chain) => {
        const tasks = await openTasks(chain);
        const { taskId } = await createTask(tasks, params, parseAccount(o.account), datasets);
        emit(opts, { taskId, params, datasets }, () => [
          `task ${taskId}: model ${o.model}, ${params.rounds} rounds of ${formatEther(params.rewardPerRound)} MIND` +
            (datasets.length > 0 ? `, on dataset(s) ${datasets.join(", ")}` : ""),
        ]);
      });
    });

  fl.command("join")
    .description(
      "join a task as a trainer or a validator, staking MIND (adds to the stake if already a member)",
    )
    .argument("<TASK>", "task id")
    .requiredOption("--as <ROLE>", "trainer or validator")
    .requiredOption("--stake <MIND>", "MIND to stake")
    .option("--account <INDEX>", "the member's account index")
    .action(async (task: string, o: { as: string; stake: string; account?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const taskId = parseTaskId(task);
      const role = parseRole(o.as);
      const amount = parseMind(o.stake, "--stake");
      await withChain(opts, async (chain) => {
        const tasks = await openTasks(chain);
        const signer = parseAccount(o.account);
        await joinTask(tasks, taskId, role, amount, signer);
        const account = addressOf(chain, signer);
        const member = await memberOf(tasks, taskId, role, account);
        emit(opts, { taskId, role, account, stake: member.stake }, () => [
          `${account} is a ${role} of task ${taskId}, staking ${formatEther(member.stake)} MIND`,
        ]);
      });
    });

  fl.command("start")
    .description("start the task's next round (the creator)")
    .argument("<TASK>", "task id")
    .option("--account <INDEX>", "the creator's account index")
    .action(async (task: string, o: { account?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const taskId = parseTaskId(task);
      await withChain(opts, async (chain) => {
        const tasks = await openTasks(chain);
        const { round } = await startRound(tasks, taskId, parseAccount(o.account));
        const info = await getRound(tasks, taskId, round);
        emit(opts, { taskId, round, ...info }, () => [
          `round ${round} of task ${taskId} started: commits until block ${info.commitDeadline}, scores until ${info.scoreDeadline}, reveals until ${info.revealDeadline}`,
        ]);
      });
    });

  fl.command("status")
    .description("a task: parameters, members with stakes and earnings, and its rounds")
    .argument("<TASK>", "task id")
    .action(async (task: string, _o: unknown, cmd: Command) => {
      const opts = globalOptions(cmd);
      const taskId = parseTaskId(task);
      await withChain(
        opts,
        async (chain) => {
          const tasks = await openTasks(chain);
          const { params, state } = await getTask(tasks, taskId);
          const members = async (role: MemberRole, accounts: readonly `0x${string}`[]) =>
            Promise.all(
              accounts.map(async (account) => ({
                account,
                role,
                ...(await memberOf(tasks, taskId, role, account)),
              })),
            );
          const all = [
            ...(await members("trainer", await trainersOf(tasks, taskId))),
            ...(await members("validator", await validatorsOf(tasks, taskId))),
          ];
          const rounds = await Promise.all(
            Array.from({ length: state.roundCount }, (_, i) =>
              getRound(tasks, taskId, i + 1).then((info) => ({ round: i + 1, ...info })),
            ),
          );
          emit(opts, { taskId, params, state, members: all, rounds }, () => [
            `task ${taskId}: model ${params.modelId}, now at version ${state.currentVersion}; ${state.roundCount}/${params.rounds} rounds${state.closed ? " (closed)" : ""}; pool left ${formatEther(state.poolLeft)} MIND`,
            `members (${state.activeTrainers} trainers, ${state.activeValidators} validators active):`,
            ...all.map(
              (m) =>
                `  ${m.role.padEnd(9)} ${m.account}  stake ${formatEther(m.stake)}  earned ${formatEther(m.earned)}${m.status === 2 ? "  (left)" : ""}`,
            ),
            ...rounds.map(
              (r) =>
                `round ${r.round}: ${r.phase}; ${r.commits} updates, ${r.reveals} validators revealed, ${r.accepted} accepted${r.newVersion > 0 ? `, became version ${r.newVersion}` : ""}`,
            ),
          ]);
        },
        { readOnly: true },
      );
    });

  memberCommand(
    fl,
    "claim",
    "move your rewards in a task to your withdrawable balance",
    claim,
    (taskId, role) => `claimed in task ${taskId} as a ${role}`,
  );
  memberCommand(
    fl,
    "leave",
    "leave a task: your stake and unclaimed rewards become withdrawable (between rounds, or once the open round expired)",
    exitTask,
    (taskId, role) => `left task ${taskId} as a ${role}`,
  );

  fl.command("release")
    .description(
      "take your whole trainer stake back, unslashed, after losing access to one of the task's datasets (revoked or expired), even mid-round if you did not commit in it",
    )
    .argument("<TASK>", "task id")
    .requiredOption("--dataset <ID>", "the task's dataset you no longer have access to")
    .option("--account <INDEX>", "the trainer's account index")
    .action(async (task: string, o: { dataset: string; account?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const taskId = parseTaskId(task);
      const datasetId = parseDatasetId(o.dataset);
      await withChain(opts, async (chain) => {
        const tasks = await openTasks(chain);
        const signer = parseAccount(o.account);
        const account = addressOf(chain, signer);
        const receipt = await releaseStakeWithoutAccess(tasks, taskId, datasetId, signer);
        // What the contract released, from its event: a read before the transaction could be stale.
        const [released] = parseEventLogs({
          abi: LearningTasks.abi,
          logs: receipt.logs,
          eventName: "StakeReleased",
        });
        const stake = released?.args.stake ?? 0n;
        const balance = await withdrawable(tasks, account);
        emit(opts, { taskId, datasetId, account, released: stake, withdrawable: balance }, () => [
          `${account} has no access to dataset ${datasetId}: its stake of ${formatEther(stake)} MIND in task ${taskId} is released, whole; withdrawable ${formatEther(balance)} MIND (leave the task with \`fl leave\` after the round)`,
        ]);
      });
    });

  fl.command("withdraw")
    .description("pay out your withdrawable balance (claimed rewards and returned stakes)")
    .option("--account <INDEX>", "the account index")
    .action(async (o: { account?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      await withChain(opts, async (chain) => {
        const tasks = await openTasks(chain);
        const signer = parseAccount(o.account);
        const amount = await withdrawable(tasks, addressOf(chain, signer));
        await withdraw(tasks, signer);
        emit(opts, { amount }, () => [`withdrew ${formatEther(amount)} MIND`]);
      });
    });
}

/** `fl NAME TASK --as ROLE`: one transaction of a task's member, then its withdrawable balance. */
function memberCommand(
  fl: Command,
  name: string,
  description: string,
  send: (tasks: Tasks, taskId: bigint, role: MemberRole, signer: number) => Promise<unknown>,
  done: (taskId: bigint, role: MemberRole) => string,
): void {
  fl.command(name)
    .description(description)
    .argument("<TASK>", "task id")
    .requiredOption("--as <ROLE>", "trainer or validator")
    .option("--account <INDEX>", "the member's account index")
    .action(async (task: string, o: { as: string; account?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const taskId = parseTaskId(task);
      const role = parseRole(o.as);
      await withChain(opts, async (chain) => {
        const tasks = await openTasks(chain);
        const signer = parseAccount(o.account);
        await send(tasks, taskId, role, signer);
        const balance = await withdrawable(tasks, addressOf(chain, signer));
        emit(opts, { taskId, role, withdrawable: balance }, () => [
          `${done(taskId, role)}; withdrawable ${formatEther(balance)} MIND`,
        ]);
      });
    });
}
