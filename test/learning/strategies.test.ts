import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type * as tf from "@tensorflow/tfjs";
import { signFlip } from "../../src/learning/adversaries.ts";
import { fedAvg } from "../../src/learning/fedavg.ts";
import { DEFAULT_PROXIMAL_MU, fedProx } from "../../src/learning/fedprox.ts";
import { STRATEGY_NAMES, type StrategyOptions, strategyByName } from "../../src/learning/index.ts";
import { krum, krumSelect, multiKrum } from "../../src/learning/krum.ts";
import { median } from "../../src/learning/median.ts";
import {
  type Address,
  AggregationError,
  type ClientUpdate,
  divRoundBig,
  divRoundNumber,
  IncompatibleUpdateError,
  leaveOneOutMeans,
  type Strategy,
  squaredDistance,
  weightedMeanOfDeltas,
} from "../../src/learning/strategy.ts";
import { trimCount, trimmedMean } from "../../src/learning/trimmed-mean.ts";
import { initBackend } from "../../src/ml/backend.ts";
import {
  type CanonicalModel,
  decodeModel,
  encodeCanonical,
  encodeModel,
  MAX_INT,
  type ModelTensor,
  toFloatTensors,
} from "../../src/ml/encoding.ts";
import { loadMnist } from "../../src/ml/mnist.ts";
import { createModel, getWeights, initialWeights, setWeights } from "../../src/ml/models.ts";
import {
  createRng,
  type Dataset,
  partitionIid,
  type Rng,
  shuffleInPlace,
  subset,
} from "../../src/ml/partition.ts";
import { evaluate, trainModel } from "../../src/ml/train.ts";

const ARCH = "test-6";

/** A model of architecture ARCH: tensor "w" [2, 2] and "b" [k - 4] from a flat list of ints. */
function mk(ints: readonly number[], scaleBits = 8, architecture = ARCH): CanonicalModel {
  return {
    architecture,
    scaleBits,
    tensors: [
      { name: "w", shape: [2, 2], ints: Int32Array.from(ints.slice(0, 4)) },
      { name: "b", shape: [ints.length - 4], ints: Int32Array.from(ints.slice(4)) },
    ],
  };
}

function flat(model: CanonicalModel): number[] {
  return model.tensors.flatMap((t) => Array.from(t.ints));
}

function address(rng: Rng): Address {
  let hex = "";
  for (let i = 0; i < 5; i++) hex += rng.nextUint32().toString(16).padStart(8, "0");
  return `0x${hex}`;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** Random updates around `global`: deltas uniform in [-spread, spread]. */
function randomUpdates(global: CanonicalModel, count: number, seed: number, spread = 1000): ClientUpdate[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => ({
    participant: address(rng),
    samples: 1 + rng.int(1000),
    model: mk(
      flat(global).map((g) => g + rng.int(2 * spread + 1) - spread),
      global.scaleBits,
    ),
  }));
}

const OPTIONS: Record<string, StrategyOptions> = { krum: { f: 2 }, "multi-krum": { f: 2, m: 4 } };

