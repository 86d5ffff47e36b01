// InferenceOracle on an embedded chain, shared by test/contracts/inference-oracle.test.ts and
// test/contracts/inference-oracle-attacks.test.ts: dev accounts funded and approved, one model with five
// versions, operators, test consumers; helpers that send, read, commit, reveal, sign reports and refuse by
// error name (recording every error reached), and the conservation check.

import assert from "node:assert/strict";
import {
  type Account,
  type Address,
  BaseError,
  type Chain,
  type ContractFunctionArgs,
  type ContractFunctionName,
  createWalletClient,
  custom,
  decodeErrorResult,
  encodeAbiParameters,
  encodeDeployData,
  type Hex,
  hexToBigInt,
  isAddressEqual,
  keccak256,
  maxUint256,
  parseEther,
  parseEventLogs,
  parseSignature,
  serializeCompactSignature,
  signatureToCompactSignature,
  stringToHex,
  type TransactionReceipt,
  type Transport,
  toHex,
  type WalletClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { LocalAccount } from "../../src/chain/accounts.ts";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll, TOKEN_SUPPLY } from "../../src/chain/deploy.ts";
import {
  GasBurningConsumer,
  InferenceOracle,
  MindToken,
  ModelRegistry,
  RecordingConsumer,
  ReentrantConsumer,
  ReturnBombConsumer,
  RevertingConsumer,
} from "../../src/chain/generated/contracts.ts";
import { ContractRefusedError, decodeRevert, sendAndWait } from "../../src/chain/tx.ts";
import { type AggregationMode, settle } from "../../src/oracle/aggregate.ts";
import { bareVersion } from "./bare-version.ts";

export const abi = InferenceOracle.abi;
export type OracleAbi = typeof abi;
export type WriteName = ContractFunctionName<OracleAbi, "nonpayable">;

export const PARAMS = {
  minStake: parseEther("100"),
  commitWindow: 40,
  revealWindow: 40,
  minResponses: 3,
  tolerance: 50_000n,
  slashBps: 1_000,
  callbackGasLimit: 200_000,
  maxOperators: 16,
} as const;
export type Params = {
  minStake: bigint;
  commitWindow: number;
  revealWindow: number;
  minResponses: number;
  tolerance: bigint;
  slashBps: number;
  callbackGasLimit: number;
  maxOperators: number;
};

export const MEDIAN = 0;
export const MAJORITY = 1;
export const TREASURY = 0;
export const OWNER = 1;
export const STRANGER = 17;
export const SPARE = 18;
export const REQUESTER = 19;
/** Operators of the main version (v1) and of the gas version (v3). */
export const MAIN_OPS = [2, 3, 4, 5, 6, 7, 8];
export const GAS_OPS = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
export const INPUT = [1_000_000n, -250_000n, 42n, 7_500_000n];

export let chain: LedgerChain;
export let token: Address;
export let registry: Address;
export let oracle: Address;
export let modelId: bigint;
export const consumers: Record<string, Address> = {};
export const observedErrors = new Set<string>();
/** Every address that may hold MIND in this file: conservation sums over these. */
export const holders: Address[] = [];

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

export function account(i: number): LocalAccount {
  const a = chain.accounts[i];
  if (!a) throw new Error(`no dev account #${i}`);
  return a;
}

export function addr(i: number): Address {
  return account(i).address;
}

export function rpc<T>(method: string, params: unknown[] = []): Promise<T> {
  return chain.publicClient.request({ method, params } as never) as Promise<T>;
}

export async function blockNumber(): Promise<bigint> {
  return hexToBigInt(await rpc<Hex>("eth_blockNumber"));
}

/** Mines until the latest block is `target`: the next transaction lands in block `target + 1`. */
export async function advanceTo(target: bigint | number): Promise<void> {
  const now = await blockNumber();
  const t = BigInt(target);
  if (t > now) await rpc("hardhat_mine", [toHex(t - now)]);
}

export async function read<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw decodeRevert(err);
  }
}

