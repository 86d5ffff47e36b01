import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  type Address,
  decodeErrorResult,
  encodeAbiParameters,
  getAddress,
  type Hex,
  hashTypedData,
  hexToBigInt,
  isAddressEqual,
  keccak256,
  maxUint256,
  parseEther,
  parseEventLogs,
  parseSignature,
  size,
  stringToHex,
  type TransactionReceipt,
  toHex,
} from "viem";
import { RecordingConsumer, RevertingConsumer } from "../../src/chain/generated/contracts.ts";
import { sendAndWait } from "../../src/chain/tx.ts";
import { reportShares } from "../../src/oracle/aggregate.ts";
import {
  type Answer,
  abi,
  addr,
  advanceTo,
  assertConservation,
  balanceOf,
  blockNumber,
  byAddress,
  chain,
  checkAgainstMirror,
  commitAll,
  commitmentOf,
  compact,
  consumerRequest,
  consumers,
  deploy,
  deployOracle,
  deployRefusal,
  eventsOf,
  GAS_OPS,
  getRequest,
  getResult,
  holders,
  INPUT,
  isPending,
  MAIN_OPS,
  MAJORITY,
  modelId,
  newRequest,
  OWNER,
  observedErrors,
  operatorInfo,
  operatorsOf,
  oracle,
  PARAMS,
  REPORT_TYPES,
  REQUESTER,
  read,
  refused,
  registry,
  reportArgs,
  revealAll,
  runRound,
  SECP256K1_N,
  SPARE,
  STRANGER,
  saltFor,
  send,
  setupOracleFixture,
  signReport,
  snapshot,
  stakeBase,
  TREASURY,
  teardownOracleFixture,
  token,
  tokenTx,
  tryRequest,
  useOracle,
  withdrawable,
  ZERO32,
} from "./inference-oracle-fixture.ts";

const SOURCES = ["InferenceOracle.sol", "OracleConsumer.sol"].map((f) =>
  readFileSync(new URL(`../../contracts/${f}`, import.meta.url), "utf8"),
);

