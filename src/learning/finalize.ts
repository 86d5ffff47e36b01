/**
 * The settlement of a federated-learning round, mirrored exactly from `LearningTasks.finalize`
 * (contracts/LearningTasks.sol, run by its LearningSettlement extension). Pure: no I/O; the hashes use viem's
 * keccak256 and ABI encoding, as the contract does. Amounts are bigints with the contract's floor division.
 *
 * The rules, in the contract's order:
 *  1. Updates are the committed trainers' updates in the task's trainer order (`trainersOf`); scores are
 *     integers in [0, SCORE_SCALE], one per update, from every validator that revealed.
 *  2. The round is scored only if the revealing validators hold more than half of the active validators'
 *     stake; otherwise every committed update is void (neither paid nor slashed), and revealing validators
 *     get no weight.
 *  3. An update's consensus score is the stake-weighted median of the revealed scores: the least score c with
 *     more than half of the revealed stake at or below it. When the stake strictly below c is exactly half
 *     (an even split), no score has a strict majority on both sides and the update is void: neither paid nor
 *     slashed, and left out of the round's median and of the validators' distances.
 *  4. The round's median is the lower median of the consensus scores of the updates that are not void. Three
 *     tiers follow from an update's consensus c:
 *       rejected  c == 0: more than half of the revealed stake scored it 0, the only evidence of malice that
 *                 slashes; unpaid and not aggregated;
 *       accepted  c >= SCORE_KEPT (2), c >= minScore and c * 10_000 >= relativeBps * roundMedian: aggregated
 *                 and paid by rule 5;
 *       excluded  any other c (1 and up, under that bar): unpaid, NOT slashed, not aggregated, since an honest
 *                 update on skewed data may add too little to keep.
 *     Rejected updates' trainers and no-shows (active trainers that did not commit) lose
 *     floor(stake * slashBps / 10_000); no-shows are slashed in every round.
 *  5. The validators' pool is floor(pool * 2_000 / 10_000); the trainers' pot is the rest plus the trainers'
 *     slashes, and each accepted update gets floor(pot * (c - 2) / sum of accepted (c - 2)): a score of 2
 *     (SCORE_KEPT) is accepted but unpaid, an update that adds nothing measurable (0 when that sum is 0).
 *  6. A revealing validator's weight is max(0, SCORE_SCALE - 4 * floor(sum |s_i - c_i| / m)) over the m
 *     updates that are not void (SCORE_SCALE when m = 0); active validators that did not reveal lose the
 *     slash fraction of their stake, added to the validators' pot, which is shared as floor(pot * w / sum w).
 *     With no update committed, validators are excused (nothing to score).
 *  7. A pot nobody is paid from (its sum is zero) refunds its pool part to the task's pool and burns its
 *     slashes; otherwise its rounding dust is burned. Slashes never go to the creator.
 */
import { type Address, encodeAbiParameters, encodePacked, type Hex, keccak256 } from "viem";
import { BPS, slashAmount } from "../chain/bps.ts";

/** Scores are integers from 0 to SCORE_SCALE (1.0). */
export const SCORE_SCALE = 10_000;
/**
 * The consensus score of an update left out without blame (unpaid, not slashed, not aggregated): any consensus
 * from here up to the acceptance bar excludes; only 0 slashes.
 */
export const SCORE_EXCLUDED = 1;
/**
 * The least score of an accepted update, which is paid for its score above this one: a kept update adding
 * nothing earns nothing.
 */
export const SCORE_KEPT = 2;
/** The validators' fraction of a round's pool, in basis points. */
export const VALIDATOR_SHARE_BPS = 2_000n;
/** A validator's weight falls by this many points per point of mean distance from consensus. */
export const AGREEMENT_GAIN = 4;
/** uint16 scores per packed uint256 word. */
export const SCORES_PER_WORD = 16;

export class SettlementInputError extends Error {
  override name = "SettlementInputError";
}

export interface TrainerInput {
  address: Address;
  /** The stake just before finalization. */
  stake: bigint;
  /** False for a trainer that left the task: it is skipped. Default true. */
  active?: boolean;
  /** Its committed update's digest; undefined for a no-show. */
  digest?: Hex;
}

export interface ValidatorInput {
  address: Address;
  stake: bigint;
  /** False for a validator that left the task: it is skipped. Default true. */
  active?: boolean;
  /** Its revealed scores, one per committed update in trainer order; undefined if it did not reveal. */
  scores?: readonly number[];
}

export interface RoundSettlementInput {
  /** Every trainer of the task, in the task's order (`trainersOf`). */
  trainers: readonly TrainerInput[];
  /** Every validator of the task, in the task's order (`validatorsOf`). */
  validators: readonly ValidatorInput[];
  /** The round's reward pool. */
  pool: bigint;
  slashBps: number | bigint;
  /** Least accepted consensus score, of SCORE_SCALE. */
  minScore: number;
  /** Least accepted consensus score relative to the round's median, in basis points. */
  relativeBps: number;
}

