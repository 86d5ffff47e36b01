/**
 * An inference-oracle operator: serves one model version of the InferenceOracle with integer inference.
 *
 * The operator is driven by events and by its own state file, never by memory alone:
 *   - it scans `InferenceRequested` logs of its version from a cursor kept in the state file;
 *   - for each request still open for commits it computes the answer (`inferFixed` on the logged input,
 *     `answerOf`), draws a random salt and writes both to the state file, fsynced, BEFORE sending the
 *     commit, so that a crash between the two cannot lose the salt and with it the stake;
 *   - it reveals once the commit window is over and finalizes once the contract allows it (every committed
 *     operator revealed, or the reveal window is over), tolerating another party having finalized first.
 * Restarted on the same state file, it goes on from what the file and the chain say: a "committing"
 * entry is checked against the chain's `Committed` logs before anything is sent again.
 *
 * Weights come from the blob store by the CID the registry records, verified; an operator refuses to
 * start when the stored bytes do not hash to the registry's digest, so it can never answer for weights
 * that are not the version's.
 *
 * Two ways to drive it:
 *   - `step()` does everything currently actionable once and says which block height it waits for; tests
 *     and demos drive several operators in one process deterministically (`driveOperators`);
 *   - `run()` (and `startOperator`) poll `step()` until stopped, for `ledgermind oracle serve`.
 *
 * Development chains (31337, the embedded EVM; 1337, `ledgermind chain`) mine a block only when a
 * transaction arrives, but the oracle's windows are counted in blocks: with no traffic, a commit window
 * would never close and every request would wait forever. So an operator that waits for a block height
 * on a development chain mines empty blocks with `evm_mine`: `driveOperators` mines straight to the
 * height once no operator has anything to do. `run` mines straight to it too once every active operator
 * has acted (committed, then revealed): nobody is left to wait for. While one has not, it mines one block
 * whenever the chain has produced none for `blockTimeMs` (default 3 s): a block clock slow enough that an
 * operator in another process, on a loaded machine, still commits and reveals within a window of a few
 * blocks, and one that is gone delays the request by its window only. On any other chain blocks come on
 * their own and the operator never mines.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Address, formatEther, type Hex, hexToBigInt, parseEventLogs, toHex } from "viem";
import { isDevChain, type LocalAccount } from "../chain/accounts.ts";
import type { LedgerChain } from "../chain/connect.ts";
import { InferenceOracle } from "../chain/generated/contracts.ts";
import { approveMind, mindBalance, transferMind } from "../chain/token.ts";
import { ContractRefusedError, sendAndWait, TransactionFailedError } from "../chain/tx.ts";
import { type CanonicalModel, decodeModel } from "../ml/encoding.ts";
import { getVersion, getZkVerifier, openRegistry, type Registry } from "../registry/client.ts";
import { BlobIntegrityError, BlobNotFoundError, type BlobStore } from "../storage/blob-store.ts";
import { sha256Digest } from "../storage/cid.ts";
import { writeFileDurably } from "../storage/durable-file.ts";
import type { PlanOptions } from "../zk/circuit.ts";
import { weightsCommitment } from "../zk/commitment.ts";
import { type ModelCircuit, prepareModelCircuit, proveInference } from "../zk/inference-proof.ts";
import {
  activeOperatorCount,
  canCommitIn,
  canFinalizeIn,
  canRevealIn,
  commitmentOf,
  computeAnswer,
  formatFixed,
  getInputSize,
  getOracleParams,
  getRequestStatus,
  inputOf,
  type LoggedRequest,
  loggedRequestOf,
  mayHoldRevealIn,
  type Oracle,
  openOracle,
  type RequestedArgs,
  type RequestState,
  type RequestStatus,
  type RequestWindows,
} from "./client.ts";
import { parseDenseArchitecture } from "./fixed-point.ts";

export class OperatorError extends Error {
  override name = "OperatorError";
}

/** The stored weights are not the registry's: the operator refuses to serve them. */
export class WeightsMismatchError extends OperatorError {
  override name = "WeightsMismatchError";
}

export interface OperatorOptions {
  chain: LedgerChain;
  /** The configured account that operates (and signs reports). */
  account: number;
  store: BlobStore;
  modelId: bigint;
  version: number;
  /** Stake to register with, if not registered yet (MIND wei); default the oracle's `minStake`. */
  stake?: bigint;
  /** Where the operator keeps its cursor, answers and salts. One file per operator, account and version. */
  stateFile: string;
  /** Added to every answer: a faulty operator, for demos and tests. */
  faultyOffset?: bigint;
  /** Called with every event (also returned by `step`). */
  log?: (event: OperatorEvent) => void;
  /** Poll interval of `run`, ms (default 500). */
  pollMs?: number;
  /**
   * On development chains, while an active operator has yet to act, `run` mines a block when none came for
   * one to two times this long, ms (default 3000).
   */
  blockTimeMs?: number;
  /** The oracle to serve; default the deployment manifest's. */
  oracle?: Oracle;
  /** Register (approve + registerOperator) when not registered; default true. */
  register?: boolean;
  /** Mine empty blocks while waiting, on development chains only (default true); see the module comment. */
  mine?: boolean;
  /** The most blocks one `eth_getLogs` covers (default 5000). */
  logRange?: bigint;
  /**
   * Report mode (report-exchange.ts): hold each reveal until this long (ms) after the operator first saw
   * the request, so that a signed report can land first and release the commits; it reveals anyway once
   * only half the reveal window is left, once the blocks left could not take one reveal of every operator
   * that committed, or once another operator revealed (`mayHoldRevealIn`). Unset (the default): reveal as
   * soon as the window opens.
   */
  reportWindowMs?: number;
  /** The clock of `reportWindowMs`, ms since the epoch (default `Date.now`). */
  now?: () => number;
  /**
   * The salt of the version's weights commitment (kept by `zk build`). With it, and a zk verifier that the
   * registry records for the version, the operator settles each request with inline input by one proof
   * (`fulfillByProof`) instead of commit and reveal; it falls back to commit and reveal when the proof is
   * refused or the input is only a CID.
   */
  zkSalt?: bigint;
  /** The circuit plan `zk build` recorded beside the salt (default: 40 input bits, private weights). */
  zkPlan?: PlanOptions;
  /** The CID of the proving key `zk build` published (fetched from `store`); without it, the local cache's. */
  zkProvingKey?: string;
  /** Compiled circuits and their keys (default: defaultZkCacheDir()). */
  zkCacheDir?: string;
}

