/**
 * The inference oracle from a consumer's side: declare a version's input size, request an inference (the
 * fee approved first), follow the request, and explain a result by re-running the model.
 *
 * Also the protocol's pure pieces that operators, consumers and verifiers must compute alike: how an
 * input becomes fixed point, how a model's outputs become the one int256 answer, the commitment an
 * operator hides its answer in, and when a request may be revealed and finalized. Whoever recomputes a
 * result (`explainResult`) uses exactly the operators' code path, so "matches" means bit for bit.
 */
import {
  type Address,
  decodeAbiParameters,
  decodeFunctionData,
  encodeAbiParameters,
  formatEther,
  type Hex,
  keccak256,
  parseEventLogs,
  type TransactionReceipt,
} from "viem";
import type { LedgerChain } from "../chain/connect.ts";
import { requireDeployment } from "../chain/deploy.ts";
import { InferenceOracle } from "../chain/generated/contracts.ts";
import { approveMind, mindBalance } from "../chain/token.ts";
import { ContractRefusedError, decodeRevert, sendAndWait } from "../chain/tx.ts";
import { decodeModel } from "../ml/encoding.ts";
import { getVersion, type Registry } from "../registry/client.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { cidFromDigest, digestFromCid, sha256Digest } from "../storage/cid.ts";
import { AGGREGATION_INDEX, type AggregationMode, deviates } from "./aggregate.ts";
import { inferFixed, ORACLE_ONE } from "./fixed-point.ts";

export class OracleError extends Error {
  override name = "OracleError";
}

const ZERO32 = `0x${"0".repeat(64)}` as Hex;
const ORACLE_ONE_NUMBER = Number(ORACLE_ONE);

// ---------------------------------------------------------------------------------------------------------
// Pure protocol pieces
// ---------------------------------------------------------------------------------------------------------

/** Real numbers to the oracle's fixed point (1.0 = ORACLE_ONE), rounded half away from zero; bigints pass. */
export function toFixedInput(input: readonly (bigint | number)[]): bigint[] {
  return input.map((v, i) => {
    if (typeof v === "bigint") return v;
    if (!Number.isFinite(v)) throw new OracleError(`input[${i}] = ${v} is not a finite number`);
    const m = Math.round(Math.abs(v) * ORACLE_ONE_NUMBER);
    if (!Number.isSafeInteger(m)) throw new OracleError(`input[${i}] = ${v} is too large for fixed point`);
    return BigInt(v < 0 ? -m : m);
  });
}

