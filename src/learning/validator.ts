/**
 * A validator of a LearningTasks task, as a resumable step machine: `step()` reads the chain state of the
 * task's latest round and does what is due, idempotently.
 *
 *  - ScoreCommit: fetches every committed update by digest and scores it on its own held-out data
 *    (scoring.ts). Bytes that do not hash to the digest, an envelope (envelope.ts) that names another
 *    trainer, task or round than its commit (a copied digest, a replay), bytes that are no canonical model,
 *    a model of another architecture and a blob never published score 0, with the reason recorded. Missing blobs are
 *    waited for until the last blocks of the window (one per validator), then scored 0; a try at fetching
 *    them that took k blocks (a holder that stalls) ends the wait k blocks earlier, so that the last try
 *    ends before those blocks. The scores and a fresh random salt are written to its own store BEFORE
 *    `commitScores` is sent: a restart reveals what was committed, never a rescoring.
 *  - Reveal: reveals the stored scores with the stored salt.
 *  - Aggregate: recomputes the aggregate of the accepted updates (aggregator.ts `roundAggregate`) and
 *    attests a proposal only if its digest equals its own; a different digest is refused, and recorded.
 */
import { randomBytes } from "node:crypto";
import { type Address, type Hex, toHex } from "viem";
import { type CanonicalModel, sameArchitecture } from "../ml/encoding.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { type AggregationSpec, roundAggregate } from "./aggregator.ts";
import {
  addressOf,
  attestAggregate,
  commitScores,
  fetchTrainerUpdate,
  fetchVersionModel,
  getProposals,
  isRefusal,
  MEMBER_ACTIVE,
  memberOf,
  type RoleAction,
  type RoleStepResult,
  type RoleStore,
  type RoundSnapshot,
  revealScores,
  roundUpdates,
  type Signer,
  scoresOf,
  snapshotOf,
  type Tasks,
  validatorsOf,
} from "./client.ts";
import { packScores, scoreCommitment, ZERO_HASH } from "./finalize.ts";
import { type ModelEvaluator, type ScoreOptions, scoreUpdates } from "./scoring.ts";

export interface ValidatorOptions extends AggregationSpec {
  tasks: Tasks;
  taskId: bigint;
  signer: Signer;
  store: BlobStore;
  own: RoleStore;
  /** Evaluates a model on the validator's held-out data. */
  evaluate: ModelEvaluator;
  scoring?: ScoreOptions;
}

type ValidatorStatus = "committing" | "committed" | "revealed" | "missed";

/** What a validator keeps per round (its own store). */
export interface ValidatorRecord {
  status: ValidatorStatus;
  /** The digests scored, in the round's order. */
  digests: Hex[];
  scores: number[];
  /** Why an update scored 0 without evaluation (or scoring.ts's verdict), per update. */
  reasons: string[];
  salt: Hex;
  /** The aggregate digest it attested (or proposed), once it voted. */
  voted?: Hex;
  /** Proposed digests it refused to attest. */
  refused?: Hex[];
}

export class Validator {
  readonly address: Address;
  private readonly o: ValidatorOptions;

  constructor(options: ValidatorOptions) {
    this.o = options;
    this.address = addressOf(options.tasks.chain, options.signer);
  }

  private key(round: number): string {
    return `validator-${this.o.taskId}-${round}`;
  }

  /** The validator's record of a round (scores, reasons, salt, vote). */
  record(round: number): ValidatorRecord | undefined {
    return this.o.own.get<ValidatorRecord>(this.key(round));
  }

  private save(round: number, record: ValidatorRecord): void {
    this.o.own.set(this.key(round), record);
  }

  private action(kind: RoleAction["kind"], round: number, gasUsed = 0n, reason?: string): RoleAction {
    return { kind, role: "validator", account: this.address, round, gasUsed, ...(reason ? { reason } : {}) };
  }

  async step(snapshot?: RoundSnapshot): Promise<RoleStepResult> {
    const snap = snapshot ?? (await snapshotOf(this.o.tasks, this.o.taskId));
    const info = snap.info;
    if (!info) return { actions: [] };
    const round = snap.round;
    let record = this.record(round);
    switch (info.phase) {
      case "ScoreCommit": {
        if (record && record.status !== "committing") return { actions: [] };
        if (!record) {
          // Checked before scoring, which would be wasted on a commitment the contract refuses.
          const member = await memberOf(this.o.tasks, snap.taskId, "validator", this.address);
          const unable =
            info.commits === 0
              ? "no update was committed: nothing to score (validators are excused)"
              : member.status !== MEMBER_ACTIVE
                ? `not an active validator of task ${snap.taskId}: join it between rounds`
                : member.stake < snap.params.minValidatorStake
                  ? `stake ${member.stake} below the task's minimum ${snap.params.minValidatorStake} (slashed): add stake with join between rounds`
                  : undefined;
          if (unable) {
            this.save(round, { status: "missed", digests: [], scores: [], reasons: [], salt: ZERO_HASH });
            return { actions: [this.action("refuse", round, 0n, unable)] };
          }
          const scored = await this.score(snap);
          if ("waitingFor" in scored) return { actions: [], waitingFor: scored.waitingFor };
          record = scored;
          this.save(round, record);
        }
        let gasUsed = 0n;
        try {
          const words = packScores(record.scores);
          const commitment = scoreCommitment(snap.taskId, round, this.address, words, record.salt);
          gasUsed = (await commitScores(this.o.tasks, snap.taskId, round, commitment, this.o.signer)).gasUsed;
        } catch (err) {
          if (!isRefusal(err, "AlreadyCommitted")) throw err;
        }
        this.save(round, { ...record, status: "committed" });
        return { actions: [this.action("scoreCommit", round, gasUsed)] };
      }
      case "Reveal": {
        if (!record || (record.status !== "committed" && record.status !== "committing"))
          return { actions: [] };
        try {
          const { gasUsed } = await revealScores(
            this.o.tasks,
            snap.taskId,
            round,
            packScores(record.scores),
            record.salt,
            this.o.signer,
          );
          this.save(round, { ...record, status: "revealed" });
          return { actions: [this.action("reveal", round, gasUsed)] };
        } catch (err) {
          if (isRefusal(err, "AlreadyRevealed")) {
            this.save(round, { ...record, status: "revealed" });
            return { actions: [] };
          }
          // A commitment that never landed (a crash before sending): nothing to reveal.
          if (isRefusal(err, "NoCommit")) {
            this.save(round, { ...record, status: "missed" });
            return { actions: [this.action("refuse", round, 0n, "no score commitment on chain")] };
          }
          throw err;
        }
      }
      case "Aggregate": {
        if (!record || record.voted) return { actions: [] };
        if (record.status === "committed" || record.status === "committing") {
          // A reveal that landed just before a crash, unrecorded: without this vote a quorum may never form.
          if (!(await scoresOf(this.o.tasks, snap.taskId, round, this.address))) return { actions: [] };
          record = { ...record, status: "revealed" };
          this.save(round, record);
        }
        return record.status === "revealed" ? this.attest(snap, record) : { actions: [] };
      }
      default:
        return { actions: [] };
    }
  }

