/**
 * The on-chain federated-learning protocol in one process: simulate.ts's rounds, with LearningTasks deciding
 * and the blob store carrying the bytes. `runProtocol` registers the initial model in the ModelRegistry,
 * creates a task, funds and joins trainers and validators, then runs each round through the roles
 * (trainer.ts, validator.ts, aggregator.ts) and a coordinator (the task's creator: starts rounds, finalizes,
 * and on development chains mines empty blocks to close windows early, since those chains mine only when
 * transactions come). Each new registry version is evaluated on the test set.
 *
 * The chain's decisions (its events) are the source of truth for the reports; before each finalization the
 * coordinator computes finalize.ts's `settleRound` on the same inputs, read from the chain, and throws
 * ProtocolMismatchError if the two disagree on anything.
 *
 * Same data, seeds and attackers as simulateFederated for the same options (federatedData, trainLocal with
 * seed `${seed}/${round}/${i}`, attackers drawn by `${seed}/attackers`), so a run compares with the
 * in-memory engine round for round: an honest run ends on the engine's final model, byte for byte (tested).
 * A copier's update is sealed in its own envelope (envelope.ts), so the contract takes it and validators
 * score the copy, as the engine does.
 *
 * Development chains only (the embedded EVM by default, or `ledgermind chain`): the coordinator mines. The
 * shared blob store defaults to memory; each role's own store too (`roleStore` for folders). Participants
 * are the configured accounts after the creator's, then deterministic keys given gas; each stakes twice
 * the task's minimum. Measured on 2 shared cores: a 10-trainer mlp-784-64-10 round costs 0.23 to 0.29 s
 * more than the engine's (ratio 1.1 to 1.25), about 1.9 M gas; 1,000 trainers of logreg-784-10 run a
 * round in about 27 s (95 M gas; finalize, which once took 22 M in one transaction, now goes in steps of
 * at most 10 M each).
 */