export async function refused(
  p: Promise<unknown>,
  errorName: string,
  args?: readonly unknown[],
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ContractRefusedError, `expected ContractRefusedError, got ${String(err)}`);
    assert.equal(err.errorName, errorName);
    if (args !== undefined) assert.deepEqual(err.args, args);
    observedErrors.add(err.errorName);
    return true;
  });
}

/** A dev account's index, or the wallet of an extra actor (see inference-oracle-attacks.test.ts). */
export type Sender = number | WalletClient<Transport, Chain, Account>;

export function walletOf(who: Sender): WalletClient<Transport, Chain, Account> {
  return typeof who === "number" ? chain.wallet(who) : who;
}

export function send<N extends WriteName>(
  who: Sender,
  functionName: N,
  args: ContractFunctionArgs<OracleAbi, "nonpayable", N>,
  at: Address = oracle,
  gas?: bigint,
): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    walletOf(who).writeContract({ address: at, abi, functionName, args, gas } as never),
  );
}

export function tokenTx(i: number, functionName: "transfer" | "approve", to: Address, value: bigint) {
  return sendAndWait(chain, () =>
    chain.wallet(i).writeContract({ address: token, abi: MindToken.abi, functionName, args: [to, value] }),
  );
}

export function balanceOf(a: Address): Promise<bigint> {
  return chain.publicClient.readContract({
    address: token,
    abi: MindToken.abi,
    functionName: "balanceOf",
    args: [a],
  });
}

export function getRequest(id: bigint, at: Address = oracle) {
  return read(chain.publicClient.readContract({ address: at, abi, functionName: "getRequest", args: [id] }));
}

/** Whether a request can still complete (open); false for settled and unknown ids. */
export function isPending(id: bigint): Promise<boolean> {
  return chain.publicClient.readContract({ address: oracle, abi, functionName: "isPending", args: [id] });
}

/** The stake an open request's thresholds are shares of. */
export function stakeBase(id: bigint): Promise<bigint> {
  return read(
    chain.publicClient.readContract({ address: oracle, abi, functionName: "stakeBase", args: [id] }),
  );
}

export function getResult(id: bigint) {
  return read(
    chain.publicClient.readContract({ address: oracle, abi, functionName: "getResult", args: [id] }),
  );
}

export function operatorInfo(version: number, i: number | Address) {
  const who = typeof i === "number" ? addr(i) : i;
  return chain.publicClient.readContract({
    address: oracle,
    abi,
    functionName: "operatorInfo",
    args: [modelId, version, who],
  });
}

export function operatorsOf(version: number, at: Address = oracle) {
  return chain.publicClient.readContract({
    address: at,
    abi,
    functionName: "operatorsOf",
    args: [modelId, version],
  });
}

export function withdrawable(a: Address, at: Address = oracle): Promise<bigint> {
  return chain.publicClient.readContract({ address: at, abi, functionName: "withdrawable", args: [a] });
}

export async function deploy(
  artifact: { abi: readonly unknown[]; bytecode: Hex },
  args: readonly unknown[],
): Promise<Address> {
  const wallet = chain.wallet(TREASURY);
  const receipt = await sendAndWait(chain, () =>
    wallet.deployContract({ abi: artifact.abi, bytecode: artifact.bytecode, args } as Parameters<
      typeof wallet.deployContract
    >[0]),
  );
  if (!receipt.contractAddress) throw new Error("no contract created");
  return receipt.contractAddress;
}

export function deployOracle(params: Params): Promise<Address> {
  return deploy(InferenceOracle, [token, registry, params]);
}

/** The custom error (name and arguments) a deployment with `params` reverts with (simulated with eth_call). */
export async function deployRefusal(
  params: Params,
  at: { token?: Address; registry?: Address } = {},
): Promise<{ name: string; args: readonly unknown[] }> {
  const data = encodeDeployData({
    abi,
    bytecode: InferenceOracle.bytecode,
    args: [at.token ?? token, at.registry ?? registry, params],
  });
  try {
    await chain.publicClient.call({ account: addr(TREASURY), data });
  } catch (err) {
    const raw =
      err instanceof BaseError ? err.walk((e) => typeof (e as { data?: unknown }).data === "string") : null;
    const revertData = (raw as { data?: Hex } | null)?.data;
    if (!revertData) throw err;
    const decoded = decodeErrorResult({ abi, data: revertData });
    observedErrors.add(decoded.errorName);
    return { name: decoded.errorName, args: decoded.args ?? [] };
  }
  throw new Error("the deployment did not revert");
}