interface Tx {
  gasUsed: bigint;
  block: bigint;
}

export type OperatorEvent =
  | {
      type: "ready";
      operator: Address;
      modelId: bigint;
      version: number;
      weightsDigest: Hex;
      weightsCid: string;
      resumed: number;
    }
  | ({ type: "registered"; operator: Address; stake: bigint } & Tx)
  | ({ type: "committed"; operator: Address; requestId: bigint } & Tx)
  | ({ type: "revealed"; operator: Address; requestId: bigint; output: bigint } & Tx)
  | ({ type: "proven"; operator: Address; requestId: bigint; output: bigint; proveMs: number } & Tx)
  | ({
      type: "finalized";
      operator: Address;
      requestId: bigint;
      outcome: "finalized" | "failed";
      output?: bigint;
      /** What this operator lost on the request, if it was slashed. */
      slashed?: bigint;
    } & Tx)
  | {
      type: "settled";
      operator: Address;
      requestId: bigint;
      outcome: RequestState;
      output?: bigint;
      slashed?: bigint;
    }
  | { type: "missed"; operator: Address; requestId: bigint; reason: string }
  | ({
      type: "reported";
      operator: Address;
      requestId: bigint;
      output: bigint;
      signers: Address[];
      attempt: number;
    } & Tx)
  | { type: "signed"; operator: Address; requestId: bigint; output: bigint; signers: Address[] }
  | { type: "unreported"; operator: Address; requestId: bigint; attempt: number; reason: string }
  | { type: "error"; operator: Address; requestId?: bigint; message: string };

/** One line per event, as `oracle serve` prints them. */
export function formatOperatorEvent(e: OperatorEvent): string {
  const who = `${e.operator.slice(0, 8)}…${e.operator.slice(-4)}`;
  switch (e.type) {
    case "ready":
      return `${who} serving model ${e.modelId}@${e.version}, weights ${e.weightsDigest} verified${e.resumed ? `, resuming ${e.resumed} request(s)` : ""}`;
    case "registered":
      return `${who} registered with a stake of ${formatEther(e.stake)} MIND (block ${e.block}, gas ${e.gasUsed})`;
    case "committed":
      return `${who} committed request ${e.requestId} (block ${e.block}, gas ${e.gasUsed})`;
    case "revealed":
      return `${who} revealed request ${e.requestId}: ${formatFixed(e.output)} (block ${e.block}, gas ${e.gasUsed})`;
    case "finalized":
      return `${who} finalized request ${e.requestId}: ${e.outcome === "finalized" ? `result ${formatFixed(e.output ?? 0n)}` : "failed (too few reveals, or no strict majority): the fee went back"}${e.slashed ? `; this operator was slashed ${formatEther(e.slashed)} MIND` : ""} (block ${e.block}, gas ${e.gasUsed})`;
    case "settled":
      return `${who} request ${e.requestId} was settled by another party: ${e.outcome}${e.output !== undefined ? ` ${formatFixed(e.output)}` : ""}${e.slashed ? `; this operator was slashed ${formatEther(e.slashed)} MIND` : ""}`;
    case "missed":
      return `${who} missed request ${e.requestId}: ${e.reason}`;
    case "proven":
      return `${who} settled request ${e.requestId} by a zero-knowledge proof: ${formatFixed(e.output)} (proved in ${(e.proveMs / 1000).toFixed(2)} s; block ${e.block}, gas ${e.gasUsed})`;
    case "reported":
      return `${who} submitted the report for request ${e.requestId} as leader of attempt ${e.attempt}: ${formatFixed(e.output)} signed by ${e.signers.length} operator(s) (block ${e.block}, gas ${e.gasUsed})`;
    case "signed":
      return `${who} signed the report of request ${e.requestId}: ${formatFixed(e.output)} with ${e.signers.length} signer(s)`;
    case "unreported":
      return `${who} could not lead a report for request ${e.requestId} (attempt ${e.attempt}): ${e.reason}`;
    case "error":
      return `${who} error${e.requestId !== undefined ? ` on request ${e.requestId}` : ""}: ${e.message}`;
  }
}

/** What one step learns of the other operators: whether one may still act, and the active count (read once). */
interface PeerWatch {
  waiting: boolean;
  active?: number;
}

export interface StepResult {
  /** What this step did. */
  actions: OperatorEvent[];
  /** The chain head this step saw. */
  head: bigint;
  /** The lowest head height at which a tracked request becomes actionable; undefined: nothing to wait for. */
  waitingFor?: bigint;
  /**
   * Whether, before that height, another operator may still act on a request this one waits on (an active
   * operator has not committed, or one that committed has not revealed). False: nobody is left to wait for.
   */
  waitingOnPeers: boolean;
  /** Requests still tracked. */
  pending: number;
}