/** Fixed point to a decimal string, exactly (no float rounding): 412345n -> "0.412345". */
export function formatFixed(v: bigint): string {
  const negative = v < 0n;
  const abs = negative ? -v : v;
  const whole = abs / ORACLE_ONE;
  const frac = (abs % ORACLE_ONE).toString().padStart(6, "0").replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${frac ? `.${frac}` : ""}`;
}

/**
 * The one int256 an operator answers from a model's outputs: the output itself for a single-output model
 * (a score or a regression, fixed point), else the index of the largest output (a label), the lowest
 * index on ties. Part of the protocol: every operator and every verifier uses this function.
 */
export function answerOf(outputs: readonly bigint[]): bigint {
  if (outputs.length === 0) throw new OracleError("the model produced no output");
  if (outputs.length === 1) return outputs[0] as bigint;
  let best = 0;
  for (let i = 1; i < outputs.length; i++) {
    if ((outputs[i] as bigint) > (outputs[best] as bigint)) best = i;
  }
  return BigInt(best);
}

/** Runs a canonical (LMQ1) model on a fixed-point input and returns the protocol's answer. */
export function computeAnswer(weights: Uint8Array, input: readonly bigint[]): bigint {
  return answerOf(inferFixed(decodeModel(weights), input));
}

/** What `commit` stores: keccak256(abi.encode(requestId, operator, output, salt)), as the contract checks it. */
export function commitmentOf(requestId: bigint, operator: Address, output: bigint, salt: Hex): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: "uint256" }, { type: "address" }, { type: "int256" }, { type: "bytes32" }],
      [requestId, operator, output, salt],
    ),
  );
}

/** An input given by CID is stored as abi.encode(int256[]) (fixed point), so that any node decodes it alike. */
export function encodeInputBlob(input: readonly bigint[]): Uint8Array {
  const hex = encodeAbiParameters([{ type: "int256[]" }], [[...input]]);
  return Uint8Array.from(Buffer.from(hex.slice(2), "hex"));
}

export function decodeInputBlob(bytes: Uint8Array): bigint[] {
  const [values] = decodeAbiParameters([{ type: "int256[]" }], `0x${Buffer.from(bytes).toString("hex")}`);
  return [...values];
}

/** A request's windows, as the contract's checks read them (`block.number` is the including block). */
export interface RequestWindows {
  commitDeadline: bigint;
  revealDeadline: bigint;
}

/** Whether a transaction mined in block `block` may commit. */
export const canCommitIn = (w: RequestWindows, block: bigint): boolean => block <= w.commitDeadline;
/** Whether a transaction mined in block `block` may reveal. */
export const canRevealIn = (w: RequestWindows, block: bigint): boolean =>
  block > w.commitDeadline && block <= w.revealDeadline;
/**
 * Whether an operator waiting for a report may still hold back its reveal for a transaction mined in `block`:
 * only in the first half of the reveal window, and only while the blocks after it can take one reveal of
 * each of the `unrevealed` operators. Where blocks come on their own, holding on to the last block would
 * leave every operator one block to reveal in; on an automining chain every reveal is a block of its own;
 * and a reveal that misses the window costs an honest stake.
 */
export const mayHoldRevealIn = (w: RequestWindows, block: bigint, unrevealed = 1): boolean =>
  canRevealIn(w, block) &&
  block <= w.commitDeadline + (w.revealDeadline - w.commitDeadline) / 2n &&
  block + BigInt(unrevealed) <= w.revealDeadline;
/** Whether `finalize` mined in block `block` passes the timing check, given the counts at that point. */
export function canFinalizeIn(w: RequestWindows, block: bigint, commits: number, reveals: number): boolean {
  return block > w.revealDeadline || (block > w.commitDeadline && reveals === commits);
}

// ---------------------------------------------------------------------------------------------------------
// The oracle's handle
// ---------------------------------------------------------------------------------------------------------

export interface Oracle {
  chain: LedgerChain;
  address: Address;
  token: Address;
  registry: Address;
  /** The first block worth scanning for the oracle's events. */
  fromBlock: bigint;
}

export interface OracleParams {
  minStake: bigint;
  commitWindow: number;
  revealWindow: number;
  minResponses: number;
  tolerance: bigint;
  slashBps: number;
  callbackGasLimit: number;
  maxOperators: number;
}

/** Either a chain (the manifest's oracle) or an oracle handle (any InferenceOracle, as benchmarks deploy). */
export type OracleTarget = LedgerChain | Oracle;

/** The deployment manifest's InferenceOracle; or the one at `address` (its events scanned from `fromBlock`). */
export async function openOracle(
  chain: LedgerChain,
  at?: { address: Address; fromBlock?: bigint },
): Promise<Oracle> {
  if (!at) {
    const manifest = await requireDeployment(chain);
    return {
      chain,
      address: manifest.contracts.InferenceOracle.address,
      token: manifest.contracts.MindToken.address,
      registry: manifest.contracts.ModelRegistry.address,
      fromBlock: BigInt(manifest.contracts.InferenceOracle.block),
    };
  }
  const read = (functionName: "token" | "registry") =>
    chain.publicClient.readContract({ address: at.address, abi: InferenceOracle.abi, functionName });
  const [token, registry] = await Promise.all([read("token"), read("registry")]);
  return { chain, address: at.address, token, registry, fromBlock: at.fromBlock ?? 0n };
}

export async function asOracle(target: OracleTarget): Promise<Oracle> {
  return "address" in target && "chain" in target ? target : openOracle(target);
}

export async function getOracleParams(target: OracleTarget): Promise<OracleParams> {
  const oracle = await asOracle(target);
  const p = await oracle.chain.publicClient.readContract({
    address: oracle.address,
    abi: InferenceOracle.abi,
    functionName: "params",
  });
  return { ...p };
}

/** The accounts that operate a model version (an exit moves the last into the leaver's place). */
export async function operatorsOf(
  target: OracleTarget,
  modelId: bigint,
  version: number,
): Promise<Address[]> {
  const oracle = await asOracle(target);
  return [
    ...(await oracle.chain.publicClient.readContract({
      address: oracle.address,
      abi: InferenceOracle.abi,
      functionName: "operatorsOf",
      args: [modelId, version],
    })),
  ];
}

/** How many operators of a model version are active (stake at least the minimum): who may still commit. */
export async function activeOperatorCount(
  target: OracleTarget,
  modelId: bigint,
  version: number,
): Promise<number> {
  const oracle = await asOracle(target);
  const [, count] = await oracle.chain.publicClient.readContract({
    address: oracle.address,
    abi: InferenceOracle.abi,
    functionName: "activeStakeOf",
    args: [modelId, version],
  });
  return Number(count);
}

/** An operator's record for a model version: its stake and earned fees (zeros when it never registered). */
export async function operatorInfoOf(
  target: OracleTarget,
  modelId: bigint,
  version: number,
  operator: Address,
): Promise<{ stake: bigint; fees: bigint; registered: boolean }> {
  const oracle = await asOracle(target);
  const op = await oracle.chain.publicClient.readContract({
    address: oracle.address,
    abi: InferenceOracle.abi,
    functionName: "operatorInfo",
    args: [modelId, version, operator],
  });
  return { stake: op.stake, fees: op.fees, registered: op.slot !== 0 };
}

function writeOracle(
  oracle: Oracle,
  account: number,
  functionName: string,
  args: readonly unknown[],
): Promise<TransactionReceipt> {
  return sendAndWait(oracle.chain, () =>
    oracle.chain
      .wallet(account)
      .writeContract({ address: oracle.address, abi: InferenceOracle.abi, functionName, args } as never),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Consumer helpers
// ---------------------------------------------------------------------------------------------------------

/** Declares, once, how many input values a version takes (only the model's owner may). */
export async function setModelSpec(
  target: OracleTarget,
  modelId: bigint,
  version: number,
  inputSize: number,
  account = 0,
): Promise<{ gasUsed: bigint }> {
  const oracle = await asOracle(target);
  const receipt = await writeOracle(oracle, account, "setModelSpec", [modelId, version, inputSize]);
  return { gasUsed: receipt.gasUsed };
}

/** A version's declared input size; 0 when undeclared. */
export async function getInputSize(target: OracleTarget, modelId: bigint, version: number): Promise<number> {
  const oracle = await asOracle(target);
  return oracle.chain.publicClient.readContract({
    address: oracle.address,
    abi: InferenceOracle.abi,
    functionName: "inputSizeOf",
    args: [modelId, version],
  });
}

export interface InferenceRequestSpec {
  modelId: bigint;
  version: number;
  /** Fixed-point bigints, or real numbers converted with ORACLE_ONE. Give this or `inputCid`. */
  input?: readonly bigint[] | readonly number[];
  /** The CID of an input blob (`encodeInputBlob`) the operators fetch. */
  inputCid?: string;
  /** MIND (wei units) offered to the agreeing operators; approved, then pulled by the oracle. Default 0. */
  fee?: bigint;
  /** Default "median". */
  aggregation?: AggregationMode;
}

export interface RequestedInference {
  requestId: bigint;
  gasUsed: bigint;
  blockNumber: bigint;
  commitDeadline: bigint;
  revealDeadline: bigint;
  input: bigint[];
}

/** Requests an inference from account `account`: approves the fee if needed, then calls `request`. */
export async function requestInference(
  target: OracleTarget,
  spec: InferenceRequestSpec,
  account = 0,
): Promise<RequestedInference> {
  const oracle = await asOracle(target);
  if ((spec.input === undefined) === (spec.inputCid === undefined))
    throw new OracleError("give either an input or an input CID");
  const input = spec.input ? toFixedInput(spec.input) : [];
  if (spec.input && input.length === 0) throw new OracleError("the input is empty");
  const inputCid = spec.inputCid ? digestFromCid(spec.inputCid) : ZERO32;
  const fee = spec.fee ?? 0n;
  if (fee < 0n) throw new OracleError("the fee cannot be negative");
  if (fee > 0n) {
    const payer = oracle.chain.wallet(account).account.address;
    const balance = await mindBalance(oracle.chain, payer);
    if (balance < fee)
      throw new OracleError(
        `${payer} holds ${formatEther(balance)} MIND, less than the fee of ${formatEther(fee)} MIND`,
      );
  }
  await approveMind(oracle.chain, oracle.address, fee, account);
  const receipt = await writeOracle(oracle, account, "request", [
    spec.modelId,
    spec.version,
    input,
    inputCid,
    AGGREGATION_INDEX[spec.aggregation ?? "median"],
    fee,
  ]);
  const [log] = parseEventLogs({
    abi: InferenceOracle.abi,
    logs: receipt.logs,
    eventName: "InferenceRequested",
  });
  if (!log) throw new OracleError("request emitted no InferenceRequested event");
  return {
    requestId: log.args.requestId,
    gasUsed: receipt.gasUsed,
    blockNumber: receipt.blockNumber,
    commitDeadline: log.args.commitDeadline,
    revealDeadline: log.args.revealDeadline,
    input,
  };
}

export type RequestState = "open" | "finalized" | "failed";
const STATES: Record<number, RequestState> = { 1: "open", 2: "finalized", 3: "failed" };

export interface RequestStatus {
  requestId: bigint;
  state: RequestState;
  requester: Address;
  fee: bigint;
  modelId: bigint;
  version: number;
  aggregation: AggregationMode;
  commitDeadline: bigint;
  revealDeadline: bigint;
  commits: number;
  reveals: number;
  /** The digest of the weights of the version asked (and, once final, that answered). */
  weightsDigest: Hex;
  /** The result, once finalized. */
  output?: bigint;
  /** Unix seconds, once finalized or failed. */
  finalizedAt?: number;
}

function readRequest(oracle: Oracle, requestId: bigint, blockNumber: bigint) {
  return oracle.chain.publicClient.readContract({
    address: oracle.address,
    abi: InferenceOracle.abi,
    functionName: "getRequest",
    args: [requestId],
    blockNumber,
  });
}

/** Re-reads of a torn status (see `readStatusAt`) before it is reported as still open. */
const TORN_READ_RETRIES = 10;

export async function getRequestStatus(target: OracleTarget, requestId: bigint): Promise<RequestStatus> {
  const oracle = await asOracle(target);
  for (let attempt = 0; ; attempt++) {
    const blockNumber = await oracle.chain.publicClient.getBlockNumber({ cacheTime: 0 });
    const { status, torn } = await readStatusAt(oracle, requestId, blockNumber);
    if (!torn || attempt >= TORN_READ_RETRIES) return status;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The request's status at `blockNumber`; `torn` when it read finalized but its result ResultNotReady, and then
 * reported as still open. Both reads name one block, yet anvil under load has answered so: while it mines
 * block N+1, a call at N (its best block) reads the state being mined; once N+1 is in, a call at N reads N's
 * stored state. A moment later the two agree.
 */
async function readStatusAt(
  oracle: Oracle,
  requestId: bigint,
  blockNumber: bigint,
): Promise<{ status: RequestStatus; torn: boolean }> {
  let r: Awaited<ReturnType<typeof readRequest>>;
  try {
    r = await readRequest(oracle, requestId, blockNumber);
  } catch (err) {
    const refused = decodeRevert(err);
    if (refused instanceof ContractRefusedError && refused.errorName === "UnknownRequest")
      throw new OracleError(`request ${requestId} does not exist on chain ${oracle.chain.chainId}`);
    throw refused;
  }
  const state = STATES[r.status];
  if (!state) throw new OracleError(`request ${requestId} does not exist`);
  const status: RequestStatus = {
    requestId,
    state,
    requester: r.requester,
    fee: r.fee,
    modelId: BigInt(r.modelId),
    version: r.version,
    aggregation: r.aggregation === 1 ? "majority" : "median",
    commitDeadline: BigInt(r.commitDeadline),
    revealDeadline: BigInt(r.revealDeadline),
    commits: r.commits,
    reveals: r.reveals,
    weightsDigest: r.weightsDigest,
  };
  if (state === "open") return { status, torn: false };
  if (state === "finalized") {
    try {
      const result = await oracle.chain.publicClient.readContract({
        address: oracle.address,
        abi: InferenceOracle.abi,
        functionName: "getResult",
        args: [requestId],
        blockNumber,
      });
      status.output = result.output;
    } catch (err) {
      const refused = decodeRevert(err);
      if (refused instanceof ContractRefusedError && refused.errorName === "ResultNotReady")
        return { status: { ...status, state: "open" }, torn: true };
      throw refused;
    }
  }
  status.finalizedAt = r.finalizedAt;
  return { status, torn: false };
}

export class ResultTimeoutError extends OracleError {
  override name = "ResultTimeoutError";
}

/** Polls until the request is finalized or failed. Mines nothing: operators move a development chain on. */
export async function waitForResult(
  target: OracleTarget,
  requestId: bigint,
  opts: { timeoutMs?: number; pollMs?: number; signal?: AbortSignal } = {},
): Promise<RequestStatus> {
  const oracle = await asOracle(target);
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (;;) {
    const status = await getRequestStatus(oracle, requestId);
    if (status.state !== "open") return status;
    if (opts.signal?.aborted) throw new OracleError(`stopped waiting for request ${requestId}`);
    if (Date.now() >= deadline)
      throw new ResultTimeoutError(
        `request ${requestId} is still open after ${Math.round((opts.timeoutMs ?? 120_000) / 1000)} s (${status.commits} commit(s), ${status.reveals} reveal(s)): are operators serving model ${status.modelId}@${status.version}?`,
      );
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 200));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Fulfilment by zero-knowledge proof
// ---------------------------------------------------------------------------------------------------------

/** A Groth16 proof as the oracle takes it: a (2), b (2x2), c (2), flattened in that order. */
export type FlatProof = readonly [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];

export interface FulfillByProofParameters {
  requestId: bigint;
  /** The request's inline input, exactly as requested (fixed point). */
  input: readonly bigint[];
  /** The proven answer (`answerOf` of the model's outputs). */
  output: bigint;
  proof: FlatProof;
}

export interface FulfilledByProof {
  gasUsed: bigint;
  blockNumber: bigint;
  /** The consumer's callback reverted (the result stands; see the `CallbackFailed` log). */
  callbackFailed: boolean;
}

/**
 * Finalizes an open request by a zero-knowledge proof that the version's committed weights turn its input
 * into `output`, sent from dev account `account`, which must be an active operator of the version. The
 * whole fee is credited to the operator (`collectFees`). The contract's refusals arrive as
 * `ContractRefusedError` (`InvalidProof`, `InputMismatch`, `ProofNeedsInlineInput`, `NoZkVerifier`,
 * `NotOperator`, `RequestClosed`, ...); a refused proof leaves the request open.
 *
 * @param target The oracle (or a chain, for the manifest's oracle).
 * @param params The request, its input, the answer and the proof.
 * @param account The dev account that proves.
 * @example
 * await fulfillByProof(chain, { requestId, input, output, proof }, 2);
 */
export async function fulfillByProof(
  target: OracleTarget,
  params: FulfillByProofParameters,
  account = 0,
): Promise<FulfilledByProof> {
  const oracle = await asOracle(target);
  if (params.proof.length !== 8)
    throw new OracleError(`a flattened Groth16 proof has 8 numbers, not ${params.proof.length}`);
  if (params.input.length === 0)
    throw new OracleError(
      `request ${params.requestId}: the input is empty (only inline input can be proven)`,
    );
  const receipt = await writeOracle(oracle, account, "fulfillByProof", [
    params.requestId,
    params.input,
    params.output,
    params.proof,
  ]);
  const failed = parseEventLogs({
    abi: InferenceOracle.abi,
    logs: receipt.logs,
    eventName: "CallbackFailed",
  });
  return { gasUsed: receipt.gasUsed, blockNumber: receipt.blockNumber, callbackFailed: failed.length > 0 };
}

// ---------------------------------------------------------------------------------------------------------
// Explaining a result
// ---------------------------------------------------------------------------------------------------------

/** The `InferenceRequested` log of a request: what every operator saw. */
export interface LoggedRequest {
  requestId: bigint;
  modelId: bigint;
  version: number;
  requester: Address;
  aggregation: AggregationMode;
  fee: bigint;
  /** Inline input, or empty when `inputCid` names it. */
  input: bigint[];
  inputCid?: string;
  commitDeadline: bigint;
  revealDeadline: bigint;
  blockNumber: bigint;
}

export async function getLoggedRequest(target: OracleTarget, requestId: bigint): Promise<LoggedRequest> {
  const oracle = await asOracle(target);
  const [log] = await oracle.chain.publicClient.getContractEvents({
    address: oracle.address,
    abi: InferenceOracle.abi,
    eventName: "InferenceRequested",
    args: { requestId },
    fromBlock: oracle.fromBlock,
  });
  if (!log) throw new OracleError(`no InferenceRequested log for request ${requestId}`);
  return loggedRequestOf(log.args as RequestedArgs, log.blockNumber);
}

/** The decoded arguments of an `InferenceRequested` log. */
export interface RequestedArgs {
  requestId?: bigint;
  modelId?: bigint;
  version?: number;
  requester?: Address;
  aggregation?: number;
  fee?: bigint;
  inputCid?: Hex;
  input?: readonly bigint[];
  commitDeadline?: bigint;
  revealDeadline?: bigint;
}

export function loggedRequestOf(a: RequestedArgs, blockNumber: bigint | null): LoggedRequest {
  if (a.requestId === undefined || a.modelId === undefined || a.version === undefined)
    throw new OracleError("an InferenceRequested log without its ids");
  return {
    requestId: a.requestId,
    modelId: a.modelId,
    version: a.version,
    requester: a.requester as Address,
    aggregation: a.aggregation === 1 ? "majority" : "median",
    fee: a.fee ?? 0n,
    input: [...(a.input ?? [])],
    inputCid: a.inputCid && a.inputCid !== ZERO32 ? cidFromDigest(a.inputCid) : undefined,
    commitDeadline: a.commitDeadline ?? 0n,
    revealDeadline: a.revealDeadline ?? 0n,
    blockNumber: blockNumber ?? 0n,
  };
}

/** The request's input, inline or fetched from the store by CID (verified, then decoded). */
export async function inputOf(request: LoggedRequest, store: BlobStore): Promise<bigint[]> {
  if (!request.inputCid) return request.input;
  return decodeInputBlob(await store.get(request.inputCid));
}

export interface Explanation {
  requestId: bigint;
  state: RequestState;
  modelId: bigint;
  version: number;
  aggregation: AggregationMode;
  /** The registry's digest of the version's weights, which the request bound and the re-run used. */
  weightsDigest: Hex;
  weightsCid: string;
  input: bigint[];
  /** What the chain holds (finalized requests only). */
  onChain?: bigint;
  /** The model re-run from the registry's weights (verified) on the logged input. */
  recomputed: bigint;
  /** Whether the on-chain answer equals the re-run, exactly (integer inference is bit for bit). */
  matches?: boolean;
  /** onChain - recomputed, when they differ. */
  difference?: bigint;
  /** Whether the difference stays within the oracle's tolerance (the median; labels have none). */
  withinTolerance?: boolean;
  /** Every revealed answer, in reveal order. */
  reveals: { operator: Address; output: bigint }[];
  slashed: { operator: Address; amount: bigint; revealed: boolean }[];
  /**
   * "report" when a quorum's signed report finalized it, "proof" when a zero-knowledge proof did, else
   * "commit-reveal".
   */
  fulfilment?: "commit-reveal" | "report" | "proof";
}

/**
 * Re-runs request `requestId` from public material only: the input from its log, the weights from the
 * store by the registry's CID (verified against the registry's digest), the protocol's integer inference.
 * Says whether the on-chain result equals it (integer inference: exactly) and by how much it differs.
 */
export async function explainResult(
  reg: Registry,
  store: BlobStore,
  requestId: bigint,
  target?: OracleTarget,
): Promise<Explanation> {
  const oracle = await asOracle(target ?? reg.chain);
  const read = oracle.chain.publicClient;
  const status = await getRequestStatus(oracle, requestId);
  const logged = await getLoggedRequest(oracle, requestId);
  const version = await getVersion(reg, logged.modelId, logged.version);
  if (status.weightsDigest !== version.weightsDigest)
    throw new OracleError(
      `request ${requestId} bound weights ${status.weightsDigest}, but the registry records ${version.weightsDigest} for model ${logged.modelId}@${logged.version}`,
    );
  if (version.format !== "LMQ1")
    throw new OracleError(
      `model ${logged.modelId}@${logged.version} is in format ${version.format}: only the canonical LMQ1 encoding can be re-run`,
    );
  const weights = await store.get(version.weightsCid);
  if (sha256Digest(weights) !== version.weightsDigest)
    throw new OracleError(`the stored weights do not hash to the registry's digest`);
  const input = await inputOf(logged, store);
  const recomputed = computeAnswer(weights, input);

  const fromBlock = logged.blockNumber;
  const [reveals, slashes, reports] = await Promise.all([
    read.getContractEvents({
      address: oracle.address,
      abi: InferenceOracle.abi,
      eventName: "Revealed",
      args: { requestId },
      fromBlock,
    }),
    read.getContractEvents({
      address: oracle.address,
      abi: InferenceOracle.abi,
      eventName: "OperatorSlashed",
      args: { requestId },
      fromBlock,
    }),
    status.state === "finalized"
      ? read.getContractEvents({
          address: oracle.address,
          abi: InferenceOracle.abi,
          eventName: "InferenceFinalized",
          args: { requestId },
          fromBlock,
        })
      : Promise.resolve([]),
  ]);
  const explanation: Explanation = {
    requestId,
    state: status.state,
    modelId: logged.modelId,
    version: logged.version,
    aggregation: logged.aggregation,
    weightsDigest: version.weightsDigest,
    weightsCid: version.weightsCid,
    input,
    recomputed,
    reveals: reveals.map((l) => ({ operator: l.args.operator as Address, output: l.args.output as bigint })),
    slashed: slashes.map((l) => ({
      operator: l.args.operator as Address,
      amount: l.args.amount as bigint,
      revealed: l.args.revealed as boolean,
    })),
  };
  if (status.state === "finalized" && status.output !== undefined) {
    const onChain = status.output;
    explanation.onChain = onChain;
    explanation.matches = onChain === recomputed;
    if (!explanation.matches) {
      explanation.difference = onChain - recomputed;
      const { tolerance } = await getOracleParams(oracle);
      explanation.withinTolerance = !deviates(onChain, recomputed, tolerance, logged.aggregation);
    }
    const finalizing = reports[0];
    if (finalizing) {
      const tx = await read.getTransaction({ hash: finalizing.transactionHash });
      const { functionName } = decodeFunctionData({ abi: InferenceOracle.abi, data: tx.input });
      explanation.fulfilment =
        functionName === "submitReport"
          ? "report"
          : functionName === "fulfillByProof"
            ? "proof"
            : "commit-reveal";
    }
  }
  return explanation;
}

