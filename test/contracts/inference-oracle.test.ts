import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  type Address,
  BaseError,
  type ContractFunctionArgs,
  type ContractFunctionName,
  decodeErrorResult,
  encodeAbiParameters,
  encodeDeployData,
  type Hex,
  hashTypedData,
  hexToBigInt,
  isAddressEqual,
  keccak256,
  maxUint256,
  parseEther,
  parseEventLogs,
  parseSignature,
  serializeCompactSignature,
  signatureToCompactSignature,
  size,
  stringToHex,
  type TransactionReceipt,
  toHex,
} from "viem";
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
import { type AggregationMode, reportShares, settle } from "../../src/oracle/aggregate.ts";

const abi = InferenceOracle.abi;
type OracleAbi = typeof abi;
type WriteName = ContractFunctionName<OracleAbi, "nonpayable">;

const SOURCES = ["InferenceOracle.sol", "OracleConsumer.sol"].map((f) =>
  readFileSync(new URL(`../../contracts/${f}`, import.meta.url), "utf8"),
);

/** Custom errors declared in the oracle and the consumer base (not the inherited OpenZeppelin ones). */
function declaredErrors(): string[] {
  return SOURCES.flatMap((s) => [...s.matchAll(/^\s*error\s+(\w+)\s*\(/gm)].map((m) => m[1] as string));
}

const PARAMS = {
  minStake: parseEther("100"),
  commitWindow: 40,
  revealWindow: 40,
  minResponses: 3,
  tolerance: 50_000n,
  slashBps: 1_000,
  callbackGasLimit: 200_000,
  maxOperators: 16,
} as const;
type Params = {
  minStake: bigint;
  commitWindow: number;
  revealWindow: number;
  minResponses: number;
  tolerance: bigint;
  slashBps: number;
  callbackGasLimit: number;
  maxOperators: number;
};

const MEDIAN = 0;
const MAJORITY = 1;
const TREASURY = 0;
const OWNER = 1;
const STRANGER = 17;
const SPARE = 18;
const REQUESTER = 19;
/** Operators of the main version (v1) and of the gas version (v3). */
const MAIN_OPS = [2, 3, 4, 5, 6, 7, 8];
const GAS_OPS = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const INPUT = [1_000_000n, -250_000n, 42n, 7_500_000n];

let chain: LedgerChain;
let token: Address;
let registry: Address;
let oracle: Address;
let modelId: bigint;
const consumers: Record<string, Address> = {};
const observedErrors = new Set<string>();
/** Every address that may hold MIND in this file: conservation sums over these. */
const holders: Address[] = [];

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

function account(i: number): LocalAccount {
  const a = chain.accounts[i];
  if (!a) throw new Error(`no dev account #${i}`);
  return a;
}

function addr(i: number): Address {
  return account(i).address;
}

function rpc<T>(method: string, params: unknown[] = []): Promise<T> {
  return chain.publicClient.request({ method, params } as never) as Promise<T>;
}

async function blockNumber(): Promise<bigint> {
  return hexToBigInt(await rpc<Hex>("eth_blockNumber"));
}

/** Mines until the latest block is `target`: the next transaction lands in block `target + 1`. */
async function advanceTo(target: bigint | number): Promise<void> {
  const now = await blockNumber();
  const t = BigInt(target);
  if (t > now) await rpc("hardhat_mine", [toHex(t - now)]);
}

async function read<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw decodeRevert(err);
  }
}

async function refused(p: Promise<unknown>, errorName: string, args?: readonly unknown[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ContractRefusedError, `expected ContractRefusedError, got ${String(err)}`);
    assert.equal(err.errorName, errorName);
    if (args !== undefined) assert.deepEqual(err.args, args);
    observedErrors.add(err.errorName);
    return true;
  });
}

function send<N extends WriteName>(
  i: number,
  functionName: N,
  args: ContractFunctionArgs<OracleAbi, "nonpayable", N>,
  at: Address = oracle,
  gas?: bigint,
): Promise<TransactionReceipt> {
  return sendAndWait(
    chain,
    chain.wallet(i).writeContract({ address: at, abi, functionName, args, gas } as never),
  );
}

function tokenTx(i: number, functionName: "transfer" | "approve", to: Address, value: bigint) {
  return sendAndWait(
    chain,
    chain.wallet(i).writeContract({ address: token, abi: MindToken.abi, functionName, args: [to, value] }),
  );
}

function balanceOf(a: Address): Promise<bigint> {
  return chain.publicClient.readContract({
    address: token,
    abi: MindToken.abi,
    functionName: "balanceOf",
    args: [a],
  });
}

function getRequest(id: bigint, at: Address = oracle) {
  return read(chain.publicClient.readContract({ address: at, abi, functionName: "getRequest", args: [id] }));
}

function getResult(id: bigint) {
  return read(
    chain.publicClient.readContract({ address: oracle, abi, functionName: "getResult", args: [id] }),
  );
}

function operatorInfo(version: number, i: number | Address) {
  const who = typeof i === "number" ? addr(i) : i;
  return chain.publicClient.readContract({
    address: oracle,
    abi,
    functionName: "operatorInfo",
    args: [modelId, version, who],
  });
}

function operatorsOf(version: number, at: Address = oracle) {
  return chain.publicClient.readContract({
    address: at,
    abi,
    functionName: "operatorsOf",
    args: [modelId, version],
  });
}

function withdrawable(a: Address, at: Address = oracle): Promise<bigint> {
  return chain.publicClient.readContract({ address: at, abi, functionName: "withdrawable", args: [a] });
}

async function deploy(
  artifact: { abi: readonly unknown[]; bytecode: Hex },
  args: readonly unknown[],
): Promise<Address> {
  const wallet = chain.wallet(TREASURY);
  const receipt = await sendAndWait(
    chain,
    wallet.deployContract({ abi: artifact.abi, bytecode: artifact.bytecode, args } as Parameters<
      typeof wallet.deployContract
    >[0]),
  );
  if (!receipt.contractAddress) throw new Error("no contract created");
  return receipt.contractAddress;
}