// ---------------------------------------------------------------------------------------------------------
// State file
// ---------------------------------------------------------------------------------------------------------

type Phase = "seen" | "committing" | "committed" | "revealed";

interface TrackedRequest {
  requestId: string;
  block: string;
  commitDeadline: string;
  revealDeadline: string;
  phase: Phase;
  /** When this operator first saw the request, ms since the epoch: the start of its report window. */
  seenAt?: number;
  /** The answer committed to; written with the salt before the commit is sent. */
  output?: string;
  salt?: Hex;
}

interface OperatorState {
  format: "ledgermind.operator-state/1";
  chainId: number;
  oracle: Address;
  operator: Address;
  modelId: string;
  version: number;
  /** The next block to scan for requests. */
  cursor: string;
  requests: Record<string, TrackedRequest>;
}

const STATE_FORMAT = "ledgermind.operator-state/1";

// ---------------------------------------------------------------------------------------------------------
// The operator
// ---------------------------------------------------------------------------------------------------------

/** Why an operator slashed below the oracle's `minStake` no longer answers (the contract refuses it). */
const BELOW_MINIMUM = "its stake fell below the oracle's minimum (it was slashed): it may no longer answer";

const REFUSAL = (err: unknown, ...names: string[]): boolean =>
  err instanceof ContractRefusedError && names.includes(err.errorName);

export class InferenceOperator {
  readonly chain: LedgerChain;
  readonly oracle: Oracle;
  readonly account: LocalAccount;
  /** The configured account's index (`chain.wallet(accountIndex)`). */
  readonly accountIndex: number;
  readonly address: Address;
  readonly modelId: bigint;
  readonly version: number;
  readonly weightsDigest: Hex;
  readonly weightsCid: string;
  readonly faultyOffset: bigint;
  private readonly weights: Uint8Array;
  /** Set when the operator proves its answers (OperatorOptions.zkSalt). */
  private readonly zk: ZkProver | undefined;
  readonly store: BlobStore;
  private readonly opts: OperatorOptions;
  private state: OperatorState;
  /** Requests whose on-chain progress this process has not checked since loading the state file. */
  private readonly unverified = new Set<string>();

  private constructor(
    opts: OperatorOptions,
    oracle: Oracle,
    loaded: { weights: Uint8Array; weightsDigest: Hex; weightsCid: string },
    state: OperatorState,
    zk: ZkProver | undefined,
  ) {
    this.zk = zk;
    this.opts = opts;
    this.chain = opts.chain;
    this.oracle = oracle;
    const account = opts.chain.accounts[opts.account];
    if (!account) throw new OperatorError(`account #${opts.account} is not configured`);
    this.account = account;
    this.accountIndex = opts.account;
    this.address = account.address;
    this.modelId = opts.modelId;
    this.version = opts.version;
    this.store = opts.store;
    this.weights = loaded.weights;
    this.weightsDigest = loaded.weightsDigest;
    this.weightsCid = loaded.weightsCid;
    this.faultyOffset = opts.faultyOffset ?? 0n;
    this.state = state;
    for (const id of Object.keys(state.requests)) this.unverified.add(id);
  }