/**
 * A trainer's tier in a round: "rejected" (consensus 0) and "no-show" are slashed; "excluded" (consensus at
 * least SCORE_EXCLUDED, under the acceptance bar) and "void" (no consensus) are neither paid nor slashed.
 */
export type TrainerStatus = "accepted" | "excluded" | "rejected" | "no-show" | "void";
export type ValidatorStatus = "revealed" | "silent" | "excused";

/** One per active trainer, in order: what the contract's `TrainerSettled` event says. */
export interface TrainerOutcome {
  address: Address;
  status: TrainerStatus;
  committed: boolean;
  /** The update's consensus score (0 for a no-show or a void update). */
  score: number;
  accepted: boolean;
  reward: bigint;
  slashed: bigint;
}

/**
 * A trainer's tier read from its `TrainerSettled` event. A rejected update and a void one both carry a score
 * of 0 and differ only by their slash, so a rejection whose slash rounds to 0 (slashBps 0, or a stake below
 * 10_000 / slashBps wei) reads as "void": the two are then settled alike, neither paid nor slashed.
 */
export function trainerStatusOf(e: {
  committed: boolean;
  score: number;
  accepted: boolean;
  slashed: bigint;
}): TrainerStatus {
  if (!e.committed) return "no-show";
  if (e.accepted) return "accepted";
  if (e.score >= SCORE_EXCLUDED) return "excluded";
  return e.slashed > 0n ? "rejected" : "void";
}

/** One per active validator, in order: what the contract's `ValidatorSettled` event says. */
export interface ValidatorOutcome {
  address: Address;
  status: ValidatorStatus;
  revealed: boolean;
  weight: number;
  reward: bigint;
  slashed: bigint;
}

export interface RoundSettlement {
  /** Committed updates. */
  updates: number;
  /** Validators that revealed. */
  revealed: number;
  /** Whether the revealing validators held more than half of the active validators' stake. */
  scored: boolean;
  /**
   * Consensus score per committed update, in trainer order; null for an update void by a split (empty when
   * the round is not scored).
   */
  consensus: (number | null)[];
  roundMedian: number;
  trainers: TrainerOutcome[];
  validators: ValidatorOutcome[];
  /** Trainers whose updates were accepted, in order. */
  accepted: Address[];
  /** keccak256(abi.encode(address[] accepted, bytes32[] digests)); zero when nothing was accepted. */
  contributorsHash: Hex;
  trainerPot: bigint;
  validatorPot: bigint;
  /** The pool part of pots nobody was paid from: back to the task's pool. */
  refunded: bigint;
  /** The slashes of pots nobody was paid from, and rounding dust: kept by the contract for good. */
  burned: bigint;
}

export const ZERO_HASH: Hex = `0x${"0".repeat(64)}`;

const ascending = (a: number, b: number): number => a - b;

/** Element (k - 1) / 2 of the sorted values: the lower median. */
export function lowerMedian(values: readonly number[]): number {
  if (values.length === 0) throw new SettlementInputError("the median of nothing");
  const sorted = [...values].sort(ascending);
  return sorted[(sorted.length - 1) >> 1] as number;
}

/** A revealing validator's agreement weight, given its mean distance from consensus (floored). */
export function agreementWeight(meanDistance: number): number {
  const penalty = meanDistance * AGREEMENT_GAIN;
  return penalty >= SCORE_SCALE ? 0 : SCORE_SCALE - penalty;
}

function checkScore(score: number, where: string): void {
  if (!Number.isInteger(score) || score < 0 || score > SCORE_SCALE) {
    throw new SettlementInputError(
      `${where}: a score must be an integer from 0 to ${SCORE_SCALE}, got ${score}`,
    );
  }
}

/** Packs scores 16 per word: score i in bits [16 * (i % 16), 16 * (i % 16) + 16) of word i / 16. */
export function packScores(scores: readonly number[]): bigint[] {
  const words = new Array<bigint>(Math.ceil(scores.length / SCORES_PER_WORD)).fill(0n);
  scores.forEach((score, i) => {
    checkScore(score, `score ${i}`);
    const w = Math.floor(i / SCORES_PER_WORD);
    words[w] = (words[w] as bigint) | (BigInt(score) << BigInt(16 * (i % SCORES_PER_WORD)));
  });
  return words;
}

/** The first `n` scores of packed words. */
export function unpackScores(words: readonly bigint[], n: number): number[] {
  return Array.from({ length: n }, (_, i) => {
    const word = words[Math.floor(i / SCORES_PER_WORD)] ?? 0n;
    return Number((word >> BigInt(16 * (i % SCORES_PER_WORD))) & 0xffffn);
  });
}