function deployOracle(params: Params): Promise<Address> {
  return deploy(InferenceOracle, [token, registry, params]);
}

/** The custom error a deployment with `params` reverts with (simulated with eth_call). */
async function deployRefusal(params: Params): Promise<string> {
  const data = encodeDeployData({
    abi,
    bytecode: InferenceOracle.bytecode,
    args: [token, registry, params],
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
    return decoded.errorName;
  }
  throw new Error("the deployment did not revert");
}

function commitmentOf(requestId: bigint, operator: Address, output: bigint, salt: Hex): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: "uint256" }, { type: "address" }, { type: "int256" }, { type: "bytes32" }],
      [requestId, operator, output, salt],
    ),
  );
}

function saltFor(requestId: bigint, op: number): Hex {
  return keccak256(stringToHex(`salt:${requestId}:${op}`));
}

interface RequestOpts {
  version?: number;
  input?: bigint[];
  inputCid?: Hex;
  aggregation?: number;
  fee?: bigint;
}

const ZERO32 = `0x${"0".repeat(64)}` as Hex;
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

function requestArgs(o: RequestOpts) {
  return [
    modelId,
    o.version ?? 1,
    o.input ?? (o.inputCid ? [] : INPUT),
    o.inputCid ?? ZERO32,
    o.aggregation ?? MEDIAN,
    o.fee ?? parseEther("10"),
  ] as const;
}

function tryRequest(i: number, o: RequestOpts = {}) {
  return send(i, "request", requestArgs(o));
}

async function newRequest(i: number, o: RequestOpts = {}): Promise<bigint> {
  const receipt = await tryRequest(i, o);
  const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "InferenceRequested" });
  assert.ok(log, "InferenceRequested emitted");
  return log.args.requestId;
}

