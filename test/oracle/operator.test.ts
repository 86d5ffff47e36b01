/**
 * Operators end to end on an ephemeral embedded chain, driven by `step()` in one process: a crop-yield
 * risk model (the yield model's architecture, hand-made weights for speed) answered by three staked
 * operators, one of them faulty; restarts after a commit and around crashes; tampered weights; report mode;
 * and `explainResult` re-running the model to check what the chain holds.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, type Hex, parseEther } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { ORACLE_PARAMS, requireDeployment } from "../../src/chain/deploy.ts";
import { InferenceOracle, MindToken } from "../../src/chain/generated/contracts.ts";
import { sendAndWait } from "../../src/chain/tx.ts";
import {
  activeOperatorCount,
  answerOf,
  canFinalizeIn,
  canRevealIn,
  commitmentOf,
  computeAnswer,
  decodeInputBlob,
  encodeInputBlob,
  explainResult,
  explanationLines,
  formatFixed,
  getLoggedRequest,
  getRequestStatus,
  mayHoldRevealIn,
  type Oracle,
  openOracle,
  ResultTimeoutError,
  requestInference,
  setModelSpec,
  toFixedInput,
  waitForResult,
} from "../../src/oracle/client.ts";
import { inferFixed } from "../../src/oracle/fixed-point.ts";
import {
  createOperator,
  driveOperators,
  type InferenceOperator,
  type OperatorEvent,
  type OperatorOptions,
  WeightsMismatchError,
} from "../../src/oracle/operator.ts";
import { fulfilWithReport, reportDomain, signReport, sortBySigner } from "../../src/oracle/report.ts";
import { normalizeFeatures, toOracleInput } from "../../src/oracle/yield-data.ts";
import { addVersion, openRegistry, type Registry, registerModel } from "../../src/registry/client.ts";
import { canonicalCid } from "../../src/storage/cid.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import { YIELD_RISK_WEIGHTS } from "./yield-risk-weights.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-operator-"));
const OWNER = 0;
const OPS = [1, 2, 3];
const REQUESTER = 4;
const FAULTY = 3;
const FAULTY_OFFSET = 500_000n; // 0.5: ten times the oracle's tolerance
const FEE = parseEther("10");

/** A dry, hot season, as the insurance demo would report it. */
const DROUGHT = toOracleInput(
  normalizeFeatures({ rainfallDeficit: 0.55, heatDays: 21, soilMoisture: 0.14, growingDegreeDays: 1900 }),
);

let chain: LedgerChain;
let oracle: Oracle;
let reg: Registry;
let store: FsBlobStore;
let weights: Uint8Array;
let weightsCid: string;
let modelId: bigint;
const VERSION = 1;

function addr(i: number): Address {
  return (chain.accounts[i] as { address: Address }).address;
}

function options(account: number, extra: Partial<OperatorOptions> = {}): OperatorOptions {
  return {
    chain,
    account,
    store,
    modelId,
    version: VERSION,
    stateFile: join(TMP, `op-${account}.json`),
    faultyOffset: account === FAULTY ? FAULTY_OFFSET : undefined,
    ...extra,
  };
}

async function operatorInfo(i: number) {
  return chain.publicClient.readContract({
    address: oracle.address,
    abi: InferenceOracle.abi,
    functionName: "operatorInfo",
    args: [modelId, VERSION, addr(i)],
  });
}

async function slashes(requestId: bigint) {
  return chain.publicClient.getContractEvents({
    address: oracle.address,
    abi: InferenceOracle.abi,
    eventName: "OperatorSlashed",
    args: { requestId },
    fromBlock: 0n,
  });
}

const settled = (requestId: bigint) => async () =>
  (await getRequestStatus(oracle, requestId)).state !== "open";

const ofType = <T extends OperatorEvent["type"]>(events: OperatorEvent[], type: T) =>
  events.filter((e): e is Extract<OperatorEvent, { type: T }> => e.type === type);

before(async () => {
  chain = await connect({ ephemeral: true });
  const manifest = await requireDeployment(chain);
  oracle = await openOracle(chain);
  reg = await openRegistry(chain);
  store = new FsBlobStore(join(TMP, "blobs"));
  weights = YIELD_RISK_WEIGHTS;
  weightsCid = await store.put(weights);
  ({ modelId } = await registerModel(reg, "crop-yield-risk", OWNER));
  await addVersion(reg, modelId, { weightsCid, metrics: { rmse: 0.05 } }, OWNER);
  await setModelSpec(chain, modelId, VERSION, 4, OWNER);
  for (const i of [...OPS, REQUESTER]) {
    await sendAndWait(chain, () =>
      chain.wallet(0).writeContract({
        address: manifest.contracts.MindToken.address,
        abi: MindToken.abi,
        functionName: "transfer",
        args: [addr(i), parseEther("1000")],
      }),
    );
  }
});