  /** Scores the round's updates, or says until which block it waits for unpublished ones. */
  private async score(snap: RoundSnapshot): Promise<ValidatorRecord | { waitingFor: bigint }> {
    const info = snap.info as NonNullable<RoundSnapshot["info"]>;
    const updates = await roundUpdates(this.o.tasks, snap.taskId, snap.round);
    const fetched = await Promise.all(
      updates.map((u) =>
        fetchTrainerUpdate(this.o.store, u.digest, {
          contract: this.o.tasks.address,
          taskId: snap.taskId,
          round: snap.round,
          trainer: u.trainer,
        }),
      ),
    );
    if (fetched.some((f) => "reason" in f)) {
      // Leave the window's last blocks to the validators' commits (one each on an automining chain; a
      // transaction sent at head h executes in block h + 1).
      const reserve = BigInt((await validatorsOf(this.o.tasks, snap.taskId)).length + 1);
      const lastWait = info.scoreDeadline - reserve;
      // The next try costs about as many blocks as this one (a stalling holder costs its stall timeouts
      // every time): wait only if it ends before the reserve, else one more try makes this validator late.
      const head = await this.o.tasks.chain.publicClient.getBlockNumber({ cacheTime: 0 });
      if (head + (head - snap.head) < lastWait) return { waitingFor: lastWait };
    }
    const { model: base } = await fetchVersionModel(
      this.o.tasks,
      this.o.store,
      snap.params.modelId,
      info.baseVersion,
    );
    const scores = new Array<number>(updates.length).fill(0);
    const reasons = new Array<string>(updates.length).fill("");
    const candidates: { k: number; model: CanonicalModel; samples: number }[] = [];
    fetched.forEach((f, k) => {
      if ("reason" in f) reasons[k] = f.reason;
      else if (!sameArchitecture(base, f.model)) {
        reasons[k] = `architecture ${f.model.architecture} is not the task's ${base.architecture}`;
      } else candidates.push({ k, model: f.model, samples: (updates[k] as { samples: number }).samples });
    });
    if (candidates.length > 0) {
      const score = () =>
        scoreUpdates(
          base,
          candidates.map((c) => ({ model: c.model, samples: c.samples })),
          this.o.evaluate,
          this.o.scoring,
        );
      const result = await (this.o.measure ? this.o.measure(score) : score());
      candidates.forEach((c, j) => {
        scores[c.k] = result.scores[j] as number;
        reasons[c.k] = result.verdicts[j] as string;
      });
    }
    return {
      status: "committing",
      digests: updates.map((u) => u.digest),
      scores,
      reasons,
      salt: toHex(randomBytes(32)),
    };
  }

  private async attest(snap: RoundSnapshot, record: ValidatorRecord): Promise<RoleStepResult> {
    const round = snap.round;
    const proposals = await getProposals(this.o.tasks, snap.taskId, round);
    // Its own proposal (as the aggregator) is its vote.
    const mine = proposals.find((p) => p.proposer.toLowerCase() === this.address.toLowerCase());
    if (mine) {
      this.save(round, { ...record, voted: mine.digest });
      return { actions: [] };
    }
    if (proposals.length === 0) return { actions: [] };
    const own = await roundAggregate(this.o.tasks, this.o.store, snap, this.o);
    const refused = proposals.filter((p) => p.digest !== own.digest).map((p) => p.digest);
    const actions: RoleAction[] = refused
      .filter((d) => !record.refused?.includes(d))
      .map((d) => this.action("refuse", round, 0n, `proposed aggregate ${d} is not its own ${own.digest}`));
    const match = proposals.find((p) => p.digest === own.digest);
    if (!match) {
      this.save(round, { ...record, refused });
      return { actions };
    }
    try {
      const { gasUsed } = await attestAggregate(this.o.tasks, snap.taskId, round, own.digest, this.o.signer);
      actions.push(this.action("attest", round, gasUsed));
    } catch (err) {
      // Quorum reached by the others first (the phase ended), or a vote sent before a restart.
      if (!isRefusal(err, "WrongPhase", "AlreadyVoted")) throw err;
      actions.push(this.action("skip", round, 0n, err.errorName));
    }
    this.save(round, { ...record, refused, voted: own.digest });
    return { actions };
  }
}
