/**
 * How a validator scores the updates of a round on its own held-out data, and how validators' scores
 * become a consensus and an acceptance decision (pure given a model evaluator: no I/O, no tfjs here).
 *
 * Scores are integers on the contract's scale (SCORE_SCALE, 10,000 = 1.0), in three tiers that the
 * contract settles (finalize.ts):
 *   0               evidence of malice: slashed when validators holding a strict majority of the revealed
 *                   stake agree;
 *   1 (EXCLUDED)    left out of the aggregate and unpaid, never slashed: "adds little or harms here" is
 *                   not misbehaviour on skewed data;
 *   2 (KEPT) and up kept; paid in proportion to the score above 2, SCORE_MAX for the round's best update.
 *
 * The default rule, "leave-one-out", for one validator and a round's updates u_1..u_n of the global model
 * g (delta_k = u_k - g):
 *
 *  1. Validity (score 0). An update of another architecture or scale; an update equal to g (a free rider
 *     adds nothing, whatever its data; it is not even evaluated).
 *  2. Evidence of malice (score 0), on every changed update, only where no honest training came near in
 *     the calibration runs (20 clients at Dirichlet alpha 0.1 to 1.0, 10 and 30 clients, 1,000 clients of
 *     a few digits each, seeds 1 to 3, with and without colluding attackers; logreg-784-10):
 *     - magnitude: ||delta_k|| > 20 x the round's median ||delta_j|| (slashNormBound). Honest updates
 *       measured at most 3.3x, also when 30% ALIE colluders pull the median down with small updates;
 *       Gaussian noise of sigma 1 lands at 46x to 174x;
 *     - label consistency (below): C_k < -1 (slashConsistencyBound). Honest updates measured >= -0.49 (the
 *       worst, tiny shards of a 1,000-client round; >= -0.26 with 10 and 30 clients); label flipping
 *       measured -0.2 to -1.2, so only its clearest cases are slashed.
 *  3. Exclusion screens (score 1): ||delta_k|| > 4 x the median (normBound), or C_k < -0.55
 *     (consistencyBound, below the honest -0.49, so that the 1,000-client round keeps every shard; label
 *     flipping between -0.55 and -0.2 is left to step 4). These catch most of sign flipping at scale 5
 *     and label flipping but also, now and then, an honest update of a very skewed shard; that is why
 *     they exclude and never slash.
 *     Label consistency: with centred log-probabilities z(x) = log p(.|x) - mean_c log p(c|x), let
 *       S_k[y][c] = mean over the validator's samples x of class y of z_{u_k}(x)_c - z_g(x)_c,
 *     how much the update raises class c's score on examples of class y. Training on correctly labelled
 *     examples of class c raises c's score most on examples of c: the diagonal leads its column. A model
 *     taught "4 is 5" raises 5's score most on 4s. The statistic
 *       C_k = sum_c (S[c][c] - max_{y != c} S[y][c]) / sum_c max_y S[y][c],   over columns c whose
 *             strongest entry max_y S[y][c] is positive,
 *     is at most 1. It needs per-sample log-probabilities and labels from the evaluator.
 *  4. Marginal value (loss). Among the updates left, A = g + mean_j delta_j (equal weights by default:
 *     sample counts are unverifiable claims), A_-k the same mean without k, rescaled to A's step length,
 *     and
 *       gain_k = L(A_-k) - L(A)      (L: mean cross-entropy on the validator's data)
 *     what the aggregate would lose without k's direction. Every update whose gain is below -z times its
 *     standard error (paired per-sample differences, stratified by class: pairedStandardError;
 *     significance z, default 3) and whose harm is
 *     material, above `materiality` x what the whole aggregate gains, L(g) - L(A) (default 0.5%), is
 *     excluded at once, and the others are scored again without them (until none is, and
 *     never all of them). This is what stops attacks that keep an honest norm and honest label structure
 *     (sign flipping at scale 1 to 2, ALIE-style shifts): measured at alpha 0.1 with 9 sign-flippers of 30
 *     clients, accuracy 0.787 against 0.771 for the same run in which they never show up (0.614 without
 *     this step). Weighting A by the claimed counts instead (option weighting "samples", as FedAvg
 *     aggregates) helped most sign-flip cells (4.0 and 5.0 points down to 0.9 and 0.8 with 3 of 30 at
 *     alpha 0.3) but let one run collapse (alpha 0.1, 10 clients, 3 sign-flippers x2 with large shards,
 *     seed 2: 0.509 against 0.823): a flipper's harm sits on its few classes, so its per-sample standard
 *     error is large and it passes the z-test, while honest updates with small, even harms are excluded
 *     and the flippers' share grows. Stratifying the standard error by class removes that cover (the
 *     spread between classes' mean differences is not sampling noise on the validator's fixed data):
 *     with equal weights it took the sign-flip rows (three seeds, 108 runs) from 4,872 to 5,763 of
 *     6,480 attacker-rounds caught and the reduced grid's worst drop from 3.5 to 1.8 points, with no
 *     change to slashing. Its cost: now and then an honest update of a skewed shard hurts the
 *     validator's balanced data enough to be excluded (about 15% of honest updates at alpha 0.1 with the
 *     pooled error, more with the stratified one: 3 of the 10 honest updates of the bench's first
 *     on-chain round at alpha 0.5; unpaid that round, never slashed).
 *     Kept updates score max(2, round(SCORE_MAX * gain_k / best)), best = max_k gain_k (normalized per
 *     round and per validator, so scores compare across both).
 *
 * Why marginal value is never evidence of malice: on non-IID data honest clients' updates pull in
 * different directions; a third or more of them make a balanced held-out loss slightly worse on their
 * own (measured: down to -1.9x the best update's gain). It is the right basis for payment and for leaving
 * an update out, not for slashing.
 *
 * Consensus: per update, the lower median of the validators' scores (odd count: the middle one; even:
 * the smaller of the two middle ones), as LearningTasks computes it with equal stakes. An update is
 * accepted when its consensus reaches DEFAULT_ACCEPT_THRESHOLD (SCORE_KEPT), so a majority of validators
 * must exclude an update to leave it out, and a majority must score 0 to slash it.
 *
 * Determinism: every probe model is integer arithmetic on the update bytes (half away from zero); the
 * evaluation runs in floats off-chain (the same machine and backend give the same numbers), and only
 * the integer score vector goes on-chain, where the consensus is recomputed exactly.
 */