describe("strategies: exact integer arithmetic", () => {
  it("leaveOneOutMeans equals weightedMeanOfDeltas of each subset, bit for bit, on both paths", () => {
    const global = mk([10, -20, 30, 0, 5, 7]);
    for (const [spread, seed] of [
      [1000, 1],
      [2 ** 30, 2],
    ] as const) {
      const updates = randomUpdates(global, 7, seed, spread);
      const models = updates.map((u) => u.model);
      const weights = updates.map((u) => u.samples * (spread > 1000 ? 2 ** 20 : 1));
      const without = leaveOneOutMeans(global, models, weights);
      for (let k = 0; k < models.length; k++) {
        const expected = weightedMeanOfDeltas(
          global,
          models.filter((_, j) => j !== k),
          weights.filter((_, j) => j !== k),
        );
        assert.deepEqual(flat(without(k)), flat(expected), `spread ${spread}, without ${k}`);
      }
    }
    assert.throws(() => leaveOneOutMeans(global, [global], [1]), AggregationError);
  });

  it("round half away from zero, exact in Number and BigInt", () => {
    const cases: [number, number, number][] = [
      [3, 6, 1],
      [-3, 6, -1],
      [1, 6, 0],
      [-1, 6, 0],
      [5, 2, 3],
      [-5, 2, -3],
      [7, 7, 1],
      [0, 5, 0],
      [2 ** 50 + 1, 2, 2 ** 49 + 1],
      [-(2 ** 50) - 1, 2, -(2 ** 49) - 1],
    ];
    for (const [p, q, want] of cases) {
      assert.equal(divRoundNumber(p, q), want, `${p}/${q}`);
      assert.equal(divRoundBig(BigInt(p), BigInt(q)), BigInt(want), `${p}/${q} big`);
    }
    // Random agreement between the two paths near the Number bound.
    const rng = createRng(5);
    for (let i = 0; i < 2000; i++) {
      const q = 1 + rng.int(2 ** 20);
      const p = (rng.int(2 ** 21) * 2 ** 30 + (rng.nextUint32() % 2 ** 30)) * (rng.next() < 0.5 ? -1 : 1);
      assert.equal(BigInt(divRoundNumber(p, q)), divRoundBig(BigInt(p), BigInt(q)));
    }
  });

  it("squaredDistance equals a plain BigInt sum, including extreme ints", () => {
    const rng = createRng(9);
    for (let trial = 0; trial < 20; trial++) {
      const big = trial % 2 === 0;
      const draw = () =>
        big ? (rng.nextUint32() % MAX_INT) * (rng.next() < 0.5 ? -1 : 1) : rng.int(2 ** 27) - 2 ** 26;
      const a = mk(Array.from({ length: 4000 }, draw));
      const b = mk(Array.from({ length: 4000 }, draw));
      let want = 0n;
      const bs = flat(b);
      flat(a).forEach((v, i) => {
        const d = BigInt(v) - BigInt(bs[i] as number);
        want += d * d;
      });
      assert.equal(squaredDistance(a, b), want);
    }
    assert.equal(
      squaredDistance(mk([MAX_INT, 0, 0, 0, 0]), mk([-MAX_INT, 0, 0, 0, 0])),
      (2n * BigInt(MAX_INT)) ** 2n,
    );
  });
});

