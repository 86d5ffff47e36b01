/**
 * The aggregator of a LearningTasks task, as a resumable step machine: after `finalize`, in the round's
 * Aggregate phase, it aggregates the accepted updates (the strategy by name over integer canonical
 * updates, in a fixed order, as simulate.ts does), puts the bytes in the shared blob store and proposes
 * their digest. The contract counts the proposal as the proposer's attestation, so the aggregator signs
 * with a validator's account that revealed scores in the round.
 *
 * `roundAggregate` is what every validator recomputes before it attests a proposal: anyone holding the
 * chain and the blob store gets the same bytes.
 */
import type { Address, Hex } from "viem";
import { type CanonicalModel, encodeCanonical } from "../ml/encoding.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { sha256Digest } from "../storage/cid.ts";
import {
  addressOf,
  fetchTrainerUpdate,
  fetchVersionModel,
  getProposals,
  getSettlement,
  isRefusal,
  LearningError,
  type Measure,
  proposeAggregate,
  type RoleAction,
  type RoleStepResult,
  type RoleStore,
  type RoundSnapshot,
  roundUpdates,
  type Signer,
  snapshotOf,
  type Tasks,
} from "./client.ts";
import { contributorsHash } from "./finalize.ts";
import { type StrategyOptions, strategyByName } from "./index.ts";
import { aggregate } from "./simulate.ts";
import type { ClientUpdate } from "./strategy.ts";

export interface RoundAggregate {
  model: CanonicalModel;
  bytes: Uint8Array;
  digest: Hex;
  /** The accepted trainers, in the task's order. */
  contributors: Address[];
}

export interface AggregationSpec {
  strategy: string;
  strategyOptions?: StrategyOptions;
  /** Wraps the aggregation arithmetic (a simulation times what the in-memory engine also computes). */
  measure?: Measure;
}

/**
 * Aggregates computed in this process, by their inputs' content: the validators of a simulation recompute
 * the aggregator's result from the chain and the store exactly as separate machines would, but the pure
 * arithmetic at the end (a deterministic function of content-addressed inputs) runs once. Never modify
 * a returned model.
 */
const aggregates = new Map<string, RoundAggregate>();
const AGGREGATE_CACHE_ENTRIES = 8;

/**
 * The aggregate of a finalized round's accepted updates (the task's latest round). Throws LearningError
 * when the chain's record of the accepted updates does not match its events, or an accepted update's
 * bytes are unavailable.
 */
export async function roundAggregate(
  tasks: Tasks,
  store: BlobStore,
  snap: RoundSnapshot,
  spec: AggregationSpec,
): Promise<RoundAggregate> {
  const info = snap.info;
  if (!info?.finalized)
    throw new LearningError(`round ${snap.round} of task ${snap.taskId} is not finalized`);
  const [settlement, updates] = await Promise.all([
    getSettlement(tasks, snap.taskId, snap.round),
    roundUpdates(tasks, snap.taskId, snap.round),
  ]);
  const byTrainer = new Map(updates.map((u) => [u.trainer.toLowerCase(), u]));
  const accepted = settlement.trainers
    .filter((t) => t.accepted)
    .map((t) => byTrainer.get(t.address.toLowerCase()));
  if (accepted.some((u) => u === undefined)) {
    throw new LearningError(`round ${snap.round}: an accepted trainer has no committed update`);
  }
  const chosen = accepted as NonNullable<(typeof accepted)[number]>[];
  const contributors = chosen.map((u) => u.trainer);
  const hash = contributorsHash(
    contributors,
    chosen.map((u) => u.digest),
  );
  if (hash !== info.contributorsHash) {
    throw new LearningError(
      `round ${snap.round}: the accepted updates do not hash to the round's contributorsHash`,
    );
  }
  const { model: base, digest: baseDigest } = await fetchVersionModel(
    tasks,
    store,
    snap.params.modelId,
    info.baseVersion,
  );
  // Everything the result depends on, by content: the same key is the same bytes.
  const key = JSON.stringify([
    baseDigest,
    spec.strategy,
    spec.strategyOptions ?? {},
    chosen.map((u) => [u.trainer.toLowerCase(), u.digest, u.samples]),
  ]);
  const cached = aggregates.get(key);
  if (cached) return { ...cached, contributors };
  const clientUpdates: ClientUpdate[] = [];
  for (const u of chosen) {
    const fetched = await fetchTrainerUpdate(store, u.digest, {
      contract: tasks.address,
      taskId: snap.taskId,
      round: snap.round,
      trainer: u.trainer,
    });
    if ("reason" in fetched) {
      throw new LearningError(
        `round ${snap.round}: the accepted update of ${u.trainer} is unusable: ${fetched.reason}`,
      );
    }
    clientUpdates.push({ participant: u.trainer, samples: u.samples, model: fetched.model });
  }
  const strategy = strategyByName(spec.strategy, spec.strategyOptions);
  const compute = () => aggregate(strategy, spec, base, clientUpdates);
  const model = spec.measure ? await spec.measure(compute) : compute();
  const bytes = encodeCanonical(model);
  const result = { model, bytes, digest: sha256Digest(bytes), contributors };
  aggregates.set(key, result);
  for (const old of aggregates.keys()) {
    if (aggregates.size <= AGGREGATE_CACHE_ENTRIES) break;
    aggregates.delete(old);
  }
  return result;
}

