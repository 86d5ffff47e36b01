import { parseEther, type TransactionReceipt } from "viem";
import { connect } from "../src/chain/connect.ts";
import {
  type Actor,
  BASE_PARAMS,
  deployLearning,
  devActor,
  digestOf,
  keyActor,
  type LearningFixture,
  learningFixture,
  syntheticScores,
  TRAINER,
  VALIDATOR,
} from "../test/contracts/learning-fixture.ts";
import type { Figures } from "./results-file.ts";

/** Trainer counts measured; the contract takes at most 10,000 trainers per task (MAX_TRAINERS_CAP). */
const SIZES = [10, 50, 100, 1000, 10_000] as const;
/** Sizes whose largest single transaction is reported (`gas.fl.max_tx.n<size>`, issue 9: under 10M). */
const MAX_TX_SIZES: readonly number[] = [1000, 10_000];
/** The largest size's 10,000 claims would add minutes and nothing new: its claims are not measured. */
const CLAIM_SIZES: readonly number[] = [10, 50, 100, 1000];
const VALIDATORS = 3;
/** Attestations sent: with equal stakes, 2 of 3 validators hold 66.7 % of the revealed stake. */
const QUORUM = 2;
/** The aggregate quorum as a share of the revealed stake: 2 of the 3 equal validators reach it. */
const QUORUM_BPS = 6_000;
const TRAINER_STAKE = parseEther("10");
const VALIDATOR_STAKE = parseEther("20");

/** EIP-7825 (Osaka): no transaction may ask for more gas; the embedded chain runs Prague, without it. */
const OSAKA_TX_GAS_CAP = 2 ** 24;

const log = (line: string) => process.stderr.write(`  [fl gas] ${line}\n`);
// Gas in numbers: a round's is far below 2^53, and figures are numbers.
const gas = (r: TransactionReceipt) => Number(r.gasUsed);
const sum = (receipts: readonly TransactionReceipt[]) => receipts.reduce((s, r) => s + gas(r), 0);
const max = (receipts: readonly TransactionReceipt[]) => Math.max(...receipts.map(gas));
const within = (value: number, target: number) => `${value} ${value <= target ? "<=" : "OVER"} ${target}`;

/**
 * Gas of LearningTasks rounds on a fresh embedded chain, with 3 validators and 2 attesting, for 10, 50, 100,
 * 1000 and 10,000 trainers, each in a task of its own: one trainer's commit, one validator's score commit and
 * largest reveal page, the finalize (the sum of its steps, alone and, up to 1000 trainers, with every rewarded
 * trainer's claim), the aggregate (proposal and the attestations up to quorum, with the registry's new
 * version), the whole round, and (`gas.fl.max_tx.n1000`, `.n10000`) the largest single transaction of the
 * round: start, commits, score commits, reveal pages, finalize steps, aggregate. Receipts' gasUsed, so the
 * 21k base and calldata included. Scores are synthetic: one update in five rejected.
 */