describe("FedAvg", () => {
  it("equals the hand-computed sample-weighted mean of deltas, ties rounded away from zero", () => {
    const global = mk([10, -10, 0, 100, 0, 0]);
    const updates: ClientUpdate[] = [
      { participant: `0x${"1".repeat(40)}`, samples: 1, model: mk([16, -10, 3, 100, 0, 0]) },
      { participant: `0x${"2".repeat(40)}`, samples: 2, model: mk([10, -4, 3, 101, 0, 0]) },
      { participant: `0x${"3".repeat(40)}`, samples: 3, model: mk([10, -10, 3, 99, 1, -1]) },
    ];
    // deltas * samples summed: [6, 12, 18, 2 - 3, 3, -3] / 6 = [1, 2, 3, -1/6, 1/2, -1/2]
    assert.deepEqual(flat(fedAvg().aggregate(global, updates)), [11, -8, 3, 100, 1, -1]);
  });

  it("takes the BigInt path for huge sample counts and values, with the same result a BigInt reference gives", () => {
    const global = mk([MAX_INT, -MAX_INT, 0, 12345, 7]);
    const updates: ClientUpdate[] = [
      {
        participant: `0x${"a".repeat(40)}`,
        samples: 2 ** 45 + 3,
        model: mk([-MAX_INT, MAX_INT, -MAX_INT, 1, 8]),
      },
      {
        participant: `0x${"b".repeat(40)}`,
        samples: 2 ** 44 + 1,
        model: mk([MAX_INT, MAX_INT, MAX_INT, -7, 6]),
      },
      { participant: `0x${"c".repeat(40)}`, samples: 1, model: mk([0, 0, 5, 99999, 7]) },
    ];
    const total = updates.reduce((s, u) => s + BigInt(u.samples), 0n);
    const want = flat(global).map((g, i) => {
      let sum = 0n;
      for (const u of updates) sum += BigInt(u.samples) * (BigInt(flat(u.model)[i] as number) - BigInt(g));
      return g + Number(divRoundBig(sum, total));
    });
    const got = fedAvg().aggregate(global, updates);
    assert.deepEqual(flat(got), want);
    for (const v of flat(got)) assert.ok(Math.abs(v) <= MAX_INT);
    encodeCanonical(got); // still canonical
  });

  it("returns the global exactly when every update is the global, sharing no arrays", () => {
    const global = mk([1, 2, 3, 4, 5, 6]);
    const updates = randomUpdates(global, 4, 3, 0);
    for (const name of STRATEGY_NAMES) {
      const out = strategyByName(name, name === "krum" || name === "multi-krum" ? { f: 0 } : {}).aggregate(
        global,
        updates,
      );
      assert.equal(hex(encodeCanonical(out)), hex(encodeCanonical(global)), name);
      for (const t of out.tensors) {
        assert.ok(!global.tensors.some((g) => g.ints === t.ints));
        assert.ok(!updates.some((u) => u.model.tensors.some((m) => m.ints === t.ints)), `${name} aliases`);
      }
    }
  });

  it("FedProx aggregates to the same bytes as FedAvg and hands clients mu and the global weights", () => {
    const global = mk([5, -5, 100, 0, 3, 3, 3]);
    const updates = randomUpdates(global, 6, 11);
    const prox = fedProx();
    assert.equal(prox.proximalMu, DEFAULT_PROXIMAL_MU);
    assert.equal(
      hex(encodeCanonical(prox.aggregate(global, updates))),
      hex(encodeCanonical(fedAvg().aggregate(global, updates))),
    );
    const options = fedProx({ mu: 0.5 }).clientTrainOptions(global);
    assert.equal(options.proximalMu, 0.5);
    assert.deepEqual(Array.from(options.globalWeights[0]?.values ?? []), [5 / 256, -5 / 256, 100 / 256, 0]);
    assert.throws(() => fedProx({ mu: -1 }), RangeError);
  });
});

describe("determinism", () => {
  it("shuffled input order and repeated runs give byte-identical results for every strategy", () => {
    const global = mk(Array.from({ length: 40 }, (_, i) => ((i * 7919) % 2001) - 1000));
    const updates = randomUpdates(global, 9, 21);
    const rng = createRng(77);
    for (const name of STRATEGY_NAMES) {
      const strategy = strategyByName(name, OPTIONS[name]);
      assert.equal(strategy.name, name);
      const reference = hex(encodeCanonical(strategy.aggregate(global, updates)));
      for (let trial = 0; trial < 5; trial++) {
        const shuffled = shuffleInPlace([...updates], rng);
        assert.equal(
          hex(encodeCanonical(strategy.aggregate(global, shuffled))),
          reference,
          `${name} trial ${trial}`,
        );
        assert.equal(
          hex(encodeCanonical(strategyByName(name, OPTIONS[name]).aggregate(global, updates))),
          reference,
        );
      }
    }
  });

  it("address case does not matter and equal Krum scores go to the lower address", () => {
    const global = mk([0, 0, 0, 0, 0]);
    // a and b at +-10 on one axis, c and d at +-10 on another, e far off on a third.
    const a = mk([10, 0, 0, 0, 0]);
    const b = mk([-10, 0, 0, 0, 0]);
    const c = mk([0, 10, 0, 0, 0]);
    const d = mk([0, -10, 0, 0, 0]);
    const updates: ClientUpdate[] = [
      { participant: `0x${"D".repeat(40)}`, samples: 1, model: a },
      { participant: `0x${"b".repeat(40)}`, samples: 1, model: b },
      { participant: `0x${"C".repeat(40)}`, samples: 1, model: c },
      { participant: `0x${"a".repeat(40)}`, samples: 1, model: d },
      { participant: `0x${"f".repeat(40)}`, samples: 1, model: mk([0, 0, 0, 0, 30]) },
    ];
    const selection = krumSelect(global, updates, { f: 1, m: 1 });
    // f = 1: scores sum the 2 nearest. a, b, c, d all score 200 + 200, e 1000 + 1000; "0xaa..." holds d.
    assert.equal(selection.selected[0], `0x${"a".repeat(40)}`);
    assert.deepEqual(flat(krum({ f: 1 }).aggregate(global, updates)), flat(d));
    const lower = updates.map((u) => ({ ...u, participant: u.participant.toLowerCase() as Address }));
    for (const name of STRATEGY_NAMES) {
      const s = strategyByName(name, { f: 1 });
      assert.equal(
        hex(encodeCanonical(s.aggregate(global, updates))),
        hex(encodeCanonical(s.aggregate(global, lower))),
      );
    }
  });
});