export interface AggregatorOptions extends AggregationSpec {
  tasks: Tasks;
  taskId: bigint;
  /** A validator of the task (it must have revealed in the round to propose). */
  signer: Signer;
  store: BlobStore;
  own: RoleStore;
}

interface AggregatorRecord {
  digest: Hex;
  status: "proposing" | "proposed";
}

export class Aggregator {
  readonly address: Address;
  private readonly o: AggregatorOptions;

  constructor(options: AggregatorOptions) {
    this.o = options;
    this.address = addressOf(options.tasks.chain, options.signer);
  }

  private action(kind: RoleAction["kind"], round: number, gasUsed = 0n, reason?: string): RoleAction {
    return { kind, role: "aggregator", account: this.address, round, gasUsed, ...(reason ? { reason } : {}) };
  }

  async step(snapshot?: RoundSnapshot): Promise<RoleStepResult> {
    const snap = snapshot ?? (await snapshotOf(this.o.tasks, this.o.taskId));
    if (snap.info?.phase !== "Aggregate") return { actions: [] };
    const round = snap.round;
    const key = `aggregator-${snap.taskId}-${round}`;
    const record = this.o.own.get<AggregatorRecord>(key);
    if (record?.status === "proposed") return { actions: [] };
    const result = await roundAggregate(this.o.tasks, this.o.store, snap, this.o);
    // Published before proposing, so that validators can fetch what they are asked to attest.
    await this.o.store.put(result.bytes);
    const proposals = await getProposals(this.o.tasks, snap.taskId, round);
    if (proposals.some((p) => p.digest === result.digest)) {
      // Somebody proposed the same bytes: validators attest it; proposing again would be refused.
      this.o.own.set(key, { digest: result.digest, status: "proposed" } satisfies AggregatorRecord);
      return { actions: [this.action("skip", round, 0n, "already proposed")] };
    }
    this.o.own.set(key, { digest: result.digest, status: "proposing" } satisfies AggregatorRecord);
    let gasUsed = 0n;
    try {
      gasUsed = (await proposeAggregate(this.o.tasks, snap.taskId, round, result.digest, this.o.signer))
        .gasUsed;
    } catch (err) {
      if (!isRefusal(err, "AlreadyVoted")) throw err;
      this.o.own.set(key, { digest: result.digest, status: "proposed" } satisfies AggregatorRecord);
      return { actions: [this.action("refuse", round, 0n, "this account already voted in the round")] };
    }
    this.o.own.set(key, { digest: result.digest, status: "proposed" } satisfies AggregatorRecord);
    return { actions: [this.action("propose", round, gasUsed)] };
  }
}