/** Custom errors declared in the oracle and the consumer base (not the inherited OpenZeppelin ones). */
function declaredErrors(): string[] {
  return SOURCES.flatMap((s) => [...s.matchAll(/^\s*error\s+(\w+)\s*\(/gm)].map((m) => m[1] as string));
}

before(setupOracleFixture);
after(teardownOracleFixture);

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
  it("the constructor names the parameter it refuses: addresses, windows, minResponses, maxOperators, slashBps, minStake", async () => {
    const zero = "0x0000000000000000000000000000000000000000" as Address;
    assert.deepEqual(await deployRefusal({ ...PARAMS }, { token: zero }), {
      name: "ZeroAddress",
      args: [zero, getAddress(registry)],
    });
    assert.deepEqual(await deployRefusal({ ...PARAMS }, { registry: zero }), {
      name: "ZeroAddress",
      args: [getAddress(token), zero],
    });
    assert.deepEqual(await deployRefusal({ ...PARAMS, commitWindow: 0 }), {
      name: "EmptyWindow",
      args: [0n, BigInt(PARAMS.revealWindow)],
    });
    assert.deepEqual(await deployRefusal({ ...PARAMS, revealWindow: 0 }), {
      name: "EmptyWindow",
      args: [BigInt(PARAMS.commitWindow), 0n],
    });
    assert.deepEqual(await deployRefusal({ ...PARAMS, minResponses: 0 }), {
      name: "InvalidMinResponses",
      args: [0n, 16n],
    });
    assert.deepEqual(await deployRefusal({ ...PARAMS, maxOperators: 2 }), {
      name: "InvalidMinResponses",
      args: [3n, 2n],
    });
    assert.deepEqual(await deployRefusal({ ...PARAMS, maxOperators: 256 }), {
      name: "MaxOperatorsTooHigh",
      args: [256n, 255n],
    });
    assert.deepEqual(await deployRefusal({ ...PARAMS, slashBps: 10_001 }), {
      name: "SlashTooHigh",
      args: [10_001n, 10_000n],
    });
    assert.deepEqual(await deployRefusal({ ...PARAMS, minStake: 2n ** 96n }), {
      name: "AmountTooLarge",
      args: [2n ** 96n],
    });
  });

  it("CallbackGasTooHigh: callbackGasLimit is bounded so that finalize plus the callback stays under 10M gas", async () => {
    const max = await chain.publicClient.readContract({
      address: oracle,
      abi,
      functionName: "MAX_CALLBACK_GAS",
    });
    assert.equal(max, 2_000_000n);
    assert.deepEqual(await deployRefusal({ ...PARAMS, callbackGasLimit: Number(max) + 1 }), {
      name: "CallbackGasTooHigh",
      args: [max + 1n, max],
    });
    const atLimit = await deployOracle({ ...PARAMS, callbackGasLimit: Number(max) });
    const p = await chain.publicClient.readContract({ address: atLimit, abi, functionName: "params" });
    assert.equal(p.callbackGasLimit, Number(max));
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
    assert.equal(await isPending(id), true, "past its reveal deadline, anyone may still finalize it");
    const fin = await send(REQUESTER, "finalize", [id]);
    assert.equal(eventsOf(fin, "InferenceFailed").length, 1);
    assert.equal(await isPending(id), false, "failed and refunded");
    assert.equal(await isPending(12345n), false, "unknown ids are not pending (no revert)");
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

  it("InsufficientStake: an operator slashed below minStake may not commit; it counts for nothing", async () => {
    const harsh = await deployOracle({ ...PARAMS, minResponses: 1, slashBps: 10_000, maxOperators: 3 });
    holders.push(harsh);
    for (const i of [SPARE, STRANGER, REQUESTER]) await tokenTx(i, "approve", harsh, maxUint256);
    await send(OWNER, "setModelSpec", [modelId, 1, INPUT.length], harsh);
    for (const i of [SPARE, STRANGER])
      await send(i, "registerOperator", [modelId, 1, PARAMS.minStake], harsh);
    const main = oracle;
    useOracle(harsh);
    const id = await newRequest(REQUESTER, { fee: 0n });
    await send(SPARE, "commit", [id, keccak256("0x01")]);
    await advanceTo((await getRequest(id)).revealDeadline);
    await send(REQUESTER, "finalize", [id]);
    assert.equal((await operatorInfo(1, SPARE)).stake, 0n, "the silent operator lost all of its stake");
    const [active, count] = await chain.publicClient.readContract({
      address: harsh,
      abi,
      functionName: "activeStakeOf",
      args: [modelId, 1],
    });
    assert.deepEqual([active, count], [PARAMS.minStake, 1n], "only the other operator still counts");
    const next = await newRequest(REQUESTER, { fee: 0n });
    await refused(send(SPARE, "commit", [next, keccak256("0x02")]), "InsufficientStake", [
      addr(SPARE),
      0n,
      PARAMS.minStake,
    ]);
    assert.equal(await stakeBase(next), PARAMS.minStake);
    await advanceTo((await getRequest(next)).revealDeadline);
    await send(REQUESTER, "finalize", [next]);
    for (const i of [SPARE, STRANGER]) await send(i, "exitOperator", [modelId, 1], harsh);
    await send(STRANGER, "withdraw", [], harsh);
    await send(REQUESTER, "withdraw", [], harsh);
    assert.equal(await balanceOf(harsh), 0n);
    useOracle(main);
  });

  it("OnlyOracle: a consumer accepts results only from its oracle", async () => {
    await refused(
      sendAndWait(chain, () =>
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

describe("InferenceOracle commit-reveal settlement", () => {
  it("median: stores the stake-weighted median, slashes a deviating operator and a no-show, splits fee + slash", async () => {
    const fee = parseEther("10") + 7n;
    const id = await newRequest(REQUESTER, { fee });
    const [a, b, c, d, e, f, g] = MAIN_OPS as [number, number, number, number, number, number, number];
    // b lost a tenth of its stake as a no-show in the refusals above: it answers the outlier here.
    const answers: Answer[] = [
      { op: a, output: 1_010_000n },
      { op: b, output: 1_500_000n },
      { op: c, output: 990_000n },
      { op: d, output: 1_000_000n },
      { op: e, output: 999_999n, reveal: false },
      { op: f, output: 1_000_000n },
      { op: g, output: 1_000_000n },
    ];
    const before = await snapshot([a, b, c, d, e, f, g]);
    const round = await runRound(id, answers);
    const expected = await checkAgainstMirror(id, answers, "median", before, round);
    // Sorted 990_000 (c), 1_000_000 (d, f, g), 1_010_000 (a), 1_500_000 (b, the smallest stake): the weighted
    // median is 1_000_000, and the five within tolerance of it hold more than half of the active stake.
    assert.equal(expected.result, 1_000_000n);
    assert.deepEqual(expected.agreeing, [addr(a), addr(c), addr(d), addr(f), addr(g)]);
    const slashed = eventsOf(round.finalize, "OperatorSlashed");
    assert.deepEqual(
      slashed.map((l) => [l.args.operator, l.args.revealed]),
      [
        [addr(b), true],
        [addr(e), false],
      ],
    );
    const cut = (before.get(b)?.stake ?? 0n) / 10n + (before.get(e)?.stake ?? 0n) / 10n;
    const pot = fee + cut;
    assert.equal(
      expected.shares.reduce((s, x) => s + x.amount, 0n),
      pot,
    );
    assert.equal(
      expected.shares[0]?.amount,
      pot / 5n + (pot % 5n),
      "the remainder goes to the first revealer",
    );

    const [fin] = eventsOf(round.finalize, "InferenceFinalized");
    assert.ok(fin);
    assert.equal(fin.args.requestId, id);
    assert.equal(fin.args.modelId, modelId);
    assert.equal(fin.args.version, 1);
    assert.equal(fin.args.output, 1_000_000n);
    assert.equal(fin.args.weightsDigest, keccak256(stringToHex("weights:v1")));
    assert.equal(fin.args.responders, 5n);
    const result = await getResult(id);
    assert.equal(result.output, 1_000_000n);
    assert.equal(result.weightsDigest, keccak256(stringToHex("weights:v1")));
    assert.ok(result.finalizedAt > 0);
    assert.equal((await getRequest(id)).status, 2);
    for (const i of [a, b, c, d, e, f, g]) assert.equal((await operatorInfo(1, i)).pending, 0);
    await assertConservation();
  });

  it("majority: the label with more than half of the revealed stake wins; every other label is slashed", async () => {
    const fee = parseEther("5") + 1n;
    const id = await newRequest(REQUESTER, { fee, aggregation: MAJORITY });
    const [a, b, c, d, e, f, g] = MAIN_OPS as [number, number, number, number, number, number, number];
    const answers: Answer[] = [
      { op: a, output: 2n },
      { op: b, output: 1n },
      { op: c, output: 2n },
      { op: d, output: 2n },
      { op: e, output: 3n },
      { op: f, output: 1n, reveal: false },
      { op: g, output: 2n },
    ];
    const before = await snapshot([a, b, c, d, e, f, g]);
    const round = await runRound(id, answers);
    const expected = await checkAgainstMirror(id, answers, "majority", before, round);
    assert.equal(expected.result, 2n, "four of six revealers (of seven, similar stakes) answered 2");
    assert.equal((await getResult(id)).output, 2n);
    assert.deepEqual(expected.agreeing, [addr(a), addr(c), addr(d), addr(g)]);
    assert.deepEqual(
      eventsOf(round.finalize, "OperatorSlashed").map((l) => l.args.operator),
      [addr(b), addr(e), addr(f)],
    );
  });

  it("finalizes early once every committed operator revealed after the commit window", async () => {
    const id = await newRequest(REQUESTER, { aggregation: MAJORITY });
    const answers = MAIN_OPS.slice(0, 4).map((op) => ({ op, output: 7n }));
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
  // Four of the seven operators: more than half of the version's stake must reveal.
  const agree = (output: bigint) => MAIN_OPS.slice(0, 4).map((op) => ({ op, output }));

  it("calls a consumer back with the result and the weights digest", async () => {
    const consumer = consumers.recording as Address;
    const id = await consumerRequest(consumer, { fee: parseEther("1") });
    assert.equal(await isPending(id), true);
    const round = await runRound(id, agree(123_456n));
    assert.equal(await isPending(id), false, "finalized");
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
  it("accepts signers holding more than 2/3 of the stake and splits the fee among them", async () => {
    const fee = parseEther("7") + 5n;
    const id = await newRequest(REQUESTER, { fee });
    // One operator committed before the report: the report releases it.
    const committer = MAIN_OPS[6] as number;
    await send(committer, "commit", [id, keccak256("0xaa")]);
    assert.equal((await operatorInfo(1, committer)).pending, 1);
    const ops = byAddress(MAIN_OPS.slice(0, 6));
    const before = await snapshot(ops);
    const args = await reportArgs(ops, id, -42n);
    const [, , signers] = args;
    const { weightsDigest } = await getRequest(id);
    const base = await stakeBase(id);
    const signed = [...before.values()].reduce((sum, x) => sum + x.stake, 0n);
    assert.ok(signed * 3n > base * 2n, "six of the seven operators hold more than 2/3 of the stake");
    const onChainDigest = await chain.publicClient.readContract({
      address: oracle,
      abi,
      functionName: "reportDigest",
      args: [id, -42n, signers],
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
        message: { requestId: id, output: -42n, weightsDigest, signers },
      }),
    );
    const receipt = await send(STRANGER, "submitReport", args);
    const [finalized] = eventsOf(receipt, "InferenceFinalized");
    assert.equal(finalized?.args.responders, 6n);
    assert.equal(finalized?.args.output, -42n);
    const shares = reportShares(fee, signers);
    for (const [k, i] of ops.entries()) {
      const info = await operatorInfo(1, i);
      assert.equal(info.fees, (before.get(i)?.fees ?? 0n) + (shares[k]?.amount ?? 0n));
    }
    assert.equal(shares[0]?.amount, fee / 6n + (fee % 6n));
    assert.equal((await getResult(id)).output, -42n);
    assert.equal((await operatorInfo(1, committer)).pending, 0);
    await refused(send(STRANGER, "submitReport", args), "RequestClosed", [id]);
    await refused(send(committer, "reveal", [id, 1n, ZERO32]), "RequestClosed", [id]);
    await assertConservation();
  });

  it("accepts EIP-2098 compact (64-byte) signatures too", async () => {
    const id = await newRequest(REQUESTER);
    const [, , signers, sigs] = await reportArgs(MAIN_OPS.slice(0, 6), id, 3n);
    const short = sigs.map(compact);
    assert.ok(short.every((s) => size(s) === 64));
    await send(STRANGER, "submitReport", [id, 3n, signers, short]);
    assert.equal((await getResult(id)).output, 3n);
  });

  it("refuses QuorumNotMet, StakeQuorumNotMet, SignerCountMismatch, InvalidSignature, UnsortedSigners, WrongSigner, NotOperator, and late reports", async () => {
    const id = await newRequest(REQUESTER);
    const ops = byAddress(MAIN_OPS.slice(0, 4));
    const [, , signers, sigs] = await reportArgs(ops, id, 77n);
    const submit = (signatures: Hex[], list: Address[] = signers, output = 77n, requestId = id) =>
      send(STRANGER, "submitReport", [requestId, output, list, signatures]);
    await refused(submit(sigs.slice(0, 2), signers.slice(0, 2)), "QuorumNotMet", [2n, 3n]);
    await refused(submit([], []), "QuorumNotMet", [0n, 3n]);
    await refused(submit(sigs.slice(0, 3)), "SignerCountMismatch", [4n, 3n]);
    // Four of seven operators, all valid signatures: not more than two thirds of the stake.
    const base = await stakeBase(id);
    let held = 0n;
    for (const i of ops) held += (await operatorInfo(1, i)).stake;
    await refused(submit(sigs), "StakeQuorumNotMet", [held, base]);
    const swap = (k: number, bad: Hex) => sigs.map((s, i) => (i === k ? bad : s));
    const first = sigs[0] as Hex;
    // 63 bytes: neither a 65-byte nor a 64-byte compact signature.
    await refused(submit(swap(1, first.slice(0, 128) as Hex)), "InvalidSignature", [1n]);
    // The malleable twin (n - s, other v) of a valid signature.
    const { r, s: sv, yParity } = parseSignature(first);
    const twin =
      `${r}${toHex(SECP256K1_N - hexToBigInt(sv), { size: 32 }).slice(2)}${yParity ? "1b" : "1c"}` as Hex;
    await refused(submit(swap(0, twin)), "InvalidSignature", [0n]);
    // v must be 27 or 28.
    await refused(submit(swap(2, `${first.slice(0, 130)}1d` as Hex)), "InvalidSignature", [2n]);
    // Signed over an unsorted list, so that every signature matches: the order itself is refused.
    const { weightsDigest } = await getRequest(id);
    const signedOver = async (order: number[]) => {
      const list = order.map((k) => signers[k] as Address);
      const byIndex = order.map((k) => ops[k] as number);
      return submit(await Promise.all(byIndex.map((i) => signReport(i, id, 77n, weightsDigest, list))), list);
    };
    await refused(signedOver([3, 2, 1, 0]), "UnsortedSigners", [1n]);
    await refused(signedOver([0, 0, 1]), "UnsortedSigners", [1n]);
    // Signatures of another output recover to unrelated addresses, not to the listed signers.
    await refused(submit(sigs, signers, 78n), "WrongSigner");
    // A stranger's valid signature.
    const withStranger = byAddress([...ops.slice(0, 3), STRANGER]);
    const strangers = withStranger.map(addr);
    const strangerSigs = await Promise.all(
      withStranger.map((i) => signReport(i, id, 77n, weightsDigest, strangers)),
    );
    await refused(submit(strangerSigs, strangers), "NotOperator", [addr(STRANGER)]);
    // Signed for another oracle (another EIP-712 domain).
    const otherDomain = await Promise.all(
      ops.map((i) => signReport(i, id, 77n, weightsDigest, signers, addr(STRANGER) as Address)),
    );
    await refused(submit(otherDomain), "WrongSigner");
    await refused(submit(sigs, signers, 77n, 999n), "UnknownRequest", [999n]);
    await advanceTo((await getRequest(id)).revealDeadline);
    await refused(submit(sigs), "RequestClosed", [id]);
  });

  it("ReportAfterReveal: once an operator revealed, only commit-reveal settles the request", async () => {
    const id = await newRequest(REQUESTER);
    const [a] = MAIN_OPS as [number];
    await commitAll(id, [{ op: a, output: 5n }]);
    await advanceTo((await getRequest(id)).commitDeadline);
    await revealAll(id, [{ op: a, output: 5n }]);
    const args = await reportArgs(MAIN_OPS.slice(0, 6), id, 5n);
    await refused(send(STRANGER, "submitReport", args), "ReportAfterReveal", [id, 1n]);
    await advanceTo((await getRequest(id)).revealDeadline);
    await send(STRANGER, "finalize", [id]);
    assert.equal((await getRequest(id)).status, 3, "one reveal is too few: the fee is refunded");
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

  /** An oracle with the main parameters whose version 3 has exactly `n` operators, and a consumer of it. */
  async function oracleOf(n: number): Promise<{ at: Address; consumer: Address }> {
    const at = await deployOracle({ ...PARAMS });
    const consumer = await deploy(RecordingConsumer, [at, token]);
    holders.push(at, consumer);
    await tokenTx(TREASURY, "transfer", consumer, parseEther("10"));
    await send(OWNER, "setModelSpec", [modelId, 3, INPUT.length], at);
    await tokenTx(REQUESTER, "approve", at, maxUint256);
    for (const i of GAS_OPS.slice(0, n)) {
      await tokenTx(i, "approve", at, maxUint256);
      await send(i, "registerOperator", [modelId, 3, parseEther("500")], at);
    }
    return { at, consumer };
  }

  it("commit, reveal, finalize and submitReport for 3, 7 and 15 operators", async () => {
    // Every operator of the version answers: reports need more than 2/3 of its stake, results more than half.
    const main = oracle;
    for (const n of [3, 7, 15]) {
      const ops = GAS_OPS.slice(0, n);
      const { at, consumer } = await oracleOf(n);
      useOracle(at);
      // Median, every answer within tolerance but one off by one unit, so the sort has work.
      const id = await newRequest(REQUESTER, { version: 3, fee: parseEther("1") });
      const answers = ops.map((op, k) => ({ op, output: 1_000_000n + BigInt((k * 7919) % 1000) }));
      const round = await runRound(id, answers);
      assert.equal(eventsOf(round.finalize, "InferenceFinalized").length, 1);
      record("commit (mean)", n, mean(round.commits));
      record("reveal (mean)", n, mean(round.reveals));
      record("finalize (EOA requester)", n, round.finalize.gasUsed);

      const rid = await newRequest(REQUESTER, { version: 3, fee: parseEther("1") });
      const report = await send(STRANGER, "submitReport", await reportArgs(ops, rid, 1_234_567n));
      record("submitReport (EOA requester)", n, report.gasUsed);

      const kid = await newRequest(REQUESTER, { version: 3, fee: parseEther("1") });
      const [, , ksigners, ksigs] = await reportArgs(ops, kid, 1_234_567n);
      const kreport = await send(STRANGER, "submitReport", [kid, 1_234_567n, ksigners, ksigs.map(compact)]);
      record("submitReport, 64-byte sigs (EOA requester)", n, kreport.gasUsed);

      const cid = await consumerRequest(consumer, { version: 3, fee: parseEther("1") });
      const creport = await send(STRANGER, "submitReport", await reportArgs(ops, cid, 1_234_567n));
      assert.equal(eventsOf(creport, "CallbackFailed").length, 0);
      record("submitReport + recording callback", n, creport.gasUsed);
      await assertConservation();
      useOracle(main);
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
    // The signed signer list (calldata and hashing) and the stake threshold (two reads) cost about 12k more.
    assert.ok(seven <= 135_000n, `submitReport with 7 signers used ${seven} gas`);
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
