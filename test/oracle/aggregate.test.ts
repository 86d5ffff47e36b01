import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type Address,
  encodeAbiParameters,
  type Hex,
  hexToBigInt,
  keccak256,
  maxInt256,
  maxUint256,
  minInt256,
  parseEther,
  parseEventLogs,
  stringToHex,
  type TransactionReceipt,
  toHex,
} from "viem";
import { slashAmount } from "../../src/chain/bps.ts";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { InferenceOracle, MindToken, ModelRegistry } from "../../src/chain/generated/contracts.ts";
import { sendAndWait } from "../../src/chain/tx.ts";
import {
  AGGREGATION_INDEX,
  type AggregationMode,
  aggregate,
  deviates,
  reportShares,
  settle,
} from "../../src/oracle/aggregate.ts";
import { bareVersion } from "../contracts/bare-version.ts";

describe("aggregate (pure)", () => {
  const equal = (...outputs: bigint[]) => outputs.map((output) => ({ output, weight: 1n }));

  it("median: the value with more than half of the stake at or below it and at or above it", () => {
    assert.equal(aggregate(equal(5n), "median"), 5n);
    assert.equal(aggregate(equal(3n, 1n, 2n), "median"), 2n);
    assert.equal(aggregate(equal(-5n, 10n, -7n, 0n, 10n), "median"), 0n);
    assert.equal(aggregate(equal(maxInt256, minInt256, 0n), "median"), 0n);
    // Stake decides, not heads: one operator holding most of the stake is the median alone.
    const weighted = [
      { output: 1n, weight: 10n },
      { output: 2n, weight: 1n },
      { output: 3n, weight: 1n },
    ];
    assert.equal(aggregate(weighted, "median"), 1n);
    assert.equal(
      aggregate(
        [
          { output: 4n, weight: 1n },
          { output: 1n, weight: 1n },
          { output: 3n, weight: 1n },
          { output: 2n, weight: 2n },
        ],
        "median",
      ),
      2n,
    );
  });

  it("median: an even split of the stake has no result (the lower middle value no longer decides)", () => {
    assert.equal(aggregate(equal(4n, 1n, 3n, 2n), "median"), undefined);
    assert.equal(aggregate(equal(maxInt256, minInt256), "median"), undefined);
    assert.equal(aggregate(equal(1n, 1n, 2n, 2n), "median"), undefined);
    // One wei of stake breaks the tie.
    assert.equal(
      aggregate(
        [
          { output: 1n, weight: 5n },
          { output: 2n, weight: 6n },
        ],
        "median",
      ),
      2n,
    );
  });

  it("majority: the label with more than half of the stake, else none", () => {
    assert.equal(aggregate(equal(9n, 9n, 4n), "majority"), 9n);
    assert.equal(aggregate(equal(-1n, 3n, 3n, -1n, 3n), "majority"), 3n);
    assert.equal(aggregate(equal(2n, 1n, 2n, 1n, 3n), "majority"), undefined);
    assert.equal(aggregate(equal(7n, 6n, 5n), "majority"), undefined);
    assert.equal(
      aggregate(
        [
          { output: 1n, weight: 3n },
          { output: 2n, weight: 1n },
          { output: 3n, weight: 1n },
        ],
        "majority",
      ),
      1n,
    );
    assert.throws(() => aggregate([], "majority"), /zero outputs/);
  });

  it("deviates: beyond the tolerance for the median, any other label for the majority", () => {
    assert.equal(deviates(150n, 100n, 50n, "median"), false);
    assert.equal(deviates(151n, 100n, 50n, "median"), true);
    assert.equal(deviates(49n, 100n, 50n, "median"), true);
    // The widest distance, 2^256 - 1, still fits the contract's uint256 tolerance.
    assert.equal(deviates(maxInt256, minInt256, maxUint256, "median"), false);
    assert.equal(deviates(minInt256, maxInt256, maxUint256 - 1n, "median"), true);
    assert.equal(deviates(3n, 2n, 1_000n, "majority"), true);
    assert.equal(deviates(2n, 2n, 0n, "majority"), false);
  });

  it("settle slashes deviating then silent operators and splits fee + slash, remainder to the first", () => {
    const stakes = { a: 1_000n, b: 2_000n, c: 3_001n, d: 999n };
    const s = settle({
      reveals: [
        { operator: "a", output: 100n },
        { operator: "b", output: 300n },
        { operator: "c", output: 110n },
      ],
      committedNotRevealed: ["d"],
      stakes,
      fee: 100n,
      tolerance: 20n,
      slashBps: 1_000,
      mode: "median",
      minResponses: 3,
      stakeBase: 7_000n,
    });
    assert.equal(s.status, "finalized");
    assert.equal(s.result, 110n);
    assert.deepEqual(s.agreeing, ["a", "c"]);
    assert.deepEqual(s.slashed, [
      { operator: "b", amount: 200n },
      { operator: "d", amount: 99n },
    ]);
    // pot = 100 + 200 + 99 = 399: 199 each, the remainder 1 to a.
    assert.deepEqual(s.shares, [
      { operator: "a", amount: 200n },
      { operator: "c", amount: 199n },
    ]);
    assert.equal(s.requesterCredit, 0n);
    assert.equal(s.totalSlashed, 299n);
  });

  it("settle refunds the fee and silent operators' slashes when too few reveal", () => {
    const s = settle({
      reveals: [{ operator: "a", output: 1n }],
      committedNotRevealed: ["b", "c"],
      stakes: new Map([
        ["a", 10_000n],
        ["b", 10_000n],
        ["c", 5_555n],
      ]),
      fee: 7n,
      tolerance: 0n,
      slashBps: 2_500,
      mode: "majority",
      minResponses: 2,
      stakeBase: 25_555n,
    });
    assert.equal(s.status, "failed");
    assert.equal(s.failure, "too-few-reveals");
    assert.equal(s.result, undefined);
    assert.deepEqual(s.slashed, [
      { operator: "b", amount: 2_500n },
      { operator: "c", amount: 1_388n },
    ]);
    assert.equal(s.requesterCredit, 7n + 2_500n + 1_388n);
    assert.equal(slashAmount(5_555n, 2_500), 1_388n);
  });

  it("settle fails a request whose reveals hold half of the stake base or less", () => {
    const s = settle({
      reveals: [
        { operator: "a", output: 1n },
        { operator: "b", output: 1n },
      ],
      committedNotRevealed: [],
      stakes: { a: 1_000n, b: 1_500n },
      fee: 9n,
      tolerance: 0n,
      slashBps: 1_000,
      mode: "median",
      minResponses: 2,
      stakeBase: 5_000n,
    });
    assert.equal(s.status, "failed");
    assert.equal(s.failure, "too-few-reveals");
    assert.equal(s.requesterCredit, 9n);
    assert.deepEqual(s.slashed, []);
  });

  it("settle voids a split: the fee is refunded, no revealer is slashed, a silent committer is", () => {
    const s = settle({
      reveals: [
        { operator: "a", output: 500_000n },
        { operator: "b", output: 500_000n },
        { operator: "c", output: 999_999n },
        { operator: "d", output: 999_999n },
      ],
      committedNotRevealed: ["e"],
      stakes: { a: 1_000n, b: 1_000n, c: 1_000n, d: 1_000n, e: 1_000n },
      fee: 10n,
      tolerance: 50_000n,
      slashBps: 1_000,
      mode: "median",
      minResponses: 3,
      stakeBase: 5_000n,
    });
    assert.equal(s.status, "failed");
    assert.equal(s.failure, "split");
    assert.deepEqual(s.slashed, [{ operator: "e", amount: 100n }]);
    assert.equal(s.requesterCredit, 110n);
    assert.deepEqual(s.shares, []);
  });

  it("settle fails a result that operators holding no more than half of the active stake agree with", () => {
    // Three of seven lie; two honest reveal and two miss: the lie is the revealed median, but 3/7 agree with it.
    const input = {
      reveals: [
        { operator: "c1", output: 900_000n },
        { operator: "h1", output: 500_000n },
        { operator: "c2", output: 900_000n },
        { operator: "h2", output: 500_000n },
        { operator: "c3", output: 900_000n },
      ],
      committedNotRevealed: [],
      stakes: { c1: 1_000n, c2: 1_000n, c3: 1_000n, h1: 1_000n, h2: 1_000n },
      fee: 10n,
      tolerance: 50_000n,
      slashBps: 1_000,
      mode: "median" as const,
      minResponses: 2,
      stakeBase: 7_000n,
    };
    const s = settle(input);
    assert.equal(s.status, "failed");
    assert.equal(s.failure, "too-little-agreement");
    assert.deepEqual(s.slashed, [], "nobody is provably wrong");
    assert.equal(s.requesterCredit, 10n);
    // With only the revealers active, the same answers decide (3/5 of the stake agree).
    assert.equal(settle({ ...input, stakeBase: 5_000n }).result, 900_000n);
  });

  it("reportShares gives the remainder to the first signer", () => {
    assert.deepEqual(reportShares(10n, ["x", "y", "z"]), [
      { operator: "x", amount: 4n },
      { operator: "y", amount: 3n },
      { operator: "z", amount: 3n },
    ]);
    assert.deepEqual(reportShares(5n, []), []);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The mirror against the contract, on the same random inputs
// ---------------------------------------------------------------------------------------------------------

const abi = InferenceOracle.abi;
const PARAMS = {
  minStake: parseEther("100"),
  commitWindow: 30,
  revealWindow: 30,
  minResponses: 3,
  tolerance: 50_000n,
  slashBps: 1_500,
  callbackGasLimit: 100_000,
  maxOperators: 9,
};
const OPERATORS = [1, 2, 3, 4, 5, 6, 7, 8, 9];
const REQUESTER = 10;
const OWNER = 11;
const CASES = 24;
const SEED = Number(process.env.ORACLE_MIRROR_SEED ?? 20240611);
const ZERO32 = `0x${"0".repeat(64)}` as Hex;

/** mulberry32: a small seeded generator, so a failing case can be replayed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const shuffle = <T>(xs: T[]): T[] => {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = int(0, i);
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  };
  return { next, int, shuffle };
}

let chain: LedgerChain;
let oracle: Address;
let token: Address;
const MODEL = 1n;

function addr(i: number): Address {
  const a = chain.accounts[i];
  if (!a) throw new Error(`no dev account #${i}`);
  return a.address;
}

async function send(i: number, functionName: string, args: readonly unknown[]): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    chain.wallet(i).writeContract({ address: oracle, abi, functionName, args } as never),
  );
}

async function advanceTo(target: number): Promise<void> {
  const now = hexToBigInt((await chain.publicClient.request({ method: "eth_blockNumber" } as never)) as Hex);
  if (BigInt(target) > now) {
    await chain.publicClient.request({
      method: "hardhat_mine",
      params: [toHex(BigInt(target) - now)],
    } as never);
  }
}

function info(i: number) {
  return chain.publicClient.readContract({
    address: oracle,
    abi,
    functionName: "operatorInfo",
    args: [MODEL, 1, addr(i)],
  });
}

function withdrawable(a: Address): Promise<bigint> {
  return chain.publicClient.readContract({ address: oracle, abi, functionName: "withdrawable", args: [a] });
}

interface Case {
  mode: AggregationMode;
  fee: bigint;
  /** In commit order. */
  answers: { op: number; output: bigint; reveal: boolean }[];
  /** Operators that reveal, in reveal order. */
  revealOrder: number[];
}

function randomCase(r: ReturnType<typeof rng>, index: number): Case {
  const mode: AggregationMode = index % 2 === 0 ? "median" : "majority";
  const n = r.int(3, 9);
  const ops = r.shuffle(OPERATORS).slice(0, n);
  const base = BigInt(r.int(-3_000_000, 3_000_000));
  const labels = r.int(2, 4);
  // Mostly revealing; about one case in six ends with too few reveals.
  const silentRate = r.next() < 0.17 ? 0.7 : 0.15;
  const answers = ops.map((op) => {
    let output: bigint;
    if (mode === "median") {
      const outlier = r.next() < 0.15;
      output = base + BigInt(outlier ? r.int(-20_000_000, 20_000_000) : r.int(-90_000, 90_000));
    } else {
      output = BigInt(r.int(0, labels - 1));
    }
    return { op, output, reveal: r.next() >= silentRate };
  });
  const fee = BigInt(r.int(0, 1_000_000)) * 10n ** 12n + BigInt(r.int(0, 999_999));
  const revealOrder = r.shuffle(answers.filter((a) => a.reveal).map((a) => a.op));
  return { mode, fee, answers, revealOrder };
}

/** Extremes: the whole int256 range, to check that the contract's distance neither overflows nor wraps. */
const EXTREME: Case = {
  mode: "median",
  fee: 1_000_003n,
  answers: [
    { op: 1, output: maxInt256, reveal: true },
    { op: 2, output: minInt256, reveal: true },
    { op: 3, output: 0n, reveal: true },
    { op: 4, output: 50_000n, reveal: true },
    { op: 5, output: -50_001n, reveal: true },
  ],
  revealOrder: [5, 1, 3, 2, 4],
};

before(async () => {
  chain = await connect({ ephemeral: true });
  const manifest = await deployAll(chain);
  token = manifest.contracts.MindToken.address;
  const registry = manifest.contracts.ModelRegistry.address;
  const owner = chain.wallet(OWNER);
  await sendAndWait(chain, () =>
    owner.writeContract({
      address: registry,
      abi: ModelRegistry.abi,
      functionName: "registerModel",
      args: ["m"],
    }),
  );
  await sendAndWait(chain, () =>
    owner.writeContract({
      address: registry,
      abi: ModelRegistry.abi,
      functionName: "addVersion",
      args: [MODEL, bareVersion("mirror-weights")],
    }),
  );
  const deployer = chain.wallet(0);
  const deployed = await sendAndWait(chain, () =>
    deployer.deployContract({ abi, bytecode: InferenceOracle.bytecode, args: [token, registry, PARAMS] }),
  );
  oracle = deployed.contractAddress as Address;
  await send(OWNER, "setModelSpec", [MODEL, 1, 2]);
  const r = rng(SEED ^ 0x5eed);
  for (const i of [...OPERATORS, REQUESTER]) {
    await sendAndWait(chain, () =>
      deployer.writeContract({
        address: token,
        abi: MindToken.abi,
        functionName: "transfer",
        args: [addr(i), parseEther("100000")],
      }),
    );
    await sendAndWait(chain, () =>
      chain.wallet(i).writeContract({
        address: token,
        abi: MindToken.abi,
        functionName: "approve",
        args: [oracle, maxUint256],
      }),
    );
  }
  for (const i of OPERATORS) {
    const stake = parseEther(String(r.int(100, 5_000))) + BigInt(r.int(0, 1_000_000_007));
    await send(i, "registerOperator", [MODEL, 1, stake]);
  }
});

after(async () => {
  await chain?.close();
});

async function runCase(given: Case): Promise<void> {
  // Operators slashed below the minimum by earlier cases may no longer commit: they sit this one out.
  const active = new Set<number>();
  for (const a of given.answers) if ((await info(a.op)).stake >= PARAMS.minStake) active.add(a.op);
  const c: Case = {
    ...given,
    answers: given.answers.filter((a) => active.has(a.op)),
    revealOrder: given.revealOrder.filter((op) => active.has(op)),
  };
  const requested = await send(REQUESTER, "request", [
    MODEL,
    1,
    [1n, 2n],
    ZERO32,
    AGGREGATION_INDEX[c.mode],
    c.fee,
  ]);
  const [log] = parseEventLogs({ abi, logs: requested.logs, eventName: "InferenceRequested" });
  assert.ok(log);
  const id = log.args.requestId;
  const salt = (op: number) => keccak256(stringToHex(`mirror:${id}:${op}`));
  const outputOf = new Map(c.answers.map((a) => [a.op, a.output]));
  for (const a of c.answers) {
    const commitment = keccak256(
      encodeAbiParameters(
        [{ type: "uint256" }, { type: "address" }, { type: "int256" }, { type: "bytes32" }],
        [id, addr(a.op), a.output, salt(a.op)],
      ),
    );
    await send(a.op, "commit", [id, commitment]);
  }
  const req = await chain.publicClient.readContract({
    address: oracle,
    abi,
    functionName: "getRequest",
    args: [id],
  });
  await advanceTo(req.commitDeadline);
  for (const op of c.revealOrder) await send(op, "reveal", [id, outputOf.get(op), salt(op)]);
  if (c.revealOrder.length < c.answers.length) await advanceTo(req.revealDeadline);

  const before = new Map<number, { stake: bigint; fees: bigint }>();
  for (const a of c.answers) {
    const x = await info(a.op);
    before.set(a.op, { stake: x.stake, fees: x.fees });
  }
  const owed = await withdrawable(addr(REQUESTER));
  const stakeBase = await chain.publicClient.readContract({
    address: oracle,
    abi,
    functionName: "stakeBase",
    args: [id],
  });
  const finalized = await send(REQUESTER, "finalize", [id]);

  const expected = settle({
    reveals: c.revealOrder.map((op) => ({ operator: addr(op), output: outputOf.get(op) as bigint })),
    committedNotRevealed: c.answers.filter((a) => !a.reveal).map((a) => addr(a.op)),
    stakes: new Map(c.answers.map((a) => [addr(a.op), before.get(a.op)?.stake as bigint])),
    fee: c.fee,
    tolerance: PARAMS.tolerance,
    slashBps: PARAMS.slashBps,
    mode: c.mode,
    minResponses: PARAMS.minResponses,
    stakeBase,
  });

  const done = parseEventLogs({ abi, logs: finalized.logs, eventName: "InferenceFinalized" });
  const failed = parseEventLogs({ abi, logs: finalized.logs, eventName: "InferenceFailed" });
  assert.equal(done.length, expected.status === "finalized" ? 1 : 0, "finalized");
  assert.equal(failed.length, expected.status === "failed" ? 1 : 0, "failed");
  if (expected.status === "finalized") {
    const result = await chain.publicClient.readContract({
      address: oracle,
      abi,
      functionName: "getResult",
      args: [id],
    });
    assert.equal(result.output, expected.result, "result");
    assert.equal(done[0]?.args.responders, BigInt(expected.agreeing.length), "responders");
  } else {
    assert.equal(failed[0]?.args.refund, expected.requesterCredit, "refund");
  }
  const slashed = parseEventLogs({ abi, logs: finalized.logs, eventName: "OperatorSlashed" }).map((l) => ({
    operator: l.args.operator,
    amount: l.args.amount,
  }));
  assert.deepEqual(slashed, expected.slashed, "slashes, in order");
  for (const a of c.answers) {
    const now = await info(a.op);
    const was = before.get(a.op) as { stake: bigint; fees: bigint };
    const cut = expected.slashed.find((s) => s.operator === addr(a.op))?.amount ?? 0n;
    const share = expected.shares.find((s) => s.operator === addr(a.op))?.amount ?? 0n;
    assert.equal(now.stake, was.stake - cut, `stake of operator #${a.op}`);
    assert.equal(now.fees, was.fees + share, `fee share of operator #${a.op}`);
    assert.equal(now.pending, 0);
  }
  assert.equal(await withdrawable(addr(REQUESTER)), owed + expected.requesterCredit, "requester credit");
}

describe("aggregate mirrors InferenceOracle.finalize", () => {
  it("on int256 extremes", async () => {
    await runCase(EXTREME);
  });

  it(`on ${CASES} random cases (3-9 operators, median and majority, seed ${SEED})`, async () => {
    const r = rng(SEED);
    const tally = { median: 0, majority: 0, failed: 0, slashed: 0 };
    for (let k = 0; k < CASES; k++) {
      const c = randomCase(r, k);
      try {
        await runCase(c);
      } catch (err) {
        const detail = JSON.stringify(c, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
        throw new Error(`case ${k} (seed ${SEED}) failed: ${detail}`, { cause: err });
      }
      tally[c.mode] += 1;
      if (c.revealOrder.length < PARAMS.minResponses) tally.failed += 1;
      if (c.answers.some((a) => !a.reveal)) tally.slashed += 1;
    }
    assert.ok(tally.median >= 10 && tally.majority >= 10);
    assert.ok(tally.failed >= 1, "at least one case with too few reveals");
  });
});
