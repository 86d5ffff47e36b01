// The attacks of issue 9 on CropInsurance (cases 5, 6, 7 and the insurance parts of 12), each run end to end:
// the attacker's moves are made, and the test shows that nobody honest loses, no payout moves and nothing
// stays locked. Cases 6, 7 and the retry of 12 run against the real InferenceOracle and ModelRegistry; the
// others use the test oracle, whose answers the test decides.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type Abi,
  type Address,
  type Hex,
  maxUint256,
  parseEventLogs,
  stringToHex,
  type TransactionReceipt,
} from "viem";
import { type Manifest, ORACLE_PARAMS } from "../../src/chain/deploy.ts";
import { InferenceOracle } from "../../src/chain/generated/contracts.ts";
import { commitmentOf } from "../../src/oracle/client.ts";
import { addVersion, deprecateVersion, openRegistry, registerModel } from "../../src/registry/client.ts";
import { cidOf, digestFromCid } from "../../src/storage/cid.ts";
import {
  addr,
  balanceOf,
  chain,
  DEFAULT_PARAMS,
  DIGEST,
  E,
  FEATURES,
  Insurer,
  increaseTime,
  insAbi,
  now,
  OWNER,
  type Params,
  read,
  refused,
  STRANGER,
  send,
  setUpChain,
  token,
  tokenAbi,
} from "./crop-insurance-fixture.ts";

/** The insurer's ABI plus the oracle's errors, so that a refusal inside the oracle decodes by name. */
const insOracleAbi = [...insAbi, ...InferenceOracle.abi.filter((item) => item.type === "error")] as Abi;
const oracleAbi = InferenceOracle.abi as Abi;
/** Dev accounts that operate the real oracle (the fixture's roles use 0..11). */
const OPERATORS = [12, 13, 14];
const FARMER = 4;
const STAKE = ORACLE_PARAMS.minStake;
/** No transaction anyone must send may exceed this (issue 9; the local chain does not enforce the cap). */
const GAS_CAP = 10_000_000n;

let manifest: Manifest;
let oracle: Address;
/** The largest gasUsed seen per CropInsurance function, printed at the end for the report. */
const gasSeen = new Map<string, bigint>();

function track(name: string, receipt: TransactionReceipt): TransactionReceipt {
  assert.ok(receipt.gasUsed < GAS_CAP, `${name} used ${receipt.gasUsed} gas`);
  gasSeen.set(
    name,
    receipt.gasUsed > (gasSeen.get(name) ?? 0n) ? receipt.gasUsed : (gasSeen.get(name) ?? 0n),
  );
  return receipt;
}

/** Sends to the insurer with the oracle's errors decodable, and records the gas. */
async function insSend(ins: Insurer, from: number, fn: string, args: readonly unknown[] = []) {
  return track(fn, await send(from, ins.address, insOracleAbi, fn, args));
}

function oracleSend(from: number, fn: string, args: readonly unknown[]) {
  return send(from, oracle, oracleAbi, fn, args);
}

async function mineTo(block: bigint): Promise<void> {
  const current = await chain.publicClient.getBlockNumber({ cacheTime: 0 }); // viem caches it for seconds otherwise
  if (block > current) {
    await (chain.publicClient.request as (a: { method: string; params: unknown[] }) => Promise<unknown>)({
      method: "hardhat_mine",
      params: [`0x${(block - current).toString(16)}`],
    });
  }
}

/** A fresh model version on the real registry, its input size declared, with `operators` staked on it. */
async function liveVersion(
  label: string,
  operators: number[],
): Promise<{ modelId: bigint; version: number; digest: Hex }> {
  const reg = await openRegistry(chain);
  const { modelId } = await registerModel(reg, label);
  const weightsCid = cidOf(new TextEncoder().encode(`weights of ${label}`));
  const { version } = await addVersion(reg, modelId, { weightsCid, licence: "MIT" });
  await oracleSend(OWNER, "setModelSpec", [modelId, version, FEATURES.length]);
  for (const op of operators) {
    await oracleSend(op, "registerOperator", [modelId, version, STAKE]);
  }
  return { modelId, version, digest: digestFromCid(weightsCid) };
}

