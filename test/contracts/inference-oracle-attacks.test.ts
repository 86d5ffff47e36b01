// The attacks of issue 9 on InferenceOracle, each run end to end against the hardened contract: the attack
// is tried as the security review tried it, and the test shows that it no longer profits (no honest party
// loses stake, no payout moves, nothing stays locked).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Address, keccak256, maxUint256, parseEther } from "viem";
import {
  type Answer,
  addr,
  advanceTo,
  assertConservation,
  balanceOf,
  chain,
  commitAll,
  deployOracle,
  deployRefusal,
  eventsOf,
  getRequest,
  getResult,
  heaviestGas,
  holders,
  INPUT,
  largestRequest,
  MAIN_OPS,
  MAJORITY,
  modelId,
  newRequest,
  OWNER,
  operatorInfo,
  oracle,
  PARAMS,
  type Params,
  REQUESTER,
  refused,
  registry,
  reportArgs,
  revealAll,
  runRound,
  STRANGER,
  saltFor,
  send,
  setupOracleFixture,
  snapshot,
  stakeBase,
  teardownOracleFixture,
  token,
  tokenTx,
  useOracle,
  withdrawable,
} from "./inference-oracle-fixture.ts";

const STAKE = parseEther("1000");
const FEE = parseEther("10");
const GAS_CAP = 10_000_000n;

before(setupOracleFixture);
after(teardownOracleFixture);

/** A fresh oracle (main parameters, overridden by `params`) whose version 1 has exactly `ops`, each staking `STAKE`. */
async function freshOracle(ops: number[], params: Partial<Params> = {}): Promise<Address> {
  const at = await deployOracle({ ...PARAMS, ...params });
  holders.push(at);
  await send(OWNER, "setModelSpec", [modelId, 1, INPUT.length], at);
  for (const i of [...ops, REQUESTER, STRANGER]) await tokenTx(i, "approve", at, maxUint256);
  for (const i of ops) await send(i, "registerOperator", [modelId, 1, STAKE], at);
  useOracle(at);
  return at;
}

/** Every listed operator still has all of its stake and no request pending; none may be locked in. */
async function assertUnharmed(ops: number[]): Promise<void> {
  for (const i of ops) {
    const info = await operatorInfo(1, i);
    assert.equal(info.stake, STAKE, `operator #${i} keeps its stake`);
    assert.equal(info.pending, 0, `operator #${i} is free to exit`);
  }
}