export function commitmentOf(requestId: bigint, operator: Address, output: bigint, salt: Hex): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: "uint256" }, { type: "address" }, { type: "int256" }, { type: "bytes32" }],
      [requestId, operator, output, salt],
    ),
  );
}

export function saltFor(requestId: bigint, op: number): Hex {
  return keccak256(stringToHex(`salt:${requestId}:${op}`));
}

export interface RequestOpts {
  version?: number;
  input?: bigint[];
  inputCid?: Hex;
  aggregation?: number;
  fee?: bigint;
}

export const ZERO32 = `0x${"0".repeat(64)}` as Hex;
export const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

export function requestArgs(o: RequestOpts) {
  return [
    modelId,
    o.version ?? 1,
    o.input ?? (o.inputCid ? [] : INPUT),
    o.inputCid ?? ZERO32,
    o.aggregation ?? MEDIAN,
    o.fee ?? parseEther("10"),
  ] as const;
}

export function tryRequest(i: number, o: RequestOpts = {}) {
  return send(i, "request", requestArgs(o));
}

export async function newRequest(i: number, o: RequestOpts = {}): Promise<bigint> {
  const receipt = await tryRequest(i, o);
  const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "InferenceRequested" });
  assert.ok(log, "InferenceRequested emitted");
  return log.args.requestId;
}

/** A request sent by a test consumer contract (the oracle will call it back). */
export async function consumerRequest(consumer: Address, o: RequestOpts = {}): Promise<bigint> {
  const receipt = await sendAndWait(chain, () =>
    chain.wallet(OWNER).writeContract({
      address: consumer,
      abi: RecordingConsumer.abi,
      functionName: "requestInference",
      args: requestArgs(o),
    }),
  );
  const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "InferenceRequested" });
  assert.ok(log, "InferenceRequested emitted");
  assert.ok(isAddressEqual(log.args.requester, consumer));
  return log.args.requestId;
}

export interface Answer {
  op: number;
  output: bigint;
  /** False: commits and stays silent. */
  reveal?: boolean;
}

export async function commitAll(id: bigint, answers: Answer[]): Promise<TransactionReceipt[]> {
  const out: TransactionReceipt[] = [];
  for (const a of answers) {
    out.push(await send(a.op, "commit", [id, commitmentOf(id, addr(a.op), a.output, saltFor(id, a.op))]));
  }
  return out;
}

export async function revealAll(id: bigint, answers: Answer[]): Promise<TransactionReceipt[]> {
  const out: TransactionReceipt[] = [];
  for (const a of answers) {
    if (a.reveal === false) continue;
    out.push(await send(a.op, "reveal", [id, a.output, saltFor(id, a.op)]));
  }
  return out;
}

export interface Round {
  commits: TransactionReceipt[];
  reveals: TransactionReceipt[];
  finalize: TransactionReceipt;
  /** The request's `stakeBase` just before finalize. */
  stakeBase: bigint;
}

/**
 * Commits every answer, reveals the revealing ones, and finalizes as early as the contract allows. `gas` sets
 * finalize's gas limit (the embedded EVM will not estimate a call whose callee runs out of gas).
 */
export async function runRound(id: bigint, answers: Answer[], gas?: bigint): Promise<Round> {
  const commits = await commitAll(id, answers);
  const r = await getRequest(id);
  await advanceTo(r.commitDeadline);
  const reveals = await revealAll(id, answers);
  if (answers.some((a) => a.reveal === false)) await advanceTo(r.revealDeadline);
  const base = await stakeBase(id);
  const finalize = await send(REQUESTER, "finalize", [id], oracle, gas);
  return { commits, reveals, finalize, stakeBase: base };
}