export async function benchLearningGas(): Promise<Figures> {
  const chain = await connect({ ephemeral: true });
  try {
    const env = await deployLearning(chain);
    const fx = learningFixture(() => env);
    const treasury = devActor(chain, 0, "treasury");
    const owner = devActor(chain, 1, "owner");
    const largest = SIZES[SIZES.length - 1] as number;
    const trainers = Array.from({ length: largest }, (_, i) => keyActor(chain, `bench-t${i}`));
    const validators = Array.from({ length: VALIDATORS }, (_, j) => keyActor(chain, `bench-v${j}`));
    log(`funding ${largest} trainers and ${VALIDATORS} validators`);
    // Enough for a stake in every task, and the owner's rewards.
    await fx.fund(treasury, [...trainers, ...validators, owner], parseEther("1000"));
    const modelId = await fx.registerModel(owner, "fl-gas-model");
    await fx.registryTx(owner, "setApprovalForAll", [env.tasks, true]);
    const blockGasLimit = Number((await chain.publicClient.getBlock()).gasLimit);

    const figures: Figures = {};
    const finalizeGas = new Map<number, number>();
    const revealGas = new Map<number, number>();
    for (const n of SIZES) {
      const id = await fx.createTask(owner, {
        ...BASE_PARAMS,
        modelId: Number(modelId),
        rounds: 1,
        quorumBps: QUORUM_BPS,
        maxTrainers: n,
        maxValidators: VALIDATORS,
        commitWindow: 80,
        scoreWindow: 10,
        revealWindow: 10,
        minScore: 0,
      });
      const members = trainers.slice(0, n);
      await fx.joinAll(id, members, TRAINER, TRAINER_STAKE);
      await fx.joinAll(id, validators, VALIDATOR, VALIDATOR_STAKE);
      const played = await fx.playRound(id, owner, members, validators, syntheticScores(VALIDATORS, n));
      // Every finalize step until the round settles (one for the small rounds): `finalize` is their sum.
      const steps = (await fx.finalizeAll(id, played.round, owner)).steps;
      const finalize = sum(steps);
      const aggregateTxs = await proposeAndAttest(fx, id, played.round, validators.slice(0, QUORUM));
      const aggregate = sum(aggregateTxs);
      const claims = CLAIM_SIZES.includes(n) ? await fx.claimAll(id, members) : [];
      const maxTx = max([
        played.start,
        ...played.commits,
        ...played.scoreCommits,
        ...played.reveals,
        ...steps,
        ...aggregateTxs,
      ]);
      const [commit, reveal] = [max(played.commits), max(played.reveals)];
      const round =
        gas(played.start) +
        sum(played.commits) +
        sum(played.scoreCommits) +
        sum(played.reveals) +
        finalize +
        aggregate;
      log(
        `${n} trainers: commit ${commit}, reveal ${reveal} (largest page), finalize ${finalize} in ` +
          `${steps.length} steps (largest ${max(steps)}), largest transaction of the round ${maxTx}, ` +
          `(${((100 * finalize) / blockGasLimit).toFixed(1)}% of the block gas limit, ${blockGasLimit}), ` +
          `${claims.length} claims ${sum(claims)}, round ${round}`,
      );
      if (maxTx > OSAKA_TX_GAS_CAP) {
        log(`${n} trainers: a transaction is over the ${OSAKA_TX_GAS_CAP} gas one may use from Osaka on`);
      }
      if (MAX_TX_SIZES.includes(n)) figures[`gas.fl.max_tx.n${n}`] = maxTx;
      finalizeGas.set(n, finalize);
      revealGas.set(n, reveal);
      // Commit, score commit and aggregate do not grow with the trainers: the smallest task's are the headline.
      if (n === SIZES[0]) {
        figures["gas.fl.commit"] = commit;
        figures["gas.fl.score_commit"] = max(played.scoreCommits);
        figures["gas.fl.aggregate"] = aggregate;
      } else {
        figures[`gas.fl.commit.n${n}`] = commit;
      }
      figures[`gas.fl.reveal.n${n}`] = reveal;
      figures[`gas.fl.finalize.n${n}`] = finalize;
      const finalizePerTrainer = Math.round(finalize / n);
      const withClaimsPerTrainer = Math.round((finalize + sum(claims)) / n);
      figures[`gas.fl.finalize_per_trainer.n${n}`] = finalizePerTrainer;
      if (CLAIM_SIZES.includes(n))
        figures[`gas.fl.finalize_plus_claims_per_trainer.n${n}`] = withClaimsPerTrainer;
      figures[`gas.fl.round.n${n}`] = round;
      figures[`gas.fl.round_per_trainer.n${n}`] = Math.round(round / n);
      // Targets of test/contracts/learning-tasks.test.ts: a reveal page (4,096 scores at most) and its
      // DELEGATECALL; finalize's steps summed.
      log(
        `${n} trainers, targets: commit ${within(commit, 70_000)}, reveal ${within(reveal, 70_000 + 2_000 * Math.min(n, 4_096))}, ` +
          `finalize per trainer ${within(finalizePerTrainer, 42_000)} ` +
          `(with the claims ${within(withClaimsPerTrainer, 40_000)})`,
      );
    }
    // Growth between the smallest and the 100-trainer task: what each extra update or trainer costs.
    const [from, to] = [SIZES[0], 100] as const;
    const marginal = (gasBySize: Map<number, number>) =>
      Math.round(((gasBySize.get(to) as number) - (gasBySize.get(from) as number)) / (to - from));
    figures["gas.fl.reveal.per_update"] = marginal(revealGas);
    figures["gas.fl.finalize.marginal_per_trainer"] = marginal(finalizeGas);
    log(
      `growth ${from} -> ${to} trainers: reveal +${figures["gas.fl.reveal.per_update"]} per update, ` +
        `finalize +${figures["gas.fl.finalize.marginal_per_trainer"]} per trainer`,
    );
    return figures;
  } finally {
    await chain.close();
  }
}

/** The first validator proposes the aggregate's digest; the next ones attest it, the last reaching quorum. */
async function proposeAndAttest(
  fx: LearningFixture,
  id: bigint,
  round: number,
  voters: readonly Actor[],
): Promise<TransactionReceipt[]> {
  const digest = digestOf(`aggregate:${id}:${round}`);
  const receipts: TransactionReceipt[] = [];
  for (const [i, v] of voters.entries()) {
    receipts.push(await fx.send(v, i === 0 ? "proposeAggregate" : "attestAggregate", [id, round, digest]));
  }
  return receipts;
}