/** Human lines for an explanation: result, version, digest, verdict. */
export function explanationLines(e: Explanation): string[] {
  const lines = [
    `request ${e.requestId}: ${e.state}`,
    `  model        ${e.modelId}@${e.version} (${e.aggregation})`,
    `  weights      ${e.weightsDigest} (${e.weightsCid})`,
    `  input        ${e.input.map(formatFixed).join(", ") || "(none)"}`,
  ];
  if (e.onChain !== undefined) lines.push(`  result       ${formatFixed(e.onChain)} (${e.onChain})`);
  if (e.fulfilment) lines.push(`  fulfilled by ${e.fulfilment}`);
  if (e.reveals.length > 0)
    lines.push(
      `  reveals      ${e.reveals.map((r) => `${r.operator.slice(0, 10)}…=${formatFixed(r.output)}`).join(", ")}`,
    );
  for (const s of e.slashed)
    lines.push(
      `  slashed      ${s.operator} ${formatEther(s.amount)} MIND (${s.revealed ? "deviated" : "silent"})`,
    );
  lines.push(`  re-run       ${formatFixed(e.recomputed)} (${e.recomputed})`);
  if (e.matches === undefined) lines.push("  verdict      no result yet");
  else if (e.matches)
    lines.push("  verdict      matches: the on-chain result is the model's output, exactly");
  else
    lines.push(
      `  verdict      MISMATCH: the on-chain result differs from the re-run by ${formatFixed(e.difference as bigint)} (${e.difference})${e.withinTolerance ? ", within the oracle's tolerance" : ""}`,
    );
  return lines;
}