after(async () => {
  await chain?.close();
  rmSync(TMP, { recursive: true, force: true });
});

describe("protocol pieces (pure)", () => {
  it("answers: one output as is, several as the index of the largest (lowest on ties)", () => {
    assert.equal(answerOf([412_345n]), 412_345n);
    assert.equal(answerOf([1n, 7n, 3n]), 1n);
    assert.equal(answerOf([5n, 5n, -1n]), 0n);
    assert.throws(() => answerOf([]), /no output/);
  });

  it("fixed-point input, formatting and the input blob", () => {
    assert.deepEqual(toFixedInput([0.1, -0.0000005, 2, 3n]), [100_000n, -1n, 2_000_000n, 3n]);
    assert.throws(() => toFixedInput([Number.NaN]), /not a finite/);
    assert.equal(formatFixed(412_345n), "0.412345");
    assert.equal(formatFixed(-1_500_000n), "-1.5");
    assert.equal(formatFixed(0n), "0");
    assert.deepEqual(decodeInputBlob(encodeInputBlob([1n, -2n, 3n])), [1n, -2n, 3n]);
  });

  it("windows: reveal after the commit deadline, finalize early only when everyone revealed", () => {
    const w = { commitDeadline: 10n, revealDeadline: 14n };
    // A reveal is held back for a report in the first half of the reveal window only.
    assert.deepEqual(
      [10n, 11n, 12n, 13n, 14n].map((b) => mayHoldRevealIn(w, b)),
      [false, true, true, false, false],
    );
    assert.equal(mayHoldRevealIn({ commitDeadline: 10n, revealDeadline: 11n }, 11n), false);
    // Three operators yet to reveal need three blocks after the hold (an automining chain: one reveal a
    // block). CI's failure: window 52 to 55, all three held through block 53 and one missed block 55.
    assert.deepEqual(
      [10n, 11n, 12n, 13n, 14n].map((b) => mayHoldRevealIn(w, b, 3)),
      [false, true, false, false, false],
    );
    const ci = { commitDeadline: 51n, revealDeadline: 55n };
    assert.deepEqual(
      [52n, 53n].map((b) => mayHoldRevealIn(ci, b, 3)),
      [true, false],
    );
    assert.equal(canRevealIn(w, 10n), false);
    assert.equal(canRevealIn(w, 11n), true);
    assert.equal(canRevealIn(w, 15n), false);
    assert.equal(canFinalizeIn(w, 11n, 3, 2), false);
    assert.equal(canFinalizeIn(w, 11n, 3, 3), true);
    assert.equal(canFinalizeIn(w, 10n, 3, 3), false);
    assert.equal(canFinalizeIn(w, 15n, 3, 1), true);
  });
});

