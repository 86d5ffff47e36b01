/**
 * A trainer of a LearningTasks task, as a resumable step machine (the oracle operator's model): `step()`
 * reads the chain state of the task's latest round and does what is due, idempotently.
 *
 *  - Commit phase: fetches the round's base version from the blob store by the registry's digest (checked),
 *    produces its update (`produce`: local training, or in simulations an attack's crafted update), seals
 *    its canonical bytes in an envelope naming the task and this trainer (envelope.ts), keeps those bytes in
 *    its own store BEFORE committing their digest and sample count, then commits.
 *    Restarted after a crash, it finds the bytes and commits those (never trains a different update); a
 *    commit that had landed is recognised by the contract's AlreadyCommitted refusal.
 *  - After the commit window (ScoreCommit onwards): publishes the bytes to the shared blob store, under the
 *    CID v1 raw sha256 of the committed digest. Not before: nobody can copy an update within its round.
 */
import type { Address, Hex } from "viem";
import { type CanonicalModel, encodeCanonical } from "../ml/encoding.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { sha256Digest } from "../storage/cid.ts";
import { isNoShow, type NoShow } from "./adversaries.ts";
import {
  addressOf,
  aggregateProposers,
  commitUpdate,
  DatasetAccessError,
  fetchVersionModel,
  isRefusal,
  LearningError,
  MEMBER_ACTIVE,
  memberOf,
  type RoleAction,
  type RoleStepResult,
  type RoleStore,
  type RoundSnapshot,
  releaseStakeWithoutAccess,
  requireDatasetAccess,
  type Signer,
  snapshotOf,
  type Tasks,
} from "./client.ts";
import { sealUpdate } from "./envelope.ts";

export interface ProduceContext {
  taskId: bigint;
  round: number;
  /** The round's base model, verified against the registry. */
  base: CanonicalModel;
  baseVersion: number;
}

/** Makes the trainer's update for a round; `noShow` (adversaries.ts) to skip the round. */
export type ProduceUpdate = (context: ProduceContext) => Promise<CanonicalModel | NoShow>;

export interface TrainerOptions {
  tasks: Tasks;
  taskId: bigint;
  signer: Signer;
  /** The shared blob store: base weights in, published updates out. */
  store: BlobStore;
  /** The trainer's own store: its updates' bytes and progress. */
  own: RoleStore;
  /** Its training samples: the update's FedAvg weight, committed on-chain. */
  samples: number;
  produce: ProduceUpdate;
}

type TrainerStatus = "prepared" | "committed" | "published" | "absent";

interface TrainerRecord {
  digest?: Hex;
  status: TrainerStatus;
}

export class Trainer {
  readonly address: Address;
  private readonly o: TrainerOptions;

  constructor(options: TrainerOptions) {
    this.o = options;
    this.address = addressOf(options.tasks.chain, options.signer);
  }

  private key(round: number): string {
    return `trainer-${this.o.taskId}-${round}`;
  }

  /** The bytes this trainer committed to in a round, if it did. */
  updateBytes(round: number): Uint8Array | undefined {
    return this.o.own.getBytes(`${this.key(round)}-update`);
  }

  private action(kind: RoleAction["kind"], round: number, gasUsed = 0n, reason?: string): RoleAction {
    return { kind, role: "trainer", account: this.address, round, gasUsed, ...(reason ? { reason } : {}) };
  }

  /**
   * Takes the stake back from a round this trainer cannot commit in, having lost access to one of the task's
   * datasets: the round then settles it as a no-show that loses nothing, where it would be slashed.
   */
  private async releaseForLostAccess(
    taskId: bigint,
    round: number,
    datasetId: bigint,
  ): Promise<RoleStepResult> {
    const receipt = await releaseStakeWithoutAccess(this.o.tasks, taskId, datasetId, this.o.signer);
    this.o.own.set(this.key(round), { status: "absent" } satisfies TrainerRecord);
    const reason = `no access to dataset ${datasetId}: its stake was released, so its absence costs nothing`;
    return { actions: [this.action("refuse", round, receipt.gasUsed, reason)] };
  }