import { type Address, type Hex, keccak256, parseEther, stringToHex, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { isDevChain } from "../chain/accounts.ts";
import { connect, type LedgerChain } from "../chain/connect.ts";
import { deployAll, requireDeployment } from "../chain/deploy.ts";
import { mineBlocks } from "../chain/time.ts";
import { transferMind } from "../chain/token.ts";
import { initBackend } from "../ml/backend.ts";
import { type CanonicalModel, encodeCanonical, toFloatTensors } from "../ml/encoding.ts";
import { createModel, initialWeights, setWeights } from "../ml/models.ts";
import { createRng, type Dataset } from "../ml/partition.ts";
import { evaluate } from "../ml/train.ts";
import { addVersion, openRegistry, registerModel } from "../registry/client.ts";
import { BlobIntegrityError, BlobNotFoundError, type BlobStore } from "../storage/blob-store.ts";
import { cidFromDigest, digestFromCid, sha256Digest } from "../storage/cid.ts";
import type { NoShow } from "./adversaries.ts";
import { Aggregator } from "./aggregator.ts";
import {
  type ChainSettlement,
  createTask,
  defaultTaskParams,
  fetchVersionModel,
  finalizeRound,
  getRound,
  joinTask,
  LearningError,
  memberOf,
  memoryRoleStore,
  openTasks,
  PHASES,
  type Phase,
  type RoleAction,
  type RoleStepResult,
  type RoleStore,
  type RoundSnapshot,
  type Signer,
  settlementInputOf,
  settlementOf,
  snapshotOf,
  startRound,
  type TaskParams,
  type Tasks,
  tasksAt,
} from "./client.ts";
import type { FedProxStrategy } from "./fedprox.ts";
import { settleRound } from "./finalize.ts";
import type { ModelEvaluator, ScoreOptions } from "./scoring.ts";
import {
  canonicalOf,
  datasetEvaluator,
  federatedData,
  type RunOptions,
  runSetup,
  trainLocal,
  validatorScoring,
} from "./simulate.ts";
import { type ProduceContext, Trainer } from "./trainer.ts";
import { Validator } from "./validator.ts";

/** The chain's settlement and finalize.ts's mirror disagree: a bug in one of them. */
export class ProtocolMismatchError extends Error {
  override name = "ProtocolMismatchError";
}

export type RoleKind = "trainer" | "validator" | "aggregator";

/** The live roles of a run; `rebuild` replaces one with a fresh object on the same store (a restart). */
export interface ProtocolRoles {
  trainers: Trainer[];
  validators: Validator[];
  aggregator: Aggregator;
  rebuild(kind: RoleKind, index: number): void;
}

/** A run as simulateFederated takes it (attackers drawn by the same seed), on a chain. */
export interface ProtocolOptions extends RunOptions {
  scoring?: ScoreOptions;
  /** A chain with the contracts deployed; default a fresh embedded EVM, deployed and closed at the end. */
  chain?: LedgerChain;
  /** The shared blob store; default one in memory (memoryBlobStore). */
  store?: BlobStore;
  /** Overrides of defaultTaskParams (modelId and baseVersion are the run's own). */
  params?: Partial<Omit<TaskParams, "modelId" | "baseVersion">>;
  /** Each role's own store; default in memory. */
  roleStore?: (kind: RoleKind, index: number) => RoleStore;
  /**
   * Replaces trainer i's update in a round (tests: a wrong architecture); return undefined to keep what the
   * trainer (honest or attacker) produced.
   */
  craft?: (
    trainer: number,
    context: ProduceContext & { own: CanonicalModel | NoShow },
  ) => CanonicalModel | NoShow | undefined;
  /** Called before every step of the roles (tests: crash and rebuild a role mid-round). */
  beforeStep?: (context: { round: number; phase: Phase; roles: ProtocolRoles }) => void | Promise<void>;
  /** Called once the task is created and joined, before the first round: who trains, validates and attacks. */
  onStart?: (roster: ProtocolRoster) => void | Promise<void>;
  onRound?: (report: ProtocolRoundReport) => void | Promise<void>;
  /** Progress for a progress bar: `step` of `total` (setup, then five phases per round). */
  onProgress?: (step: number, total: number) => void;
}

export interface ProtocolRoster {
  taskId: bigint;
  modelId: bigint;
  /** The registry version of the initial model, which the first round trains from. */
  baseVersion: number;
  trainers: Address[];
  validators: Address[];
  attackers: Address[];
}

export type GasKind = "start" | "commit" | "scoreCommit" | "reveal" | "finalize" | "aggregate";

export interface RoundGas {
  total: bigint;
  byKind: Record<GasKind, bigint>;
}

export interface Slash {
  address: Address;
  role: "trainer" | "validator";
  amount: bigint;
}

export interface ProtocolRoundReport {
  round: number;
  /** Test accuracy and loss of the model after the round (the new version, else the unchanged one). */
  accuracy: number;
  loss: number;
  /** Committed updates. */
  submitted: number;
  accepted: number;
  /** Committed updates the chain rejected. */
  rejected: number;
  noShows: number;
  /** Consensus score per committed trainer. */
  scores: Record<Address, number>;
  slashed: Slash[];
  /** Rewards credited this round, per address (trainers and validators; zero rewards omitted). */
  rewards: Record<Address, bigint>;
  /** Every participant's stake after the round. */
  stakes: Record<Address, bigint>;
  /** The registry version the round's aggregate became (undefined: none). */
  newVersion?: number;
  aggregateDigest?: Hex;
  /** Honest trainers slashed. */
  falseSlashes: number;
  attackersSlashed: number;
  attackersAccepted: number;
  gas: RoundGas;
  /** Validators' refusals (scores of 0 with their reason, aggregates not attested). */
  refusals: RoleAction[];
  seconds: number;
  /**
   * Seconds of training, scoring, aggregation and test evaluation: what the in-memory engine also does
   * (the validators' recomputations of the aggregate are shared with the aggregator's, see aggregator.ts).
   */
  computeSeconds: number;
  /** seconds - computeSeconds: the chain, the blob store, hashing, encoding and decoding, the roles' reads. */
  overheadSeconds: number;
}

export interface ProtocolSummary {
  taskId: bigint;
  modelId: bigint;
  tasks: Address;
  trainers: Address[];
  validators: Address[];
  attackers: Address[];
  rounds: ProtocolRoundReport[];
  finalAccuracy: number;
  finalLoss: number;
  finalVersion: number;
  /** Honest trainer-rounds slashed. */
  falseSlashes: number;
  /** Attacker-rounds slashed. */
  attackersSlashed: number;
  /** attackersSlashed / attacker-rounds (NaN without attackers). */
  detectionRate: number;
  /** Setup: deployment, registration, funding, joins. */
  setupSeconds: number;
  seconds: number;
}

const STAKE_FACTOR = 2n;
const PHASES_PER_ROUND = 5;
/** Concurrent transactions of distinct senders (joins); bounded so a thousand members do not flood the node. */
const PARALLEL_SENDS = 64;

/**
 * A blob store in memory, the default of a run: the same contract as every BlobStore (`get` returns only
 * bytes that hash to the CID), hashed natively. A folder store fsyncs each put and hashes in JavaScript,
 * which costs a 10-trainer MLP round about 0.2 s. Keys are digests, so any spelling of a CID finds its blob.
 */
export function memoryBlobStore(): BlobStore {
  const blobs = new Map<Hex, Uint8Array>();
  return {
    async put(bytes) {
      const digest = sha256Digest(bytes);
      if (!blobs.has(digest)) blobs.set(digest, bytes.slice());
      return cidFromDigest(digest);
    },
    async get(cid) {
      const digest = digestFromCid(cid);
      const bytes = blobs.get(digest);
      if (!bytes) throw new BlobNotFoundError(cid);
      const actual = sha256Digest(bytes);
      if (actual !== digest) throw new BlobIntegrityError(cid, actual);
      return bytes.slice();
    },
    async has(cid) {
      return blobs.has(digestFromCid(cid));
    },
  };
}

/** Runs `fn` over items with at most `limit` in flight, results in order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Serializes async sections: one tfjs scratch model is shared by every trainer. */
function exclusive(): <R>(fn: () => Promise<R>) => Promise<R> {
  let tail: Promise<unknown> = Promise.resolve();
  return (fn) => {
    const run = tail.then(fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

function rpc(chain: LedgerChain, method: string, params: unknown[]): Promise<unknown> {
  return chain.publicClient.request({ method, params } as never);
}

/** How often a run over an RPC node checks for transactions left waiting in the node's pool. */
const STALL_CHECK_MS = 1_000;

/**
 * Over an RPC node (`ledgermind chain`, anvil), a transaction that arrives while the node mines another can
 * stay in its pool with no block to come (anvil's automine misses it; every development-chain write is
 * sent with the block's gas limit, so a block holds one), and the run, which waits for its receipt, would
 * wait for ever. While the run lasts, a transaction seen waiting at two checks in a row with no block
 * mined between them gets a block. Returns the stop function. The embedded EVM mines every transaction as
 * it arrives: nothing to do there.
 */
function unstaller(chain: LedgerChain): () => void {
  if (chain.kind !== "rpc") return () => {};
  let last = { block: -1n, pending: 0n };
  const timer = setInterval(() => {
    Promise.all([chain.publicClient.getBlockNumber({ cacheTime: 0 }), rpc(chain, "txpool_status", [])])
      .then(([block, status]) => {
        const pending = BigInt((status as { pending?: string }).pending ?? 0);
        const stalled = pending > 0n && last.pending > 0n && block === last.block;
        last = { block, pending };
        if (stalled) return rpc(chain, "evm_mine", []);
      })
      .catch(() => {}); // a node without txpool_status: nothing to watch
  }, STALL_CHECK_MS);
  return () => clearInterval(timer);
}

/**
 * Signers for n participants: the configured accounts after the creator's, then deterministic keys given
 * gas with hardhat_setBalance (EDR and anvil both answer it).
 */
async function participantSigners(chain: LedgerChain, n: number): Promise<Signer[]> {
  const signers: Signer[] = [];
  for (let i = 1; i < chain.accounts.length && signers.length < n; i++) signers.push(i);
  const keyed = n - signers.length;
  for (let k = 0; k < keyed; k++) {
    const account = privateKeyToAccount(keccak256(stringToHex(`ledgermind-fl-participant:${k}`)));
    signers.push(account);
  }
  await mapLimit(signers.slice(n - keyed), PARALLEL_SENDS, async (s) => {
    const address = (s as { address: Address }).address;
    await rpc(chain, "hardhat_setBalance", [address, toHex(parseEther("1000"))]);
  });
  return signers;
}

/** The head at which the round's current window is over (calls see the head's number; the window's last block + 1). */
function windowEnd(snap: RoundSnapshot): bigint | undefined {
  const info = snap.info;
  if (!info) return undefined;
  switch (info.phase) {
    case "Commit":
      return info.commitDeadline + 1n;
    case "ScoreCommit":
      return info.scoreDeadline + 1n;
    case "Reveal":
      return info.revealDeadline + 1n;
    case "Aggregate":
      return info.finalizedAt + BigInt(snap.params.aggregateWindow) + 1n;
    default:
      return undefined;
  }
}

const GAS_KIND: Partial<Record<RoleAction["kind"], GasKind>> = {
  commit: "commit",
  scoreCommit: "scoreCommit",
  reveal: "reveal",
  propose: "aggregate",
  attest: "aggregate",
};

/** The chain's settlement against finalize.ts's; throws ProtocolMismatchError naming the first difference. */
function checkMirror(actual: ChainSettlement, expected: ReturnType<typeof settleRound>): void {
  const fail = (what: string, a: unknown, e: unknown) => {
    throw new ProtocolMismatchError(
      `round ${actual.round}: the chain settled ${what} as ${String(a)}, the mirror as ${String(e)}`,
    );
  };
  if (actual.updates !== expected.updates) fail("the update count", actual.updates, expected.updates);
  if (actual.accepted !== expected.accepted.length)
    fail("the accepted count", actual.accepted, expected.accepted.length);
  if (actual.roundMedian !== expected.roundMedian)
    fail("the round median", actual.roundMedian, expected.roundMedian);
  if (actual.contributorsHash !== expected.contributorsHash) {
    fail("the contributors' hash", actual.contributorsHash, expected.contributorsHash);
  }
  if (actual.refunded !== expected.refunded) fail("the refund", actual.refunded, expected.refunded);
  if (actual.burned !== expected.burned) fail("the burned amount", actual.burned, expected.burned);
  if (actual.trainers.length !== expected.trainers.length)
    fail("the trainer count", actual.trainers.length, expected.trainers.length);
  actual.trainers.forEach((t, i) => {
    const e = expected.trainers[i] as (typeof expected.trainers)[number];
    const a = [t.address.toLowerCase(), t.committed, t.score, t.accepted, t.reward, t.slashed].join();
    const m = [e.address.toLowerCase(), e.committed, e.score, e.accepted, e.reward, e.slashed].join();
    if (a !== m) fail(`trainer ${i}`, a, m);
  });
  if (actual.validators.length !== expected.validators.length) {
    fail("the validator count", actual.validators.length, expected.validators.length);
  }
  actual.validators.forEach((v, i) => {
    const e = expected.validators[i] as (typeof expected.validators)[number];
    const a = [v.address.toLowerCase(), v.revealed, v.weight, v.reward, v.slashed].join();
    const m = [e.address.toLowerCase(), e.revealed, e.weight, e.reward, e.slashed].join();
    if (a !== m) fail(`validator ${i}`, a, m);
  });
}

export interface FederatedTaskSpec {
  architecture: string;
  /** Seeds the initial weights. */
  seed: number | string;
  rounds: number;
  /** Trainers and validators expected (they size the windows). */
  trainers: number;
  validators: number;
  /** Overrides of defaultTaskParams (modelId and baseVersion are the new model's). */
  params?: Partial<Omit<TaskParams, "modelId" | "baseVersion">>;
  creator?: number;
}

/**
 * Registers a model `fl-ARCHITECTURE` with seeded initial weights (kept in `store`, which must serve them
 * to the task's members) as its first version, and creates a task on it funded by `creator` (account 0 by
 * default, the MIND holder on development chains).
 */
export async function createFederatedTask(
  tasks: Tasks,
  store: BlobStore,
  spec: FederatedTaskSpec,
): Promise<{ modelId: bigint; baseVersion: number; taskId: bigint; params: TaskParams }> {
  const creator = spec.creator ?? 0;
  const initial = canonicalOf(spec.architecture, initialWeights(spec.architecture, spec.seed));
  const registry = await openRegistry(tasks.chain);
  const { modelId } = await registerModel(registry, `fl-${spec.architecture}`, creator);
  const { version: baseVersion } = await addVersion(
    registry,
    modelId,
    { weightsCid: await store.put(encodeCanonical(initial)) },
    creator,
  );
  const params: TaskParams = {
    ...defaultTaskParams({
      modelId,
      baseVersion,
      rounds: spec.rounds,
      trainers: spec.trainers,
      validators: spec.validators,
    }),
    ...spec.params,
  };
  const { taskId } = await createTask(tasks, params, creator);
  return { modelId, baseVersion, taskId, params };
}

/** Runs a federated training through LearningTasks (see the module doc). */
export async function runProtocol(options: ProtocolOptions): Promise<ProtocolSummary> {
  const started = performance.now();
  const { attack, strategy, architecture, isAttacker } = runSetup(options, "runProtocol");
  const n = options.clients;
  if (options.chain && !isDevChain(options.chain.chainId)) {
    throw new LearningError(
      `runProtocol mines empty blocks to close windows, which chain ${options.chain.chainId} does not allow: use the embedded chain or \`ledgermind chain\``,
    );
  }
  const totalSteps = 1 + options.rounds * PHASES_PER_ROUND;
  let progress = 0;
  const tick = () => {
    progress++;
    options.onProgress?.(progress, totalSteps);
  };

  await initBackend();
  const data = federatedData(options);
  const trainerModel = createModel(architecture, 0);
  const scratch = createModel(architecture, 0);
  const ownChain = options.chain === undefined;
  const chain = options.chain ?? (await connect({ ephemeral: true }));
  let computeMs = 0;
  // Compute time is the union of the timed sections: roles run concurrently, and their sections may overlap.
  let active = 0;
  let since = 0;
  const timed = async <R>(fn: () => Promise<R> | R): Promise<R> => {
    if (active++ === 0) since = performance.now();
    try {
      return await fn();
    } finally {
      if (--active === 0) computeMs += performance.now() - since;
    }
  };
  const stopUnstaller = unstaller(chain);
  try {
    if (ownChain) await deployAll(chain);
    else await requireDeployment(chain);
    const shared = options.store ?? memoryBlobStore();
    const tasks: Tasks = await openTasks(chain);

    // The creator is account 0, who also holds the MIND supply.
    const { modelId, baseVersion, taskId, params } = await createFederatedTask(tasks, shared, {
      architecture,
      seed: options.seed,
      rounds: options.rounds,
      trainers: n,
      validators: options.validators,
      params: options.params,
    });

    // Participants: trainers then validators; funded by the creator, then they join concurrently.
    const signers = await participantSigners(chain, n + options.validators);
    const trainerSigners = signers.slice(0, n);
    const validatorSigners = signers.slice(n);
    // Twice the minimum, so that a member slashed a few times can still take part.
    const stakeOf = (i: number) => STAKE_FACTOR * (i < n ? params.minTrainerStake : params.minValidatorStake);
    for (let i = 0; i < signers.length; i++) {
      const signer = signers[i] as Signer;
      const address = typeof signer === "number" ? chain.wallet(signer).account.address : signer.address;
      await transferMind(chain, address, stakeOf(i), 0);
    }
    await mapLimit(signers, PARALLEL_SENDS, (signer, i) =>
      joinTask(tasks, taskId, i < n ? "trainer" : "validator", stakeOf(i), signer),
    );

    // Who attacks, with what data: as simulateFederated.
    const poisoned = data.clients.map((shard, i) => (isAttacker[i] ? attack.poisonData(shard) : shard));
    const lock = exclusive();
    const proximalMu = "clientTrainOptions" in strategy ? (strategy as FedProxStrategy).proximalMu : 0;
    const trainOwn = (base: CanonicalModel, i: number, round: number) =>
      lock(() =>
        timed(() =>
          trainLocal(trainerModel, base, poisoned[i] as Dataset, {
            epochs: options.localEpochs,
            batch: options.batch,
            lr: options.lr,
            seed: `${options.seed}/${round}/${i}`,
            ...(proximalMu > 0 ? { proximalMu } : {}),
          }),
        ),
      );
    // Honest updates of the previous round, for copy attacks; the colluders' benign updates, for the
    // attacks that see them (ALIE, Fang's, min-max, min-sum, noise-norm).
    const honestByRound = new Map<number, Map<number, CanonicalModel>>();
    const colluders = new Map<number, Promise<CanonicalModel[]>>();
    const produceFor =
      (i: number) =>
      async (context: ProduceContext): Promise<CanonicalModel | NoShow> => {
        const { base, round } = context;
        let update: CanonicalModel | NoShow;
        if (!isAttacker[i]) {
          update = await trainOwn(base, i, round);
          const seen = honestByRound.get(round) ?? new Map<number, CanonicalModel>();
          honestByRound.set(round, seen);
          honestByRound.delete(round - 2); // copiers copy from the round before only
          seen.set(i, update);
        } else {
          const own = attack.trains ? await trainOwn(base, i, round) : undefined;
          let visible: CanonicalModel[] | undefined;
          if (attack.sees === "colluders") {
            let pool = colluders.get(round);
            if (!pool) {
              const members = isAttacker.map((a, j) => (a ? j : -1)).filter((j) => j >= 0);
              pool = Promise.all(members.map((j) => trainOwn(base, j, round)));
              colluders.set(round, pool);
            }
            visible = await pool;
          }
          if (attack.sees === "victim") {
            const previous = honestByRound.get(round - 1);
            const victim = previous && [...previous.keys()].sort((a, b) => a - b)[0];
            visible = victim === undefined ? undefined : [previous?.get(victim) as CanonicalModel];
          }
          update =
            attack.sees === "victim" && !visible
              ? base // round 1: nothing to copy, the attacker sends the global back
              : attack.craft({
                  global: base,
                  own,
                  visible,
                  rng: createRng(`${options.seed}/${round}/${i}/${attack.name}`),
                });
        }
        return options.craft?.(i, { ...context, own: update }) ?? update;
      };

    const storeOf = options.roleStore ?? (() => memoryRoleStore());
    const trainerStores = trainerSigners.map((_, i) => storeOf("trainer", i));
    const validatorStores = validatorSigners.map((_, v) => storeOf("validator", v));
    const aggregatorStore = storeOf("aggregator", 0);
    const evaluators: ModelEvaluator[] = data.validators.map((shard) => datasetEvaluator(scratch, shard));
    // Scoring and the aggregation arithmetic count as compute (the in-memory engine does them too).
    const spec = { strategy: options.strategy, strategyOptions: options.strategyOptions, measure: timed };
    const makeTrainer = (i: number) =>
      new Trainer({
        tasks,
        taskId,
        signer: trainerSigners[i] as Signer,
        store: shared,
        own: trainerStores[i] as RoleStore,
        samples: Math.max(1, (data.clients[i] as Dataset).n),
        produce: produceFor(i),
      });
    const makeValidator = (v: number) =>
      new Validator({
        ...spec,
        tasks,
        taskId,
        signer: validatorSigners[v] as Signer,
        store: shared,
        own: validatorStores[v] as RoleStore,
        evaluate: evaluators[v] as ModelEvaluator,
        scoring: validatorScoring(data.validators[v] as Dataset, options.scoring),
      });
    // The first validator also aggregates: a proposal is its proposer's vote, so it must be a validator.
    const makeAggregator = () =>
      new Aggregator({
        ...spec,
        tasks,
        taskId,
        signer: validatorSigners[0] as Signer,
        store: shared,
        own: aggregatorStore,
      });
    const roles: ProtocolRoles = {
      trainers: trainerSigners.map((_, i) => makeTrainer(i)),
      validators: validatorSigners.map((_, v) => makeValidator(v)),
      aggregator: makeAggregator(),
      rebuild(kind, index) {
        if (kind === "trainer") roles.trainers[index] = makeTrainer(index);
        else if (kind === "validator") roles.validators[index] = makeValidator(index);
        else roles.aggregator = makeAggregator();
      },
    };
    const trainerAddresses = roles.trainers.map((t) => t.address);
    const validatorAddresses = roles.validators.map((v) => v.address);
    const attackers = trainerAddresses.filter((_, i) => isAttacker[i]);
    const attackerSet = new Set(attackers.map((a) => a.toLowerCase()));
    await options.onStart?.({
      taskId,
      modelId,
      baseVersion,
      trainers: trainerAddresses,
      validators: validatorAddresses,
      attackers,
    });
    const setupSeconds = (performance.now() - started) / 1000;
    tick();

    const reports: ProtocolRoundReport[] = [];
    let last = { accuracy: 0, loss: Number.NaN, version: baseVersion };
    for (let round = 1; round <= options.rounds; round++) {
      const roundStart = performance.now();
      computeMs = 0;
      const byKind: Record<GasKind, bigint> = {
        start: 0n,
        commit: 0n,
        scoreCommit: 0n,
        reveal: 0n,
        finalize: 0n,
        aggregate: 0n,
      };
      const refusals: RoleAction[] = [];
      if (round > 1) {
        // Members may leave for exitWindow blocks after a finalization: no round starts before they pass.
        const previous = await getRound(tasks, taskId, round - 1);
        const head = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
        const opensAfter = previous.finalizedAt + BigInt(params.exitWindow);
        // Past it at the head, where the start's gas is estimated.
        if (head <= opensAfter) await mineBlocks(chain, opensAfter + 1n - head);
      }
      const opened = await startRound(tasks, taskId, 0);
      if (opened.round !== round)
        throw new ProtocolMismatchError(`expected round ${round}, the chain started ${opened.round}`);
      byKind.start += opened.receipt.gasUsed;
      let settlement: ChainSettlement | undefined;
      let mirrorCheck: Promise<void> | undefined;
      let lastPhase: Phase = "None";
      for (;;) {
        const snap = await snapshotOf(tasks, taskId);
        const phase = snap.info?.phase ?? "None";
        if (phase !== lastPhase) {
          if (PHASES.indexOf(phase) > PHASES.indexOf(lastPhase) && lastPhase !== "None") tick();
          lastPhase = phase;
        }
        if (phase === "Done") break;
        if (phase === "Finalize") {
          // Nothing else is sent while finalizing, so the block before the first finalize step holds the
          // state the settlement started from: read before sending (a head read while sending once saw, on
          // anvil, the stakes after finalize's slashes).
          const startedFrom = await tasks.chain.publicClient.getBlockNumber({ cacheTime: 0 });
          // Every step until the round settles (one for a small round); gas summed, logs joined.
          const receipt = await finalizeRound(tasks, taskId, round, 0);
          byKind.finalize += receipt.gasUsed;
          const settled = settlementOf(receipt);
          settlement = settled;
          // The mirror's check runs while the aggregation goes on; the round ends only once it has passed.
          mirrorCheck = settlementInputOf(tasksAt(tasks, startedFrom), taskId, round).then((read) =>
            checkMirror(settled, settleRound(read)),
          );
          mirrorCheck.catch(() => {}); // awaited with the round's last reads
          continue;
        }
        await options.beforeStep?.({ round, phase, roles });
        const results: RoleStepResult[] = [
          ...(await Promise.all(roles.trainers.map((t) => t.step(snap)))),
          await roles.aggregator.step(snap),
          ...(await Promise.all(roles.validators.map((v) => v.step(snap)))),
        ];
        let acted = false;
        for (const r of results) {
          for (const a of r.actions) {
            const kind = GAS_KIND[a.kind];
            if (kind) byKind[kind] += a.gasUsed;
            if (a.kind === "refuse") refusals.push(a);
            if (a.kind !== "skip" && a.kind !== "refuse") acted = true;
          }
        }
        if (acted) continue;
        // Nobody can act before some block: mine to the nearest one anybody waits for.
        const waits = results
          .map((r) => r.waitingFor)
          .filter((w): w is bigint => w !== undefined && w > snap.head);
        const end = windowEnd(snap);
        if (end !== undefined) waits.push(end);
        let target = snap.head + 1n;
        for (const [k, w] of waits.entries()) if (k === 0 || w < target) target = w;
        await mineBlocks(chain, target - snap.head);
      }
      while (progress < 1 + round * PHASES_PER_ROUND) tick();
      if (!settlement || !mirrorCheck)
        throw new ProtocolMismatchError(`round ${round} ended without a finalization`);

      const info = await getRound(tasks, taskId, round);
      const version = info.aggregated ? info.newVersion : last.version;
      const { model } = await fetchVersionModel(tasks, shared, modelId, version);
      // The chain answers the stake reads while the test set is evaluated.
      const memberReads = Promise.all([
        Promise.all(trainerAddresses.map((a) => memberOf(tasks, taskId, "trainer", a))),
        Promise.all(validatorAddresses.map((a) => memberOf(tasks, taskId, "validator", a))),
        mirrorCheck,
      ]);
      memberReads.catch(() => {}); // awaited after the evaluation
      const metrics = await timed(async () => {
        setWeights(scratch, toFloatTensors(model));
        return evaluate(scratch, data.test, 2048);
      });
      last = { accuracy: metrics.accuracy, loss: metrics.loss, version };
      const stakes: Record<Address, bigint> = {};
      const [tStakes, vStakes] = await memberReads;
      trainerAddresses.forEach((a, i) => {
        stakes[a] = (tStakes[i] as { stake: bigint }).stake;
      });
      validatorAddresses.forEach((a, i) => {
        stakes[a] = (vStakes[i] as { stake: bigint }).stake;
      });
      const rewards: Record<Address, bigint> = {};
      const slashed: Slash[] = [];
      const scores: Record<Address, number> = {};
      let accepted = 0;
      let rejected = 0;
      let noShows = 0;
      let falseSlashes = 0;
      let attackersSlashed = 0;
      let attackersAccepted = 0;
      for (const t of settlement.trainers) {
        const attacker = attackerSet.has(t.address.toLowerCase());
        if (t.reward > 0n) rewards[t.address] = t.reward;
        if (t.slashed > 0n) slashed.push({ address: t.address, role: "trainer", amount: t.slashed });
        if (!t.committed) noShows++;
        else {
          scores[t.address] = t.score;
          if (t.accepted) accepted++;
          else rejected++;
        }
        const wasSlashed = t.slashed > 0n;
        if (wasSlashed && attacker) attackersSlashed++;
        if (wasSlashed && !attacker) falseSlashes++;
        if (t.accepted && attacker) attackersAccepted++;
      }
      for (const v of settlement.validators) {
        if (v.reward > 0n) rewards[v.address] = v.reward;
        if (v.slashed > 0n) slashed.push({ address: v.address, role: "validator", amount: v.slashed });
      }
      const total = Object.values(byKind).reduce((a, b) => a + b, 0n);
      const seconds = (performance.now() - roundStart) / 1000;
      const computeSeconds = computeMs / 1000;
      const report: ProtocolRoundReport = {
        round,
        accuracy: metrics.accuracy,
        loss: metrics.loss,
        submitted: settlement.updates,
        accepted,
        rejected,
        noShows,
        scores,
        slashed,
        rewards,
        stakes,
        ...(info.aggregated ? { newVersion: info.newVersion, aggregateDigest: info.aggregateDigest } : {}),
        falseSlashes,
        attackersSlashed,
        attackersAccepted,
        gas: { total, byKind },
        refusals,
        seconds,
        computeSeconds,
        overheadSeconds: Math.max(0, seconds - computeSeconds),
      };
      reports.push(report);
      await options.onRound?.(report);
    }
    const attackersSlashed = reports.reduce((a, r) => a + r.attackersSlashed, 0);
    const attackerRounds = attackers.length * options.rounds;
    return {
      taskId,
      modelId,
      tasks: tasks.address,
      trainers: trainerAddresses,
      validators: validatorAddresses,
      attackers,
      rounds: reports,
      finalAccuracy: last.accuracy,
      finalLoss: last.loss,
      finalVersion: last.version,
      falseSlashes: reports.reduce((a, r) => a + r.falseSlashes, 0),
      attackersSlashed,
      detectionRate: attackerRounds === 0 ? Number.NaN : attackersSlashed / attackerRounds,
      setupSeconds,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    stopUnstaller();
    trainerModel.dispose();
    scratch.dispose();
    if (ownChain) await chain.close();
  }
}