describe("robust strategies", () => {
  // Five honest clients with deltas around +100 (+-10) and one with +1,000,000 on every weight.
  const global = mk(Array.from({ length: 30 }, (_, i) => i * 50 - 700));
  const rng = createRng(4);
  const honest: ClientUpdate[] = Array.from({ length: 5 }, () => ({
    participant: address(rng),
    samples: 100,
    model: mk(flat(global).map((g) => g + 90 + rng.int(21))),
  }));
  const outlier: ClientUpdate = {
    participant: address(rng),
    samples: 100,
    model: mk(flat(global).map((g) => g + 1_000_000)),
  };
  const all = [...honest, outlier];

  function deltas(model: CanonicalModel): number[] {
    const g = flat(global);
    return flat(model).map((v, i) => v - (g[i] as number));
  }

  it("median, trimmed mean, Krum and Multi-Krum stay with the honest clients; FedAvg is pulled away", () => {
    const avg = deltas(fedAvg().aggregate(global, all));
    for (const d of avg) assert.ok(d > 150_000, `FedAvg delta ${d} should be pulled towards the outlier`);
    const robust: Strategy[] = [median(), trimmedMean({ beta: 0.2 }), krum({ f: 1 }), multiKrum({ f: 1 })];
    for (const strategy of robust) {
      for (const d of deltas(strategy.aggregate(global, all))) {
        assert.ok(d >= 90 && d <= 110, `${strategy.name} delta ${d} left the honest range`);
      }
    }
  });

  it("median of an even count is the rounded mean of the middle two; trimmed mean trims floor(beta n) per end", () => {
    const g = mk([0, 0, 0, 0, 0]);
    const ups = [1, 2, 100, -50].map((v, i) => ({
      participant: `0x${String(i + 1).repeat(40)}` as Address,
      samples: 1,
      model: mk([v, -v, v + 1, 0, 3 * v]),
    }));
    // Sorted columns: [-50,1,2,100] -> (1+2)/2 = 1.5 -> 2; [-100,-2,-1,50] -> -1.5 -> -2;
    // [-49,2,3,101] -> 2.5 -> 3; zeros; [-150,3,6,300] -> 4.5 -> 5.
    assert.deepEqual(flat(median().aggregate(g, ups)), [2, -2, 3, 0, 5]);
    assert.equal(trimCount(5, 0.2), 1);
    assert.equal(trimCount(100, 0.29), 29);
    assert.equal(trimCount(4, 0.2), 0);
    // beta 0.25 of 4 trims one per end: the same middle pair, averaged.
    assert.deepEqual(flat(trimmedMean({ beta: 0.25 }).aggregate(g, ups)), [2, -2, 3, 0, 5]);
    assert.throws(() => trimmedMean({ beta: 0.5 }), RangeError);
  });

  it("median and trimmed mean of many clients (the sorted-array path) match a plain reference", () => {
    const g = mk(Array.from({ length: 12 }, (_, i) => i * 1000 - 6000));
    for (const n of [40, 41]) {
      const ups = randomUpdates(g, n, n, 5000);
      const columns = flat(g).map((base, i) =>
        ups.map((u) => (flat(u.model)[i] as number) - base).sort((a, b) => a - b),
      );
      const wantMedian = columns.map((c, i) => {
        const mid = n >> 1;
        const v = n % 2 ? (c[mid] as number) : divRoundNumber((c[mid - 1] as number) + (c[mid] as number), 2);
        return (flat(g)[i] as number) + v;
      });
      assert.deepEqual(flat(median().aggregate(g, ups)), wantMedian);
      const k = trimCount(n, 0.1);
      const wantTrimmed = columns.map((c, i) => {
        const kept = c.slice(k, n - k);
        return (
          (flat(g)[i] as number) +
          divRoundNumber(
            kept.reduce((a, b) => a + b, 0),
            kept.length,
          )
        );
      });
      assert.deepEqual(flat(trimmedMean({ beta: 0.1 }).aggregate(g, ups)), wantTrimmed);
    }
  });

  it("Multi-Krum selects exactly the honest updates against two colluders", () => {
    const r = createRng(8);
    const good: ClientUpdate[] = Array.from({ length: 5 }, () => ({
      participant: address(r),
      samples: 10,
      model: mk(flat(global).map((g) => g + 100 + r.int(21) - 10)),
    }));
    // The colluders sit next to each other, far from the honest cluster.
    const bad: ClientUpdate[] = Array.from({ length: 2 }, () => ({
      participant: address(r),
      samples: 10_000,
      model: mk(flat(global).map((g) => g - 3000 + r.int(3))),
    }));
    const selection = krumSelect(global, [...bad, ...good], { f: 2, m: 5 });
    assert.deepEqual([...selection.selected].sort(), good.map((u) => u.participant.toLowerCase()).sort());
    assert.equal(selection.ranking.length, 7);
    const agg = multiKrum({ f: 2, m: 5 }).aggregate(global, [...good, ...bad]);
    const unweighted = fedAvg().aggregate(
      global,
      good.map((u) => ({ ...u, samples: 1 })),
    );
    assert.deepEqual(flat(agg), flat(unweighted));
    assert.ok(
      good.some(
        (u) =>
          hex(encodeCanonical(u.model)) ===
          hex(encodeCanonical(krum({ f: 2 }).aggregate(global, [...bad, ...good]))),
      ),
    );
  });

  it("Krum refuses too few updates for f", () => {
    assert.throws(() => krum({ f: 2 }).aggregate(global, honest), /needs at least 7 updates, got 5/);
    assert.throws(() => krum().aggregate(global, honest.slice(0, 2)), AggregationError);
    assert.throws(() => multiKrum({ f: 1, m: 6 }).aggregate(global, honest), /m = 6/);
  });
});

