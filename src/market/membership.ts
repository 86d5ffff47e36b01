/**
 * Membership inference by loss threshold (Yeom, Giacomelli, Fredrikson & Jha 2018, "Privacy Risk in
 * Machine Learning: Analyzing the Connection to Overfitting", adversary 2): a record is guessed to be in
 * the training set when the model's loss on it is at most a threshold, the model's mean training loss,
 * which the attacker is assumed to know. The attack's advantage is TPR - FPR: 0 is chance, 1 is certain
 * membership. For an epsilon-DP training, the paper's Theorem 1 bounds it by e^epsilon - 1. Pure.
 */

/** Probabilities below this count as it, so that a confident mistake has a finite loss. */
const PROBABILITY_FLOOR = 1e-7;

/** Cross-entropy of each row: -ln p(true class), from row-major class probabilities. */
export function perSampleLoss(probabilities: ArrayLike<number>, labels: ArrayLike<number>): Float64Array {
  const n = labels.length;
  const classes = probabilities.length / n;
  if (!Number.isInteger(classes) || classes < 2)
    throw new RangeError(`${probabilities.length} probabilities do not make rows of ${n} labels`);
  const losses = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = probabilities[i * classes + (labels[i] as number)] as number;
    losses[i] = -Math.log(Math.max(p, PROBABILITY_FLOOR));
  }
  return losses;
}

export interface AttackOutcome {
  threshold: number;
  /** Members guessed members. */
  tpr: number;
  /** Non-members guessed members. */
  fpr: number;
  /** tpr - fpr. */
  advantage: number;
}

const mean = (xs: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i] as number;
  return s / xs.length;
};

/** The attack with the given threshold (default: the members' mean loss, Yeom's choice). */
export function lossThresholdAttack(
  memberLosses: ArrayLike<number>,
  nonMemberLosses: ArrayLike<number>,
  threshold = mean(memberLosses),
): AttackOutcome {
  if (memberLosses.length === 0 || nonMemberLosses.length === 0)
    throw new RangeError("the attack needs members and non-members");
  const share = (xs: ArrayLike<number>) => {
    let guessed = 0;
    for (let i = 0; i < xs.length; i++) if ((xs[i] as number) <= threshold) guessed++;
    return guessed / xs.length;
  };
  const tpr = share(memberLosses);
  const fpr = share(nonMemberLosses);
  return { threshold, tpr, fpr, advantage: tpr - fpr };
}