export const REPORT_TYPES = {
  Report: [
    { name: "requestId", type: "uint256" },
    { name: "output", type: "int256" },
    { name: "weightsDigest", type: "bytes32" },
    { name: "signers", type: "address[]" },
  ],
} as const;

/** `who` signs the report for the signer list `signers` (ascending, as submitted). */
export function signReport(
  who: number | LocalAccount,
  requestId: bigint,
  output: bigint,
  weightsDigest: Hex,
  signers: readonly Address[],
  at = oracle,
) {
  return (typeof who === "number" ? account(who) : who).signTypedData({
    domain: {
      name: "Ledgermind InferenceOracle",
      version: "1",
      chainId: chain.chainId,
      verifyingContract: at,
    },
    types: REPORT_TYPES,
    primaryType: "Report",
    message: { requestId, output, weightsDigest, signers },
  });
}

/** The EIP-2098 64-byte form (r, yParity << 255 | s) of a 65-byte signature. */
export function compact(signature: Hex): Hex {
  return serializeCompactSignature(signatureToCompactSignature(parseSignature(signature)));
}

export function byAddress(ops: number[]): number[] {
  return [...ops].sort((a, b) => (hexToBigInt(addr(a)) < hexToBigInt(addr(b)) ? -1 : 1));
}

/**
 * `submitReport`'s arguments for `ops` signing `output`: the signer list by ascending address and each
 * signer's signature over the report with that list.
 */
export async function reportArgs(
  ops: number[],
  requestId: bigint,
  output: bigint,
): Promise<[bigint, bigint, Address[], Hex[]]> {
  const { weightsDigest } = await getRequest(requestId);
  const sorted = byAddress(ops);
  const signers = sorted.map(addr);
  const signatures = await Promise.all(
    sorted.map((i) => signReport(i, requestId, output, weightsDigest, signers)),
  );
  return [requestId, output, signers, signatures];
}

export function eventsOf<
  N extends "OperatorSlashed" | "CallbackFailed" | "InferenceFinalized" | "InferenceFailed",
>(receipt: TransactionReceipt, eventName: N) {
  return parseEventLogs({ abi, logs: receipt.logs, eventName });
}

/**
 * The oracle owes exactly what it holds: withdrawable balances, operators' stakes and uncollected fees, and
 * the fees of open requests. And the MIND of every holder in this file adds up to the whole supply.
 */
export async function assertConservation(): Promise<void> {
  let owed = 0n;
  for (const h of holders) owed += await withdrawable(h);
  const versions = await chain.publicClient.readContract({
    address: registry,
    abi: ModelRegistry.abi,
    functionName: "versionCount",
    args: [modelId],
  });
  for (let v = 1; v <= versions; v++) {
    for (const op of await operatorsOf(v)) {
      const info = await operatorInfo(v, op);
      owed += info.stake + info.fees;
    }
  }
  const count = await chain.publicClient.readContract({ address: oracle, abi, functionName: "requestCount" });
  for (let id = 1n; id <= count; id++) {
    const r = await getRequest(id);
    if (r.status === 1) owed += r.fee;
  }
  assert.equal(await balanceOf(oracle), owed, "the oracle holds exactly what it owes");
  let total = 0n;
  for (const h of new Set([...holders, oracle])) total += await balanceOf(h);
  assert.equal(total, TOKEN_SUPPLY, "no MIND created or lost");
}