  async step(snapshot?: RoundSnapshot): Promise<RoleStepResult> {
    const snap = snapshot ?? (await snapshotOf(this.o.tasks, this.o.taskId));
    const info = snap.info;
    if (!info) return { actions: [] };
    const round = snap.round;
    const key = this.key(round);
    let record = this.o.own.get<TrainerRecord>(key);

    if (info.phase === "Commit") {
      if (record && record.status !== "prepared")
        return { actions: [], waitingFor: info.commitDeadline + 1n };
      if (!record) {
        // Checked before training, which would be wasted on a commit the contract refuses.
        const member = await memberOf(this.o.tasks, snap.taskId, "trainer", this.address);
        const unable =
          member.status !== MEMBER_ACTIVE
            ? `not an active trainer of task ${snap.taskId}: join it between rounds`
            : member.stake === 0n
              ? "no stake (released after losing access to a dataset): add stake with join between rounds"
              : member.stake < snap.params.minTrainerStake
                ? `stake ${member.stake} below the task's minimum ${snap.params.minTrainerStake} (slashed): add stake with join between rounds`
                : undefined;
        if (unable) {
          this.o.own.set(key, { status: "absent" } satisfies TrainerRecord);
          return { actions: [this.action("refuse", round, 0n, unable)] };
        }
        // Consent revoked or expired: the commit would be refused and the absence slashed as a no-show.
        try {
          if (snap.state.datasets > 0) await requireDatasetAccess(this.o.tasks, snap.taskId, this.address);
        } catch (error) {
          if (!(error instanceof DatasetAccessError)) throw error;
          return this.releaseForLostAccess(snap.taskId, round, error.datasetId);
        }
        // The last round's aggregator holds the new version: asked first, before every member.
        const holders = await aggregateProposers(
          this.o.tasks,
          snap.taskId,
          round - 1,
          snap.params.modelId,
          info.baseVersion,
        );
        const { model: base } = await fetchVersionModel(
          this.o.tasks,
          this.o.store,
          snap.params.modelId,
          info.baseVersion,
          holders.length > 0 ? { holders } : undefined,
        );
        const update = await this.o.produce({
          taskId: snap.taskId,
          round,
          base,
          baseVersion: info.baseVersion,
        });
        if (isNoShow(update)) {
          this.o.own.set(key, { status: "absent" } satisfies TrainerRecord);
          return { actions: [this.action("skip", round, 0n, "no-show")] };
        }
        // Bound to this trainer, task and round: a copy of the digest names this trainer, not the copier.
        const bytes = sealUpdate(
          { contract: this.o.tasks.address, taskId: snap.taskId, round, trainer: this.address },
          encodeCanonical(update),
        );
        record = { digest: sha256Digest(bytes), status: "prepared" };
        // The bytes first: a committed digest whose bytes were lost could never be published (a sure slash).
        this.o.own.setBytes(`${key}-update`, bytes);
        this.o.own.set(key, record);
      }
      let gasUsed = 0n;
      try {
        const receipt = await commitUpdate(
          this.o.tasks,
          snap.taskId,
          round,
          record.digest as Hex,
          this.o.samples,
          this.o.signer,
        );
        gasUsed = receipt.gasUsed;
      } catch (err) {
        // Consent revoked while it trained: the update is dropped, as above.
        if (isRefusal(err, "DatasetAccessRequired"))
          return this.releaseForLostAccess(snap.taskId, round, err.args[1] as bigint);
        // Sent before a restart: the chain has it already.
        if (!isRefusal(err, "AlreadyCommitted")) throw err;
      }
      this.o.own.set(key, { ...record, status: "committed" } satisfies TrainerRecord);
      return { actions: [this.action("commit", round, gasUsed)], waitingFor: info.commitDeadline + 1n };
    }

    if (record?.status === "prepared") {
      // Prepared before a restart that outlasted the commit window: did the commit land?
      const member = await memberOf(this.o.tasks, snap.taskId, "trainer", this.address);
      record = { ...record, status: member.commitRound === round ? "committed" : "absent" };
      this.o.own.set(key, record);
    }
    if (record?.status === "committed") {
      const bytes = this.updateBytes(round);
      if (!bytes) {
        throw new LearningError(
          `trainer ${this.address} lost the bytes it committed to in round ${round}: its own store was wiped; it will be slashed unless someone publishes them`,
        );
      }
      await this.o.store.put(bytes);
      this.o.own.set(key, { ...record, status: "published" } satisfies TrainerRecord);
      return { actions: [this.action("publish", round)] };
    }
    return { actions: [] };
  }
}