/**
 * A pool on the real oracle for `model`, funded by underwriter 1 with 1,000 MIND, with one policy of farmer 4
 * (coverage 500 on region 1 of season 1) whose season has ended and whose conditions are reported.
 */
async function insuredSeason(
  model: { modelId: bigint; version: number; digest: Hex },
  params: Partial<Params> = {},
) {
  const ins = await Insurer.deploy(
    { ...DEFAULT_PARAMS, ...params, weightsDigest: model.digest },
    { oracle, ...model },
  );
  await insSend(ins, 1, "fund", [E(1_000), await ins.read<bigint>("previewFund", [E(1_000)])]);
  const end = await ins.openSeason(1, 1_000n);
  const bought = await insSend(ins, FARMER, "buyPolicy", [1, 1, E(500)]);
  const policyId = (
    parseEventLogs({ abi: insAbi, logs: bought.logs, eventName: "PolicyBought" })[0] as {
      args: { policyId: bigint };
    }
  ).args.policyId;
  await increaseTime(end - (await now()));
  await ins.send(OWNER, "reportConditions", [1, 1, FEATURES]);
  return { ins, end, policyId, premium: (await ins.policy(policyId)).premium };
}

/** Commits `output` for each of `committers`, reveals for `revealers` only, and finalizes after the windows. */
async function answer(requestId: bigint, committers: number[], revealers: number[], output: bigint) {
  const salt = (op: number) => stringToHex(`salt ${op}`, { size: 32 });
  for (const op of committers) {
    await oracleSend(op, "commit", [requestId, commitmentOf(requestId, addr(op), output, salt(op))]);
  }
  const r = (await read(oracle, oracleAbi, "getRequest", [requestId])) as {
    commitDeadline: number;
    revealDeadline: number;
  };
  await mineTo(BigInt(r.commitDeadline));
  for (const op of revealers) await oracleSend(op, "reveal", [requestId, output, salt(op)]);
  await mineTo(BigInt(r.revealDeadline));
  return oracleSend(STRANGER, "finalize", [requestId]);
}

/**
 * After an expiry: the farmer's policy refunds exactly its premium, the pool reserves and commits nothing, and
 * the underwriter takes back every token the pool holds (its capital: no fee was ever paid).
 */
async function assertNothingLocked(ins: Insurer, policyId: bigint, premium: bigint): Promise<void> {
  assert.equal(await ins.refund(policyId), premium);
  const farmerBefore = await balanceOf(addr(FARMER));
  track("claim", await ins.send(FARMER, "claim"));
  assert.equal((await balanceOf(addr(FARMER))) - farmerBefore, premium, "the farmer has its premium back");
  const pool = await ins.pool();
  assert.deepEqual([pool.owed, pool.committed, pool.reserved], [0n, 0n, 0n], "nothing stays reserved");
  const underwriterBefore = await balanceOf(addr(1));
  track("withdraw", await ins.send(1, "withdraw", [await ins.read<bigint>("sharesOf", [addr(1)])]));
  assert.equal(
    (await balanceOf(addr(1))) - underwriterBefore,
    E(1_000),
    "the capital is free again, in full",
  );
  assert.equal(await balanceOf(ins.address), 0n);
}