/** Deploys the token, registry and oracle, one model with five versions, operators and test consumers. */
export async function setupOracleFixture(): Promise<void> {
  chain = await connect({ ephemeral: true });
  const manifest = await deployAll(chain);
  token = manifest.contracts.MindToken.address;
  registry = manifest.contracts.ModelRegistry.address;

  const owner = chain.wallet(OWNER);
  const reg = (functionName: "registerModel", args: readonly [string]) =>
    sendAndWait(chain, () =>
      owner.writeContract({ address: registry, abi: ModelRegistry.abi, functionName, args }),
    );
  const receipt = await reg("registerModel", ["oracle-test-model"]);
  const [registered] = parseEventLogs({
    abi: ModelRegistry.abi,
    logs: receipt.logs,
    eventName: "ModelRegistered",
  });
  assert.ok(registered);
  modelId = registered.args.modelId;
  for (let v = 1; v <= 5; v++) {
    await sendAndWait(chain, () =>
      owner.writeContract({
        address: registry,
        abi: ModelRegistry.abi,
        functionName: "addVersion",
        args: [modelId, bareVersion(`weights:v${v}`)],
      }),
    );
  }

  oracle = await deployOracle({ ...PARAMS });
  holders.push(oracle);
  for (let i = 0; i < 20; i++) holders.push(addr(i));
  for (let i = 1; i < 20; i++) {
    await tokenTx(TREASURY, "transfer", addr(i), parseEther("100000"));
    await tokenTx(i, "approve", oracle, maxUint256);
  }
  for (const v of [1, 2, 3, 4]) await send(OWNER, "setModelSpec", [modelId, v, INPUT.length]);
  await sendAndWait(chain, () =>
    owner.writeContract({
      address: registry,
      abi: ModelRegistry.abi,
      functionName: "deprecateVersion",
      args: [modelId, 2, "superseded"],
    }),
  );
  for (const i of MAIN_OPS) await send(i, "registerOperator", [modelId, 1, parseEther("1000") + BigInt(i)]);
  for (const i of GAS_OPS) await send(i, "registerOperator", [modelId, 3, parseEther("500")]);

  const artifacts = {
    recording: RecordingConsumer,
    reverting: RevertingConsumer,
    burning: GasBurningConsumer,
    bomb: ReturnBombConsumer,
    reentrant: ReentrantConsumer,
  };
  for (const [name, artifact] of Object.entries(artifacts)) {
    const at = await deploy(artifact, [oracle, token]);
    consumers[name] = at;
    holders.push(at);
    await tokenTx(TREASURY, "transfer", at, parseEther("1000"));
  }
}

export async function teardownOracleFixture(): Promise<void> {
  await chain?.close();
}

/** Points every helper at another oracle (one a test deployed with other parameters). */
export function useOracle(at: Address): void {
  oracle = at;
}

export async function checkAgainstMirror(
  id: bigint,
  answers: Answer[],
  mode: AggregationMode,
  before: Map<number, { stake: bigint; fees: bigint }>,
  round: Round,
  version = 1,
) {
  const r = await getRequest(id);
  const revealing = answers.filter((a) => a.reveal !== false);
  const expected = settle({
    reveals: revealing.map((a) => ({ operator: addr(a.op), output: a.output })),
    committedNotRevealed: answers.filter((a) => a.reveal === false).map((a) => addr(a.op)),
    stakes: new Map(answers.map((a) => [addr(a.op), before.get(a.op)?.stake ?? 0n])),
    fee: r.fee,
    tolerance: PARAMS.tolerance,
    slashBps: PARAMS.slashBps,
    mode,
    minResponses: PARAMS.minResponses,
    stakeBase: round.stakeBase,
  });
  const slashes = eventsOf(round.finalize, "OperatorSlashed").map((l) => ({
    operator: l.args.operator,
    amount: l.args.amount,
  }));
  assert.deepEqual(slashes, expected.slashed);
  for (const a of answers) {
    const now = await operatorInfo(version, a.op);
    const was = before.get(a.op);
    assert.ok(was);
    const slashed = expected.slashed.find((s) => s.operator === addr(a.op))?.amount ?? 0n;
    const share = expected.shares.find((s) => s.operator === addr(a.op))?.amount ?? 0n;
    assert.equal(now.stake, was.stake - slashed, `stake of #${a.op}`);
    assert.equal(now.fees, was.fees + share, `fees of #${a.op}`);
  }
  return expected;
}

export async function snapshot(ops: number[], version = 1) {
  const m = new Map<number, { stake: bigint; fees: bigint }>();
  for (const i of ops) {
    const info = await operatorInfo(version, i);
    m.set(i, { stake: info.stake, fees: info.fees });
  }
  return m;
}

// ---------------------------------------------------------------------------------------------------------
// The largest request, shared with bench/oracle.bench.ts
// ---------------------------------------------------------------------------------------------------------

