/**
 * The LearningTasks client: typed calls and reads over the contract, the outcome of a finalization as its
 * events tell it, and the development defaults of a task. The roles (trainer.ts, validator.ts,
 * aggregator.ts), the in-process protocol (protocol.ts) and the `fl` CLI build on it; it holds no protocol
 * logic beyond what is needed to call the contract correctly (approvals before pulls, refusals explained).
 *
 * A signer is a configured account index (`chain.wallet(i)`) or any local account (keys beyond the
 * configured ones, as simulations with hundreds of trainers need).
 */
import { existsSync, readFileSync } from "node:fs";
import {
  type Account,
  type Address,
  type Chain,
  type ContractFunctionReturnType,
  createWalletClient,
  custom,
  formatEther,
  type Hex,
  isAddressEqual,
  type Log,
  parseEther,
  parseEventLogs,
  stringToHex,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from "viem";
import type { LocalAccount } from "../chain/accounts.ts";
import type { LedgerChain } from "../chain/connect.ts";
import { requireDeployment } from "../chain/deploy.ts";
import { devSending } from "../chain/dev-sending.ts";
import {
  DataMarket,
  LearningSettlement,
  LearningTasks,
  MindToken,
  ModelRegistry,
} from "../chain/generated/contracts.ts";
import { oncePerChain } from "../chain/once-per-chain.ts";
import { ContractRefusedError, decodeRevert, sendAndWait } from "../chain/tx.ts";
import { type CanonicalModel, decodeModel } from "../ml/encoding.ts";
import { CANONICAL_FORMAT } from "../registry/client.ts";
import {
  BlobIntegrityError,
  BlobNotFoundError,
  type BlobStore,
  type GetHint,
} from "../storage/blob-store.ts";
import { cidFromDigest, sha256Digest } from "../storage/cid.ts";
import { writeFileDurably } from "../storage/durable-file.ts";
import { BlobUnavailableError } from "../storage/http-blob-store.ts";
import { bindingMismatch, EnvelopeError, openUpdate, type UpdateBinding } from "./envelope.ts";
import {
  REVEAL_PAGE_WORDS,
  type RoundSettlementInput,
  SCORES_PER_WORD,
  scorePages,
  type TrainerStatus,
  trainerStatusOf,
} from "./finalize.ts";
import { SCORE_KEPT } from "./scoring.ts";

/** An off-chain refusal: the call would fail or make no sense; the message says what to do instead. */
export class LearningError extends Error {
  override name = "LearningError";
}

/**
 * A trainer lacks access to a dataset its task trains on: refused before anything is sent, since the
 * contract would refuse the join (or the commit) anyway.
 */
export class DatasetAccessError extends LearningError {
  override name = "DatasetAccessError";
  constructor(
    readonly taskId: bigint,
    readonly datasetId: bigint,
    readonly account: Address,
  ) {
    super(
      `${account} has no access to dataset ${datasetId}, which task ${taskId} trains on: buy it with \`ledgermind data buy ${datasetId}\` or ask its owner for a grant (\`ledgermind data grant\`)`,
    );
  }
}

export type MemberRole = "trainer" | "validator";
/** The contract's Role enum. */
export const ROLE_CODE: Record<MemberRole, 0 | 1> = { trainer: 0, validator: 1 };

/** The contract's Phase enum, by its index. */
export const PHASES = [
  "None",
  "Commit",
  "ScoreCommit",
  "Reveal",
  "Finalize",
  "Aggregate",
  "Done",
  "Expired",
] as const;
export type Phase = (typeof PHASES)[number];

/** A configured account's index, or a local account of any key. */
export type Signer = number | LocalAccount;

/** A LearningTasks deployment. */
export interface Tasks {
  chain: LedgerChain;
  address: Address;
  token: Address;
  registry: Address;
  /** The first block worth scanning for its events. */
  fromBlock: bigint;
  /** Reads see the state after this block (`tasksAt`); the latest block when absent. */
  readAt?: bigint;
}

/** The same contracts, with every view read at block `blockNumber` (a finished block's state). */
export function tasksAt(tasks: Tasks, blockNumber: bigint): Tasks {
  return { ...tasks, readAt: blockNumber };
}

/** `TaskParams` as viem encodes and decodes it. */
export interface TaskParams {
  modelId: number;
  baseVersion: number;
  format: Hex;
  licence: Hex;
  rewardPerRound: bigint;
  rounds: number;
  minTrainerStake: bigint;
  minValidatorStake: bigint;
  commitWindow: number;
  scoreWindow: number;
  revealWindow: number;
  aggregateWindow: number;
  exitWindow: number;
  slashBps: number;
  minScore: number;
  relativeBps: number;
  quorumBps: number;
  maxTrainers: number;
  maxValidators: number;
}

export interface TaskState {
  creator: Address;
  roundCount: number;
  currentVersion: number;
  closed: boolean;
  poolLeft: bigint;
  activeTrainers: number;
  activeValidators: number;
  /** How many DataMarket datasets the task names (`taskDatasets` reads them). */
  datasets: number;
}

export interface Member {
  stake: bigint;
  earned: bigint;
  commitRound: number;
  /** 0: never joined, 1: active, 2: left. */
  status: number;
}

export interface RoundInfo {
  commitDeadline: bigint;
  scoreDeadline: bigint;
  revealDeadline: bigint;
  commits: number;
  scoreCommits: number;
  reveals: number;
  finalized: boolean;
  baseVersion: number;
  pool: bigint;
  finalizedAt: bigint;
  newVersion: number;
  accepted: number;
  roundMedian: number;
  aggregated: boolean;
  /** Nobody finalized it in time: it settled nothing. */
  expired: boolean;
  contributorsHash: Hex;
  aggregateDigest: Hex;
  phase: Phase;
}

export interface RoundUpdate {
  trainer: Address;
  digest: Hex;
  samples: number;
}

export const MEMBER_ACTIVE = 1;

// ---------------------------------------------------------------------------------------------------------
// Handles and signers
// ---------------------------------------------------------------------------------------------------------

/** The deployment manifest's LearningTasks. */
export async function openTasks(chain: LedgerChain): Promise<Tasks> {
  const manifest = await requireDeployment(chain);
  const entry = manifest.contracts.LearningTasks;
  return {
    chain,
    address: entry.address,
    token: manifest.contracts.MindToken.address,
    registry: manifest.contracts.ModelRegistry.address,
    fromBlock: BigInt(entry.block),
  };
}

const keyWallets = new WeakMap<LedgerChain, Map<Address, WalletClient<Transport, Chain, Account>>>();

/** The wallet client of a signer: the chain's configured wallet, or one made (once) for a local account. */
export function walletOf(chain: LedgerChain, signer: Signer): WalletClient<Transport, Chain, Account> {
  if (typeof signer === "number") return chain.wallet(signer);
  let wallets = keyWallets.get(chain);
  if (!wallets) {
    wallets = new Map();
    keyWallets.set(chain, wallets);
  }
  let w = wallets.get(signer.address);
  if (!w) {
    // Requests go through the chain's own client, so the key signs locally and the node sees raw transactions.
    const transport = custom(
      { request: (args) => chain.publicClient.request(args as never) },
      { retryCount: 0 },
    );
    w = createWalletClient({ account: signer, chain: chain.chain, transport });
    wallets.set(signer.address, w);
  }
  return w;
}

export function addressOf(chain: LedgerChain, signer: Signer): Address {
  return walletOf(chain, signer).account.address;
}

/**
 * Gas added to the estimate of a vote on an aggregate, on chains where writes are estimated: votes race,
 * and the one that reaches the quorum also appends the registry version, which an estimate made before the
 * other votes landed does not include.
 */
export const QUORUM_GAS_HEADROOM = 400_000n;

async function write(
  tasks: Tasks,
  signer: Signer,
  functionName: string,
  args: readonly unknown[],
  gasHeadroom = 0n,
): Promise<TransactionReceipt> {
  const local = walletOf(tasks.chain, signer);
  const call = { address: tasks.address, abi: LearningTasks.abi, functionName, args } as never;
  const dev = await devSending(tasks.chain);
  const wallet = dev?.nodeWallet(local.account.address) ?? local;
  let gas: bigint | undefined = dev?.gas;
  try {
    if (dev) {
      await tasks.chain.publicClient.simulateContract({
        ...(call as object),
        account: wallet.account,
      } as never);
    } else if (gasHeadroom > 0n) {
      gas =
        (await tasks.chain.publicClient.estimateContractGas({
          ...(call as object),
          account: wallet.account,
        } as never)) + gasHeadroom;
    }
  } catch (err) {
    throw decodeRevert(err);
  }
  return sendAndWait(tasks.chain, () =>
    wallet.writeContract({ ...(call as object), ...(gas ? { gas } : {}) } as never),
  );
}

async function read<R>(tasks: Tasks, functionName: string, args: readonly unknown[]): Promise<R> {
  try {
    return (await tasks.chain.publicClient.readContract({
      address: tasks.address,
      abi: LearningTasks.abi,
      functionName,
      args,
      ...(tasks.readAt === undefined ? {} : { blockNumber: tasks.readAt }),
    } as never)) as R;
  } catch (err) {
    throw decodeRevert(err);
  }
}

/** Lets the task contract pull `amount` MIND from the signer, unless it already may. */
async function ensureAllowance(tasks: Tasks, signer: Signer, amount: bigint): Promise<void> {
  if (amount === 0n) return;
  const owner = addressOf(tasks.chain, signer);
  const [allowance, balance] = await Promise.all([
    tasks.chain.publicClient.readContract({
      address: tasks.token,
      abi: MindToken.abi,
      functionName: "allowance",
      args: [owner, tasks.address],
    }),
    tasks.chain.publicClient.readContract({
      address: tasks.token,
      abi: MindToken.abi,
      functionName: "balanceOf",
      args: [owner],
    }),
  ]);
  if (balance < amount) {
    throw new LearningError(
      `${owner} holds ${formatEther(balance)} MIND but needs ${formatEther(amount)}: transfer MIND to it first (\`ledgermind token transfer ${owner} AMOUNT\` from the deployer)`,
    );
  }
  if (allowance >= amount) return;
  await sendAndWait(tasks.chain, () =>
    walletOf(tasks.chain, signer).writeContract({
      address: tasks.token,
      abi: MindToken.abi,
      functionName: "approve",
      args: [tasks.address, amount],
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------------------

export interface DefaultTaskOptions {
  modelId: bigint | number;
  baseVersion: number;
  rounds: number;
  /** Trainers and validators expected: windows on automining chains hold one block per transaction. */
  trainers: number;
  validators: number;
  rewardPerRound?: bigint;
  licence?: string;
}

/** Blocks of slack in every window beyond one block per expected transaction. */
export const WINDOW_SLACK = 3;
/** The contract's MIN_VALIDATORS: a round starts with no fewer active validators. */
export const MIN_VALIDATORS = 3;
/** The contract's MIN_EXIT_WINDOW, which the default tasks use: blocks between a round's end and the next. */
export const EXIT_WINDOW = 5;
/** More than two thirds of the revealed stake attests an aggregate (as OCR reports need). */
export const DEFAULT_QUORUM_BPS = 6_667;

/**
 * Parameters for development chains. Those mine one block per transaction, so each window holds one block
 * per member that acts in it plus WINDOW_SLACK (the runner mines empty blocks to close a window early).
 * minScore SCORE_KEPT (2) with relativeBps 0 is scoring.ts's DEFAULT_ACCEPT_THRESHOLD: any kept update is
 * accepted, one scored 1 (SCORE_EXCLUDED) is left out unpaid and unslashed; an aggregate needs the attestations of more than two thirds of the revealed stake (6_667 bps:
 * with three validators, all three), and each round waits EXIT_WINDOW blocks after the previous one.
 */
/** `LearningTasks.MAX_TRAINERS_CAP`: the most trainers a task may have. */
export const MAX_TRAINERS = 10_000;
/** `LearningTasks.MAX_VALIDATORS_CAP`: the most validators a task may have. */
export const MAX_VALIDATORS = 32;

export function defaultTaskParams(o: DefaultTaskOptions): TaskParams {
  if (o.validators < MIN_VALIDATORS || o.trainers < 1)
    throw new LearningError(
      `a task needs at least one trainer and ${MIN_VALIDATORS} validators (a round starts with no fewer)`,
    );
  if (o.trainers > MAX_TRAINERS)
    throw new LearningError(`at most ${MAX_TRAINERS} trainers per task, not ${o.trainers}`);
  if (o.validators > MAX_VALIDATORS)
    throw new LearningError(`at most ${MAX_VALIDATORS} validators per task, not ${o.validators}`);
  // Each validator reveals one page per REVEAL_PAGE_WORDS words of scores.
  const revealPages = Math.ceil(o.trainers / (REVEAL_PAGE_WORDS * SCORES_PER_WORD));
  return {
    modelId: Number(o.modelId),
    baseVersion: o.baseVersion,
    format: stringToHex(CANONICAL_FORMAT, { size: 8 }),
    licence: stringToHex(o.licence ?? "MIT", { size: 32 }),
    rewardPerRound: o.rewardPerRound ?? parseEther("100"),
    rounds: o.rounds,
    minTrainerStake: parseEther("10"),
    minValidatorStake: parseEther("20"),
    commitWindow: o.trainers + WINDOW_SLACK,
    scoreWindow: o.validators + WINDOW_SLACK,
    revealWindow: o.validators * revealPages + WINDOW_SLACK,
    aggregateWindow: o.validators + WINDOW_SLACK,
    exitWindow: EXIT_WINDOW,
    slashBps: 1_000,
    minScore: SCORE_KEPT,
    relativeBps: 0,
    quorumBps: DEFAULT_QUORUM_BPS,
    maxTrainers: MAX_TRAINERS,
    maxValidators: MAX_VALIDATORS,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------------------

/**
 * Creates a task, approving its whole reward (`rewardPerRound * rounds`) first. The creator must own the
 * model; the task contract is approved for all the creator's models if it is not yet, so that aggregates
 * can be appended as versions. `datasets` (DataMarket ids, at most 4) are named in a second transaction,
 * before anyone can start a round: every trainer must then have access to each to join and to commit.
 */
export async function createTask(
  tasks: Tasks,
  params: TaskParams,
  creator: Signer = 0,
  datasets: readonly bigint[] = [],
): Promise<{ taskId: bigint; receipt: TransactionReceipt }> {
  const chain = tasks.chain;
  const me = addressOf(chain, creator);
  const owner = await chain.publicClient.readContract({
    address: tasks.registry,
    abi: ModelRegistry.abi,
    functionName: "ownerOf",
    args: [BigInt(params.modelId)],
  });
  if (!isAddressEqual(owner, me)) {
    throw new LearningError(
      `model ${params.modelId} belongs to ${owner}, not ${me}: create the task from its owner's account`,
    );
  }
  const approved = await chain.publicClient.readContract({
    address: tasks.registry,
    abi: ModelRegistry.abi,
    functionName: "isApprovedForAll",
    args: [me, tasks.address],
  });
  if (!approved) {
    await sendAndWait(chain, () =>
      walletOf(chain, creator).writeContract({
        address: tasks.registry,
        abi: ModelRegistry.abi,
        functionName: "setApprovalForAll",
        args: [tasks.address, true],
      }),
    );
  }
  await ensureAllowance(tasks, creator, params.rewardPerRound * BigInt(params.rounds));
  const receipt = await write(tasks, creator, "createTask", [params]);
  const [log] = parseEventLogs({ abi: LearningTasks.abi, logs: receipt.logs, eventName: "TaskCreated" });
  if (!log) throw new LearningError("createTask emitted no TaskCreated event");
  if (datasets.length > 0) await setTaskDatasets(tasks, log.args.taskId, datasets, creator);
  return { taskId: log.args.taskId, receipt };
}

/**
 * Names the DataMarket datasets a task trains on (1 to 4, distinct, published): only its creator, once,
 * before its first round.
 * @throws ContractRefusedError: DatasetsFixed, InvalidDatasetCount, UnknownDataset, DuplicateDataset, NotTaskCreator
 */
export function setTaskDatasets(
  tasks: Tasks,
  taskId: bigint,
  datasets: readonly bigint[],
  creator: Signer = 0,
): Promise<TransactionReceipt> {
  return write(tasks, creator, "setDatasets", [taskId, datasets]);
}

/** The DataMarket datasets a task trains on, from its TaskDatasetsSet event (empty: none). */
export async function taskDatasets(tasks: Tasks, taskId: bigint): Promise<bigint[]> {
  const logs = await tasks.chain.publicClient.getContractEvents({
    address: tasks.address,
    abi: LearningTasks.abi,
    eventName: "TaskDatasetsSet",
    args: { taskId },
    fromBlock: tasks.fromBlock,
    ...(tasks.readAt === undefined ? {} : { toBlock: tasks.readAt }),
  });
  return [...(logs[0]?.args.datasetIds ?? [])];
}

/** The DataMarket the task contract checks access against (its settlement code keeps the address). */
export async function datasetMarketOf(tasks: Tasks): Promise<Address> {
  const settlement = await read<Address>(tasks, "settlement", []);
  return tasks.chain.publicClient.readContract({
    address: settlement,
    abi: LearningSettlement.abi,
    functionName: "market",
  });
}

/** Throws DatasetAccessError naming the first of the task's datasets `account` cannot use now. */
export async function requireDatasetAccess(tasks: Tasks, taskId: bigint, account: Address): Promise<void> {
  const datasets = await taskDatasets(tasks, taskId);
  if (datasets.length === 0) return;
  const market = await datasetMarketOf(tasks);
  for (const datasetId of datasets) {
    const ok = await tasks.chain.publicClient.readContract({
      address: market,
      abi: DataMarket.abi,
      functionName: "hasAccess",
      args: [datasetId, account],
    });
    if (!ok) throw new DatasetAccessError(taskId, datasetId, account);
  }
}

/**
 * Takes back the stake of a trainer that lost access to one of the task's datasets (expired, revoked),
 * even mid-round, as long as it did not commit in the round: its commits are refused, and without its
 * stake its absence costs it nothing. It stays a member with no stake until it leaves with `exitTask`.
 * @throws ContractRefusedError: AccessNotLost, NotTaskDataset, AlreadyCommitted, RoundInProgress, NotTrainer
 */
export function releaseStakeWithoutAccess(
  tasks: Tasks,
  taskId: bigint,
  datasetId: bigint,
  signer: Signer,
): Promise<TransactionReceipt> {
  return write(tasks, signer, "releaseStakeWithoutAccess", [taskId, datasetId]);
}

/** Joins (or adds stake to) a task, approving the stake first. */
export async function joinTask(
  tasks: Tasks,
  taskId: bigint,
  role: MemberRole,
  amount: bigint,
  signer: Signer,
): Promise<TransactionReceipt> {
  if (amount <= 0n) throw new LearningError("the stake to add must be positive");
  if (role === "trainer") await requireDatasetAccess(tasks, taskId, addressOf(tasks.chain, signer));
  await ensureAllowance(tasks, signer, amount);
  return write(tasks, signer, "join", [taskId, ROLE_CODE[role], amount]);
}

export async function startRound(
  tasks: Tasks,
  taskId: bigint,
  creator: Signer = 0,
): Promise<{ round: number; receipt: TransactionReceipt }> {
  const receipt = await write(tasks, creator, "startRound", [taskId]);
  const [log] = parseEventLogs({ abi: LearningTasks.abi, logs: receipt.logs, eventName: "RoundStarted" });
  if (!log) throw new LearningError("startRound emitted no RoundStarted event");
  return { round: log.args.round, receipt };
}

export function commitUpdate(
  tasks: Tasks,
  taskId: bigint,
  round: number,
  digest: Hex,
  samples: number,
  signer: Signer,
): Promise<TransactionReceipt> {
  if (!Number.isInteger(samples) || samples < 1 || samples > 0xffffffff) {
    throw new LearningError(`samples must be an integer from 1 to 2^32 - 1, got ${samples}`);
  }
  return write(tasks, signer, "commitUpdate", [taskId, round, digest, samples]);
}

export function commitScores(
  tasks: Tasks,
  taskId: bigint,
  round: number,
  commitment: Hex,
  signer: Signer,
): Promise<TransactionReceipt> {
  return write(tasks, signer, "commitScores", [taskId, round, commitment]);
}

/**
 * Reveals a validator's packed scores page by page (one transaction per REVEAL_PAGE_WORDS words), from the
 * page the contract expects next, so that an interrupted reveal resumes. The receipt is the last page's,
 * with the pages' gas summed and their logs joined.
 */
export async function revealScores(
  tasks: Tasks,
  taskId: bigint,
  round: number,
  words: readonly bigint[],
  salt: Hex,
  signer: Signer,
): Promise<TransactionReceipt> {
  const account = walletOf(tasks.chain, signer).account.address;
  const done = (await tasks.chain.publicClient.readContract({
    address: tasks.address,
    abi: LearningTasks.abi,
    functionName: "revealProgress",
    args: [taskId, round, account],
  })) as bigint;
  const receipts: TransactionReceipt[] = [];
  for (const page of scorePages(words.slice(Number(done)))) {
    receipts.push(await write(tasks, signer, "revealScores", [taskId, round, page, salt]));
  }
  return joinReceipts(receipts);
}

/** The last receipt, with every receipt's gas summed and logs joined: what a multi-transaction step cost. */
export function joinReceipts(receipts: readonly TransactionReceipt[]): TransactionReceipt {
  const last = receipts[receipts.length - 1];
  if (!last) throw new LearningError("no transaction was sent");
  return {
    ...last,
    gasUsed: receipts.reduce((sum, r) => sum + r.gasUsed, 0n),
    logs: receipts.flatMap((r) => r.logs),
  };
}

/**
 * Finalizes a round: sends `finalize` (each call a bounded step anyone may send) until the round is settled.
 * The receipt is the last step's, with the steps' gas summed and their logs joined (RoundFinalized included).
 */
export async function finalizeRound(
  tasks: Tasks,
  taskId: bigint,
  round: number,
  signer: Signer = 0,
): Promise<TransactionReceipt> {
  const receipts: TransactionReceipt[] = [];
  for (;;) {
    const receipt = await write(tasks, signer, "finalize", [taskId, round]);
    receipts.push(receipt);
    const fin = parseEventLogs({ abi: LearningTasks.abi, logs: receipt.logs, eventName: "RoundFinalized" });
    if (fin.length > 0) return joinReceipts(receipts);
  }
}

export function proposeAggregate(
  tasks: Tasks,
  taskId: bigint,
  round: number,
  digest: Hex,
  signer: Signer,
): Promise<TransactionReceipt> {
  return write(tasks, signer, "proposeAggregate", [taskId, round, digest], QUORUM_GAS_HEADROOM);
}

export function attestAggregate(
  tasks: Tasks,
  taskId: bigint,
  round: number,
  digest: Hex,
  signer: Signer,
): Promise<TransactionReceipt> {
  return write(tasks, signer, "attestAggregate", [taskId, round, digest], QUORUM_GAS_HEADROOM);
}

export function claim(
  tasks: Tasks,
  taskId: bigint,
  role: MemberRole,
  signer: Signer,
): Promise<TransactionReceipt> {
  return write(tasks, signer, "claim", [taskId, ROLE_CODE[role]]);
}

export function withdraw(tasks: Tasks, signer: Signer): Promise<TransactionReceipt> {
  return write(tasks, signer, "withdraw", []);
}

export function exitTask(
  tasks: Tasks,
  taskId: bigint,
  role: MemberRole,
  signer: Signer,
): Promise<TransactionReceipt> {
  return write(tasks, signer, "exitTask", [taskId, ROLE_CODE[role]]);
}

export function closeTask(tasks: Tasks, taskId: bigint, creator: Signer = 0): Promise<TransactionReceipt> {
  return write(tasks, creator, "closeTask", [taskId]);
}

// ---------------------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------------------

export async function taskCount(tasks: Tasks): Promise<bigint> {
  return read<bigint>(tasks, "taskCount", []);
}

export async function getTask(
  tasks: Tasks,
  taskId: bigint,
): Promise<{ params: TaskParams; state: TaskState }> {
  const [params, state] = await read<readonly [TaskParams, TaskState]>(tasks, "getTask", [taskId]);
  return { params, state };
}

/** `getRound` as the contract returns it (types derived from the ABI). */
export type RoundView = ContractFunctionReturnType<typeof LearningTasks.abi, "view", "getRound">;

export async function getRound(tasks: Tasks, taskId: bigint, round: number): Promise<RoundInfo> {
  const r = await read<RoundView>(tasks, "getRound", [taskId, round]);
  return {
    commitDeadline: BigInt(r.state.commitDeadline),
    scoreDeadline: BigInt(r.state.scoreDeadline),
    revealDeadline: BigInt(r.state.revealDeadline),
    commits: r.state.commits,
    scoreCommits: r.state.scoreCommits,
    reveals: r.state.reveals,
    finalized: r.state.finalized,
    baseVersion: r.state.baseVersion,
    pool: r.result.pool,
    finalizedAt: BigInt(r.result.finalizedAt),
    newVersion: r.result.newVersion,
    accepted: r.result.accepted,
    roundMedian: r.result.roundMedian,
    aggregated: r.result.aggregated,
    expired: r.result.expired,
    contributorsHash: r.contributorsHash,
    aggregateDigest: r.aggregateDigest,
    phase: PHASES[r.phase] as Phase,
  };
}

export async function phaseOf(tasks: Tasks, taskId: bigint, round: number): Promise<Phase> {
  return PHASES[await read<number>(tasks, "phaseOf", [taskId, round])] as Phase;
}

export function trainersOf(tasks: Tasks, taskId: bigint): Promise<readonly Address[]> {
  return read<readonly Address[]>(tasks, "trainersOf", [taskId]);
}

export function validatorsOf(tasks: Tasks, taskId: bigint): Promise<readonly Address[]> {
  return read<readonly Address[]>(tasks, "validatorsOf", [taskId]);
}

export function memberOf(tasks: Tasks, taskId: bigint, role: MemberRole, account: Address): Promise<Member> {
  return read<Member>(tasks, "memberOf", [taskId, ROLE_CODE[role], account]);
}

/** The committed updates of the task's latest round, in scoring order (trainer join order). */
export async function roundUpdates(tasks: Tasks, taskId: bigint, round: number): Promise<RoundUpdate[]> {
  const [trainers, digests, samples] = await read<
    readonly [readonly Address[], readonly Hex[], readonly number[]]
  >(tasks, "roundUpdates", [taskId, round]);
  return trainers.map((trainer, i) => ({
    trainer,
    digest: digests[i] as Hex,
    samples: samples[i] as number,
  }));
}

/** A validator's revealed scores in a round (undefined if it did not reveal). */
export async function scoresOf(
  tasks: Tasks,
  taskId: bigint,
  round: number,
  validator: Address,
): Promise<number[] | undefined> {
  const scores = await read<readonly number[]>(tasks, "getScores", [taskId, round, validator]);
  return scores.length > 0 ? [...scores] : undefined;
}

export interface AggregateProposal {
  digest: Hex;
  proposer: Address;
  /** The revealed stake of its votes (the proposer's included). */
  stake: bigint;
}

export async function getProposals(
  tasks: Tasks,
  taskId: bigint,
  round: number,
): Promise<AggregateProposal[]> {
  const [digests, proposers, stakes] = await read<
    readonly [readonly Hex[], readonly Address[], readonly bigint[]]
  >(tasks, "getProposals", [taskId, round]);
  return digests.map((digest, i) => ({
    digest,
    proposer: proposers[i] as Address,
    stake: stakes[i] as bigint,
  }));
}

/**
 * Who proposed, in `round` of the task, the aggregate that became `version` of the model: they hold its
 * weights. Empty when that round made no such version (round 0, an expired round, another version).
 */
export async function aggregateProposers(
  tasks: Tasks,
  taskId: bigint,
  round: number,
  modelId: bigint | number,
  version: number,
): Promise<Address[]> {
  if (round < 1) return [];
  const [digest, proposals] = await Promise.all([
    versionDigest(tasks, modelId, version),
    getProposals(tasks, taskId, round),
  ]);
  return proposals.filter((p) => p.digest.toLowerCase() === digest.toLowerCase()).map((p) => p.proposer);
}

export function withdrawable(tasks: Tasks, account: Address): Promise<bigint> {
  return read<bigint>(tasks, "withdrawable", [account]);
}

/** Weights digests by registry version, per connection: the registry never changes a version. */
const versionDigests = oncePerChain<Hex>();

/** The weights digest the registry records for a model version (read once per connection). */
export function versionDigest(tasks: Tasks, modelId: bigint | number, version: number): Promise<Hex> {
  return versionDigests(tasks.chain, `${tasks.registry.toLowerCase()}/${modelId}/${version}`, async () => {
    try {
      const v = await tasks.chain.publicClient.readContract({
        address: tasks.registry,
        abi: ModelRegistry.abi,
        functionName: "getVersion",
        args: [BigInt(modelId), version],
      });
      return v.weightsDigest;
    } catch (err) {
      throw decodeRevert(err);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------------------------------------

/** A model's bytes by digest, or why they cannot be used. */
export type FetchedUpdate = { model: CanonicalModel; bytes: Uint8Array } | { reason: string };

/** A verified and decoded blob: a plain canonical model, or a trainer's update envelope and its binding. */
interface FetchedEntry {
  model: CanonicalModel;
  bytes: Uint8Array;
  binding?: UpdateBinding;
}

/**
 * Verified and decoded blobs, per store and digest (and kind: a plain model or an envelope). Content
 * addressing makes an entry valid forever, so the roles of one process (a simulation) fetch, hash and
 * decode each blob once instead of once each; what a role does with an entry is the same as with a fresh
 * copy. Bounded by FETCH_CACHE_BYTES (oldest out first). Failures are not cached: a blob not yet published
 * may come.
 */
const fetchCache = new WeakMap<BlobStore, Map<string, FetchedEntry>>();
const FETCH_CACHE_BYTES = 256 * 1024 * 1024;
const fetchCacheSize = new WeakMap<BlobStore, number>();

function remember(store: BlobStore, key: string, entry: FetchedEntry): void {
  let cache = fetchCache.get(store);
  if (!cache) {
    cache = new Map();
    fetchCache.set(store, cache);
  }
  let size = (fetchCacheSize.get(store) ?? 0) + entry.bytes.length;
  cache.set(key, entry);
  for (const [old, e] of cache) {
    if (size <= FETCH_CACHE_BYTES) break;
    cache.delete(old);
    size -= e.bytes.length;
  }
  fetchCacheSize.set(store, size);
}

/**
 * The blob whose bytes hash to `digest`, decoded: a canonical model, or with `sealed` an update envelope
 * around one. The bytes are hashed here as well as by the store: a backend (or a peer behind it) is not
 * trusted to have verified them. Entries are shared with other callers (see fetchCache): never modify them.
 */
async function fetchBlob(
  store: BlobStore,
  digest: Hex,
  sealed: boolean,
  hint?: GetHint,
): Promise<FetchedEntry | { reason: string }> {
  const key = `${sealed ? "update" : "model"}:${digest.toLowerCase()}`;
  const cached = fetchCache.get(store)?.get(key);
  if (cached) return cached;
  let bytes: Uint8Array;
  try {
    bytes = await store.get(cidFromDigest(digest), hint);
  } catch (err) {
    if (err instanceof BlobNotFoundError) return { reason: `not published (no blob ${err.cid})` };
    // No peer delivered it: not published yet, or its holder serves wrong bytes, stalls or is gone. The
    // caller waits while the window allows, then scores it 0: one node's fault never stops a validator.
    if (err instanceof BlobUnavailableError) return { reason: `unavailable: ${err.message}` };
    if (err instanceof BlobIntegrityError)
      return { reason: `bytes hash to ${err.actualDigest}, not ${digest}` };
    throw err;
  }
  const actual = sha256Digest(bytes);
  if (actual !== digest.toLowerCase()) return { reason: `bytes hash to ${actual}, not ${digest}` };
  let entry: FetchedEntry;
  try {
    if (sealed) {
      const opened = openUpdate(bytes);
      entry = { model: decodeModel(opened.model), bytes, binding: opened.binding };
    } else entry = { model: decodeModel(bytes), bytes };
  } catch (err) {
    if (err instanceof EnvelopeError) return { reason: err.message };
    return { reason: `not a canonical model: ${(err as Error).message}` };
  }
  remember(store, key, entry);
  return entry;
}

/** The canonical model whose bytes hash to `digest` (a registry version's weights), from the blob store. */
export async function fetchUpdate(store: BlobStore, digest: Hex, hint?: GetHint): Promise<FetchedUpdate> {
  const fetched = await fetchBlob(store, digest, false, hint);
  return "reason" in fetched ? fetched : { model: fetched.model, bytes: fetched.bytes };
}

/**
 * A trainer's committed update: the envelope whose bytes hash to `digest`, with the model it holds. An
 * envelope bound to anything but `expected` (another trainer: a copied digest; another task or round: a
 * replay) is unusable, with the reason: validators score it 0.
 */
export async function fetchTrainerUpdate(
  store: BlobStore,
  digest: Hex,
  expected: UpdateBinding,
): Promise<FetchedUpdate> {
  const fetched = await fetchBlob(store, digest, true);
  if ("reason" in fetched) return fetched;
  const mismatch = bindingMismatch(fetched.binding as UpdateBinding, expected);
  return mismatch ? { reason: mismatch } : { model: fetched.model, bytes: fetched.bytes };
}

/**
 * A registry version's weights from the blob store, checked against the registry's digest; `hint` names
 * who should hold them (`aggregateProposers`).
 */
export async function fetchVersionModel(
  tasks: Tasks,
  store: BlobStore,
  modelId: bigint | number,
  version: number,
  hint?: GetHint,
): Promise<{ model: CanonicalModel; digest: Hex }> {
  const digest = await versionDigest(tasks, modelId, version);
  const fetched = await fetchUpdate(store, digest, hint);
  if ("reason" in fetched) {
    throw new LearningError(
      `the weights of model ${modelId} version ${version} are unusable: ${fetched.reason}; put the version's file in the blob store (\`ledgermind blob put\`)`,
    );
  }
  return { model: fetched.model, digest };
}

// ---------------------------------------------------------------------------------------------------------
// Settlement, as the chain decided it
// ---------------------------------------------------------------------------------------------------------

export interface TrainerSettlement {
  address: Address;
  /** Its tier, from the event's fields (finalize.ts `trainerStatusOf`). */
  status: TrainerStatus;
  committed: boolean;
  score: number;
  accepted: boolean;
  reward: bigint;
  slashed: bigint;
}

export interface ValidatorSettlement {
  address: Address;
  revealed: boolean;
  weight: number;
  reward: bigint;
  slashed: bigint;
}

/** A finalized round's outcome, from its events: the source of truth. */
export interface ChainSettlement {
  taskId: bigint;
  round: number;
  updates: number;
  accepted: number;
  roundMedian: number;
  contributorsHash: Hex;
  /** Back to the task's pool: the reward part of pots nobody qualified for. */
  refunded: bigint;
  /** Kept by the contract for good: slashes nobody qualified for, and rounding dust. */
  burned: bigint;
  /** In the task's trainer order, active trainers only. */
  trainers: TrainerSettlement[];
  validators: ValidatorSettlement[];
}

/** The settlement a `finalize` receipt records (the receipts of every step, joined, for a round in steps). */
export function settlementOf(receipt: TransactionReceipt): ChainSettlement {
  return settlementOfLogs(receipt.logs, `transaction ${receipt.transactionHash}`);
}

/** The settlement recorded by these logs: a round's RoundFinalized and its settlement events, in order. */
function settlementOfLogs(logs: readonly Log[], source: string): ChainSettlement {
  const abi = LearningTasks.abi;
  const [fin] = parseEventLogs({ abi, logs: logs as Log[], eventName: "RoundFinalized" });
  if (!fin) throw new LearningError(`${source} finalized no round`);
  const { taskId, round } = fin.args;
  // Events of other rounds or tasks that share these logs are not this settlement's.
  const ours = (l: { args: { taskId: bigint; round: number } }) =>
    l.args.taskId === taskId && l.args.round === round;
  return {
    taskId: fin.args.taskId,
    round: fin.args.round,
    updates: Number(fin.args.updates),
    accepted: Number(fin.args.accepted),
    roundMedian: Number(fin.args.roundMedian),
    contributorsHash: fin.args.contributorsHash,
    refunded: fin.args.refunded,
    burned: fin.args.burned,
    trainers: parseEventLogs({ abi, logs: logs as Log[], eventName: "TrainerSettled" })
      .filter(ours)
      .map((l) => {
        const t = {
          committed: l.args.committed,
          score: Number(l.args.score),
          accepted: l.args.accepted,
          slashed: l.args.slashed,
        };
        return { address: l.args.trainer, status: trainerStatusOf(t), ...t, reward: l.args.reward };
      }),
    validators: parseEventLogs({ abi, logs: logs as Log[], eventName: "ValidatorSettled" })
      .filter(ours)
      .map((l) => ({
        address: l.args.validator,
        revealed: l.args.revealed,
        weight: Number(l.args.weight),
        reward: l.args.reward,
        slashed: l.args.slashed,
      })),
  };
}

/**
 * Finalized rounds' settlements, per connection: finalize runs once per round, so its record never
 * changes and the roles of a process read it once.
 */
const settlements = oncePerChain<ChainSettlement>();

/** A finalized round's settlement read back from the chain's logs (for roles that did not finalize it). */
export function getSettlement(tasks: Tasks, taskId: bigint, round: number): Promise<ChainSettlement> {
  return settlements(tasks.chain, `${tasks.address.toLowerCase()}/${taskId}/${round}`, () =>
    readSettlement(tasks, taskId, round),
  );
}

async function readSettlement(tasks: Tasks, taskId: bigint, round: number): Promise<ChainSettlement> {
  const logs = await tasks.chain.publicClient.getContractEvents({
    address: tasks.address,
    abi: LearningTasks.abi,
    eventName: "RoundFinalized",
    args: { taskId, round },
    fromBlock: tasks.fromBlock,
  });
  const log = logs[0];
  if (!log?.blockNumber) throw new LearningError(`round ${round} of task ${taskId} is not finalized yet`);
  // A large round settles in several finalize steps, each in its own transaction: its settlement events
  // span the blocks up to the last step's.
  const range = { fromBlock: tasks.fromBlock, toBlock: log.blockNumber };
  const [trainers, validators] = await Promise.all(
    (["TrainerSettled", "ValidatorSettled"] as const).map((eventName) =>
      tasks.chain.publicClient.getContractEvents({
        address: tasks.address,
        abi: LearningTasks.abi,
        eventName,
        args: { taskId, round },
        ...range,
      }),
    ),
  );
  return settlementOfLogs(
    [...(trainers ?? []), ...(validators ?? []), log],
    `round ${round} of task ${taskId}`,
  );
}

/** What a role saw of its task's latest round in one read: the runner shares one among all its roles. */
export interface RoundSnapshot {
  taskId: bigint;
  params: TaskParams;
  state: TaskState;
  /** The latest round (0: none started). */
  round: number;
  /** Its record and phase at `head` (undefined when no round started). */
  info?: RoundInfo;
  head: bigint;
}

export async function snapshotOf(tasks: Tasks, taskId: bigint): Promise<RoundSnapshot> {
  const [{ params, state }, head] = await Promise.all([
    getTask(tasks, taskId),
    tasks.chain.publicClient.getBlockNumber({ cacheTime: 0 }),
  ]);
  const round = state.roundCount;
  const info = round === 0 ? undefined : await getRound(tasks, taskId, round);
  return { taskId, params, state, round, info, head };
}

/** Runs a computation for a caller that times it (simulations separate compute from protocol overhead). */
export type Measure = <R>(fn: () => Promise<R> | R) => Promise<R>;

/** What a role's step did. */
export interface RoleAction {
  kind: "commit" | "publish" | "scoreCommit" | "reveal" | "propose" | "attest" | "refuse" | "skip";
  role: MemberRole | "aggregator";
  account: Address;
  round: number;
  gasUsed: bigint;
  /** A refusal's or a skip's reason. */
  reason?: string;
}

export interface RoleStepResult {
  actions: RoleAction[];
  /** The head height at which this role has something to do next, if it waits for one. */
  waitingFor?: bigint;
}

/**
 * The input of finalize.ts's `settleRound` for a round about to be finalized, read from the chain: every
 * member's stake and status, the round's committed digests and the revealed scores.
 */
export async function settlementInputOf(
  tasks: Tasks,
  taskId: bigint,
  round: number,
): Promise<RoundSettlementInput> {
  const [{ params }, info, updates, trainers, validators] = await Promise.all([
    getTask(tasks, taskId),
    getRound(tasks, taskId, round),
    roundUpdates(tasks, taskId, round),
    trainersOf(tasks, taskId),
    validatorsOf(tasks, taskId),
  ]);
  const digests = new Map(updates.map((u) => [u.trainer.toLowerCase(), u.digest]));
  return {
    trainers: await Promise.all(
      trainers.map(async (address) => {
        const m = await memberOf(tasks, taskId, "trainer", address);
        return {
          address,
          stake: m.stake,
          active: m.status === MEMBER_ACTIVE,
          digest: digests.get(address.toLowerCase()),
        };
      }),
    ),
    validators: await Promise.all(
      validators.map(async (address) => {
        const [m, scores] = await Promise.all([
          memberOf(tasks, taskId, "validator", address),
          scoresOf(tasks, taskId, round, address),
        ]);
        return { address, stake: m.stake, active: m.status === MEMBER_ACTIVE, scores };
      }),
    ),
    pool: info.pool,
    slashBps: params.slashBps,
    minScore: params.minScore,
    relativeBps: params.relativeBps,
  };
}

/** Whether an error is the contract refusing with one of `names`. */
export function isRefusal(err: unknown, ...names: string[]): err is ContractRefusedError {
  return err instanceof ContractRefusedError && names.includes(err.errorName);
}

// ---------------------------------------------------------------------------------------------------------
// A role's own store
// ---------------------------------------------------------------------------------------------------------

/**
 * What a role keeps for itself between steps and across restarts: JSON records and bytes by key. A role
 * writes what it must not lose (a salt, the bytes it committed to) here BEFORE sending the transaction
 * that depends on it.
 */
export interface RoleStore {
  get<T>(key: string): T | undefined;
  set(key: string, value: unknown): void;
  getBytes(key: string): Uint8Array | undefined;
  setBytes(key: string, bytes: Uint8Array): void;
}

/** A store in memory: for one-process simulations, where a "restart" keeps the same object. */
export function memoryRoleStore(): RoleStore {
  const records = new Map<string, string>();
  const blobs = new Map<string, Uint8Array>();
  return {
    // Kept as JSON text so that a role never shares (and mutates) an object it stored.
    get: <T>(key: string) => {
      const text = records.get(key);
      return text === undefined ? undefined : (JSON.parse(text) as T);
    },
    set: (key, value) => {
      records.set(key, JSON.stringify(value));
    },
    getBytes: (key) => blobs.get(key)?.slice(),
    setBytes: (key, bytes) => {
      blobs.set(key, bytes.slice());
    },
  };
}

const KEY_PATTERN = /^[A-Za-z0-9._-]+$/;

/** A store in a folder, one file per key, each written durably (fsynced, then renamed into place). */
export function fileRoleStore(dir: string): RoleStore {
  const path = (key: string, ext: string) => {
    if (!KEY_PATTERN.test(key))
      throw new LearningError(`role store key "${key}" has characters other than [A-Za-z0-9._-]`);
    return `${dir}/${key}.${ext}`;
  };
  return {
    get: <T>(key: string) => {
      const file = path(key, "json");
      return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as T) : undefined;
    },
    set: (key, value) => writeFileDurably(path(key, "json"), `${JSON.stringify(value)}\n`),
    getBytes: (key) => {
      const file = path(key, "bin");
      return existsSync(file) ? new Uint8Array(readFileSync(file)) : undefined;
    },
    setBytes: (key, bytes) => writeFileDurably(path(key, "bin"), bytes),
  };
}