import { type CanonicalModel, type QuantizedTensor, sameArchitecture } from "../ml/encoding.ts";
import { lowerMedian, SCORE_EXCLUDED, SCORE_KEPT, SCORE_SCALE } from "./finalize.ts";
import { leaveOneOutMeans, roundHalfAway, saturate, weightedMeanOfDeltas } from "./strategy.ts";

/** Largest score: the round's best update in the validator's view. */
export const SCORE_MAX = SCORE_SCALE;
/** Score of an update that is kept but adds nothing measurable: accepted, paid nothing (finalize.ts). */
export { SCORE_EXCLUDED, SCORE_KEPT };
/** Default acceptance threshold on the consensus score: every score but 0. */
export const DEFAULT_ACCEPT_THRESHOLD = SCORE_KEPT;
/** Default exclusion by magnitude: a delta norm above 4x the round's median. */
export const DEFAULT_NORM_BOUND = 4;
/** Default exclusion by label consistency: C_k below -0.55. */
export const DEFAULT_CONSISTENCY_BOUND = -0.55;
/** Default evidence of malice by magnitude: a delta norm above 20x the round's median. */
export const DEFAULT_SLASH_NORM_BOUND = 20;
/** Default evidence of malice by label consistency: C_k below -1. */
export const DEFAULT_SLASH_CONSISTENCY_BOUND = -1;
/** Default dormant-input screen: a quarter of the first tensor's change on inputs the data never uses. */
export const DEFAULT_DORMANT_BOUND = 0.25;
/** Default significance of the harmful-update exclusion (step 4). */
export const DEFAULT_SIGNIFICANCE = 3;
/** Default materiality of the harmful-update exclusion (step 4): 0.5% of what the aggregate gains. */
export const DEFAULT_MATERIALITY = 0.005;
/** Default standard error of the gains (step 4). */
export const DEFAULT_STANDARD_ERROR: "pooled" | "stratified" = "stratified";

/** What an evaluator reports for a model on the validator's held-out data. */
export interface Evaluation {
  /** Mean cross-entropy. */
  loss: number;
  /** Per-sample cross-entropies, in a fixed sample order (for the significance test). */
  losses?: ArrayLike<number>;
  /** Per-sample log-probabilities, samples x classes, row-major (for the label-consistency screen). */
  logProbabilities?: ArrayLike<number>;
  /** The samples' labels, in the same order (for the label-consistency screen). */
  labels?: ArrayLike<number>;
  accuracy?: number;
}