/** Sends at once from this many distinct accounts (each waits for its own receipt). */
const PARALLEL_SENDS = 16;

async function inParallel<T>(items: readonly T[], run: (item: T, index: number) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += PARALLEL_SENDS) {
    await Promise.all(items.slice(i, i + PARALLEL_SENDS).map((item, k) => run(item, i + k)));
  }
}

/** The most gas any of `receipts` used. */
export function heaviestGas(receipts: readonly TransactionReceipt[]): bigint {
  let most = 0n;
  for (const r of receipts) if (r.gasUsed > most) most = r.gasUsed;
  return most;
}

export interface LargestRequest {
  oracle: Address;
  /** The gas-burning consumer that requested (it holds MIND). */
  consumer: Address;
  operators: LocalAccount[];
  request: TransactionReceipt;
  commits: TransactionReceipt[];
  reveals: TransactionReceipt[];
  finalize: TransactionReceipt;
  /**
   * A second request of the same consumer that all `n` operators committed to, settled before any reveal by
   * a report that all of them signed (so it also releases every commitment).
   */
  report: TransactionReceipt;
}

/**
 * The largest request the oracle supports, in its worst order: `n` (MAX_OPERATORS_CAP, 255) operators with
 * deterministic keys join a fresh oracle's model version; a consumer whose callback burns all of
 * MAX_CALLBACK_GAS requests a median; every operator commits, then they reveal in descending order of
 * output (the order that made the former insertion sort quadratic), the first 127 far above the rest, so
 * that finalize slashes 127 and pays 128; the deployer finalizes. A second request, which all of them commit
 * to, is settled by a report that all of them signed. Needs MIND in account 0.
 */