describe("validation", () => {
  const global = mk([1, 2, 3, 4, 5]);
  const good = randomUpdates(global, 3, 2, 10);
  const who = `0x${"e".repeat(40)}` as Address;

  it("refuses an architecture, tensor or scale mismatch with IncompatibleUpdateError naming the participant", () => {
    const bad: CanonicalModel[] = [
      mk([1, 2, 3, 4, 5], 8, "other-arch"),
      mk([1, 2, 3, 4, 5, 6]),
      mk([1, 2, 3, 4, 5], 16),
      { ...mk([1, 2, 3, 4, 5]), tensors: [...mk([1, 2, 3, 4, 5]).tensors].reverse() },
    ];
    for (const name of STRATEGY_NAMES) {
      for (const model of bad) {
        assert.throws(
          () =>
            strategyByName(name, { f: 0 }).aggregate(global, [
              ...good,
              { participant: who, samples: 5, model },
            ]),
          (error: unknown) =>
            error instanceof IncompatibleUpdateError &&
            error.name === "IncompatibleUpdateError" &&
            error.participant === who &&
            error.message.includes(who),
        );
      }
    }
  });

  it("refuses no updates, duplicate participants, bad addresses, bad sample counts and non-canonical ints", () => {
    const s = fedAvg();
    assert.throws(() => s.aggregate(global, []), /No updates/);
    const first = good[0] as ClientUpdate;
    assert.throws(
      () =>
        s.aggregate(global, [
          ...good,
          { ...first, participant: first.participant.toUpperCase().replace("0X", "0x") as Address },
        ]),
      /more than one update/,
    );
    assert.throws(
      () => s.aggregate(global, [{ ...first, participant: "0x1234" }]),
      /not a 20-byte hex address/,
    );
    for (const samples of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => s.aggregate(global, [{ ...first, samples }]), /positive integer/);
    }
    const broken = mk([1, 2, 3, 4, 5]);
    (broken.tensors[1] as { ints: Int32Array }).ints[0] = -0x80000000;
    assert.throws(
      () => s.aggregate(global, [{ participant: who, samples: 1, model: broken }]),
      IncompatibleUpdateError,
    );
    assert.throws(() => strategyByName("fedsgd"), /Unknown strategy "fedsgd"/);
  });
});