/** Runs a canonical model on the validator's own held-out data. */
export type ModelEvaluator = (model: CanonicalModel) => Promise<Evaluation> | Evaluation;

export type ScoringRule = "leave-one-out" | "step";

/** An update to score: its model and the sample count its trainer claims. */
export interface ScoredUpdate {
  model: CanonicalModel;
  /** Positive safe integer; default 1. Used only with weighting "samples". */
  samples?: number;
}

export interface ScoreOptions {
  /** Default "leave-one-out" (the module doc); "step" is the plain rule kept for comparison. */
  rule?: ScoringRule;
  /** Exclusion by magnitude, in multiples of the round's median delta norm; Infinity disables. */
  normBound?: number;
  /** Exclusion by label consistency: C_k below it is excluded; -Infinity disables. */
  consistencyBound?: number;
  /**
   * Input features that are zero in every sample of the validator's data (dormantInputsOf), rows of the
   * model's first tensor ([inputs, units]); with dormantBound, the dormant-input screen of step 3.
   */
  dormantInputs?: readonly number[];
  /** Exclusion when this share of an update's first-tensor change (by norm) is on dormant inputs. */
  dormantBound?: number;
  /** Evidence of malice by magnitude (score 0), in multiples of the median delta norm; Infinity disables. */
  slashNormBound?: number;
  /** Evidence of malice by label consistency (score 0): C_k below it; -Infinity disables. */
  slashConsistencyBound?: number;
  /** Weights of the leave-one-out aggregate: "equal" (default) or the claimed "samples" (step 4 says why not). */
  weighting?: "equal" | "samples";
  /** Significance z for excluding harmful updates by their loss (step 4); default 3, Infinity never. */
  significance?: number;
  /**
   * With significance: the harm must also exceed this share of what the aggregate gains over the global
   * model, L(g) - L(A); default DEFAULT_MATERIALITY. Without it, a shard of a few digits whose tiny
   * effect is consistent is "significantly" harmful while weighing nothing in the aggregate.
   */
  materiality?: number;
  /** The gains' standard error: "pooled" over the samples, or "stratified" by class (pairedStandardError). */
  standardError?: "pooled" | "stratified";
  /** rule "step": fraction of each delta applied before evaluation; default 1 / n. */
  step?: number;
}

/**
 * Why an update scored what it did. Score 0 (evidence of malice: slashed): "incompatible", "unchanged",
 * "extreme", "flipped". SCORE_EXCLUDED (unpaid, left out, never slashed): "norm", "inconsistent", "dormant",
 * "harmful".
 * "kept": SCORE_KEPT or more.
 */
export type Verdict =
  | "kept"
  | "incompatible"
  | "unchanged"
  | "extreme"
  | "flipped"
  | "norm"
  | "inconsistent"
  | "harmful"
  | "dormant";

export interface ScoreResult {
  /** One score per update, in the order given. */
  scores: number[];
  verdicts: Verdict[];
  /** Marginal loss gain (see the rule); 0 for unchanged, -Infinity when not evaluated. */
  gains: number[];
  /** Standard error of each gain (0 when per-sample losses are not given). */
  standardErrors: number[];
  /** ||delta_k|| / median ||delta_j|| (0 for unchanged and incompatible updates). */
  normRatios: number[];
  /** C_k of the label-consistency screen (NaN when not computed). */
  consistency: number[];
  /** Models evaluated (the cost). */
  evaluations: number;
  rule: ScoringRule;
}

/** g + round(step * (u - g)) per weight, half away from zero, saturated to the canonical range. */
export function probeModel(global: CanonicalModel, update: CanonicalModel, step: number): CanonicalModel {
  if (!(step > 0) || !Number.isFinite(step))
    throw new RangeError(`probeModel: step must be > 0, got ${step}`);
  return {
    architecture: global.architecture,
    scaleBits: global.scaleBits,
    tensors: global.tensors.map((t, ti) => {
      const gi = t.ints;
      const ui = (update.tensors[ti] as QuantizedTensor).ints;
      const ints = new Int32Array(gi.length);
      for (let i = 0; i < gi.length; i++) {
        const g = gi[i] as number;
        ints[i] = saturate(g + roundHalfAway(step * ((ui[i] as number) - g)));
      }
      return { name: t.name, shape: [...t.shape], ints };
    }),
  };
}