export async function largestRequest(
  on: LedgerChain,
  contracts: { token: Address; registry: Address },
  n = 255,
): Promise<LargestRequest> {
  const deployer = on.wallet(0);
  const call = (address: Address, contractAbi: readonly unknown[], functionName: string, args: unknown[]) =>
    sendAndWait(on, () => deployer.writeContract({ address, abi: contractAbi, functionName, args } as never));
  const registered = await call(contracts.registry, ModelRegistry.abi, "registerModel", ["largest-request"]);
  const [model] = parseEventLogs({
    abi: ModelRegistry.abi,
    logs: registered.logs,
    eventName: "ModelRegistered",
  });
  if (!model) throw new Error("no ModelRegistered event");
  const id = model.args.modelId;
  await call(contracts.registry, ModelRegistry.abi, "addVersion", [
    id,
    bareVersion("largest-request-weights"),
  ]);
  const minStake = parseEther("100");
  const deployed = await sendAndWait(on, () =>
    deployer.deployContract({
      abi,
      bytecode: InferenceOracle.bytecode,
      args: [
        contracts.token,
        contracts.registry,
        {
          minStake,
          // Every commit and reveal mines its own block here.
          commitWindow: n + 20,
          revealWindow: n + 20,
          minResponses: 2,
          tolerance: 50_000n,
          slashBps: 1_000,
          callbackGasLimit: 2_000_000,
          maxOperators: n,
        },
      ],
    }),
  );
  const at = deployed.contractAddress as Address;
  await call(at, abi, "setModelSpec", [id, 1, 1]);
  const consumerDeployed = await sendAndWait(on, () =>
    deployer.deployContract({
      abi: GasBurningConsumer.abi,
      bytecode: GasBurningConsumer.bytecode,
      args: [at, contracts.token],
    }),
  );
  const consumer = consumerDeployed.contractAddress as Address;
  await call(contracts.token, MindToken.abi, "transfer", [consumer, parseEther("100")]);

  const transport = custom({ request: (args) => on.publicClient.request(args as never) }, { retryCount: 0 });
  const operators = Array.from({ length: n }, (_, k) =>
    privateKeyToAccount(keccak256(stringToHex(`inference-oracle-operator:${k}`))),
  );
  const wallets = operators.map((account) => createWalletClient({ account, chain: on.chain, transport }));
  for (const o of operators) {
    await on.publicClient.request({
      method: "hardhat_setBalance",
      params: [o.address, toHex(parseEther("10"))],
    } as never);
    await call(contracts.token, MindToken.abi, "transfer", [o.address, 2n * minStake]);
  }
  const send = (k: number, address: Address, contractAbi: readonly unknown[], fn: string, args: unknown[]) =>
    sendAndWait(on, () =>
      (wallets[k] as WalletClient<Transport, Chain, Account>).writeContract({
        address,
        abi: contractAbi,
        functionName: fn,
        args,
      } as never),
    );
  await inParallel(operators, async (_, k) => {
    await send(k, contracts.token, MindToken.abi, "approve", [at, maxUint256]);
    // Twice the minimum: the deviants stay active after their slash and sign the report too.
    await send(k, at, abi, "registerOperator", [id, 1, 2n * minStake]);
  });

  const consumerRequest = async () => {
    const receipt = await call(consumer, GasBurningConsumer.abi, "requestInference", [
      id,
      1,
      [1n],
      ZERO32,
      0,
      parseEther("1"),
    ]);
    const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "InferenceRequested" });
    if (!log) throw new Error("no InferenceRequested event");
    return { receipt, requestId: log.args.requestId, commitDeadline: log.args.commitDeadline };
  };
  const deviants = (n - 1) >> 1;
  // Descending: the deviants' far values first, then the agreeing values counting down.
  const outputOf = (k: number) => (k < deviants ? 9_000_000n - BigInt(k) : 1_000_000n + BigInt(n - 1 - k));
  const saltOf = (requestId: bigint, k: number) => keccak256(stringToHex(`largest:${requestId}:${k}`));
  const first = await consumerRequest();
  const commits: TransactionReceipt[] = [];
  await inParallel(operators, async (o, k) => {
    const commitment = commitmentOf(first.requestId, o.address, outputOf(k), saltOf(first.requestId, k));
    commits[k] = await send(k, at, abi, "commit", [first.requestId, commitment]);
  });
  const head = await on.publicClient.getBlockNumber({ cacheTime: 0 });
  if (head < first.commitDeadline)
    await on.publicClient.request({
      method: "hardhat_mine",
      params: [toHex(first.commitDeadline - head)],
    } as never);
  const reveals: TransactionReceipt[] = [];
  for (let k = 0; k < n; k++) {
    reveals.push(
      await send(k, at, abi, "reveal", [first.requestId, outputOf(k), saltOf(first.requestId, k)]),
    );
  }
  // An explicit limit: the embedded EVM will not estimate a call whose callee runs out of gas.
  const finalize = await sendAndWait(on, () =>
    deployer.writeContract({
      address: at,
      abi,
      functionName: "finalize",
      args: [first.requestId],
      gas: 16_000_000n,
    }),
  );

  const second = await consumerRequest();
  await inParallel(operators, async (o, k) => {
    const commitment = commitmentOf(second.requestId, o.address, 1_000_000n, saltOf(second.requestId, k));
    await send(k, at, abi, "commit", [second.requestId, commitment]);
  });
  const { weightsDigest } = await on.publicClient.readContract({
    address: at,
    abi,
    functionName: "getRequest",
    args: [second.requestId],
  });
  const ascending = [...operators].sort((x, y) => (hexToBigInt(x.address) < hexToBigInt(y.address) ? -1 : 1));
  const signers = ascending.map((o) => o.address);
  const domain = {
    name: "Ledgermind InferenceOracle",
    version: "1",
    chainId: on.chainId,
    verifyingContract: at,
  };
  const signatures = await Promise.all(
    ascending.map((o) =>
      o.signTypedData({
        domain,
        types: REPORT_TYPES,
        primaryType: "Report",
        message: { requestId: second.requestId, output: 1_000_000n, weightsDigest, signers },
      }),
    ),
  );
  const report = await sendAndWait(on, () =>
    deployer.writeContract({
      address: at,
      abi,
      functionName: "submitReport",
      args: [second.requestId, 1_000_000n, signers, signatures],
      gas: 16_000_000n,
    }),
  );
  return { oracle: at, consumer, operators, request: first.receipt, commits, reveals, finalize, report };
}