describe("operators on the embedded chain", () => {
  let a: InferenceOperator;
  let b: InferenceOperator;
  let c: InferenceOperator;
  let first: bigint;
  const honest = () => answerOf(inferFixed(weights, DROUGHT));

  it("register on creation (approve + registerOperator) with the verified weights", async () => {
    const events: OperatorEvent[] = [];
    a = await createOperator(options(1, { log: (e) => events.push(e) }));
    b = await createOperator(options(2));
    c = await createOperator(options(3));
    assert.deepEqual(
      events.map((e) => e.type),
      ["registered", "ready"],
    );
    for (const i of OPS) {
      const info = await operatorInfo(i);
      assert.notEqual(info.slot, 0);
      assert.equal(info.stake, ORACLE_PARAMS.minStake);
    }
    assert.equal(a.weightsCid, weightsCid);
    // A second instance on the same account does not register again.
    const again = await createOperator(options(1, { stateFile: join(TMP, "op-1-again.json") }));
    assert.equal(await again.ensureRegistered(), undefined);
  });

  it("answer the honest inferFixed output; the faulty operator is slashed; fees go to the honest", async () => {
    const req = await requestInference(
      chain,
      { modelId, version: VERSION, input: DROUGHT, fee: FEE },
      REQUESTER,
    );
    first = req.requestId;
    const events = await driveOperators([a, b, c]);
    const status = await getRequestStatus(oracle, first);
    assert.equal(status.state, "finalized");
    assert.equal(status.output, honest());
    assert.equal(status.output, computeAnswer(weights, DROUGHT));
    assert.ok((status.output as bigint) > 0n && (status.output as bigint) < 1_000_000n);

    assert.equal(ofType(events, "committed").length, 3);
    assert.equal(ofType(events, "revealed").length, 3);
    const finalized = ofType(events, "finalized");
    assert.equal(finalized.length, 1, "exactly one operator finalizes");
    assert.equal(finalized[0]?.output, honest());

    const slash = ORACLE_PARAMS.minStake / 10n; // slashBps 1_000
    const logs = await slashes(first);
    assert.deepEqual(
      logs.map((l) => [l.args.operator, l.args.amount, l.args.revealed]),
      [[addr(FAULTY), slash, true]],
    );
    assert.equal((await operatorInfo(FAULTY)).stake, ORACLE_PARAMS.minStake - slash);
    assert.equal((await operatorInfo(FAULTY)).fees, 0n);
    for (const i of [1, 2]) {
      const info = await operatorInfo(i);
      assert.equal(info.stake, ORACLE_PARAMS.minStake);
      assert.equal(info.fees, (FEE + slash) / 2n, `operator #${i} earns half of fee + slash`);
      assert.equal(info.pending, 0);
    }
    // Nothing left to do: the state files are empty of requests.
    for (const i of OPS) {
      const state = JSON.parse(readFileSync(join(TMP, `op-${i}.json`), "utf8"));
      assert.deepEqual(state.requests, {});
    }
  });

  it("explainResult: the on-chain result matches the model re-run from the registry's weights", async () => {
    const e = await explainResult(reg, store, first);
    assert.equal(e.matches, true);
    assert.equal(e.onChain, e.recomputed);
    assert.equal(e.fulfilment, "commit-reveal");
    assert.equal(e.version, VERSION);
    assert.equal(e.weightsCid, weightsCid);
    assert.deepEqual(e.input, DROUGHT);
    assert.equal(e.reveals.length, 3);
    assert.deepEqual(
      e.slashed.map((s) => s.operator),
      [addr(FAULTY)],
    );
    assert.match(explanationLines(e).join("\n"), /verdict +matches/);
  });

  it("a status read that sees finalized beside a state without the result (anvil mid-mining) is still open", async () => {
    // anvil answers a call at its best block from the block being mined, and the same call a moment later from
    // the block's stored state; here getResult is served the state of the block that made the request.
    const { blockNumber: requestedAt } = await getLoggedRequest(oracle, first);
    const client = chain.publicClient;
    const torn = new Proxy(client, {
      get: (target, key) =>
        key === "readContract"
          ? (args: Parameters<typeof client.readContract>[0]) =>
              target.readContract(
                args.functionName === "getResult" ? { ...args, blockNumber: requestedAt } : args,
              )
          : Reflect.get(target, key),
    });
    const tornOracle: Oracle = { ...oracle, chain: { ...chain, publicClient: torn } };
    const status = await getRequestStatus(tornOracle, first);
    assert.equal(status.state, "open");
    assert.equal(status.output, undefined);
    await assert.rejects(
      waitForResult(tornOracle, first, { timeoutMs: 300, pollMs: 50 }),
      ResultTimeoutError,
    );
    assert.equal((await getRequestStatus(oracle, first)).state, "finalized");
  });

  it("a restarted operator reveals from its state file (stopped right after committing)", async () => {
    const { requestId } = await requestInference(
      chain,
      { modelId, version: VERSION, input: DROUGHT },
      REQUESTER,
    );
    for (const op of [a, b]) {
      const r = await op.step();
      assert.deepEqual(
        r.actions.map((x) => x.type),
        ["committed"],
      );
    }
    // The faulty operator's stake fell below the minimum when it was slashed: the oracle refuses it now.
    const [refusal] = (await c.step()).actions;
    assert.equal(refusal?.type, "missed");
    assert.match(refusal?.type === "missed" ? refusal.reason : "", /below the oracle's minimum/);
    const saved = JSON.parse(readFileSync(join(TMP, "op-1.json"), "utf8"));
    const entry = saved.requests[requestId.toString()];
    assert.equal(entry.phase, "committed");
    assert.match(entry.salt, /^0x[0-9a-f]{64}$/);
    // "Stop" a: drop the instance; a new one on the same state file takes over.
    const events: OperatorEvent[] = [];
    const a2 = await createOperator(options(1, { log: (e) => events.push(e) }));
    assert.equal(ofType(events, "ready")[0]?.resumed, 1);
    const driven = await driveOperators([a2, b, c]);
    const reveal = ofType(driven, "revealed").find((e) => e.operator === addr(1));
    assert.equal(reveal?.output, honest());
    assert.equal((await getRequestStatus(oracle, requestId)).output, honest());
    assert.ok(!(await slashes(requestId)).some((l) => l.args.operator === addr(1)));
    a = a2;
  });

  it("a crash after writing the salt, before the commit was sent: the restart commits with that salt", async () => {
    const { requestId } = await requestInference(
      chain,
      { modelId, version: VERSION, input: DROUGHT },
      REQUESTER,
    );
    (a as unknown as { send: () => Promise<never> }).send = async () => {
      throw new Error("simulated crash");
    };
    const r = await a.step();
    assert.equal(r.actions[0]?.type, "error");
    const entry = JSON.parse(readFileSync(join(TMP, "op-1.json"), "utf8")).requests[requestId.toString()];
    assert.equal(entry.phase, "committing");
    const a2 = await createOperator(options(1));
    const driven = await driveOperators([a2, b, c]);
    const committed = await chain.publicClient.getContractEvents({
      address: oracle.address,
      abi: InferenceOracle.abi,
      eventName: "Committed",
      args: { requestId, operator: addr(1) },
      fromBlock: 0n,
    });
    assert.equal(
      committed[0]?.args.commitment,
      commitmentOf(requestId, addr(1), honest(), entry.salt as Hex),
    );
    assert.ok(ofType(driven, "revealed").some((e) => e.operator === addr(1)));
    assert.equal((await getRequestStatus(oracle, requestId)).output, honest());
    a = a2;
  });

  it("a crash after the commit was sent, before it was recorded: the restart does not commit twice", async () => {
    const { requestId } = await requestInference(
      chain,
      { modelId, version: VERSION, input: DROUGHT },
      REQUESTER,
    );
    const raw = a as unknown as { send: (f: string, args: readonly unknown[]) => Promise<unknown> };
    const realSend = raw.send.bind(a);
    raw.send = async (f, args) => {
      await realSend(f, args);
      throw new Error("simulated crash after sending");
    };
    await a.step();
    const a2 = await createOperator(options(1));
    const driven = await driveOperators([a2, b, c]);
    assert.ok(!ofType(driven, "committed").some((e) => e.operator === addr(1)), "no second commit");
    assert.ok(ofType(driven, "revealed").some((e) => e.operator === addr(1)));
    assert.ok(!ofType(driven, "error").length, JSON.stringify(ofType(driven, "error")));
    const status = await getRequestStatus(oracle, requestId);
    assert.equal(status.output, honest());
    assert.equal(status.commits, 2, "a and b; the slashed-out faulty operator may no longer commit");
    a = a2;
  });

  it("an input given by CID is fetched from the store (verified) and answered alike", async () => {
    const inputCid = await store.put(encodeInputBlob(DROUGHT));
    const { requestId } = await requestInference(
      chain,
      { modelId, version: VERSION, inputCid, fee: FEE },
      REQUESTER,
    );
    await driveOperators([a, b, c]);
    assert.equal((await getRequestStatus(oracle, requestId)).output, honest());
    const e = await explainResult(reg, store, requestId);
    assert.deepEqual(e.input, DROUGHT);
    assert.equal(e.matches, true);
  });

  it("refuses weights whose bytes in the store were tampered with", async () => {
    const tamperedDir = join(TMP, "tampered");
    const tampered = new FsBlobStore(tamperedDir);
    await tampered.put(weights);
    const bytes = Uint8Array.from(weights);
    bytes[bytes.length - 1] = ((bytes[bytes.length - 1] as number) ^ 1) & 0xff;
    writeFileSync(join(tamperedDir, canonicalCid(weightsCid)), bytes);
    await assert.rejects(
      createOperator(options(5, { store: tampered, stateFile: join(TMP, "op-5.json") })),
      (err: Error) =>
        err instanceof WeightsMismatchError && /refusing to serve model .*registry's 0x/.test(err.message),
    );
    await assert.rejects(
      createOperator(
        options(5, { store: new FsBlobStore(join(TMP, "empty")), stateFile: join(TMP, "op-5.json") }),
      ),
      /not in the blob store/,
    );
    assert.equal((await operatorInfo(5)).slot, 0, "it never registered");
  });

  it("report mode: the honest operators sign, one submits; the slashed-out faulty operator is left out", async () => {
    const fee = FEE + 1n; // an odd amount: the remainder goes to the first signer
    const { requestId } = await requestInference(
      chain,
      { modelId, version: VERSION, input: DROUGHT, fee },
      REQUESTER,
    );
    const feesBefore = await Promise.all(OPS.map(async (i) => (await operatorInfo(i)).fees));
    const outcome = await fulfilWithReport({ operators: [a, b, c], requestId, submitter: REQUESTER });
    assert.equal(outcome.output, honest());
    const signers = [addr(1), addr(2)].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
    assert.deepEqual(outcome.signers, signers);
    // Slashed below the minimum stake on the first request, the faulty operator no longer counts: the two
    // honest signers hold all of the version's active stake, more than the two thirds a report needs.
    assert.deepEqual(
      outcome.leftOut.map((l) => [l.operator, l.reason]),
      [[addr(FAULTY), "stake below the oracle's minimum"]],
    );
    const status = await getRequestStatus(oracle, requestId);
    assert.equal(status.state, "finalized");
    assert.equal(status.output, honest());
    const feesAfter = await Promise.all(OPS.map(async (i) => (await operatorInfo(i)).fees));
    const share = fee / 2n;
    const earned = OPS.map((_, k) => (feesAfter[k] as bigint) - (feesBefore[k] as bigint));
    const firstSigner = OPS.find((i) => addr(i) === signers[0]) as number;
    assert.equal(earned[firstSigner - 1], share + (fee - share * 2n));
    assert.equal(earned[FAULTY - 1], 0n);
    assert.equal((earned[0] as bigint) + (earned[1] as bigint), fee);
    const e = await explainResult(reg, store, requestId);
    assert.equal(e.matches, true);
    assert.equal(e.fulfilment, "report");
    // Operators that see the request afterwards find it settled and move on.
    const late = await driveOperators([a, b, c]);
    assert.ok(ofType(late, "settled").length >= 1);
    assert.equal(ofType(late, "committed").length, 0);
  });

  it("signatures are sorted by signer and a signer twice is refused", async () => {
    const domain = reportDomain(oracle);
    const digest = `0x${"11".repeat(32)}` as Hex;
    const s = await Promise.all(
      OPS.map((i) => signReport(chain.accounts[i] as never, domain, 1n, 2n, digest, OPS.map(addr))),
    );
    const sorted = sortBySigner([...s].reverse());
    assert.deepEqual(
      sorted.map((x) => x.signer),
      [...s.map((x) => x.signer)].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1)),
    );
    assert.throws(() => sortBySigner([s[0], s[0]] as never), /signed twice/);
  });

  it("explainResult reports a mismatch when every operator answered with the same offset", async () => {
    const offset = 123_456n;
    const twins = await Promise.all(
      [1, 2].map((i) =>
        createOperator(options(i, { faultyOffset: offset, stateFile: join(TMP, `twin-${i}.json`) })),
      ),
    );
    const { requestId } = await requestInference(
      chain,
      { modelId, version: VERSION, input: DROUGHT },
      REQUESTER,
    );
    await driveOperators(twins, { until: settled(requestId) });
    const status = await getRequestStatus(oracle, requestId);
    assert.equal(status.output, honest() + offset, "the colluding answer stands on-chain (nobody deviated)");
    assert.equal((await slashes(requestId)).length, 0);
    const e = await explainResult(reg, store, requestId);
    assert.equal(e.matches, false);
    assert.equal(e.difference, offset);
    assert.equal(e.recomputed, honest());
    assert.equal(e.withinTolerance, false);
    assert.match(explanationLines(e).join("\n"), /MISMATCH: .* by 0\.123456/);
  });

  it("waiting for a report, an operator holds its reveal back only in the first half of the reveal window, and not once another revealed", async () => {
    // A clock that never reaches the end of the report window: only the blocks end the hold.
    const waiting = (i: number, reportWindowMs: number, tag: string) =>
      createOperator(
        options(i, { reportWindowMs, now: () => 0, stateFile: join(TMP, `holder-${tag}-${i}.json`) }),
      );
    const request = async () =>
      (await requestInference(chain, { modelId, version: VERSION, input: DROUGHT }, REQUESTER)).requestId;
    const kinds = async (op: InferenceOperator) => (await op.step()).actions.map((x) => x.type);

    // Blocks come on their own (the test mines them); both operators wait for a report that never comes.
    const [x, y] = [await waiting(1, 60_000, "half"), await waiting(2, 60_000, "half")] as const;
    const id = await request();
    assert.deepEqual(await kinds(x), ["committed"]);
    assert.deepEqual(await kinds(y), ["committed"]);
    const w = await getRequestStatus(oracle, id);
    await x.mineTo(w.commitDeadline);
    const half = w.commitDeadline + (w.revealDeadline - w.commitDeadline) / 2n;
    for (let next = w.commitDeadline + 1n; next <= half; next++) {
      for (const op of [x, y]) {
        const r = await op.step();
        assert.deepEqual(r.actions, [], `holds with block ${next} next`);
        assert.equal(r.waitingFor, undefined, "a holding operator waits for no height (it never mines)");
      }
      await x.mineTo(next);
    }
    // Half the reveal window is left, a block for each of them.
    assert.deepEqual(await kinds(x), ["revealed"]);
    assert.deepEqual(await kinds(y), ["revealed", "finalized"]);
    assert.equal((await getRequestStatus(oracle, id)).output, honest());
    assert.equal((await slashes(id)).length, 0);

    // One operator's report window is over and it reveals: no report can land after a reveal, so the other
    // stops holding at once, early in the window.
    const [early, holder] = [await waiting(1, 0, "early"), await waiting(2, 60_000, "early")] as const;
    const next = await request();
    assert.deepEqual(await kinds(early), ["committed"]);
    assert.deepEqual(await kinds(holder), ["committed"]);
    const v = await getRequestStatus(oracle, next);
    await early.mineTo(v.commitDeadline);
    assert.deepEqual(await kinds(holder), [], "holds before anyone revealed");
    assert.deepEqual(await kinds(early), ["revealed"]);
    assert.deepEqual(await kinds(holder), ["revealed", "finalized"]);
    assert.equal((await getRequestStatus(oracle, next)).output, honest());
    assert.equal((await slashes(next)).length, 0);
  });

  it("a waiting operator says whether another may still act (so that a development chain's miner waits for it, or not)", async () => {
    // The faulty operator was slashed below the minimum stake: the two honest ones are the active set.
    assert.equal(await activeOperatorCount(oracle, modelId, VERSION), 2);
    const fresh = (i: number) => createOperator(options(i, { stateFile: join(TMP, `peers-${i}.json`) }));
    const px = await fresh(1);
    const py = await fresh(2);
    const { requestId } = await requestInference(
      chain,
      { modelId, version: VERSION, input: DROUGHT },
      REQUESTER,
    );
    const w = await getRequestStatus(oracle, requestId);

    let r = await px.step();
    assert.deepEqual(
      r.actions.map((e) => e.type),
      ["committed"],
    );
    assert.equal(r.waitingFor, w.commitDeadline);
    assert.equal(r.waitingOnPeers, true, "an active operator has not committed yet");
    r = await py.step();
    assert.deepEqual(
      r.actions.map((e) => e.type),
      ["committed"],
    );
    assert.equal(r.waitingOnPeers, false, "every active operator committed: nobody is left to wait for");
    assert.equal((await px.step()).waitingOnPeers, false);

    await px.mineTo(w.commitDeadline);
    r = await px.step();
    assert.deepEqual(
      r.actions.map((e) => e.type),
      ["revealed"],
    );
    assert.equal(r.waitingFor, w.revealDeadline);
    assert.equal(r.waitingOnPeers, true, "a committed operator has not revealed yet");
    r = await py.step();
    assert.deepEqual(
      r.actions.map((e) => e.type),
      ["revealed", "finalized"],
    );
    assert.equal((await getRequestStatus(oracle, requestId)).output, honest());
    assert.equal((await slashes(requestId)).length, 0);
    r = await px.step();
    assert.deepEqual(
      r.actions.map((e) => e.type),
      ["settled"],
    );
    assert.equal(r.waitingFor, undefined);
    assert.equal(r.waitingOnPeers, false);
  });
});