/** ||u - g||_2 in canonical ints. */
export function deltaNorm(global: CanonicalModel, update: CanonicalModel): number {
  let sum = 0;
  global.tensors.forEach((t, ti) => {
    const gi = t.ints;
    const ui = (update.tensors[ti] as QuantizedTensor).ints;
    for (let i = 0; i < gi.length; i++) {
      const d = (ui[i] as number) - (gi[i] as number);
      sum += d * d;
    }
  });
  return Math.sqrt(sum);
}

/** The median (the mean of the two middle values for an even count). */
export function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function compatible(global: CanonicalModel, update: CanonicalModel): boolean {
  return sameArchitecture(global, update) && update.scaleBits === global.scaleBits;
}

function equalsGlobal(global: CanonicalModel, update: CanonicalModel): boolean {
  return global.tensors.every((t, ti) => {
    const gi = t.ints;
    const ui = (update.tensors[ti] as QuantizedTensor).ints;
    for (let i = 0; i < gi.length; i++) if (gi[i] !== ui[i]) return false;
    return true;
  });
}

/** The scores of gains: clipped at 0, normalized by the best, rounded (the "step" rule). */
export function scoresFromGains(gains: readonly number[]): number[] {
  let best = 0;
  for (const g of gains) if (Number.isFinite(g) && g > best) best = g;
  return gains.map((g) => {
    if (!(best > 0) || !Number.isFinite(g) || g <= 0) return 0;
    return Math.min(SCORE_MAX, Math.round((SCORE_MAX * g) / best));
  });
}

/**
 * Standard error of the mean of a[i] - b[i]; 0 when either is missing. With `labels` (the samples'
 * classes), stratified by class: the spread between classes' mean differences is not sampling noise on a
 * validator's fixed, balanced data, and leaving it in hides a harm concentrated on a few classes (a
 * sign-flipper's, whose shard holds a few classes) behind a large standard error. Falls back to the
 * pooled error when a class has fewer than two samples.
 */
export function pairedStandardError(
  a: ArrayLike<number> | undefined,
  b: ArrayLike<number> | undefined,
  labels?: ArrayLike<number>,
): number {
  if (!a || !b || a.length !== b.length || a.length < 2) return 0;
  const n = a.length;
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const key = labels && labels.length === n ? (labels[i] as number) : 0;
    const group = groups.get(key) ?? [];
    group.push((a[i] as number) - (b[i] as number));
    groups.set(key, group);
  }
  if ([...groups.values()].some((g) => g.length < 2)) return labels ? pairedStandardError(a, b) : 0;
  // Var(mean) = sum over classes of (n_c / n)^2 * s_c^2 / n_c.
  let variance = 0;
  for (const g of groups.values()) {
    const mean = g.reduce((x, y) => x + y, 0) / g.length;
    const squares = g.reduce((x, y) => x + (y - mean) ** 2, 0);
    variance += (squares / (g.length - 1)) * (g.length / n ** 2);
  }
  return Math.sqrt(variance);
}

/** Per-sample log-probabilities centred over the classes (the logits up to a per-sample constant). */
function centred(logProbabilities: ArrayLike<number>, samples: number): Float64Array {
  const classes = logProbabilities.length / samples;
  const out = new Float64Array(logProbabilities.length);
  for (let i = 0; i < samples; i++) {
    let mean = 0;
    for (let c = 0; c < classes; c++) mean += logProbabilities[i * classes + c] as number;
    mean /= classes;
    for (let c = 0; c < classes; c++)
      out[i * classes + c] = (logProbabilities[i * classes + c] as number) - mean;
  }
  return out;
}

/**
 * The label-consistency statistic C of a model against the global one (module doc, step 3), from
 * their evaluations on the same labelled samples; NaN if the evaluations lack log-probabilities or
 * labels, 0 if no class's score rises anywhere.
 */