describe("CropInsurance attacks (issue 9)", () => {
  before(async () => {
    manifest = (await setUpChain({ full: true })) as Manifest;
    oracle = manifest.contracts.InferenceOracle.address;
    for (const op of OPERATORS) {
      await send(OWNER, token, tokenAbi, "transfer", [addr(op), E(1_000)]);
      await send(op, token, tokenAbi, "approve", [oracle, maxUint256]);
    }
  });

  after(async () => {
    console.log(
      `largest gasUsed per CropInsurance call: ${JSON.stringify(Object.fromEntries(gasSeen), (_, v) => (typeof v === "bigint" ? Number(v) : v))}`,
    );
    await chain?.close();
  });

  it("attack 5, underwriters leave before a known loss: after a scored total loss of 100, each of two underwriters with 100 gets the same 52, not 102 and 2", async () => {
    const ins = await Insurer.deploy();
    await ins.fund(1, E(100));
    await ins.fund(2, E(100));
    const end = await ins.openSeason(1, 1_000n);
    const policyId = await ins.buy(FARMER, 1, 1, E(100)); // premium 5
    await increaseTime(end - (await now()));
    await ins.send(OWNER, "reportConditions", [1, 1, FEATURES]);
    const requestId = await ins.assess(1, 1); // fee 1: the pool holds 204
    track("onInference (test oracle)", await ins.oracleSend("fulfill", [requestId, 1_000_000n, DIGEST]));

    // The attack: the first underwriter leaves as soon as the loss is scored, before any policy is settled.
    const first = await ins.withdrawAll(1);
    const fair = (E(100) * (E(204) - E(100) + 1n)) / (E(200) + 1n);
    assert.equal(first, fair, "the scored loss is already deducted from the share price");
    assert.ok(first < E(53), `took ${first}, the old price was 102`);

    // The loss is paid in full, and the one who stayed gets the same as the one who left.
    assert.equal(await ins.settle(policyId), E(100));
    const farmerBefore = await balanceOf(addr(FARMER));
    await ins.send(FARMER, "claim");
    assert.equal((await balanceOf(addr(FARMER))) - farmerBefore, E(100));
    const second = await ins.withdrawAll(2);
    assert.ok(second >= first && second - first <= 1n, `first ${first}, second ${second}`);
    assert.ok((await balanceOf(ins.address)) <= 2n, "only rounding dust stays");
  });

  it("attack 5, underwriters leave before a known loss: leaving once a drought is reported, before it is scored, is priced at the worst case and gains nothing", async () => {
    const ins = await Insurer.deploy();
    await ins.fund(1, E(100));
    await ins.fund(2, E(100));
    const end = await ins.openSeason(1, 1_000n);
    const policyId = await ins.buy(FARMER, 1, 1, E(100)); // premium 5; its oracle fee (1) set aside
    await increaseTime(end - (await now()));
    await ins.send(OWNER, "reportConditions", [1, 1, FEATURES]);

    // The attacker reads a total loss in the reported conditions and leaves before the oracle scores it.
    const leaver = await ins.withdrawAll(1);
    const worstCase = (E(100) * (E(205) - E(100) - E(1) + 1n)) / (E(200) + 1n);
    assert.equal(leaver, worstCase, "open coverage counts as lost, and the fee of its assessment as spent");

    // The total loss is scored and paid: the one who stayed is not worse off than the one who left.
    const requestId = await ins.assess(1, 1);
    await ins.oracleSend("fulfill", [requestId, 1_000_000n, DIGEST]);
    assert.equal(await ins.settle(policyId), E(100));
    await ins.send(FARMER, "claim");
    const stayer = await ins.withdrawAll(2);
    assert.ok(stayer >= leaver, `leaver ${leaver}, stayer ${stayer}`);
    assert.ok((await balanceOf(ins.address)) <= 2n, "only rounding dust stays");
  });

  it("attack 5, underwriters leave before a known loss: if the reported drought scores lower than the worst case, the surplus goes to those who stayed", async () => {
    const ins = await Insurer.deploy();
    await ins.fund(1, E(100));
    await ins.fund(2, E(100));
    const end = await ins.openSeason(1, 1_000n);
    const policyId = await ins.buy(FARMER, 1, 1, E(100));
    await increaseTime(end - (await now()));
    await ins.send(OWNER, "reportConditions", [1, 1, FEATURES]);
    const leaver = await ins.withdrawAll(1);
    // A 60 % loss: half the coverage above the 20 % deductible.
    await ins.oracleSend("fulfill", [await ins.assess(1, 1), 600_000n, DIGEST]);
    assert.equal(await ins.settle(policyId), E(50));
    await ins.send(FARMER, "claim");
    const stayer = await ins.withdrawAll(2);
    assert.ok(stayer > leaver + E(40), `leaver ${leaver}, stayer ${stayer}`);
  });

  it("attack 6, refunds stranded in the oracle: the 11 MIND of a failed request (fee and a silent operator's slash) come back to the pool", async () => {
    // Three operators, so that two active ones remain for the retry once the silent one is slashed below the
    // minimum stake (a slashed-out operator no longer counts towards minResponses).
    const model = await liveVersion("attack 6", OPERATORS);
    const { ins, policyId } = await insuredSeason(model);
    const before = await ins.pool();
    const requestId = (
      parseEventLogs({
        abi: insAbi,
        logs: (await insSend(ins, STRANGER, "assess", [1, 1])).logs,
        eventName: "AssessmentRequested",
      })[0] as { args: { requestId: bigint } }
    ).args.requestId;
    // Both operators commit; one never reveals: too few reveals, the request fails and refunds the requester.
    const finalized = await answer(requestId, OPERATORS.slice(0, 2), OPERATORS.slice(0, 1), 700_000n);
    const [failed] = parseEventLogs({
      abi: InferenceOracle.abi,
      logs: finalized.logs,
      eventName: "InferenceFailed",
    });
    const slash = (STAKE * BigInt(ORACLE_PARAMS.slashBps)) / 10_000n;
    assert.equal(failed?.args.refund, E(1) + slash);
    assert.equal(E(1) + slash, E(11), "the issue's scenario: a 1 MIND fee and a 10 MIND slash");
    assert.equal(
      await read(oracle, oracleAbi, "withdrawable", [ins.address]),
      E(11),
      "stranded in the oracle",
    );

    // Anyone pulls them back into the pool's capital.
    const receipt = await insSend(ins, STRANGER, "collectOracleRefunds");
    const [collected] = parseEventLogs({
      abi: insAbi,
      logs: receipt.logs,
      eventName: "OracleRefundsCollected",
    });
    assert.equal(collected?.args.amount, E(11));
    assert.equal(await read(oracle, oracleAbi, "withdrawable", [ins.address]), 0n);
    const after = await ins.pool();
    assert.equal(after.balance - before.balance, E(10), "the fee came back, and the slash with it");
    await refused(ins.send(STRANGER, "collectOracleRefunds"), "NothingToCollect");

    // The region-season is still assessable: the honest operators answer the retry and the policy pays.
    const retry = await insSend(ins, STRANGER, "assess", [1, 1]);
    const [requested] = parseEventLogs({ abi: insAbi, logs: retry.logs, eventName: "AssessmentRequested" });
    const done = await answer(
      requested?.args.requestId as bigint,
      [OPERATORS[0], OPERATORS[2]] as number[],
      [OPERATORS[0], OPERATORS[2]] as number[],
      600_000n,
    );
    track("finalize with the pool's callback", done);
    assert.equal((await ins.assessment(1, 1)).score, 600_000);
    const settled = await insSend(ins, STRANGER, "settle", [policyId]);
    const [paid] = parseEventLogs({ abi: insAbi, logs: settled.logs, eventName: "PolicySettled" });
    assert.equal(paid?.args.payout, E(250));
  });

  it("attack 7, policies stuck by a deprecated model version: after the assessment window anyone expires them, premiums are refunded and the capital is free", async () => {
    const model = await liveVersion("attack 7 deprecated", OPERATORS.slice(0, 2));
    const { ins, end, policyId, premium } = await insuredSeason(model);
    // The model's owner deprecates the version the pool is priced on: the oracle refuses every request.
    await deprecateVersion(await openRegistry(chain), model.modelId, model.version, "superseded");
    await refused(insSend(ins, STRANGER, "assess", [1, 1]), "DeprecatedModelVersion", [
      model.modelId,
      model.version,
    ]);
    const deadline = end + DEFAULT_PARAMS.assessmentWindow;
    await refused(ins.send(STRANGER, "expire", [1, 1]), "AssessmentStillOpen", [1, 1, deadline]);
    await increaseTime(deadline - (await now()));
    const receipt = await insSend(ins, STRANGER, "expire", [1, 1]);
    const [expired] = parseEventLogs({ abi: insAbi, logs: receipt.logs, eventName: "AssessmentExpired" });
    assert.deepEqual([expired?.args.coverage, expired?.args.premiums], [E(500), premium]);
    await assertNothingLocked(ins, policyId, premium);
  });

  it("attack 7, policies stuck when operators fall below minResponses: after the assessment window anyone expires them, premiums are refunded and the capital is free", async () => {
    const model = await liveVersion("attack 7 operators", OPERATORS.slice(0, 2));
    const { ins, end, policyId, premium } = await insuredSeason(model);
    // One of the two operators leaves: fewer than minResponses (2) remain, and every request is refused.
    await oracleSend(OPERATORS[1] as number, "exitOperator", [model.modelId, model.version]);
    await refused(insSend(ins, STRANGER, "assess", [1, 1]), "NotEnoughOperators");
    await increaseTime(end + DEFAULT_PARAMS.assessmentWindow - (await now()));
    await insSend(ins, STRANGER, "expire", [1, 1]);
    await assertNothingLocked(ins, policyId, premium);
  });

  it("attack 12, buying a policy once the season's weather is known: sales close salesCloseBefore seconds before its end", async () => {
    const ins = await Insurer.deploy();
    await ins.fund(1, E(1_000));
    const end = await ins.openSeason(1, 1_000n);
    const salesClose = end - DEFAULT_PARAMS.salesCloseBefore;
    await increaseTime(salesClose - (await now()));
    const before = await ins.pool();
    await refused(ins.send(FARMER, "buyPolicy", [1, 1, E(100)]), "SalesClosed", [1, salesClose]);
    assert.deepEqual(await ins.pool(), before, "no coverage sold, no premium taken");
  });

  it("attack 12, renewing a live request so the pool pays the fee twice: refused while the oracle holds it open, however long", async () => {
    const model = await liveVersion("attack 12 retry", OPERATORS.slice(0, 2));
    const { ins, policyId } = await insuredSeason(model, { assessmentWindow: 30n * 86_400n });
    const first = await insSend(ins, STRANGER, "assess", [1, 1]);
    const [requested] = parseEventLogs({ abi: insAbi, logs: first.logs, eventName: "AssessmentRequested" });
    const requestId = requested?.args.requestId as bigint;
    const balance = (await ins.pool()).balance;
    // Hours pass (the old `retryAfter` was one): the request is still open at the oracle, so no renewal.
    await increaseTime(6 * 3600);
    await refused(ins.send(STRANGER, "assess", [1, 1]), "AssessmentPending", [requestId]);
    assert.equal((await ins.pool()).balance, balance, "no second fee");
    // The operators answer the original request, and it scores the region-season.
    await answer(requestId, OPERATORS.slice(0, 2), OPERATORS.slice(0, 2), 1_000_000n);
    assert.equal(await ins.settle(policyId), E(500));
    await refused(ins.send(STRANGER, "assess", [1, 1]), "AlreadyAssessed", [1, 1]);
  });

  it("attack 12, front-running a deposit to mint the depositor fewer shares: fund's minShares refuses it", async () => {
    const ins = await Insurer.deploy();
    await ins.fund(1, E(1_000));
    const amount = E(500);
    const quoted = await ins.read<bigint>("previewFund", [amount]);
    // The attacker moves the share price up (a donation) between the quote and the deposit.
    await send(2, token, tokenAbi, "transfer", [ins.address, E(1_000)]);
    const before = await balanceOf(addr(3));
    await refused(ins.send(3, "fund", [amount, quoted]), "TooFewShares");
    assert.equal(await balanceOf(addr(3)), before, "the depositor keeps its tokens");
    assert.equal(await ins.read("sharesOf", [addr(3)]), 0n);
  });
});