  /**
   * Loads and verifies the version's weights, loads (or starts) the state file and, unless told not to,
   * registers the operator. Throws WeightsMismatchError when the store's weights are not the registry's.
   */
  static async create(opts: OperatorOptions): Promise<InferenceOperator> {
    const oracle = opts.oracle ?? (await openOracle(opts.chain));
    const account = opts.chain.accounts[opts.account];
    if (!account) throw new OperatorError(`account #${opts.account} is not configured`);
    const loaded = await loadVersionWeights(opts.chain, oracle, opts.store, opts.modelId, opts.version);
    const spec = await getInputSize(oracle, opts.modelId, opts.version);
    const model = decodeModel(loaded.weights);
    const inputs = parseDenseArchitecture(model.architecture).sizes[0];
    if (spec !== 0 && spec !== inputs)
      throw new OperatorError(
        `model ${opts.modelId}@${opts.version} takes ${inputs} inputs, but the oracle declares ${spec}`,
      );
    const zk = opts.zkSalt === undefined ? undefined : await zkProverOf(opts, oracle, model, opts.zkSalt);
    const state = loadState(opts, oracle, account.address);
    const operator = new InferenceOperator(opts, oracle, loaded, state, zk);
    operator.save();
    if (opts.register !== false) await operator.ensureRegistered();
    operator.emit({
      type: "ready",
      operator: operator.address,
      modelId: opts.modelId,
      version: opts.version,
      weightsDigest: loaded.weightsDigest,
      weightsCid: loaded.weightsCid,
      resumed: Object.keys(state.requests).length,
    });
    return operator;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Reports an event that another part of the operator (its report exchange) produced. */
  log(event: OperatorEvent): void {
    this.emit(event);
  }

  /**
   * The answer this operator computed for a request it tracks, once on disk (it is written, fsynced, before
   * the commit is sent, and never recomputed: a restart finds the same output); undefined otherwise.
   */
  observed(requestId: bigint): { output: bigint; seenAt: number } | undefined {
    const entry = this.state.requests[requestId.toString()];
    if (entry?.output === undefined) return undefined;
    return { output: BigInt(entry.output), seenAt: entry.seenAt ?? 0 };
  }

  /** The requests this operator tracks, oldest first, and when it first saw each. */
  tracked(): { requestId: bigint; seenAt: number }[] {
    return Object.values(this.state.requests)
      .map((e) => ({ requestId: BigInt(e.requestId), seenAt: e.seenAt ?? 0 }))
      .sort((a, b) => (a.requestId < b.requestId ? -1 : 1));
  }

  private emit(event: OperatorEvent, into?: OperatorEvent[]): void {
    into?.push(event);
    this.opts.log?.(event);
  }

  private save(): void {
    writeFileDurably(this.opts.stateFile, `${JSON.stringify(this.state, null, 2)}\n`);
  }

  /** The answer this operator gives for an input: the model's, plus its faulty offset if it has one. */
  answer(input: readonly bigint[]): bigint {
    return computeAnswer(this.weights, input) + this.faultyOffset;
  }

  /** Whether the operator is registered for its version, and its record. */
  async info(): Promise<{ stake: bigint; fees: bigint; pending: number; registered: boolean }> {
    const op = await this.chain.publicClient.readContract({
      address: this.oracle.address,
      abi: InferenceOracle.abi,
      functionName: "operatorInfo",
      args: [this.modelId, this.version, this.address],
    });
    return { stake: op.stake, fees: op.fees, pending: op.pending, registered: op.slot !== 0 };
  }

  /** Approves the stake and registers, unless registered already. */
  async ensureRegistered(): Promise<OperatorEvent | undefined> {
    if ((await this.info()).registered) return undefined;
    const stake = this.opts.stake ?? (await getOracleParams(this.oracle)).minStake;
    const balance = await mindBalance(this.chain, this.address);
    if (balance < stake)
      throw new OperatorError(
        `${this.address} holds ${formatEther(balance)} MIND but needs ${formatEther(stake)} to stake: send it MIND first`,
      );
    await approveMind(this.chain, this.oracle.address, stake, this.opts.account);
    const receipt = await this.send("registerOperator", [this.modelId, this.version, stake]);
    const event: OperatorEvent = {
      type: "registered",
      operator: this.address,
      stake,
      gasUsed: receipt.gasUsed,
      block: receipt.blockNumber,
    };
    this.emit(event);
    return event;
  }

  private send(functionName: string, args: readonly unknown[]) {
    return sendAndWait(this.chain, () =>
      this.chain.wallet(this.opts.account).writeContract({
        address: this.oracle.address,
        abi: InferenceOracle.abi,
        functionName,
        args,
      } as never),
    );
  }

  private async head(): Promise<bigint> {
    return this.chain.publicClient.getBlockNumber({ cacheTime: 0 });
  }

  /** Adds the requests of this version logged since the cursor that may still be committed to. */
  private async scan(head: bigint): Promise<void> {
    const range = this.opts.logRange ?? 5_000n;
    let from = BigInt(this.state.cursor);
    if (from > head) return;
    while (from <= head) {
      const to = from + range - 1n < head ? from + range - 1n : head;
      const logs = await this.chain.publicClient.getContractEvents({
        address: this.oracle.address,
        abi: InferenceOracle.abi,
        eventName: "InferenceRequested",
        args: { modelId: this.modelId, version: this.version },
        fromBlock: from,
        toBlock: to,
      });
      for (const log of logs) {
        const r = loggedRequestOf(log.args as RequestedArgs, log.blockNumber);
        const id = r.requestId.toString();
        // Requests whose commit window closed before the operator saw them are history, not work.
        if (this.state.requests[id] || !canCommitIn(r, head + 1n)) continue;
        this.state.requests[id] = {
          requestId: id,
          block: r.blockNumber.toString(),
          commitDeadline: r.commitDeadline.toString(),
          revealDeadline: r.revealDeadline.toString(),
          phase: "seen",
          seenAt: this.now(),
        };
      }
      from = to + 1n;
    }
    // One durable write per scan that moved the cursor (not one per log).
    this.state.cursor = from.toString();
    this.save();
  }

  /**
   * Does everything currently actionable once: scans for new requests, commits, reveals and finalizes
   * what it can in the next block. Never mines; says which head height it waits for.
   */
  async step(): Promise<StepResult> {
    const actions: OperatorEvent[] = [];
    const head = await this.head();
    await this.scan(head);
    const peers: PeerWatch = { waiting: false };
    let waitingFor: bigint | undefined;
    const ids = Object.keys(this.state.requests).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    for (const id of ids) {
      const entry = this.state.requests[id] as TrackedRequest;
      let wait: bigint | undefined;
      try {
        wait = await this.advance(entry, head, actions, peers);
      } catch (err) {
        this.emit(
          {
            type: "error",
            operator: this.address,
            requestId: BigInt(id),
            message: err instanceof Error ? (err.message.split("\n")[0] ?? err.name) : String(err),
          },
          actions,
        );
      }
      if (wait !== undefined && (waitingFor === undefined || wait < waitingFor)) waitingFor = wait;
    }
    return {
      actions,
      head,
      waitingFor,
      waitingOnPeers: peers.waiting,
      pending: Object.keys(this.state.requests).length,
    };
  }

  private drop(entry: TrackedRequest): void {
    delete this.state.requests[entry.requestId];
    this.unverified.delete(entry.requestId);
    this.save();
  }

  private missed(entry: TrackedRequest, reason: string, actions: OperatorEvent[]): undefined {
    this.drop(entry);
    this.emit(
      { type: "missed", operator: this.address, requestId: BigInt(entry.requestId), reason },
      actions,
    );
    return undefined;
  }

  /**
   * Settles a request by one proof (zk mode): true when done. A CID input, a refused proof or a failed
   * transaction leave the request to commit and reveal (false), so the operator never misses it for that.
   */
  private async settledByProof(entry: TrackedRequest, actions: OperatorEvent[]): Promise<boolean> {
    const zk = this.zk as ZkProver;
    const request = await this.loggedRequest(entry);
    if (request.inputCid) return false;
    const requestId = BigInt(entry.requestId);
    try {
      const started = performance.now();
      const made = await proveInference(zk.circuit, {
        model: zk.model,
        salt: zk.salt,
        input: request.input,
        prover: this.address,
      });
      const proveMs = performance.now() - started;
      const receipt = await this.send("fulfillByProof", [requestId, request.input, made.answer, made.proof]);
      this.drop(entry);
      this.emit(
        {
          type: "proven",
          operator: this.address,
          requestId,
          output: made.answer,
          proveMs,
          gasUsed: receipt.gasUsed,
          block: receipt.blockNumber,
        },
        actions,
      );
      return true;
    } catch (err) {
      this.emit(
        {
          type: "error",
          operator: this.address,
          requestId,
          message: `no proof (answering by commit and reveal): ${firstLine(err)}`,
        },
        actions,
      );
      return false;
    }
  }

  private async settled(entry: TrackedRequest, actions: OperatorEvent[]): Promise<undefined> {
    const requestId = BigInt(entry.requestId);
    const status = await getRequestStatus(this.oracle, requestId);
    const [slash] = await this.chain.publicClient.getContractEvents({
      address: this.oracle.address,
      abi: InferenceOracle.abi,
      eventName: "OperatorSlashed",
      args: { requestId, operator: this.address },
      fromBlock: BigInt(entry.block),
    });
    this.drop(entry);
    this.emit(
      {
        type: "settled",
        operator: this.address,
        requestId,
        outcome: status.state,
        output: status.output,
        slashed: slash?.args.amount,
      },
      actions,
    );
    return undefined;
  }

  /** Whether this operator's `eventName` log for the request is on chain (resuming after a crash). */
  private async logged(
    eventName: "Committed" | "Revealed",
    entry: TrackedRequest,
  ): Promise<{ commitment?: Hex } | undefined> {
    const [log] = await this.chain.publicClient.getContractEvents({
      address: this.oracle.address,
      abi: InferenceOracle.abi,
      eventName,
      args: { requestId: BigInt(entry.requestId), operator: this.address },
      fromBlock: BigInt(entry.block),
    });
    if (!log) return undefined;
    return { commitment: "commitment" in log.args ? (log.args.commitment as Hex) : undefined };
  }

  /** Moves one request on as far as the next block allows; returns the head height it waits for. */
  private async advance(
    entry: TrackedRequest,
    head: bigint,
    actions: OperatorEvent[],
    peers: PeerWatch,
  ): Promise<bigint | undefined> {
    const requestId = BigInt(entry.requestId);
    const w: RequestWindows = {
      commitDeadline: BigInt(entry.commitDeadline),
      revealDeadline: BigInt(entry.revealDeadline),
    };
    const next = head + 1n;
    for (;;) {
      switch (entry.phase) {
        case "seen": {
          if (this.zk && (await this.settledByProof(entry, actions))) return undefined;
          if (!canCommitIn(w, next)) return this.missed(entry, "the commit window closed", actions);
          let output: bigint;
          try {
            output = this.answer(await inputOf(await this.loggedRequest(entry), this.store));
          } catch (err) {
            return this.missed(entry, `cannot answer: ${(err as Error).message}`, actions);
          }
          // The salt and the answer reach the disk before the commitment reaches the chain.
          entry.output = output.toString();
          entry.salt = toHex(randomBytes(32));
          entry.phase = "committing";
          this.save();
          break;
        }
        case "committing": {
          const commitment = commitmentOf(
            requestId,
            this.address,
            BigInt(entry.output as string),
            entry.salt as Hex,
          );
          if (this.unverified.has(entry.requestId)) {
            // Loaded from disk in this phase: the commit may have been sent before a crash.
            this.unverified.delete(entry.requestId);
            const onChain = await this.logged("Committed", entry);
            if (onChain) {
              if (onChain.commitment !== commitment)
                return this.missed(
                  entry,
                  "the chain holds a commitment this state file cannot open",
                  actions,
                );
              entry.phase = "committed";
              this.save();
              break;
            }
          }
          if (!canCommitIn(w, next)) return this.missed(entry, "the commit window closed", actions);
          try {
            const receipt = await this.send("commit", [requestId, commitment]);
            entry.phase = "committed";
            this.save();
            this.emit(
              {
                type: "committed",
                operator: this.address,
                requestId,
                gasUsed: receipt.gasUsed,
                block: receipt.blockNumber,
              },
              actions,
            );
          } catch (err) {
            if (REFUSAL(err, "AlreadyCommitted")) {
              const onChain = await this.logged("Committed", entry);
              if (onChain?.commitment !== commitment)
                return this.missed(
                  entry,
                  "the chain holds a commitment this state file cannot open",
                  actions,
                );
              entry.phase = "committed";
              this.save();
              break;
            }
            if (REFUSAL(err, "RequestClosed")) return this.settled(entry, actions);
            if (REFUSAL(err, "CommitClosed")) return this.missed(entry, "the commit window closed", actions);
            if (REFUSAL(err, "NotOperator"))
              return this.missed(entry, "not registered for this version", actions);
            if (REFUSAL(err, "InsufficientStake")) return this.missed(entry, BELOW_MINIMUM, actions);
            throw err;
          }
          break;
        }
        case "committed": {
          if (!canRevealIn(w, next)) {
            if (next <= w.commitDeadline) {
              const status = await getRequestStatus(this.oracle, requestId);
              // A report that lands before the window closes releases this commit: mining on towards the
              // deadline would only shorten the windows of the requests after it.
              if (this.opts.reportWindowMs !== undefined && status.state !== "open")
                return this.settled(entry, actions);
              await this.watchPeers(status, next, peers);
              return w.commitDeadline;
            }
            if (this.unverified.has(entry.requestId) && (await this.logged("Revealed", entry))) {
              entry.phase = "revealed";
              this.save();
              break;
            }
            return this.missed(entry, "the reveal window closed before the operator revealed", actions);
          }
          const holdUntil =
            this.opts.reportWindowMs === undefined
              ? undefined
              : (entry.seenAt ?? 0) + this.opts.reportWindowMs;
          if (holdUntil !== undefined && this.now() < holdUntil && mayHoldRevealIn(w, next)) {
            // A report may still land: it releases this commit, and there is nothing to reveal. No height
            // to wait for, so `run` mines no block meanwhile and the reveal window stays whole. Once another
            // operator revealed, no report can land (ReportAfterReveal): holding on would only risk the stake.
            const status = await getRequestStatus(this.oracle, requestId);
            if (status.state !== "open") return this.settled(entry, actions);
            if (status.reveals === 0 && mayHoldRevealIn(w, next, status.commits)) return undefined;
          }
          if (this.unverified.has(entry.requestId)) {
            this.unverified.delete(entry.requestId);
            if (await this.logged("Revealed", entry)) {
              entry.phase = "revealed";
              this.save();
              break;
            }
          }
          const output = BigInt(entry.output as string);
          try {
            const receipt = await this.send("reveal", [requestId, output, entry.salt]);
            entry.phase = "revealed";
            this.save();
            this.emit(
              {
                type: "revealed",
                operator: this.address,
                requestId,
                output,
                gasUsed: receipt.gasUsed,
                block: receipt.blockNumber,
              },
              actions,
            );
          } catch (err) {
            if (REFUSAL(err, "AlreadyRevealed")) {
              entry.phase = "revealed";
              this.save();
              break;
            }
            if (REFUSAL(err, "RequestClosed")) return this.settled(entry, actions);
            if (REFUSAL(err, "RevealClosed"))
              return this.missed(entry, "the reveal window closed before the operator revealed", actions);
            // Slashed below the minimum on another request since it committed: it settles as silent here.
            if (REFUSAL(err, "InsufficientStake")) return this.missed(entry, BELOW_MINIMUM, actions);
            throw err;
          }
          break;
        }
        case "revealed": {
          const status = await getRequestStatus(this.oracle, requestId);
          if (status.state !== "open") return this.settled(entry, actions);
          if (!canFinalizeIn(w, next, status.commits, status.reveals)) {
            await this.watchPeers(status, next, peers);
            return w.revealDeadline;
          }
          return this.finalize(entry, actions);
        }
      }
    }
  }

  /** Notes whether another operator may still act on the request before a transaction in block `next`. */
  private async watchPeers(status: RequestStatus, next: bigint, peers: PeerWatch): Promise<void> {
    if (next > status.commitDeadline) {
      if (status.reveals < status.commits) peers.waiting = true;
      return;
    }
    peers.active ??= await activeOperatorCount(this.oracle, this.modelId, this.version);
    if (status.commits < peers.active) peers.waiting = true;
  }

  private async finalize(entry: TrackedRequest, actions: OperatorEvent[]): Promise<bigint | undefined> {
    const requestId = BigInt(entry.requestId);
    let receipt: Awaited<ReturnType<InferenceOperator["send"]>>;
    try {
      receipt = await this.send("finalize", [requestId]);
    } catch (err) {
      // Another operator (or the requester) finalized first: its transaction won, ours is moot.
      if (REFUSAL(err, "RequestClosed") || err instanceof TransactionFailedError) {
        const status = await getRequestStatus(this.oracle, requestId);
        if (status.state !== "open") return this.settled(entry, actions);
      }
      if (REFUSAL(err, "TooEarly")) return BigInt(entry.revealDeadline);
      throw err;
    }
    const abi = InferenceOracle.abi;
    const done = parseEventLogs({ abi, logs: receipt.logs, eventName: "InferenceFinalized" })[0];
    const slashed = parseEventLogs({ abi, logs: receipt.logs, eventName: "OperatorSlashed" }).find(
      (l) => l.args.operator.toLowerCase() === this.address.toLowerCase(),
    );
    this.drop(entry);
    this.emit(
      {
        type: "finalized",
        operator: this.address,
        requestId,
        outcome: done ? "finalized" : "failed",
        output: done?.args.output,
        slashed: slashed?.args.amount,
        gasUsed: receipt.gasUsed,
        block: receipt.blockNumber,
      },
      actions,
    );
    return undefined;
  }

  private async loggedRequest(entry: TrackedRequest): Promise<LoggedRequest> {
    const [log] = await this.chain.publicClient.getContractEvents({
      address: this.oracle.address,
      abi: InferenceOracle.abi,
      eventName: "InferenceRequested",
      args: { requestId: BigInt(entry.requestId) },
      fromBlock: BigInt(entry.block),
      toBlock: BigInt(entry.block),
    });
    if (!log) throw new OperatorError(`no InferenceRequested log for request ${entry.requestId}`);
    return loggedRequestOf(log.args as RequestedArgs, log.blockNumber);
  }

  /** Whether this operator may mine: a development chain, and mining not turned off. */
  get mines(): boolean {
    return this.opts.mine !== false && isDevChain(this.chain.chainId);
  }

  /** Mines empty blocks until the head reaches `height` (development chains only). */
  async mineTo(height: bigint): Promise<number> {
    if (!this.mines)
      throw new OperatorError(
        `chain ${this.chain.chainId} is not a development chain: operators never mine there`,
      );
    let mined = 0;
    while ((await this.head()) < height) {
      await this.chain.publicClient.request({ method: "evm_mine", params: [] } as never);
      mined++;
    }
    return mined;
  }

  /** `mineTo`, with a failure reported as an error event: the loop of `run` goes on. */
  private async mineOrSay(height: bigint): Promise<void> {
    try {
      await this.mineTo(height);
    } catch (err) {
      this.emit({ type: "error", operator: this.address, message: firstLine(err) });
    }
  }

  /**
   * Polls `step()` every `pollMs` until `signal` aborts. On a development chain, while it waits for a
   * height: when nobody is left to wait for, it mines straight to the height; otherwise it mines one empty
   * block whenever the chain has produced none for one to two `blockTimeMs` (drawn at random).
   */
  async run(signal: AbortSignal, duty?: () => Promise<OperatorEvent[]>): Promise<void> {
    const pollMs = this.opts.pollMs ?? 500;
    const blockTimeMs = this.opts.blockTimeMs ?? 3_000;
    // Each idle spell waits a random 1 to 2 block times: operators in other processes, idle since the same
    // block, would otherwise all mine at once, and a burst of blocks can close a window of a few blocks
    // before a slower operator reveals (which would cost it its stake).
    let idle: { head: bigint; since: number; wait: number } | undefined;
    while (!signal.aborted) {
      let result: StepResult | undefined;
      try {
        // Before the step, in the same loop: both send from this account, so never concurrently.
        for (const e of (await duty?.()) ?? []) this.emit(e);
      } catch (err) {
        this.emit({ type: "error", operator: this.address, message: firstLine(err) });
      }
      try {
        result = await this.step();
      } catch (err) {
        this.emit({
          type: "error",
          operator: this.address,
          message: (err as Error).message.split("\n")[0] ?? "",
        });
      }
      if (
        result &&
        this.mines &&
        result.actions.length === 0 &&
        result.waitingFor !== undefined &&
        result.head < result.waitingFor
      ) {
        if (!result.waitingOnPeers) {
          await this.mineOrSay(result.waitingFor);
          idle = undefined;
        } else if (idle?.head !== result.head) {
          idle = { head: result.head, since: Date.now(), wait: blockTimeMs * (1 + Math.random()) };
        } else if (Date.now() - idle.since >= idle.wait) {
          await this.mineOrSay(result.head + 1n);
          idle = undefined;
        }
      } else {
        idle = undefined;
      }
      await sleep(pollMs, signal);
    }
  }
}

function firstLine(err: unknown): string {
  return err instanceof Error ? (err.message.split("\n")[0] ?? err.name) : String(err);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Loads the version's weights by the registry's CID, verified against the registry's digest. */
/** What an operator in zk mode proves with. */
interface ZkProver {
  model: CanonicalModel;
  salt: bigint;
  circuit: ModelCircuit;
}

/**
 * Checks that the salt opens the commitment the registry records for the version, then compiles the
 * circuit and sets up its keys (cached): an operator never starts proving for weights it cannot prove.
 */
async function zkProverOf(
  opts: OperatorOptions,
  oracle: Oracle,
  model: CanonicalModel,
  salt: bigint,
): Promise<ZkProver> {
  const reg = await registryOf(opts.chain, oracle);
  const recorded = await getZkVerifier(reg, { modelId: opts.modelId, version: opts.version });
  if (!recorded)
    throw new OperatorError(
      `model ${opts.modelId}@${opts.version} has no zk verifier in the registry: run "ledgermind zk build" first`,
    );
  if (hexToBigInt(recorded.commitment) !== weightsCommitment(model, salt))
    throw new OperatorError(
      `the zk salt does not open the commitment ${recorded.commitment} that the registry records for model ${opts.modelId}@${opts.version}`,
    );
  const circuit = await prepareModelCircuit(model, {
    cacheDir: opts.zkCacheDir,
    salt,
    ...(opts.zkPlan ? { plan: opts.zkPlan } : {}),
    ...(opts.zkProvingKey ? { provingKey: { cid: opts.zkProvingKey, store: opts.store } } : {}),
  });
  return { model, salt, circuit };
}

/** The registry the oracle reads (it may differ from this chain's deployment manifest's). */
async function registryOf(chain: LedgerChain, oracle: Oracle): Promise<Registry> {
  const reg = await openRegistry(chain);
  return reg.address.toLowerCase() === oracle.registry.toLowerCase()
    ? reg
    : { ...reg, address: oracle.registry, fromBlock: 0n };
}

/**
 * A version's canonical (LMQ1) weights from the blob store, checked against the registry's digest of the
 * oracle's registry: what an operator serves, and what a prover proves.
 */
export async function loadVersionWeights(
  chain: LedgerChain,
  oracle: Oracle,
  store: BlobStore,
  modelId: bigint,
  version: number,
): Promise<{ weights: Uint8Array; weightsDigest: Hex; weightsCid: string }> {
  const reg = await registryOf(chain, oracle);
  const record = await getVersion(reg, modelId, version);
  if (record.format !== "LMQ1")
    throw new OperatorError(
      `model ${modelId}@${version} is in format ${record.format}; operators run only the canonical LMQ1 encoding`,
    );
  let weights: Uint8Array;
  try {
    weights = await store.get(record.weightsCid);
  } catch (err) {
    if (err instanceof BlobIntegrityError)
      throw new WeightsMismatchError(
        `refusing to serve model ${modelId}@${version}: the stored weights hash to ${err.actualDigest}, not to the registry's ${record.weightsDigest}`,
      );
    if (err instanceof BlobNotFoundError)
      throw new OperatorError(
        `the weights of model ${modelId}@${version} (${record.weightsCid}) are not in the blob store: put them there first`,
      );
    throw err;
  }
  const digest = sha256Digest(weights);
  if (digest !== record.weightsDigest)
    throw new WeightsMismatchError(
      `refusing to serve model ${modelId}@${version}: the stored weights hash to ${digest}, not to the registry's ${record.weightsDigest}`,
    );
  return { weights, weightsDigest: record.weightsDigest, weightsCid: record.weightsCid };
}

function loadState(opts: OperatorOptions, oracle: Oracle, operator: Address): OperatorState {
  const fresh: OperatorState = {
    format: STATE_FORMAT,
    chainId: opts.chain.chainId,
    oracle: oracle.address,
    operator,
    modelId: opts.modelId.toString(),
    version: opts.version,
    cursor: oracle.fromBlock.toString(),
    requests: {},
  };
  if (!existsSync(opts.stateFile)) return fresh;
  let state: OperatorState;
  try {
    state = JSON.parse(readFileSync(opts.stateFile, "utf8")) as OperatorState;
  } catch {
    throw new OperatorError(`${opts.stateFile} is not an operator state file (not JSON)`);
  }
  const same =
    state.format === STATE_FORMAT &&
    state.chainId === fresh.chainId &&
    state.oracle.toLowerCase() === fresh.oracle.toLowerCase() &&
    state.operator.toLowerCase() === operator.toLowerCase() &&
    state.modelId === fresh.modelId &&
    state.version === fresh.version;
  if (!same)
    throw new OperatorError(
      `${opts.stateFile} belongs to another operator, oracle or model version (${state.operator} on chain ${state.chainId}, model ${state.modelId}@${state.version})`,
    );
  return state;
}

/**
 * Where an operator keeps its state in a data folder: one file per chain deployment, operator and model
 * version, so that `oracle serve` and the node resume each other's work on the same folder.
 */
export function operatorStateFile(
  dataDir: string,
  chain: LedgerChain,
  operator: Address,
  modelId: bigint,
  version: number,
): string {
  return join(
    dataDir,
    "oracle",
    `operator-${chain.manifestKey}-${operator.toLowerCase()}-${modelId}@${version}.json`,
  );
}

/**
 * Sends an unregistered operator what it lacks of its stake (`stake`, default the oracle's minimum) from
 * another configured account; does nothing once it is registered.
 */
export async function fundStake(
  chain: LedgerChain,
  account: number,
  from: number,
  modelId: bigint,
  version: number,
  stake: bigint | undefined,
): Promise<void> {
  const oracle = await openOracle(chain);
  const address = chain.wallet(account).account.address;
  const info = await chain.publicClient.readContract({
    address: oracle.address,
    abi: InferenceOracle.abi,
    functionName: "operatorInfo",
    args: [modelId, version, address],
  });
  if (info.slot !== 0) return;
  const need = stake ?? (await getOracleParams(oracle)).minStake;
  const balance = await mindBalance(chain, address);
  if (balance < need) await transferMind(chain, address, need - balance, from);
}

/** Creates (verifying weights, registering) an operator: `InferenceOperator.create`. */
export function createOperator(opts: OperatorOptions): Promise<InferenceOperator> {
  return InferenceOperator.create(opts);
}

export interface RunningOperator {
  operator: InferenceOperator;
  /** Stops after the step in progress; resolves when the loop has ended. */
  stop(): Promise<void>;
  /** Settles when the loop ends (after `stop`). */
  done: Promise<void>;
}

/**
 * Creates the operator (weights verified, registered) and runs its polling loop. Rejects when the
 * operator cannot start (e.g. WeightsMismatchError); the loop itself reports errors as events and goes on.
 * `duty`, given the created operator, returns work to do before each step (a report exchange's leading).
 */
export async function startOperator(
  opts: OperatorOptions,
  duty?: (operator: InferenceOperator) => () => Promise<OperatorEvent[]>,
): Promise<RunningOperator> {
  const operator = await InferenceOperator.create(opts);
  const controller = new AbortController();
  const done = operator.run(controller.signal, duty?.(operator));
  return {
    operator,
    done,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

/**
 * Drives operators in one process, deterministically: every round steps each operator once, in order;
 * when none did anything, mines (development chains) to the lowest height one of them waits for. Ends
 * when `until` holds, or when no operator has anything left to do or wait for. Returns every event.
 */
export async function driveOperators(
  operators: readonly InferenceOperator[],
  opts: { until?: () => boolean | Promise<boolean>; maxRounds?: number } = {},
): Promise<OperatorEvent[]> {
  const events: OperatorEvent[] = [];
  const maxRounds = opts.maxRounds ?? 200;
  const first = operators[0];
  if (!first) return events;
  for (let round = 0; round < maxRounds; round++) {
    let acted = false;
    let target: bigint | undefined;
    for (const op of operators) {
      const r = await op.step();
      events.push(...r.actions);
      if (r.actions.length > 0) acted = true;
      if (r.waitingFor !== undefined && (target === undefined || r.waitingFor < target))
        target = r.waitingFor;
    }
    if (opts.until && (await opts.until())) return events;
    if (acted) continue;
    if (target === undefined) return events;
    await first.mineTo(target);
  }
  throw new OperatorError(`the operators did not settle in ${maxRounds} rounds`);
}