describe("InferenceOracle attacks (issue 9)", () => {
  it("attack 1, 255 revealers in descending order push finalize past the gas cap: every transaction stays under 10M gas", async () => {
    const main = oracle;
    const largest = await largestRequest(chain, { token, registry });
    holders.push(largest.oracle, largest.consumer, ...largest.operators.map((o) => o.address));
    const txs = [largest.request, ...largest.commits, ...largest.reveals, largest.finalize, largest.report];
    const heaviest = heaviestGas(txs);
    console.log(
      `255 operators: request ${largest.request.gasUsed}, finalize (incl. a 2M-gas callback) ${largest.finalize.gasUsed}, report of 255 signatures ${largest.report.gasUsed}, largest ${heaviest}`,
    );
    assert.ok(heaviest < GAS_CAP, `the largest transaction used ${heaviest} gas`);
    for (const r of txs) assert.equal(r.status, "success");
    // The settlement really ran: 127 deviants slashed, 128 paid, the callback given its whole limit.
    const done = eventsOf(largest.finalize, "InferenceFinalized");
    assert.equal(done[0]?.args.output, 1_000_127n);
    assert.equal(done[0]?.args.responders, 128n);
    assert.equal(eventsOf(largest.finalize, "OperatorSlashed").length, 127);
    assert.equal(eventsOf(largest.finalize, "CallbackFailed").length, 1, "the consumer burned all its gas");
    assert.ok(largest.finalize.gasUsed > 2_000_000n);
    assert.equal(eventsOf(largest.report, "InferenceFinalized")[0]?.args.responders, 255n);
    useOracle(largest.oracle);
    for (const o of largest.operators.slice(0, 3)) {
      assert.equal((await operatorInfo(1, o.address)).pending, 0, "nothing stays locked");
    }
    useOracle(main);
  });

  it("attack 2, two signers override an honest majority: the late report is refused and the deviant colluder slashed", async () => {
    // The review's setting: 5 operators, minResponses 2; three honest operators and two colluders.
    const [h1, h2, h3, c1, c2] = MAIN_OPS as [number, number, number, number, number];
    await freshOracle([h1, h2, h3, c1, c2], { minResponses: 2 });
    const id = await newRequest(REQUESTER, { fee: FEE });
    const answers: Answer[] = [
      { op: h1, output: 500_000n },
      { op: h2, output: 500_000n },
      { op: h3, output: 500_000n },
      { op: c1, output: 999_999n },
    ];
    await commitAll(id, answers);
    // Before any reveal, the two colluders' report holds 2/5 of the stake: not more than two thirds.
    const report = await reportArgs([c1, c2], id, 999_999n);
    await refused(send(c2, "submitReport", report), "StakeQuorumNotMet", [2n * STAKE, 5n * STAKE]);
    await advanceTo((await getRequest(id)).commitDeadline);
    await revealAll(id, answers);
    // The attack as reviewed: the report after the honest reveals.
    await refused(send(c2, "submitReport", report), "ReportAfterReveal", [id, 4n]);

    const before = await snapshot([h1, h2, h3, c1, c2]);
    const fin = await send(STRANGER, "finalize", [id]);
    assert.equal((await getResult(id)).output, 500_000n, "the honest majority's answer stands");
    assert.deepEqual(
      eventsOf(fin, "OperatorSlashed").map((l) => [l.args.operator, l.args.revealed]),
      [[addr(c1), true]],
    );
    const slash = STAKE / 10n;
    const pot = FEE + slash;
    for (const [k, i] of [h1, h2, h3].entries()) {
      const info = await operatorInfo(1, i);
      assert.equal(info.stake, STAKE, "no honest operator loses stake");
      const share = pot / 3n + (k === 0 ? pot % 3n : 0n);
      assert.equal(info.fees, (before.get(i)?.fees ?? 0n) + share, "the fee goes to the honest");
    }
    assert.equal((await operatorInfo(1, c1)).stake, STAKE - slash, "the deviant colluder pays");
    assert.equal((await operatorInfo(1, c1)).fees, 0n);
    assert.equal((await operatorInfo(1, c2)).fees, 0n);
    await assertConservation();
  });

  it("attack 12, a subset of a report's signatures resubmitted to drop signers from the fee: refused, every signer paid", async () => {
    const ops = MAIN_OPS.slice(0, 5);
    await freshOracle(ops);
    const id = await newRequest(REQUESTER, { fee: FEE });
    const [, , signers, signatures] = await reportArgs(ops, id, 500_000n);
    // A front-runner drops the last signer (four of five still hold more than two thirds of the stake).
    await refused(
      send(STRANGER, "submitReport", [id, 500_000n, signers.slice(0, 4), signatures.slice(0, 4)]),
      "WrongSigner",
    );
    // Or keeps the list and drops a signature.
    await refused(
      send(STRANGER, "submitReport", [id, 500_000n, signers, signatures.slice(0, 4)]),
      "SignerCountMismatch",
      [5n, 4n],
    );
    const receipt = await send(STRANGER, "submitReport", [id, 500_000n, signers, signatures]);
    assert.equal(eventsOf(receipt, "InferenceFinalized")[0]?.args.responders, 5n);
    const fees = await Promise.all(ops.map(async (i) => (await operatorInfo(1, i)).fees));
    assert.ok(
      fees.every((f) => f >= FEE / 5n),
      "each of the five signers earned its share",
    );
    assert.equal(
      fees.reduce((s, f) => s + f, 0n),
      FEE,
    );
    await assertConservation();
  });

  it("attack 3, four operators split 2-2: the low pair no longer wins; the request is voided and refunded, nobody slashed", async () => {
    const [h1, h2, l1, l2] = MAIN_OPS as [number, number, number, number];
    await freshOracle([h1, h2, l1, l2], { minResponses: 2 });
    const owed = await withdrawable(addr(REQUESTER));
    const id = await newRequest(REQUESTER, { fee: FEE });
    const round = await runRound(id, [
      { op: h1, output: 500_000n },
      { op: l1, output: 100_000n },
      { op: h2, output: 500_000n },
      { op: l2, output: 100_000n },
    ]);
    const [failed] = eventsOf(round.finalize, "InferenceFailed");
    assert.equal(failed?.args.refund, FEE, "the whole fee goes back");
    assert.equal(eventsOf(round.finalize, "OperatorSlashed").length, 0, "neither side is provably wrong");
    assert.equal(eventsOf(round.finalize, "InferenceFinalized").length, 0);
    await refused(getResult(id), "ResultNotReady", [id]);
    await assertUnharmed([h1, h2, l1, l2]);
    assert.equal(await withdrawable(addr(REQUESTER)), owed + FEE);

    // The same split over labels.
    const labels = await newRequest(REQUESTER, { fee: FEE, aggregation: MAJORITY });
    const split = await runRound(labels, [
      { op: h1, output: 1n },
      { op: h2, output: 1n },
      { op: l1, output: 0n },
      { op: l2, output: 0n },
    ]);
    assert.equal(eventsOf(split.finalize, "InferenceFailed")[0]?.args.refund, FEE);
    await assertUnharmed([h1, h2, l1, l2]);

    // Half of the stake revealing is not enough either, even when it agrees.
    const half = await newRequest(REQUESTER, { fee: FEE });
    const base = await stakeBase(half);
    assert.equal(base, 4n * STAKE);
    const quiet = await runRound(half, [
      { op: l1, output: 100_000n },
      { op: l2, output: 100_000n },
    ]);
    assert.equal(eventsOf(quiet.finalize, "InferenceFailed")[0]?.args.refund, FEE);
    await assertUnharmed([h1, h2, l1, l2]);

    // 3-1: the majority decides and the lone deviant is slashed, as before.
    const clear = await newRequest(REQUESTER, { fee: FEE });
    const decided = await runRound(clear, [
      { op: h1, output: 500_000n },
      { op: h2, output: 500_000n },
      { op: l1, output: 500_000n },
      { op: l2, output: 100_000n },
    ]);
    assert.equal((await getResult(clear)).output, 500_000n);
    assert.deepEqual(
      eventsOf(decided.finalize, "OperatorSlashed").map((l) => l.args.operator),
      [addr(l2)],
    );
    await assertUnharmed([h1, h2, l1]);
    const balance = await balanceOf(addr(REQUESTER));
    const refunds = await withdrawable(addr(REQUESTER));
    await send(REQUESTER, "withdraw", []);
    assert.equal(await balanceOf(addr(REQUESTER)), balance + refunds, "the refunds can be pulled");
    await assertConservation();
  });

  it("attack 3, a coalition below half of the active stake decides while honest operators miss the window: the request fails, nobody honest slashed", async () => {
    const [c1, c2, c3, h1, h2, h3, h4] = MAIN_OPS as [number, number, number, number, number, number, number];
    await freshOracle([c1, c2, c3, h1, h2, h3, h4], { minResponses: 2 });
    const owed = await withdrawable(addr(REQUESTER));
    const id = await newRequest(REQUESTER, { fee: FEE });
    // Three colluders of seven (3/7 of the stake) reveal a lie; two honest operators miss the window. The
    // colluders hold 3/5 of the revealed stake, but a result needs agreeing answers holding more than half
    // of the active stake.
    const round = await runRound(id, [
      { op: c1, output: 900_000n },
      { op: h1, output: 500_000n },
      { op: c2, output: 900_000n },
      { op: h2, output: 500_000n },
      { op: c3, output: 900_000n },
    ]);
    assert.equal(eventsOf(round.finalize, "InferenceFailed")[0]?.args.refund, FEE, "the fee goes back");
    assert.equal(eventsOf(round.finalize, "OperatorSlashed").length, 0, "no answer is provably wrong");
    await refused(getResult(id), "ResultNotReady", [id]);
    await assertUnharmed([c1, c2, c3, h1, h2, h3, h4]);
    assert.equal(await withdrawable(addr(REQUESTER)), owed + FEE);

    // The same coalition over labels.
    const labels = await newRequest(REQUESTER, { fee: FEE, aggregation: MAJORITY });
    const vote = await runRound(labels, [
      { op: c1, output: 0n },
      { op: c2, output: 0n },
      { op: c3, output: 0n },
      { op: h1, output: 1n },
    ]);
    assert.equal(eventsOf(vote.finalize, "InferenceFailed")[0]?.args.refund, FEE);
    await assertUnharmed([c1, c2, c3, h1, h2, h3, h4]);

    // Once four of seven honest operators answer, they decide and the lone colluder that answers is slashed.
    const clear = await newRequest(REQUESTER, { fee: FEE });
    await runRound(clear, [
      { op: c1, output: 900_000n },
      { op: h1, output: 500_000n },
      { op: h2, output: 500_000n },
      { op: h3, output: 500_000n },
      { op: h4, output: 500_000n },
    ]);
    assert.equal((await getResult(clear)).output, 500_000n);
    await assertUnharmed([h1, h2, h3, h4]);
    await assertConservation();
  });

  it("attack 10, slashed-out operators keep voting: below minStake an operator can neither commit, reveal nor sign", async () => {
    const [h1, h2, h3, x] = MAIN_OPS as [number, number, number, number];
    const ops = [h1, h2, h3, x];
    // Half the stake per offence: one deviation takes x below minStake (1000 -> 500 < 600).
    await freshOracle(ops, { slashBps: 5_000, minStake: parseEther("600") });
    const first = await newRequest(REQUESTER, { fee: FEE });
    const second = await newRequest(REQUESTER, { fee: FEE });
    const honest: Answer[] = [h1, h2, h3].map((op) => ({ op, output: 500_000n }));
    const firstAnswers = [...honest, { op: x, output: 999_999n }];
    await commitAll(first, firstAnswers);
    // x commits to the second request while it still holds enough stake.
    await commitAll(second, [...honest, { op: x, output: 999_999n }]);
    await advanceTo((await getRequest(second)).commitDeadline);
    await revealAll(first, firstAnswers);
    await send(STRANGER, "finalize", [first]);
    const slashed = (await operatorInfo(1, x)).stake;
    assert.equal(slashed, STAKE / 2n);

    await refused(send(x, "reveal", [second, 999_999n, saltFor(second, x)]), "InsufficientStake", [
      addr(x),
      slashed,
      parseEther("600"),
    ]);
    const third = await newRequest(REQUESTER, { fee: FEE });
    assert.equal(await stakeBase(third), 3n * STAKE, "x no longer counts in the thresholds");
    await refused(send(x, "commit", [third, keccak256("0x01")]), "InsufficientStake", [
      addr(x),
      slashed,
      parseEther("600"),
    ]);
    // With x's signature, a report it joins is refused; the honest three alone hold all the active stake.
    await refused(
      send(STRANGER, "submitReport", await reportArgs(ops, third, 500_000n)),
      "InsufficientStake",
      [addr(x), slashed, parseEther("600")],
    );
    await send(STRANGER, "submitReport", await reportArgs([h1, h2, h3], third, 500_000n));
    assert.equal((await getResult(third)).output, 500_000n);

    await revealAll(second, honest);
    await advanceTo((await getRequest(second)).revealDeadline);
    await send(STRANGER, "finalize", [second]);
    assert.equal((await getResult(second)).output, 500_000n);
    await assertUnharmed([h1, h2, h3]);
    // Nothing is locked: x may leave with what it has left.
    await send(x, "exitOperator", [modelId, 1]);
    assert.ok((await withdrawable(addr(x))) > 0n);
    await send(x, "withdraw", []);
    await assertConservation();
  });

  it("attack 12, an unbounded callbackGasLimit makes every callback finalization revert: bounded at MAX_CALLBACK_GAS", async () => {
    // The review's figure: at about 16.5M gas for the callback alone, no finalize fits a transaction.
    assert.deepEqual(await deployRefusal({ ...PARAMS, callbackGasLimit: 16_500_000 }), {
      name: "CallbackGasTooHigh",
      args: [16_500_000n, 2_000_000n],
    });
    // At the bound, the worst finalize (255 operators, a consumer burning all 2M) fits: see attack 1.
  });
});