/** A request sent by a test consumer contract (the oracle will call it back). */
async function consumerRequest(consumer: Address, o: RequestOpts = {}): Promise<bigint> {
  const receipt = await sendAndWait(
    chain,
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

interface Answer {
  op: number;
  output: bigint;
  /** False: commits and stays silent. */
  reveal?: boolean;
}

async function commitAll(id: bigint, answers: Answer[]): Promise<TransactionReceipt[]> {
  const out: TransactionReceipt[] = [];
  for (const a of answers) {
    out.push(await send(a.op, "commit", [id, commitmentOf(id, addr(a.op), a.output, saltFor(id, a.op))]));
  }
  return out;
}

async function revealAll(id: bigint, answers: Answer[]): Promise<TransactionReceipt[]> {
  const out: TransactionReceipt[] = [];
  for (const a of answers) {
    if (a.reveal === false) continue;
    out.push(await send(a.op, "reveal", [id, a.output, saltFor(id, a.op)]));
  }
  return out;
}

interface Round {
  commits: TransactionReceipt[];
  reveals: TransactionReceipt[];
  finalize: TransactionReceipt;
}

/**
 * Commits every answer, reveals the revealing ones, and finalizes as early as the contract allows. `gas` sets
 * finalize's gas limit (the embedded EVM will not estimate a call whose callee runs out of gas).
 */
async function runRound(id: bigint, answers: Answer[], gas?: bigint): Promise<Round> {
  const commits = await commitAll(id, answers);
  const r = await getRequest(id);
  await advanceTo(r.commitDeadline);
  const reveals = await revealAll(id, answers);
  if (answers.some((a) => a.reveal === false)) await advanceTo(r.revealDeadline);
  const finalize = await send(REQUESTER, "finalize", [id], oracle, gas);
  return { commits, reveals, finalize };
}

const REPORT_TYPES = {
  Report: [
    { name: "requestId", type: "uint256" },
    { name: "output", type: "int256" },
    { name: "weightsDigest", type: "bytes32" },
  ],
} as const;

function signReport(i: number, requestId: bigint, output: bigint, weightsDigest: Hex, at = oracle) {
  return account(i).signTypedData({
    domain: {
      name: "Ledgermind InferenceOracle",
      version: "1",
      chainId: chain.chainId,
      verifyingContract: at,
    },
    types: REPORT_TYPES,
    primaryType: "Report",
    message: { requestId, output, weightsDigest },
  });
}

/** The EIP-2098 64-byte form (r, yParity << 255 | s) of a 65-byte signature. */
function compact(signature: Hex): Hex {
  return serializeCompactSignature(signatureToCompactSignature(parseSignature(signature)));
}

function byAddress(ops: number[]): number[] {
  return [...ops].sort((a, b) => (hexToBigInt(addr(a)) < hexToBigInt(addr(b)) ? -1 : 1));
}

/** Signatures of `ops` over the report, sorted by ascending signer address. */
async function reportSignatures(ops: number[], requestId: bigint, output: bigint): Promise<Hex[]> {
  const { weightsDigest } = await getRequest(requestId);
  return Promise.all(byAddress(ops).map((i) => signReport(i, requestId, output, weightsDigest)));
}

function eventsOf<N extends "OperatorSlashed" | "CallbackFailed" | "InferenceFinalized" | "InferenceFailed">(
  receipt: TransactionReceipt,
  eventName: N,
) {
  return parseEventLogs({ abi, logs: receipt.logs, eventName });
}

/**
 * The oracle owes exactly what it holds: withdrawable balances, operators' stakes and uncollected fees, and
 * the fees of open requests. And the MIND of every holder in this file adds up to the whole supply.
 */
async function assertConservation(): Promise<void> {
  let owed = 0n;
  for (const h of holders) owed += await withdrawable(h);
  for (let v = 1; v <= 5; v++) {
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

// ---------------------------------------------------------------------------------------------------------
// Setup: one model with five versions, the oracle, funded and approved accounts, operators, consumers
// ---------------------------------------------------------------------------------------------------------

before(async () => {
  chain = await connect({ ephemeral: true });
  const manifest = await deployAll(chain);
  token = manifest.contracts.MindToken.address;
  registry = manifest.contracts.ModelRegistry.address;

  const owner = chain.wallet(OWNER);
  const reg = (functionName: "registerModel", args: readonly [string]) =>
    sendAndWait(
      chain,
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
    await sendAndWait(
      chain,
      owner.writeContract({
        address: registry,
        abi: ModelRegistry.abi,
        functionName: "addVersion",
        args: [
          modelId,
          {
            weightsDigest: keccak256(stringToHex(`weights:v${v}`)),
            format: stringToHex("LMQ1", { size: 8 }),
            parentModel: 0,
            parentVersion: 0,
            datasets: [],
            metrics: [],
            trainingRun: ZERO32,
            licence: ZERO32,
            modelCard: ZERO32,
          },
        ],
      }),
    );
  }

  oracle = await deployOracle({ ...PARAMS });
  for (let i = 0; i < 20; i++) holders.push(addr(i));
  for (let i = 1; i < 20; i++) {
    await tokenTx(TREASURY, "transfer", addr(i), parseEther("100000"));
    await tokenTx(i, "approve", oracle, maxUint256);
  }
  for (const v of [1, 2, 3, 4]) await send(OWNER, "setModelSpec", [modelId, v, INPUT.length]);
  await sendAndWait(
    chain,
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
});

after(async () => {
  await chain?.close();
});

// ---------------------------------------------------------------------------------------------------------

describe("InferenceOracle setup and views", () => {
  it("keeps its parameters, model specs and operator sets", async () => {
    const p = await chain.publicClient.readContract({ address: oracle, abi, functionName: "params" });
    assert.deepEqual(p, { ...PARAMS });
    const size1 = await chain.publicClient.readContract({
      address: oracle,
      abi,
      functionName: "inputSizeOf",
      args: [modelId, 1],
    });
    assert.equal(size1, INPUT.length);
    const ops = await operatorsOf(1);
    assert.deepEqual(
      ops.map((a) => a.toLowerCase()),
      MAIN_OPS.map((i) => addr(i).toLowerCase()),
    );
    const info = await operatorInfo(1, MAIN_OPS[0] as number);
    assert.equal(info.stake, parseEther("1000") + 2n);
    assert.equal(info.slot, 1);
    assert.equal(info.pending, 0);
    assert.equal(await balanceOf(oracle), 7n * parseEther("1000") + 35n + 15n * parseEther("500"));
  });
});

describe("InferenceOracle refusals", () => {
  it("InvalidParams: the constructor refuses windows of zero, a quorum above the operator cap, slashBps > 100%", async () => {
    assert.equal(await deployRefusal({ ...PARAMS, commitWindow: 0 }), "InvalidParams");
    assert.equal(await deployRefusal({ ...PARAMS, minResponses: 0 }), "InvalidParams");
    assert.equal(await deployRefusal({ ...PARAMS, maxOperators: 2 }), "InvalidParams");
    assert.equal(await deployRefusal({ ...PARAMS, maxOperators: 256 }), "InvalidParams");
    assert.equal(await deployRefusal({ ...PARAMS, slashBps: 10_001 }), "InvalidParams");
  });

  it("model spec: NotModelOwner, EmptyInputSize, ModelSpecAlreadySet, Unknown/DeprecatedModelVersion", async () => {
    await refused(send(STRANGER, "setModelSpec", [modelId, 5, 3]), "NotModelOwner", [
      modelId,
      addr(STRANGER),
    ]);
    await refused(send(OWNER, "setModelSpec", [modelId, 5, 0]), "EmptyInputSize", []);
    await refused(send(OWNER, "setModelSpec", [modelId, 1, 9]), "ModelSpecAlreadySet", [modelId, 1]);
    await refused(send(OWNER, "setModelSpec", [modelId, 9, 3]), "UnknownModelVersion", [modelId, 9]);
    await refused(send(OWNER, "setModelSpec", [999n, 1, 3]), "UnknownModelVersion", [999n, 1]);
    await refused(send(OWNER, "setModelSpec", [modelId, 2, 3]), "DeprecatedModelVersion", [modelId, 2]);
  });

  it("registration: StakeTooLow, AmountTooLarge, AlreadyRegistered, unknown and deprecated versions", async () => {
    await refused(send(SPARE, "registerOperator", [modelId, 1, PARAMS.minStake - 1n]), "StakeTooLow", [
      PARAMS.minStake - 1n,
      PARAMS.minStake,
    ]);
    await refused(send(SPARE, "registerOperator", [modelId, 1, 2n ** 96n]), "AmountTooLarge", [2n ** 96n]);
    await refused(send(2, "registerOperator", [modelId, 1, PARAMS.minStake]), "AlreadyRegistered", [addr(2)]);
    await refused(send(SPARE, "registerOperator", [modelId, 0, PARAMS.minStake]), "UnknownModelVersion");
    await refused(send(SPARE, "registerOperator", [modelId, 2, PARAMS.minStake]), "DeprecatedModelVersion");
  });

  it("TooManyOperators: a version holds at most maxOperators", async () => {
    const small = await deployOracle({ ...PARAMS, minResponses: 1, maxOperators: 2 });
    holders.push(small);
    for (const i of [SPARE, STRANGER]) await tokenTx(i, "approve", small, maxUint256);
    await send(SPARE, "registerOperator", [modelId, 1, PARAMS.minStake], small);
    await send(STRANGER, "registerOperator", [modelId, 1, PARAMS.minStake], small);
    await refused(
      send(REQUESTER, "registerOperator", [modelId, 1, PARAMS.minStake], small),
      "TooManyOperators",
      [2n],
    );
    // Leave the small oracle empty again so that its MIND returns to the accounts.
    for (const i of [SPARE, STRANGER]) {
      await send(i, "exitOperator", [modelId, 1], small);
      await send(i, "withdraw", [], small);
    }
    assert.equal(await balanceOf(small), 0n);
  });

  it("request: InvalidInput, WrongInputShape, ModelSpecNotSet, NotEnoughOperators, AmountTooLarge, versions", async () => {
    await refused(tryRequest(REQUESTER, { input: [], inputCid: ZERO32 }), "InvalidInput", []);
    await refused(tryRequest(REQUESTER, { input: [1n], inputCid: keccak256("0x01") }), "InvalidInput", []);
    await refused(tryRequest(REQUESTER, { input: [1n, 2n, 3n] }), "WrongInputShape", [4n, 3n]);
    await refused(tryRequest(REQUESTER, { input: [1n, 2n, 3n, 4n, 5n] }), "WrongInputShape", [4n, 5n]);
    await refused(tryRequest(REQUESTER, { version: 5 }), "ModelSpecNotSet", [modelId, 5]);
    await refused(tryRequest(REQUESTER, { version: 4 }), "NotEnoughOperators", [0n, 3n]);
    await refused(tryRequest(REQUESTER, { version: 7 }), "UnknownModelVersion", [modelId, 7]);
    await refused(tryRequest(REQUESTER, { version: 2 }), "DeprecatedModelVersion", [modelId, 2]);
    await refused(tryRequest(REQUESTER, { fee: 2n ** 96n }), "AmountTooLarge", [2n ** 96n]);
  });

  it("stores a compact record, the input as its hash (inline) or its CID", async () => {
    const fee = parseEther("3");
    const before = await balanceOf(addr(REQUESTER));
    const receipt = await tryRequest(REQUESTER, { fee });
    const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "InferenceRequested" });
    assert.ok(log);
    assert.deepEqual(log.args.input, INPUT);
    assert.equal(log.args.fee, fee);
    const r = await getRequest(log.args.requestId);
    assert.ok(isAddressEqual(r.requester, addr(REQUESTER)));
    assert.equal(r.fee, fee);
    assert.equal(r.status, 1);
    assert.equal(r.inlineInput, true);
    assert.equal(
      r.inputHash,
      keccak256(
        encodeAbiParameters(
          INPUT.map(() => ({ type: "int256" })),
          INPUT,
        ),
      ),
      "keccak256(abi.encodePacked(int256[]))",
    );
    assert.equal(r.weightsDigest, keccak256(stringToHex("weights:v1")));
    assert.equal(BigInt(r.commitDeadline), receipt.blockNumber + BigInt(PARAMS.commitWindow));
    assert.equal(r.revealDeadline, r.commitDeadline + PARAMS.revealWindow);
    assert.equal(await balanceOf(addr(REQUESTER)), before - fee);

    const cid = keccak256(stringToHex("input document"));
    const byCid = await newRequest(REQUESTER, { inputCid: cid });
    const rc = await getRequest(byCid);
    assert.equal(rc.inlineInput, false);
    assert.equal(rc.inputHash, cid);
  });

  it("commit and reveal: every refusal, by name", async () => {
    const id = await newRequest(REQUESTER);
    const [a, b, c] = MAIN_OPS as [number, number, number];
    const salt = saltFor(id, a);
    await refused(send(a, "commit", [999n, keccak256("0x01")]), "UnknownRequest", [999n]);
    await refused(send(STRANGER, "commit", [id, keccak256("0x01")]), "NotOperator", [addr(STRANGER)]);
    await refused(send(a, "commit", [id, ZERO32]), "InvalidCommitment", []);
    await refused(send(a, "commit", [id, toHex(1n, { size: 32 })]), "InvalidCommitment", []);
    await send(a, "commit", [id, commitmentOf(id, addr(a), 5n, salt)]);
    await refused(send(a, "commit", [id, keccak256("0x02")]), "AlreadyCommitted", [id, addr(a)]);
    await send(b, "commit", [id, commitmentOf(id, addr(b), 5n, saltFor(id, b))]);
    const r = await getRequest(id);
    await refused(send(a, "reveal", [id, 5n, salt]), "RevealNotOpen", [id, BigInt(r.commitDeadline)]);
    await refused(send(REQUESTER, "finalize", [id]), "TooEarly", [id, BigInt(r.revealDeadline)]);
    await refused(send(a, "exitOperator", [modelId, 1]), "OperatorBusy", [addr(a), 1n]);

    await advanceTo(r.commitDeadline);
    // A late commit is refused: the commit window is over.
    await refused(send(c, "commit", [id, commitmentOf(id, addr(c), 5n, saltFor(id, c))]), "CommitClosed", [
      id,
      BigInt(r.commitDeadline),
    ]);
    await refused(send(c, "reveal", [id, 5n, saltFor(id, c)]), "NoCommit", [id, addr(c)]);
    await refused(send(a, "reveal", [id, 6n, salt]), "RevealMismatch", [id, addr(a)]);
    await refused(send(a, "reveal", [id, 5n, saltFor(id, b)]), "RevealMismatch", [id, addr(a)]);
    await send(a, "reveal", [id, 5n, salt]);
    await refused(send(a, "reveal", [id, 5n, salt]), "AlreadyRevealed", [id, addr(a)]);
    await refused(send(REQUESTER, "finalize", [id]), "TooEarly");
    await refused(getResult(id), "ResultNotReady", [id]);

    await advanceTo(r.revealDeadline);
    // A late reveal is refused: the reveal window is over.
    await refused(send(b, "reveal", [id, 5n, saltFor(id, b)]), "RevealClosed", [
      id,
      BigInt(r.revealDeadline),
    ]);
    const fin = await send(REQUESTER, "finalize", [id]);
    assert.equal(eventsOf(fin, "InferenceFailed").length, 1);
    await refused(send(REQUESTER, "finalize", [id]), "RequestClosed", [id]);
    await refused(send(c, "commit", [id, keccak256("0x03")]), "RequestClosed", [id]);
    await refused(send(a, "reveal", [id, 5n, salt]), "RequestClosed", [id]);
    await refused(getResult(id), "ResultNotReady", [id]);
    await refused(getRequest(12345n), "UnknownRequest", [12345n]);
    await refused(getResult(12345n), "UnknownRequest", [12345n]);
    await refused(send(REQUESTER, "finalize", [12345n]), "UnknownRequest", [12345n]);
  });

  it("operators: NotOperator on exit and collect, NothingToWithdraw on empty balances", async () => {
    await refused(send(STRANGER, "exitOperator", [modelId, 1]), "NotOperator", [addr(STRANGER)]);
    await refused(send(STRANGER, "collectFees", [modelId, 1]), "NotOperator", [addr(STRANGER)]);
    await refused(send(STRANGER, "withdraw", []), "NothingToWithdraw", [addr(STRANGER)]);
    const op = MAIN_OPS[6] as number;
    if ((await operatorInfo(1, op)).fees === 0n) {
      await refused(send(op, "collectFees", [modelId, 1]), "NothingToWithdraw", [addr(op)]);
    }
  });

  it("OnlyOracle: a consumer accepts results only from its oracle", async () => {
    await refused(
      sendAndWait(
        chain,
        chain.wallet(STRANGER).writeContract({
          address: consumers.recording as Address,
          abi: RecordingConsumer.abi,
          functionName: "onInference",
          args: [1n, 1n, ZERO32],
        }),
      ),
      "OnlyOracle",
      [addr(STRANGER)],
    );
  });
});

async function checkAgainstMirror(
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

async function snapshot(ops: number[], version = 1) {
  const m = new Map<number, { stake: bigint; fees: bigint }>();
  for (const i of ops) {
    const info = await operatorInfo(version, i);
    m.set(i, { stake: info.stake, fees: info.fees });
  }
  return m;
}

describe("InferenceOracle commit-reveal settlement", () => {
  it("median: stores the lower median, slashes a deviating operator and a no-show, splits fee + slash", async () => {
    const fee = parseEther("10") + 7n;
    const id = await newRequest(REQUESTER, { fee });
    const [a, b, c, d, e] = MAIN_OPS as [number, number, number, number, number];
    const answers: Answer[] = [
      { op: a, output: 1_010_000n },
      { op: b, output: 990_000n },
      { op: c, output: 1_500_000n },
      { op: d, output: 1_000_000n },
      { op: e, output: 999_999n, reveal: false },
    ];
    const before = await snapshot([a, b, c, d, e]);
    const round = await runRound(id, answers);
    const expected = await checkAgainstMirror(id, answers, "median", before, round);
    // Sorted: 990_000, 1_000_000, 1_010_000, 1_500_000: the lower median is 1_000_000.
    assert.equal(expected.result, 1_000_000n);
    assert.deepEqual(expected.agreeing, [addr(a), addr(b), addr(d)]);
    const slashed = eventsOf(round.finalize, "OperatorSlashed");
    assert.deepEqual(
      slashed.map((l) => [l.args.operator, l.args.revealed]),
      [
        [addr(c), true],
        [addr(e), false],
      ],
    );
    const cut = (before.get(c)?.stake ?? 0n) / 10n + (before.get(e)?.stake ?? 0n) / 10n;
    const pot = fee + cut;
    assert.equal(
      expected.shares.reduce((s, x) => s + x.amount, 0n),
      pot,
    );
    assert.equal(
      expected.shares[0]?.amount,
      pot / 3n + (pot % 3n),
      "the remainder goes to the first revealer",
    );

    const [fin] = eventsOf(round.finalize, "InferenceFinalized");
    assert.ok(fin);
    assert.equal(fin.args.requestId, id);
    assert.equal(fin.args.modelId, modelId);
    assert.equal(fin.args.version, 1);
    assert.equal(fin.args.output, 1_000_000n);
    assert.equal(fin.args.weightsDigest, keccak256(stringToHex("weights:v1")));
    assert.equal(fin.args.responders, 3n);
    const result = await getResult(id);
    assert.equal(result.output, 1_000_000n);
    assert.equal(result.weightsDigest, keccak256(stringToHex("weights:v1")));
    assert.ok(result.finalizedAt > 0);
    assert.equal((await getRequest(id)).status, 2);
    for (const i of [a, b, c, d, e]) assert.equal((await operatorInfo(1, i)).pending, 0);
    await assertConservation();
  });

  it("majority: the most frequent label wins, ties to the smallest; every other label is slashed", async () => {
    const fee = parseEther("5") + 1n;
    const id = await newRequest(REQUESTER, { fee, aggregation: MAJORITY });
    const [a, b, c, d, e, f] = MAIN_OPS as [number, number, number, number, number, number];
    const answers: Answer[] = [
      { op: a, output: 2n },
      { op: b, output: 1n },
      { op: c, output: 2n },
      { op: d, output: 1n },
      { op: e, output: 3n },
      { op: f, output: 1n, reveal: false },
    ];
    const before = await snapshot([a, b, c, d, e, f]);
    const round = await runRound(id, answers);
    const expected = await checkAgainstMirror(id, answers, "majority", before, round);
    assert.equal(expected.result, 1n, "2 and 1 tie with two reveals each; the smaller wins");
    assert.equal((await getResult(id)).output, 1n);
    assert.deepEqual(expected.agreeing, [addr(b), addr(d)]);
    assert.deepEqual(
      eventsOf(round.finalize, "OperatorSlashed").map((l) => l.args.operator),
      [addr(a), addr(c), addr(e), addr(f)],
    );
  });

  it("finalizes early once every committed operator revealed after the commit window", async () => {
    const id = await newRequest(REQUESTER, { aggregation: MAJORITY });
    const answers = MAIN_OPS.slice(0, 3).map((op) => ({ op, output: 7n }));
    await commitAll(id, answers);
    const r = await getRequest(id);
    await advanceTo(r.commitDeadline);
    await revealAll(id, answers);
    assert.ok((await blockNumber()) < BigInt(r.revealDeadline));
    await send(STRANGER, "finalize", [id]);
    assert.equal((await getResult(id)).output, 7n);
  });

  it("refunds the fee (plus a no-show's slashed stake) when too few operators reveal", async () => {
    const fee = parseEther("4");
    const id = await newRequest(REQUESTER, { fee });
    const [a, b, c] = MAIN_OPS as [number, number, number];
    const answers: Answer[] = [
      { op: a, output: 10n },
      { op: b, output: 10n },
      { op: c, output: 10n, reveal: false },
    ];
    const before = await snapshot([a, b, c]);
    const owed = await withdrawable(addr(REQUESTER));
    const round = await runRound(id, answers);
    const expected = await checkAgainstMirror(id, answers, "median", before, round);
    assert.equal(expected.status, "failed");
    const [failed] = eventsOf(round.finalize, "InferenceFailed");
    assert.ok(failed);
    assert.equal(failed.args.reveals, 2n);
    assert.equal(failed.args.refund, fee + (before.get(c)?.stake ?? 0n) / 10n);
    assert.equal(await withdrawable(addr(REQUESTER)), owed + expected.requesterCredit);
    assert.equal((await getRequest(id)).status, 3);
    await refused(getResult(id), "ResultNotReady", [id]);

    // Nobody answers at all: the whole fee comes back.
    const silent = await newRequest(REQUESTER, { fee });
    await advanceTo((await getRequest(silent)).commitDeadline);
    const fin = await send(REQUESTER, "finalize", [silent]);
    assert.equal(eventsOf(fin, "InferenceFailed")[0]?.args.refund, fee);
    const balance = await balanceOf(addr(REQUESTER));
    const amount = await withdrawable(addr(REQUESTER));
    await send(REQUESTER, "withdraw", []);
    assert.equal(await balanceOf(addr(REQUESTER)), balance + amount);
    assert.equal(await withdrawable(addr(REQUESTER)), 0n);
    await refused(send(REQUESTER, "withdraw", []), "NothingToWithdraw", [addr(REQUESTER)]);
    await assertConservation();
  });
});

describe("InferenceOracle callbacks", () => {
  const agree = (output: bigint) => MAIN_OPS.slice(0, 3).map((op) => ({ op, output }));

  it("calls a consumer back with the result and the weights digest", async () => {
    const consumer = consumers.recording as Address;
    const id = await consumerRequest(consumer, { fee: parseEther("1") });
    const round = await runRound(id, agree(123_456n));
    assert.equal(eventsOf(round.finalize, "CallbackFailed").length, 0);
    const get = (functionName: "fulfilled" | "lastRequestId" | "lastOutput") =>
      chain.publicClient.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName });
    assert.equal(await get("fulfilled"), 1n);
    assert.equal(await get("lastRequestId"), id);
    assert.equal(await get("lastOutput"), 123_456n);
    const digest = await chain.publicClient.readContract({
      address: consumer,
      abi: RecordingConsumer.abi,
      functionName: "lastWeightsDigest",
    });
    assert.equal(digest, keccak256(stringToHex("weights:v1")));
  });

  it("a reverting callback is logged with its reason; the result stays stored", async () => {
    const consumer = consumers.reverting as Address;
    const id = await consumerRequest(consumer);
    const round = await runRound(id, agree(5n));
    const [failed] = eventsOf(round.finalize, "CallbackFailed");
    assert.ok(failed);
    assert.ok(isAddressEqual(failed.args.consumer, consumer));
    const reason = decodeErrorResult({ abi: RevertingConsumer.abi, data: failed.args.reason });
    assert.equal(reason.errorName, "Refused");
    assert.deepEqual(reason.args, [id]);
    assert.equal((await getResult(id)).output, 5n);
    assert.equal((await getRequest(id)).status, 2);
  });

  it("a gas-burning callback runs out of its own gas limit only", async () => {
    const consumer = consumers.burning as Address;
    const id = await consumerRequest(consumer);
    const round = await runRound(id, agree(6n), 1_000_000n);
    const [failed] = eventsOf(round.finalize, "CallbackFailed");
    assert.ok(failed);
    assert.equal(failed.args.reason, "0x");
    assert.ok(round.finalize.gasUsed > BigInt(PARAMS.callbackGasLimit));
    assert.equal((await getResult(id)).output, 6n);
  });

  it("a return bomb is cut to MAX_REASON_BYTES", async () => {
    const consumer = consumers.bomb as Address;
    const id = await consumerRequest(consumer);
    const round = await runRound(id, agree(8n));
    const [failed] = eventsOf(round.finalize, "CallbackFailed");
    assert.ok(failed);
    assert.equal(size(failed.args.reason), 256);
    assert.equal((await getResult(id)).output, 8n);
  });

  it("a callback that re-enters finalize is refused by the guard; finalization is done once", async () => {
    const consumer = consumers.reentrant as Address;
    const id = await consumerRequest(consumer);
    const round = await runRound(id, agree(9n));
    const [failed] = eventsOf(round.finalize, "CallbackFailed");
    assert.ok(failed);
    assert.equal(
      decodeErrorResult({ abi, data: failed.args.reason }).errorName,
      "ReentrancyGuardReentrantCall",
    );
    assert.equal(eventsOf(round.finalize, "InferenceFinalized").length, 1);
    assert.equal((await getResult(id)).output, 9n);
    await refused(send(REQUESTER, "finalize", [id]), "RequestClosed", [id]);
  });

  it("InsufficientGas: a finalizer cannot starve the callback of its gas limit", async () => {
    const consumer = consumers.recording as Address;
    const id = await consumerRequest(consumer);
    const answers = agree(11n);
    await commitAll(id, answers);
    await advanceTo((await getRequest(id)).commitDeadline);
    await revealAll(id, answers);
    const estimate = await chain.publicClient.estimateContractGas({
      account: addr(REQUESTER),
      address: oracle,
      abi,
      functionName: "finalize",
      args: [id],
    });
    await refused(
      read(
        chain.publicClient.simulateContract({
          account: addr(REQUESTER),
          address: oracle,
          abi,
          functionName: "finalize",
          args: [id],
          gas: estimate - 20_000n,
        }),
      ),
      "InsufficientGas",
    );
    await send(REQUESTER, "finalize", [id]);
    assert.equal((await getResult(id)).output, 11n);
    await assertConservation();
  });
});

describe("InferenceOracle aggregated reports", () => {
  it("accepts a quorum of sorted operator signatures and splits the fee among the signers", async () => {
    const fee = parseEther("7") + 5n;
    const id = await newRequest(REQUESTER, { fee });
    // One operator committed before the report: the report releases it.
    const committer = MAIN_OPS[6] as number;
    await send(committer, "commit", [id, keccak256("0xaa")]);
    assert.equal((await operatorInfo(1, committer)).pending, 1);
    const signers = byAddress(MAIN_OPS.slice(0, 5));
    const before = await snapshot(signers);
    const signatures = await reportSignatures(signers, id, -42n);
    const { weightsDigest } = await getRequest(id);
    const onChainDigest = await chain.publicClient.readContract({
      address: oracle,
      abi,
      functionName: "reportDigest",
      args: [id, -42n],
    });
    assert.equal(
      onChainDigest,
      hashTypedData({
        domain: {
          name: "Ledgermind InferenceOracle",
          version: "1",
          chainId: chain.chainId,
          verifyingContract: oracle,
        },
        types: REPORT_TYPES,
        primaryType: "Report",
        message: { requestId: id, output: -42n, weightsDigest },
      }),
    );
    const receipt = await send(STRANGER, "submitReport", [id, -42n, signatures]);
    const [finalized] = eventsOf(receipt, "InferenceFinalized");
    assert.equal(finalized?.args.responders, 5n);
    assert.equal(finalized?.args.output, -42n);
    const shares = reportShares(
      fee,
      signers.map((i) => addr(i)),
    );
    for (const [k, i] of signers.entries()) {
      const info = await operatorInfo(1, i);
      assert.equal(info.fees, (before.get(i)?.fees ?? 0n) + (shares[k]?.amount ?? 0n));
    }
    assert.equal(shares[0]?.amount, fee / 5n + (fee % 5n));
    assert.equal((await getResult(id)).output, -42n);
    assert.equal((await operatorInfo(1, committer)).pending, 0);
    await refused(send(STRANGER, "submitReport", [id, -42n, signatures]), "RequestClosed", [id]);
    await refused(send(committer, "reveal", [id, 1n, ZERO32]), "RequestClosed", [id]);
    await assertConservation();
  });

  it("accepts EIP-2098 compact (64-byte) signatures too", async () => {
    const id = await newRequest(REQUESTER);
    const sigs = (await reportSignatures(MAIN_OPS.slice(0, 3), id, 3n)).map(compact);
    assert.ok(sigs.every((s) => size(s) === 64));
    await send(STRANGER, "submitReport", [id, 3n, sigs]);
    assert.equal((await getResult(id)).output, 3n);
  });

  it("refuses QuorumNotMet, InvalidSignature, UnsortedSigners, NotOperator, and late reports", async () => {
    const id = await newRequest(REQUESTER);
    const ops = byAddress(MAIN_OPS.slice(0, 4));
    const sigs = await reportSignatures(ops, id, 77n);
    await refused(send(STRANGER, "submitReport", [id, 77n, sigs.slice(0, 2)]), "QuorumNotMet", [2n, 3n]);
    await refused(send(STRANGER, "submitReport", [id, 77n, []]), "QuorumNotMet", [0n, 3n]);
    const swap = (k: number, bad: Hex) => sigs.map((s, i) => (i === k ? bad : s));
    const first = sigs[0] as Hex;
    // 63 bytes: neither a 65-byte nor a 64-byte compact signature.
    await refused(
      send(STRANGER, "submitReport", [id, 77n, swap(1, first.slice(0, 128) as Hex)]),
      "InvalidSignature",
      [1n],
    );
    // The malleable twin (n - s, other v) of a valid signature.
    const { r, s: sv, yParity } = parseSignature(first);
    const twin =
      `${r}${toHex(SECP256K1_N - hexToBigInt(sv), { size: 32 }).slice(2)}${yParity ? "1b" : "1c"}` as Hex;
    await refused(send(STRANGER, "submitReport", [id, 77n, swap(0, twin)]), "InvalidSignature", [0n]);
    // v must be 27 or 28.
    await refused(
      send(STRANGER, "submitReport", [id, 77n, swap(2, `${first.slice(0, 130)}1d` as Hex)]),
      "InvalidSignature",
      [2n],
    );
    await refused(send(STRANGER, "submitReport", [id, 77n, [...sigs].reverse()]), "UnsortedSigners", [1n]);
    const dup = [sigs[0], sigs[0], sigs[1]] as Hex[];
    await refused(send(STRANGER, "submitReport", [id, 77n, dup]), "UnsortedSigners", [1n]);
    // A signature of another output recovers to some unrelated address.
    await refused(send(STRANGER, "submitReport", [id, 78n, sigs]), "NotOperator");
    // A stranger's signature.
    const { weightsDigest } = await getRequest(id);
    const withStranger = byAddress([...ops.slice(0, 3), STRANGER]);
    const strangerSigs = await Promise.all(withStranger.map((i) => signReport(i, id, 77n, weightsDigest)));
    await refused(send(STRANGER, "submitReport", [id, 77n, strangerSigs]), "NotOperator", [addr(STRANGER)]);
    // Signed for another oracle (another EIP-712 domain).
    const otherDomain = await Promise.all(
      ops.map((i) => signReport(i, id, 77n, weightsDigest, addr(STRANGER) as Address)),
    );
    await refused(send(STRANGER, "submitReport", [id, 77n, otherDomain]), "NotOperator");
    await refused(send(STRANGER, "submitReport", [999n, 77n, sigs]), "UnknownRequest", [999n]);
    await advanceTo((await getRequest(id)).revealDeadline);
    await refused(send(STRANGER, "submitReport", [id, 77n, sigs]), "RequestClosed", [id]);
  });
});

describe("InferenceOracle exits and withdrawals", () => {
  it("an exiting operator gets its stake and fees back; the list stays compact", async () => {
    const op = MAIN_OPS[0] as number;
    const info = await operatorInfo(1, op);
    assert.ok(info.fees > 0n);
    // Collect first, then exit with the stake.
    await send(op, "collectFees", [modelId, 1]);
    assert.equal(await withdrawable(addr(op)), info.fees);
    await refused(send(op, "collectFees", [modelId, 1]), "NothingToWithdraw", [addr(op)]);
    const receipt = await send(op, "exitOperator", [modelId, 1]);
    const [exited] = parseEventLogs({ abi, logs: receipt.logs, eventName: "OperatorExited" });
    assert.equal(exited?.args.stake, info.stake);
    assert.equal(await withdrawable(addr(op)), info.fees + info.stake);
    const list = await operatorsOf(1);
    assert.equal(list.length, MAIN_OPS.length - 1);
    assert.ok(isAddressEqual(list[0] as Address, addr(MAIN_OPS[6] as number)), "the last moved into the gap");
    assert.equal((await operatorInfo(1, MAIN_OPS[6] as number)).slot, 1);
    assert.equal((await operatorInfo(1, op)).slot, 0);
    const balance = await balanceOf(addr(op));
    await send(op, "withdraw", []);
    assert.equal(await balanceOf(addr(op)), balance + info.fees + info.stake);
    // It may register again.
    await send(op, "registerOperator", [modelId, 1, parseEther("1000")]);
    assert.equal((await operatorInfo(1, op)).slot, MAIN_OPS.length);
    await assertConservation();
  });
});

describe("InferenceOracle gas", () => {
  const results: Record<string, Record<number, bigint>> = {};
  const record = (what: string, n: number, gas: bigint) => {
    results[what] ??= {};
    (results[what] as Record<number, bigint>)[n] = gas;
  };
  const mean = (rs: TransactionReceipt[]) => rs.reduce((s, r) => s + r.gasUsed, 0n) / BigInt(rs.length);

  it("commit, reveal, finalize and submitReport for 3, 7 and 15 operators", async () => {
    for (const n of [3, 7, 15]) {
      const ops = GAS_OPS.slice(0, n);
      // Median, every answer within tolerance but one off by one unit, so the sort has work.
      const id = await newRequest(REQUESTER, { version: 3, fee: parseEther("1") });
      const answers = ops.map((op, k) => ({ op, output: 1_000_000n + BigInt((k * 7919) % 1000) }));
      const round = await runRound(id, answers);
      record("commit (mean)", n, mean(round.commits));
      record("reveal (mean)", n, mean(round.reveals));
      record("finalize (EOA requester)", n, round.finalize.gasUsed);

      const rid = await newRequest(REQUESTER, { version: 3, fee: parseEther("1") });
      const sigs = await reportSignatures(ops, rid, 1_234_567n);
      const report = await send(STRANGER, "submitReport", [rid, 1_234_567n, sigs]);
      record("submitReport (EOA requester)", n, report.gasUsed);

      const kid = await newRequest(REQUESTER, { version: 3, fee: parseEther("1") });
      const ksigs = (await reportSignatures(ops, kid, 1_234_567n)).map(compact);
      const kreport = await send(STRANGER, "submitReport", [kid, 1_234_567n, ksigs]);
      record("submitReport, 64-byte sigs (EOA requester)", n, kreport.gasUsed);

      const cid = await consumerRequest(consumers.recording as Address, { version: 3, fee: parseEther("1") });
      const csigs = await reportSignatures(ops, cid, 1_234_567n);
      const creport = await send(STRANGER, "submitReport", [cid, 1_234_567n, csigs]);
      record("submitReport + recording callback", n, creport.gasUsed);
    }
    record("request (inline input of 4)", 1, (await tryRequest(REQUESTER, { version: 3 })).gasUsed);
    const rows = Object.entries(results).map(([what, byN]) => ({
      what,
      ...Object.fromEntries(Object.entries(byN).map(([n, g]) => [`n=${n}`, Number(g)])),
    }));
    console.log("InferenceOracle gas (receipt gasUsed, including the 21k base and calldata):");
    console.table(rows);
    const seven = results["submitReport (EOA requester)"]?.[7];
    assert.ok(seven !== undefined);
    assert.ok(seven <= 120_000n, `submitReport with 7 signers used ${seven} gas`);
    await assertConservation();
  });
});

describe("InferenceOracle custom errors", () => {
  it("every custom error declared in InferenceOracle.sol and OracleConsumer.sol was observed", () => {
    const declared = declaredErrors();
    assert.ok(declared.length >= 30, `found ${declared.length} declared errors`);
    const missing = declared.filter((e) => !observedErrors.has(e));
    assert.deepEqual(missing, [], `never observed: ${missing.join(", ")}`);
  });
});