export function labelConsistency(update: Evaluation, global: Evaluation): number {
  const labels = global.labels;
  if (!labels || !update.logProbabilities || !global.logProbabilities) return Number.NaN;
  const n = labels.length;
  if (n === 0 || update.logProbabilities.length !== global.logProbabilities.length) return Number.NaN;
  const classes = global.logProbabilities.length / n;
  if (!Number.isInteger(classes)) return Number.NaN;
  const zu = centred(update.logProbabilities, n);
  const zg = centred(global.logProbabilities, n);
  const sums = new Float64Array(classes * classes); // [y][c]
  const counts = new Float64Array(classes);
  for (let i = 0; i < n; i++) {
    const y = labels[i] as number;
    if (!Number.isInteger(y) || y < 0 || y >= classes) continue;
    counts[y] = (counts[y] as number) + 1;
    for (let c = 0; c < classes; c++) {
      sums[y * classes + c] =
        (sums[y * classes + c] as number) + (zu[i * classes + c] as number) - (zg[i * classes + c] as number);
    }
  }
  let margins = 0;
  let inflows = 0;
  for (let c = 0; c < classes; c++) {
    if (!((counts[c] as number) > 0)) continue;
    let strongest = Number.NEGATIVE_INFINITY;
    let strongestOther = Number.NEGATIVE_INFINITY;
    for (let y = 0; y < classes; y++) {
      if (!((counts[y] as number) > 0)) continue;
      const s = (sums[y * classes + c] as number) / (counts[y] as number);
      if (s > strongest) strongest = s;
      if (y !== c && s > strongestOther) strongestOther = s;
    }
    if (!(strongest > 0) || !Number.isFinite(strongestOther)) continue;
    const diagonal = (sums[c * classes + c] as number) / (counts[c] as number);
    margins += diagonal - strongestOther;
    inflows += strongest;
  }
  return inflows > 0 ? margins / inflows : 0;
}

function checkWeight(samples: number | undefined): number {
  const w = samples ?? 1;
  if (!Number.isSafeInteger(w) || w < 1) {
    throw new RangeError(`scoreUpdates: samples ${w} is not a positive integer`);
  }
  return w;
}

function checkOption(name: string, value: number, ok: boolean): void {
  if (!ok || Number.isNaN(value)) throw new RangeError(`scoreUpdates: bad ${name} ${value}`);
}

/**
 * One validator's scores for a round's updates (module doc). `evaluate` runs a model on the
 * validator's held-out data; updates may be given as models or with their claimed sample counts.
 */