/** `LearningTasks.REVEAL_PAGE_WORDS`: packed score words per `revealScores` page (4,096 scores). */
export const REVEAL_PAGE_WORDS = 256;

/** The pages a validator reveals, in order: REVEAL_PAGE_WORDS words each, the last one shorter. */
export function scorePages(words: readonly bigint[]): bigint[][] {
  const pages: bigint[][] = [];
  for (let from = 0; from < words.length; from += REVEAL_PAGE_WORDS) {
    pages.push(words.slice(from, from + REVEAL_PAGE_WORDS));
  }
  return pages;
}

/**
 * `LearningTasks.scoreCommitment`: keccak256(abi.encode(taskId, round, validator, chain, salt)), where chain =
 * keccak256(abi.encodePacked(chain, page)) from zero over the reveal pages.
 */
export function scoreCommitment(
  taskId: bigint,
  round: number,
  validator: Address,
  words: readonly bigint[],
  salt: Hex,
): Hex {
  let chain: Hex = ZERO_HASH;
  for (const page of scorePages(words))
    chain = keccak256(encodePacked(["bytes32", "uint256[]"], [chain, page]));
  return keccak256(
    encodeAbiParameters(
      [
        { type: "uint256" },
        { type: "uint32" },
        { type: "address" },
        { type: "bytes32" },
        { type: "bytes32" },
      ],
      [taskId, round, validator, chain, salt],
    ),
  );
}

/**
 * The contributors' hash a round records (and the registry's dataset entry of its aggregate): the chain
 * h = keccak256(abi.encode(h, trainer, digest)) from zero over the accepted updates in trainer order, so that
 * the contract builds it page by page.
 */
export function contributorsHash(trainers: readonly Address[], digests: readonly Hex[]): Hex {
  let h: Hex = ZERO_HASH;
  trainers.forEach((trainer, i) => {
    h = keccak256(
      encodeAbiParameters(
        [{ type: "bytes32" }, { type: "address" }, { type: "bytes32" }],
        [h, trainer, digests[i] as Hex],
      ),
    );
  });
  return h;
}

/** The registry `trainingRun` of a round's aggregate: the task contract ++ uint64 taskId ++ uint32 round. */
export function trainingRunOf(contract: Address, taskId: bigint, round: number): Hex {
  return `0x${contract.slice(2).toLowerCase()}${taskId.toString(16).padStart(16, "0")}${round
    .toString(16)
    .padStart(8, "0")}` as Hex;
}

/**
 * The stake-weighted median with a strict majority on both sides: the least score with more than half of
 * the total stake at or below it, or null when the stake below that score is exactly half (an even split).
 */
export function weightedConsensus(votes: readonly { score: number; stake: bigint }[]): number | null {
  if (votes.length === 0) throw new SettlementInputError("the consensus of nothing");
  const total = votes.reduce((sum, v) => sum + v.stake, 0n);
  const sorted = [...votes].sort((a, b) => a.score - b.score);
  let cum = 0n;
  let below = 0n;
  let last = -1;
  for (const v of sorted) {
    if (v.score !== last) {
      below = cum;
      last = v.score;
    }
    cum += v.stake;
    if (cum * 2n > total) return below * 2n === total ? null : v.score;
  }
  throw new SettlementInputError("no score holds a majority of zero stake");
}