describe("federated learning on real MNIST digits", () => {
  const architecture = "logreg-784-10";
  let clients: Dataset[];
  let test: Dataset;
  let model: tf.LayersModel;
  const participants: Address[] = Array.from(
    { length: 5 },
    (_, i) => `0x${String(i + 1).repeat(40)}` as Address,
  );

  const canonical = (tensors: ModelTensor[]) =>
    decodeModel(encodeModel({ architecture, scaleBits: 16, tensors }));

  before(async () => {
    await initBackend();
    const data = loadMnist({ train: 2500, test: 1000 });
    test = data.test;
    clients = partitionIid(data.train.n, 5, createRng(3)).map((part) => subset(data.train, part));
    model = createModel(architecture, 1);
  });

  /** Test accuracy after each of 3 rounds; client 0 sign-flips its update when `attacker`. */
  async function run(strategy: Strategy, attacker: boolean): Promise<number[]> {
    let global = canonical(initialWeights(architecture, 1));
    const accuracies: number[] = [];
    for (let round = 0; round < 3; round++) {
      const updates: ClientUpdate[] = [];
      for (let c = 0; c < 5; c++) {
        setWeights(model, toFloatTensors(global));
        const data = clients[c] as Dataset;
        await trainModel(model, data, { epochs: 1, batchSize: 32, learningRate: 0.1, seed: `${round}/${c}` });
        const own = canonical(getWeights(model));
        updates.push({
          participant: participants[c] as Address,
          samples: data.n,
          model: attacker && c === 0 ? signFlip(global, own, 5) : own,
        });
      }
      global = strategy.aggregate(global, updates);
      setWeights(model, toFloatTensors(global));
      accuracies.push((await evaluate(model, test)).accuracy);
    }
    return accuracies;
  }

  it("5 clients x 500 digits: FedAvg learns; one sign-flip attacker (scale 5) breaks FedAvg, not the median", async () => {
    const honest = await run(fedAvg(), false);
    const attacked = await run(fedAvg(), true);
    const robust = await run(median(), true);
    const fmt = (a: number[]) => a.map((v) => v.toFixed(3)).join(" ");
    console.log(
      `# FedAvg honest: ${fmt(honest)}; FedAvg + sign flip: ${fmt(attacked)}; median + sign flip: ${fmt(robust)}`,
    );
    assert.ok((honest[2] as number) > 0.75, `honest FedAvg accuracy ${honest[2]}`);
    assert.ok((attacked[2] as number) < 0.3, `attacked FedAvg accuracy ${attacked[2]}`);
    assert.ok((robust[2] as number) > 0.7, `attacked median accuracy ${robust[2]}`);
  });
});