export async function scoreUpdates(
  global: CanonicalModel,
  updates: readonly (CanonicalModel | ScoredUpdate)[],
  evaluate: ModelEvaluator,
  options: ScoreOptions = {},
): Promise<ScoreResult> {
  const rule = options.rule ?? "leave-one-out";
  if (rule !== "leave-one-out" && rule !== "step") {
    throw new RangeError(`scoreUpdates: unknown rule ${JSON.stringify(rule)}`);
  }
  const normBound = options.normBound ?? DEFAULT_NORM_BOUND;
  const consistencyBound = options.consistencyBound ?? DEFAULT_CONSISTENCY_BOUND;
  const slashNormBound = options.slashNormBound ?? DEFAULT_SLASH_NORM_BOUND;
  const dormantBound = options.dormantBound ?? DEFAULT_DORMANT_BOUND;
  const slashConsistencyBound = options.slashConsistencyBound ?? DEFAULT_SLASH_CONSISTENCY_BOUND;
  const z = options.significance ?? DEFAULT_SIGNIFICANCE;
  const materiality = options.materiality ?? DEFAULT_MATERIALITY;
  const stratify = (options.standardError ?? DEFAULT_STANDARD_ERROR) === "stratified";
  checkOption("normBound", normBound, normBound >= 1);
  checkOption("consistencyBound", consistencyBound, consistencyBound <= 1);
  checkOption("slashNormBound", slashNormBound, slashNormBound >= 1);
  checkOption("dormantBound", dormantBound, dormantBound >= 0 && dormantBound <= 1);
  checkOption("slashConsistencyBound", slashConsistencyBound, slashConsistencyBound <= 1);
  checkOption("significance", z, z >= 0);
  checkOption("materiality", materiality, materiality >= 0 && Number.isFinite(materiality));

  const items = updates.map((u) => ("model" in u ? u : { model: u }));
  const models = items.map((u) => u.model);
  const weights = items.map((u) =>
    (options.weighting ?? "equal") === "samples" ? checkWeight(u.samples) : 1,
  );
  const n = models.length;
  const scores = new Array<number>(n).fill(0);
  const gains = new Array<number>(n).fill(Number.NEGATIVE_INFINITY);
  const standardErrors = new Array<number>(n).fill(0);
  const normRatios = new Array<number>(n).fill(0);
  const consistency = new Array<number>(n).fill(Number.NaN);
  const verdicts = models.map((u): Verdict => {
    if (!compatible(global, u)) return "incompatible";
    return equalsGlobal(global, u) ? "unchanged" : "kept";
  });
  verdicts.forEach((v, k) => {
    if (v === "unchanged") gains[k] = 0;
  });
  let live = verdicts.map((v, k) => (v === "kept" ? k : -1)).filter((k) => k >= 0);
  let evaluations = 0;
  const run = async (model: CanonicalModel): Promise<Evaluation> => {
    evaluations++;
    const e = await evaluate(model);
    return Number.isFinite(e.loss) ? e : { ...e, loss: Number.POSITIVE_INFINITY };
  };
  const result = (): ScoreResult => ({
    scores,
    verdicts,
    gains,
    standardErrors,
    normRatios,
    consistency,
    evaluations,
    rule,
  });
  if (live.length === 0) return result();

  if (rule === "step") {
    const step = options.step ?? 1 / n;
    checkOption("step", step, step > 0 && Number.isFinite(step));
    const base = (await run(global)).loss;
    for (const k of live)
      gains[k] = base - (await run(probeModel(global, models[k] as CanonicalModel, step))).loss;
    scoresFromGains(gains).forEach((s, k) => {
      scores[k] = s;
      if (verdicts[k] === "kept" && s === 0) verdicts[k] = "harmful";
    });
    return result();
  }

  // 2. Evidence of malice, on every changed update: what no honest training produced in the calibration
  //    runs (module doc), by a wide margin.
  const norms = live.map((k) => deltaNorm(global, models[k] as CanonicalModel));
  const median = medianOf(norms);
  live.forEach((k, j) => {
    normRatios[k] = median > 0 ? (norms[j] as number) / median : 1;
  });
  const start = await run(global);
  if (consistencyBound > Number.NEGATIVE_INFINITY || slashConsistencyBound > Number.NEGATIVE_INFINITY) {
    for (const k of live) consistency[k] = labelConsistency(await run(models[k] as CanonicalModel), start);
  }
  live = live.filter((k) => {
    if ((normRatios[k] as number) > slashNormBound) verdicts[k] = "extreme";
    else if ((consistency[k] as number) < slashConsistencyBound) verdicts[k] = "flipped";
    else return true;
    return false;
  });

  // 3. Exclusion screens: unpaid and left out of the aggregate, never slashed.
  const dormant = options.dormantInputs ?? [];
  live = live.filter((k) => {
    if ((normRatios[k] as number) > normBound) verdicts[k] = "norm";
    else if ((consistency[k] as number) < consistencyBound) verdicts[k] = "inconsistent";
    else if (dormantShare(global, models[k] as CanonicalModel, dormant) > dormantBound)
      verdicts[k] = "dormant";
    else return true;
    return false;
  });

  // 4. Marginal value, and the exclusion of significantly harmful updates (significance Infinity: none).
  const mean = (members: readonly number[]): CanonicalModel =>
    members.length === 0
      ? global
      : weightedMeanOfDeltas(
          global,
          members.map((k) => models[k] as CanonicalModel),
          members.map((k) => weights[k] as number),
        );
  let best = 0;
  while (live.length > 0) {
    const all = mean(live);
    const length = deltaNorm(global, all);
    const base = await run(all);
    const round: number[] = [];
    const withoutOne =
      live.length > 1
        ? leaveOneOutMeans(
            global,
            live.map((k) => models[k] as CanonicalModel),
            live.map((k) => weights[k] as number),
          )
        : () => global;
    for (const [j, k] of live.entries()) {
      let without = withoutOne(j);
      const part = deltaNorm(global, without);
      if (live.length > 1 && part > 0 && length > 0) without = probeModel(global, without, length / part);
      const e = await run(without);
      const gain = e.loss - base.loss;
      round.push(Number.isNaN(gain) ? Number.NEGATIVE_INFINITY : gain);
      standardErrors[k] = pairedStandardError(e.losses, base.losses, stratify ? base.labels : undefined);
    }
    round.forEach((g, j) => {
      gains[live[j] as number] = g;
    });
    best = Math.max(0, ...round.filter((g) => Number.isFinite(g)));
    const material = materiality * Math.max(0, start.loss - base.loss);
    // Every significantly harmful update leaves at once (removing them one at a time costs a pass each),
    // and the rest are scored again without them, never below one kept update.
    const harmful = Number.isFinite(z)
      ? round
          .map((g, j) => {
            const se = standardErrors[live[j] as number] as number;
            return g < -material && (se > 0 ? g < -z * se : g < 0) ? j : -1;
          })
          .filter((j) => j >= 0)
      : [];
    if (harmful.length === 0 || harmful.length === live.length) break;
    for (const j of harmful) verdicts[live[j] as number] = "harmful";
    live = live.filter((_, j) => !harmful.includes(j));
  }
  verdicts.forEach((v, k) => {
    if (v === "norm" || v === "inconsistent" || v === "dormant" || v === "harmful")
      scores[k] = SCORE_EXCLUDED;
  });
  for (const k of live) {
    const g = gains[k] as number;
    scores[k] =
      best > 0 && g > 0
        ? Math.max(SCORE_KEPT, Math.min(SCORE_MAX, Math.round((SCORE_MAX * g) / best)))
        : SCORE_KEPT;
  }
  return result();
}