/** Exactly what `LearningTasks.finalize` credits, slashes, refunds, burns and records for one round. */
export function settleRound(input: RoundSettlementInput): RoundSettlement {
  const { pool, slashBps, minScore, relativeBps } = input;
  const trainers = input.trainers.filter((t) => t.active !== false);
  const validators = input.validators.filter((v) => v.active !== false);
  const committed = trainers.filter((t) => t.digest !== undefined);
  const n = committed.length;
  const revealing = n === 0 ? [] : validators.filter((v) => v.scores !== undefined);
  for (const v of revealing) {
    const scores = v.scores as readonly number[];
    if (scores.length !== n) {
      throw new SettlementInputError(
        `validator ${v.address} revealed ${scores.length} scores for ${n} updates`,
      );
    }
    scores.forEach((s, i) => {
      checkScore(s, `validator ${v.address}, update ${i}`);
    });
  }
  const activeStake = validators.reduce((sum, v) => sum + v.stake, 0n);
  const revealedStake = revealing.reduce((sum, v) => sum + v.stake, 0n);
  const scored = n > 0 && revealedStake * 2n > activeStake;

  // Consensus per update, and each revealing validator's summed distance from it (scored updates only).
  const consensus: (number | null)[] = [];
  const distance = new Map<ValidatorInput, number>(revealing.map((v) => [v, 0]));
  if (scored) {
    for (let i = 0; i < n; i++) {
      const c = weightedConsensus(
        revealing.map((v) => ({ score: (v.scores as readonly number[])[i] as number, stake: v.stake })),
      );
      consensus.push(c);
      if (c === null) continue;
      for (const v of revealing) {
        const s = (v.scores as readonly number[])[i] as number;
        distance.set(v, (distance.get(v) as number) + Math.abs(s - c));
      }
    }
  }
  const decided = consensus.filter((c): c is number => c !== null);
  const roundMedian = decided.length > 0 ? lowerMedian(decided) : 0;
  const threshold = BigInt(relativeBps) * BigInt(roundMedian);

  // Trainers: acceptance and slashes.
  const scoreOf = new Map<TrainerInput, number | null>(committed.map((t, i) => [t, consensus[i] ?? null]));
  let trainerSlashes = 0n;
  let sumAccepted = 0n;
  const statusOf = new Map<TrainerInput, TrainerStatus>();
  for (const t of trainers) {
    let status: TrainerStatus;
    const c = scoreOf.get(t);
    if (t.digest === undefined) status = "no-show";
    else if (!scored || c === null || c === undefined) status = "void";
    else if (c === 0) status = "rejected";
    else {
      const ok = c >= SCORE_KEPT && c >= minScore && BigInt(c) * BPS >= threshold;
      status = ok ? "accepted" : "excluded";
      if (ok) sumAccepted += BigInt(c - SCORE_KEPT);
    }
    statusOf.set(t, status);
    if (status === "no-show" || status === "rejected") trainerSlashes += slashAmount(t.stake, slashBps);
  }

  // Validators: weights and slashes.
  let validatorSlashes = 0n;
  let sumWeight = 0n;
  const weightOf = new Map<ValidatorInput, number>();
  const vStatusOf = new Map<ValidatorInput, ValidatorStatus>();
  for (const v of validators) {
    let status: ValidatorStatus;
    if (n === 0) status = "excused";
    else if (v.scores !== undefined) {
      status = "revealed";
      if (scored) {
        const mean = decided.length === 0 ? 0 : Math.floor((distance.get(v) as number) / decided.length);
        const w = agreementWeight(mean);
        weightOf.set(v, w);
        sumWeight += BigInt(w);
      }
    } else {
      status = "silent";
      validatorSlashes += slashAmount(v.stake, slashBps);
    }
    vStatusOf.set(v, status);
  }

  const validatorPool = (pool * VALIDATOR_SHARE_BPS) / BPS;
  const trainerPool = pool - validatorPool;
  const trainerPot = trainerPool + trainerSlashes;
  const validatorPot = validatorPool + validatorSlashes;

  let paid = 0n;
  const accepted: Address[] = [];
  const digests: Hex[] = [];
  const trainerOutcomes: TrainerOutcome[] = trainers.map((t) => {
    const status = statusOf.get(t) as TrainerStatus;
    const score = status === "no-show" || status === "void" ? 0 : (scoreOf.get(t) as number);
    let reward = 0n;
    let slashed = 0n;
    if (status === "accepted") {
      if (sumAccepted > 0n) reward = (trainerPot * BigInt(score - SCORE_KEPT)) / sumAccepted;
      paid += reward;
      accepted.push(t.address);
      digests.push(t.digest as Hex);
    } else if (status === "rejected" || status === "no-show") {
      slashed = slashAmount(t.stake, slashBps);
    }
    return {
      address: t.address,
      status,
      committed: status !== "no-show",
      score,
      accepted: status === "accepted",
      reward,
      slashed,
    };
  });

  let vPaid = 0n;
  const validatorOutcomes: ValidatorOutcome[] = validators.map((v) => {
    const status = vStatusOf.get(v) as ValidatorStatus;
    const weight = weightOf.get(v) ?? 0;
    let reward = 0n;
    let slashed = 0n;
    if (status === "revealed") {
      if (sumWeight !== 0n) reward = (validatorPot * BigInt(weight)) / sumWeight;
      vPaid += reward;
    } else if (status === "silent") {
      slashed = slashAmount(v.stake, slashBps);
    }
    return { address: v.address, status, revealed: status === "revealed", weight, reward, slashed };
  });

  let refunded = 0n;
  let burned = 0n;
  for (const [potPool, slashes, sum, spent] of [
    [trainerPool, trainerSlashes, sumAccepted, paid],
    [validatorPool, validatorSlashes, sumWeight, vPaid],
  ] as const) {
    if (sum === 0n) {
      refunded += potPool;
      burned += slashes;
    } else burned += potPool + slashes - spent;
  }

  return {
    updates: n,
    revealed: revealing.length,
    scored,
    consensus,
    roundMedian,
    trainers: trainerOutcomes,
    validators: validatorOutcomes,
    accepted,
    contributorsHash: contributorsHash(accepted, digests),
    trainerPot,
    validatorPot,
    refunded,
    burned,
  };
}