/**
 * The input features (of `features` per sample, row-major) that are zero in every sample: a validator's
 * dormant inputs, which no honest gradient of data like its own moves.
 */
export function dormantInputsOf(x: ArrayLike<number>, samples: number, features: number): number[] {
  if (!Number.isSafeInteger(samples) || !Number.isSafeInteger(features) || x.length !== samples * features) {
    throw new RangeError(`dormantInputsOf: ${x.length} values are not ${samples} samples x ${features}`);
  }
  const used = new Uint8Array(features);
  for (let i = 0; i < x.length; i++) if (x[i] !== 0) used[i % features] = 1;
  const dormant: number[] = [];
  for (let f = 0; f < features; f++) if (used[f] === 0) dormant.push(f);
  return dormant;
}

/**
 * The share, by norm, of an update's change to the first tensor ([inputs, units]) that falls on the rows
 * of the given inputs: 0 when the first tensor did not change.
 */
export function dormantShare(
  global: CanonicalModel,
  update: CanonicalModel,
  inputs: readonly number[],
): number {
  if (inputs.length === 0) return 0;
  const first = global.tensors[0];
  if (first?.shape.length !== 2) return 0;
  const units = first.shape[1] as number;
  const g = first.ints;
  const u = (update.tensors[0] as QuantizedTensor).ints;
  let total = 0;
  for (let i = 0; i < g.length; i++) total += ((u[i] as number) - (g[i] as number)) ** 2;
  if (total === 0) return 0;
  let on = 0;
  for (const row of inputs) {
    for (let j = row * units; j < (row + 1) * units && j < g.length; j++)
      on += ((u[j] as number) - (g[j] as number)) ** 2;
  }
  return Math.sqrt(on / total);
}

function checkScore(s: number): void {
  if (!Number.isInteger(s) || s < 0 || s > SCORE_MAX) {
    throw new RangeError(`Score ${s} is not an integer from 0 to ${SCORE_MAX}`);
  }
}

/** The lower median of scores, as LearningTasks takes it (finalize.ts's lowerMedian). */
export function medianScore(scores: readonly number[]): number {
  if (scores.length === 0) throw new RangeError("medianScore of no scores");
  for (const s of scores) checkScore(s);
  return lowerMedian(scores);
}

/** Per update, the median of the validators' scores; matrix[v][k] is validator v's score of update k. */
export function consensusScores(matrix: readonly (readonly number[])[]): number[] {
  if (matrix.length === 0) throw new RangeError("consensusScores: no validators");
  const n = (matrix[0] as readonly number[]).length;
  for (const row of matrix) {
    if (row.length !== n) throw new RangeError(`consensusScores: rows of ${row.length} and ${n} scores`);
  }
  return Array.from({ length: n }, (_, k) => medianScore(matrix.map((row) => row[k] as number)));
}

/** Whether each consensus score reaches the threshold. */
export function acceptUpdates(consensus: readonly number[], threshold = DEFAULT_ACCEPT_THRESHOLD): boolean[] {
  checkScore(threshold);
  return consensus.map((s) => s >= threshold);
}
