import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { simulationOptions } from "../../src/cli/fl.ts";
import {
  ATTACK_NAMES,
  alie,
  alieZ,
  attackByName,
  boundTest,
  copyUpdate,
  copyWithNoise,
  DEFAULT_FANG_B,
  fangKrum,
  fangKrumBound,
  fangKrumLambda,
  fangTrim,
  flipLabels,
  freeRide,
  gaussianNoise,
  isNoShow,
  minMaxSum,
  modelReplacement,
  noiseAtNorm,
  normalQuantile,
  noShow,
  optimalGamma,
  PERTURBATIONS,
  perturbationOf,
  signFlip,
} from "../../src/learning/adversaries.ts";
import {
  attackSuccessRate,
  IMAGE_SIDE,
  poisonWithTrigger,
  stampTrigger,
  TRIGGER_VALUE,
  triggerPixels,
} from "../../src/learning/backdoor.ts";
import { krumSelect } from "../../src/learning/krum.ts";
import { type SimulationOptions, simulateFederated } from "../../src/learning/simulate.ts";
import type { Address } from "../../src/learning/strategy.ts";
import { type CanonicalModel, encodeCanonical, MAX_INT } from "../../src/ml/encoding.ts";
import { createRng, type Dataset } from "../../src/ml/partition.ts";

function mk(ints: readonly number[], scaleBits = 10): CanonicalModel {
  return {
    architecture: "test-adv",
    scaleBits,
    tensors: [
      { name: "a", shape: [ints.length - 1], ints: Int32Array.from(ints.slice(0, -1)) },
      { name: "b", shape: [1], ints: Int32Array.from(ints.slice(-1)) },
    ],
  };
}

const flat = (m: CanonicalModel) => m.tensors.flatMap((t) => Array.from(t.ints));
const bytes = (m: CanonicalModel) => Buffer.from(encodeCanonical(m)).toString("hex");

function stats(values: number[]): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
  return { mean, std };
}

describe("adversaries", () => {
  const global = mk([100, -200, 0, 5000, 7]);
  const own = mk([110, -230, 4, 5000, 6]);

  it("label flipping maps y to 9 - y without touching the input", () => {
    const data: Dataset = {
      x: new Float32Array(20),
      y: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
      n: 10,
    };
    const flipped = flipLabels(data);
    assert.deepEqual(Array.from(flipped.y), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    assert.deepEqual(Array.from(data.y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(flipped.x, data.x);
    assert.deepEqual(Array.from(flipLabels(data, 12).y.subarray(0, 2)), [11, 10]);
    assert.throws(() => flipLabels(data, 5), RangeError);
    assert.deepEqual(Array.from(attackByName("label-flip").poisonData(data).y), Array.from(flipped.y));
  });

  it("sign flipping gives delta = -s * honest delta, saturating at the int32 range", () => {
    const honestDelta = flat(own).map((v, i) => v - (flat(global)[i] as number));
    for (const s of [1, 5]) {
      const attacked = signFlip(global, own, s);
      const delta = flat(attacked).map((v, i) => v - (flat(global)[i] as number));
      assert.deepEqual(
        delta,
        honestDelta.map((d) => -s * d + 0),
      );
    }
    const extreme = signFlip(mk([MAX_INT - 5, 0, 0, 0, 0]), mk([0, 0, 0, 0, 0]), 10);
    assert.equal(flat(extreme)[0], MAX_INT);
    encodeCanonical(extreme);
    assert.deepEqual(
      flat(attackByName("sign-flip", { scale: 5 }).craft({ global, own }) as CanonicalModel),
      flat(signFlip(global, own, 5)),
    );
    assert.throws(() => signFlip(global, mk([1, 2, 3]), 1), /does not match/);
  });

  it("Gaussian noise has the configured std (in weight units) around the global model", () => {
    const base = mk(new Array(20001).fill(1000), 12);
    const noisy = gaussianNoise(base, 0.5, createRng(1));
    const { mean, std } = stats(flat(noisy).map((v) => (v - 1000) / 2 ** 12));
    assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
    assert.ok(Math.abs(std - 0.5) < 0.015, `std ${std}`);
    assert.equal(bytes(gaussianNoise(base, 0.5, createRng(1))), bytes(noisy), "seeded noise repeats");
    assert.notEqual(bytes(gaussianNoise(base, 0.5, createRng(2))), bytes(noisy));
  });

  it("ALIE: z from n and f, and mean - z * std per coordinate of the honest updates", () => {
    assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-6);
    assert.ok(Math.abs(normalQuantile(0.5)) < 1e-12);
    assert.ok(Math.abs(normalQuantile(0.001) + 3.090232) < 1e-6);
    // n = 5, f = 1: s = floor(3.5) - 1 = 2, z = Phi^-1(3/5); n = 50, f = 12: s = 14, z = Phi^-1(0.72).
    assert.ok(Math.abs(alieZ(5, 1) - 0.253347) < 1e-6);
    assert.ok(Math.abs(alieZ(50, 12) - 0.582842) < 1e-6);
    assert.throws(() => alieZ(4, 4), RangeError);
    const honest = [mk([10, 0, 100, 0, 5]), mk([20, 0, 100, 4, 5]), mk([30, 0, 100, 8, 5])];
    // Column means 20, 0, 100, 4, 5; population stds sqrt(200/3), 0, 0, sqrt(32/3), 0.
    const z = 1.5;
    const want = [20 - z * Math.sqrt(200 / 3), 0, 100, 4 - z * Math.sqrt(32 / 3), 5].map(
      (v) => Math.sign(v) * Math.round(Math.abs(v)),
    );
    assert.deepEqual(flat(alie(global, honest, { z })), want);
    const derived = alie(global, honest, { n: 5, f: 1 });
    assert.deepEqual(flat(derived), flat(alie(global, honest, { z: alieZ(5, 1) })));
    assert.deepEqual(
      flat(attackByName("alie", { n: 5, f: 1 }).craft({ global, visible: honest }) as CanonicalModel),
      flat(derived),
    );
  });

  it("free riding returns the global, copying returns the victim's bytes, copy-noise stays close", () => {
    assert.equal(bytes(freeRide(global)), bytes(global));
    assert.notEqual(freeRide(global).tensors[0]?.ints, global.tensors[0]?.ints);
    assert.equal(bytes(copyUpdate(own)), bytes(own));
    const near = copyWithNoise(own, 0.002, createRng(3)); // 2 ints of std at scaleBits 10
    assert.notEqual(bytes(near), bytes(own));
    flat(near).forEach((v, i) => {
      assert.ok(Math.abs(v - (flat(own)[i] as number)) <= 12);
    });
    assert.equal(bytes(attackByName("copy").craft({ global, visible: [own] }) as CanonicalModel), bytes(own));
    assert.equal(bytes(attackByName("free-ride").craft({ global }) as CanonicalModel), bytes(global));
  });

  it("no-show is a marker, and attackByName knows every attack", () => {
    assert.ok(isNoShow(noShow));
    assert.ok(!isNoShow(global));
    assert.equal(attackByName("no-show").craft({ global }), noShow);
    for (const name of ATTACK_NAMES) {
      const attack = attackByName(name, { seed: 1 });
      assert.equal(attack.name, name);
      const out = attack.craft({ global, own, visible: [own, global], rng: createRng(1) });
      if (name === "no-show") assert.ok(isNoShow(out));
      else encodeCanonical(out as CanonicalModel);
      const untrained = ["gaussian-noise", "free-ride", "copy", "copy-noise", "no-show"];
      assert.equal(attack.trains, !untrained.includes(name), name);
    }
    assert.equal(bytes(attackByName("none").craft({ global, own }) as CanonicalModel), bytes(own));
    assert.throws(() => attackByName("sybil"), /Unknown attack "sybil"/);
    assert.throws(() => attackByName("sign-flip").craft({ global }), /needs own/);
    assert.throws(() => attackByName("copy").craft({ global }), /visible/);
  });

  // Six colluders' benign updates of 400 weights: a common drift (half the weights move up, half
  // down, a tenth stay) plus each colluder's own spread, in ints at scaleBits 10.
  const d = 400;
  const base = mk(Array.from({ length: d }, (_, j) => ((j * 37) % 201) - 100));
  const drift = Array.from({ length: d }, (_, j) => (j % 10 === 9 ? 0 : j % 2 === 0 ? 30 : -30));
  const colluders = Array.from({ length: 6 }, (_, c) => {
    const rng = createRng(`colluder/${c}`);
    return mk(
      flat(base).map((g, j) =>
        drift[j] === 0 ? g : g + (drift[j] as number) + Math.round(40 * rng.normal()),
      ),
    );
  });
  const offsets = (models: readonly CanonicalModel[]) =>
    models.map((m) => Float64Array.from(flat(m), (v, j) => v - (flat(base)[j] as number)));
  const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, x) => a + x * x, 0));
  const meanOffset = (models: readonly CanonicalModel[]) => {
    const all = offsets(models);
    return Float64Array.from(
      { length: d },
      (_, j) => all.reduce((a, o) => a + (o[j] as number), 0) / all.length,
    );
  };

  it("noise-norm: a random direction of norm x the colluders' mean benign norm", () => {
    const honest = offsets(colluders).reduce((a, o) => a + norm(o), 0) / colluders.length;
    for (const r of [1, 3]) {
      const crafted = noiseAtNorm(base, colluders, r, createRng(r));
      const length = norm(offsets([crafted])[0] as Float64Array);
      // Rounding moves each weight by at most 1/2: the norm by at most sqrt(d) / 2.
      assert.ok(Math.abs(length - r * honest) <= Math.sqrt(d) / 2, `norm ${length} vs ${r * honest}`);
    }
    const a = attackByName("noise-norm", { norm: 2 }).craft({
      global: base,
      own: colluders[0],
      visible: colluders,
      rng: createRng(1),
    });
    const b = attackByName("noise-norm", { norm: 2 }).craft({
      global: base,
      own: colluders[0],
      visible: colluders,
      rng: createRng(2),
    });
    assert.notEqual(
      bytes(a as CanonicalModel),
      bytes(b as CanonicalModel),
      "each colluder draws its own direction",
    );
    assert.throws(() => noiseAtNorm(base, colluders, -1, createRng(1)), RangeError);
  });

  it("fang-trim: every weight lies beyond the benign extreme, against the benign direction, within Fang's b interval", () => {
    const crafted = flat(fangTrim(base, colluders, DEFAULT_FANG_B, createRng(4)));
    const direction = meanOffset(colluders);
    const weights = colluders.map(flat);
    let strictlyBeyond = 0;
    for (let j = 0; j < d; j++) {
      const column = weights.map((w) => w[j] as number);
      const v = crafted[j] as number;
      const s = Math.sign(direction[j] as number);
      if (s === 0) {
        assert.equal(v, column[0], `weight ${j} does not move`);
        continue;
      }
      const extreme = s > 0 ? Math.min(...column) : Math.max(...column);
      const far = s > 0 === extreme > 0 ? extreme / DEFAULT_FANG_B : extreme * DEFAULT_FANG_B;
      if (s > 0)
        assert.ok(v <= extreme && v >= Math.floor(far), `weight ${j}: ${v} not in [${far}, ${extreme}]`);
      else assert.ok(v >= extreme && v <= Math.ceil(far), `weight ${j}: ${v} not in [${extreme}, ${far}]`);
      if (v !== extreme) strictlyBeyond++;
    }
    assert.ok(strictlyBeyond > 0.8 * d, `${strictlyBeyond} weights strictly beyond the extreme`);
    assert.throws(() => fangTrim(base, colluders, 1, createRng(1)), /b must be > 1/);
  });

  it("fang-krum: Krum over the colluders' updates and f crafted copies selects a copy at the largest halving of Fang's bound", () => {
    const address = (k: number) => `0x${(k + 1).toString(16).padStart(40, "0")}` as Address;
    const direction = meanOffset(colluders);
    const bound = fangKrumBound(base, colluders);
    const halvings: number[] = [];
    for (const f of [6, 2, 1]) {
      const lambda = fangKrumLambda(base, colluders, f);
      assert.ok(lambda >= 1 && lambda <= bound, `f ${f}: lambda ${lambda}`);
      const k = Math.log2(bound / lambda);
      assert.ok(Math.abs(k - Math.round(k)) < 1e-9, `f ${f}: lambda is the bound halved`);
      halvings.push(Math.round(k));
      const crafted = fangKrum(base, colluders, lambda);
      flat(crafted).forEach((v, j) => {
        const want = (flat(base)[j] as number) - lambda * Math.sign(direction[j] as number);
        assert.ok(Math.abs(v - want) <= 0.5, `weight ${j}`);
      });
      const copies = new Set(Array.from({ length: f }, (_, k) => address(colluders.length + k)));
      const select = (model: CanonicalModel) =>
        krumSelect(base, [
          ...colluders.map((m, k) => ({ participant: address(k), samples: 1, model: m })),
          ...[...copies].map((participant) => ({ participant, samples: 1, model })),
        ]).selected[0] as Address;
      assert.ok(copies.has(select(crafted)), `f ${f}: Krum selects a crafted copy`);
      if (lambda < bound)
        assert.ok(!copies.has(select(fangKrum(base, colluders, 2 * lambda))), `f ${f}: 2 lambda was refused`);
    }
    assert.ok(
      halvings.some((k) => k > 0),
      `some f needs halving: ${halvings}`,
    );
    assert.equal(
      bytes(
        attackByName("fang-krum").craft({
          global: base,
          own: colluders[0],
          visible: colluders,
        }) as CanonicalModel,
      ),
      bytes(fangKrum(base, colluders, fangKrumLambda(base, colluders, colluders.length))),
    );
    // One colluder alone: Krum cannot run on two updates, the bound is taken as is.
    assert.equal(fangKrumLambda(base, colluders.slice(0, 1), 1), fangKrumBound(base, colluders.slice(0, 1)));
  });

  for (const kind of ["min-max", "min-sum"] as const) {
    it(`${kind}: mean + gamma * p meets its distance bound, and gamma is maximal (1.01 gamma breaks it)`, () => {
      const benign = offsets(colluders);
      const within = boundTest(kind, benign);
      const mean = meanOffset(colluders);
      for (const perturbation of PERTURBATIONS) {
        const p = perturbationOf(benign, perturbation);
        const gamma = optimalGamma(kind, benign, p);
        assert.ok(gamma > 0, `${perturbation}: gamma ${gamma}`);
        const at = (g: number) => mean.map((m, j) => m + g * (p[j] as number));
        assert.ok(within(at(gamma)), `${perturbation}: gamma within the bound`);
        assert.ok(!within(at(1.01 * gamma)), `${perturbation}: 1.01 gamma violates it`);
        const crafted = offsets([minMaxSum(kind, base, colluders, perturbation)])[0] as Float64Array;
        crafted.forEach((v, j) => {
          assert.ok(Math.abs(v - (at(gamma)[j] as number)) <= 0.5, `${perturbation}: weight ${j}`);
        });
      }
      const std = perturbationOf(benign, "std");
      assert.ok(
        std.every((v) => v <= 0),
        "p = -std",
      );
      assert.equal(
        bytes(
          attackByName(kind).craft({ global: base, own: colluders[0], visible: colluders }) as CanonicalModel,
        ),
        bytes(minMaxSum(kind, base, colluders, "std")),
      );
      // One colluder has no spread: its own update.
      const alone = attackByName(kind, { perturbation: "unit" }).craft({ global: base, own: colluders[0] });
      assert.equal(bytes(alone as CanonicalModel), bytes(colluders[0] as CanonicalModel));
    });
  }

  it("backdoor: stamps exactly the trigger pixels, relabels the right fraction, boosts the step by n / f", () => {
    const n = 10;
    const rng = createRng(7);
    const x = Float32Array.from({ length: n * IMAGE_SIDE * IMAGE_SIDE }, () => rng.next() * 0.5);
    const data: Dataset = { x, y: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), n };
    const pixels = new Set(triggerPixels());
    assert.equal(pixels.size, 16);
    assert.ok(
      [...pixels].every((p) => Math.floor(p / IMAGE_SIDE) >= 24 && p % IMAGE_SIDE >= 24),
      "bottom-right 4x4",
    );
    const features = IMAGE_SIDE * IMAGE_SIDE;
    const changed = (a: Dataset, i: number) =>
      Array.from({ length: features }, (_, p) => p).filter(
        (p) => a.x[i * features + p] !== x[i * features + p],
      );
    const all = stampTrigger(data);
    assert.deepEqual(Array.from(all.y), Array.from(data.y), "labels kept");
    for (let i = 0; i < n; i++) {
      assert.deepEqual(
        changed(all, i),
        [...pixels].sort((a, b) => a - b),
      );
      for (const p of pixels) assert.equal(all.x[i * features + p], TRIGGER_VALUE);
    }
    for (const [fraction, count] of [
      [0.5, 5],
      [0.3, 3],
      [1, 10],
      [0, 0],
    ] as const) {
      const poisoned = poisonWithTrigger(data, fraction, 7);
      const hit = Array.from({ length: n }, (_, i) => i).filter((i) => changed(poisoned, i).length > 0);
      assert.equal(hit.length, count, `fraction ${fraction}`);
      for (let i = 0; i < n; i++) assert.equal(poisoned.y[i], hit.includes(i) ? 7 : data.y[i]);
    }
    assert.ok(
      x.every((v) => v < 0.5),
      "the input is not modified",
    );
    assert.deepEqual(
      Array.from(attackByName("backdoor", { target: 3 }).poisonData(data).y),
      [0, 3, 2, 3, 4, 3, 6, 3, 8, 3],
    );
    const honestDelta = flat(own).map((v, i) => v - (flat(global)[i] as number));
    const boosted = attackByName("backdoor", { n: 20, f: 5 }).craft({ global, own }) as CanonicalModel;
    assert.deepEqual(
      flat(boosted).map((v, i) => v - (flat(global)[i] as number)),
      honestDelta.map((x) => 4 * x),
    );
    assert.equal(
      bytes(attackByName("backdoor", { scale: 1 }).craft({ global, own }) as CanonicalModel),
      bytes(own),
    );
    assert.equal(
      bytes(modelReplacement(global, own, 2.5)),
      bytes(attackByName("backdoor", { scale: 2.5 }).craft({ global, own }) as CanonicalModel),
    );
    assert.throws(() => poisonWithTrigger(data, 1.5, 0), RangeError);
    assert.throws(() => stampTrigger({ x: new Float32Array(10), y: new Uint8Array(1), n: 1 }), /28x28/);
  });

  it("attack success rate: the share of non-target digits predicted as the target", () => {
    assert.equal(attackSuccessRate([0, 0, 1, 0], [0, 1, 1, 2], 0), 2 / 3);
    assert.equal(attackSuccessRate([5, 5], [5, 5], 5), Number.NaN);
    assert.equal(attackSuccessRate([1, 2, 3], [4, 5, 6], 0), 0);
    assert.throws(() => attackSuccessRate([1], [1, 2], 0), RangeError);
  });

  it("the CLI's strength flags become attackParams, and a flag for another attack is refused", () => {
    const flags = {
      clients: "10",
      validators: "3",
      byzantine: "3",
      attack: "fang-trim",
      strategy: "fedavg",
      rounds: "2",
      alpha: "0.1",
      seed: "1",
      epochs: "1",
      lr: "0.1",
      batch: "32",
      model: "logreg-784-10",
    };
    assert.deepEqual(simulationOptions({ ...flags, attackScale: "3" }).attackParams, { scale: 3 });
    assert.deepEqual(simulationOptions({ ...flags, attack: "alie", attackZ: "-0.5" }).attackParams, {
      z: -0.5,
    });
    assert.deepEqual(simulationOptions({ ...flags, attack: "noise-norm", attackNorm: "3" }).attackParams, {
      norm: 3,
    });
    assert.deepEqual(simulationOptions({ ...flags, attack: "noise", attackSigma: "0.1" }).attackParams, {
      sigma: 0.1,
    });
    assert.deepEqual(
      simulationOptions({ ...flags, attack: "backdoor", attackScale: "1", backdoorTarget: "4" }).attackParams,
      { scale: 1, target: 4 },
    );
    assert.equal(simulationOptions(flags).attackParams, undefined);
    assert.throws(() => simulationOptions({ ...flags, attackZ: "1" }), /--attack-z applies to --attack alie/);
    assert.throws(() => simulationOptions({ ...flags, attackScale: "1" }), /must exceed 1/);
    assert.throws(() => simulationOptions({ ...flags, attackNorm: "0" }), /--attack-norm/);
    assert.throws(() => simulationOptions({ ...flags, backdoorTarget: "10" }), /--backdoor-target/);
  });
});

/** 10 non-IID clients of 200 digits, 3 of them attackers, 2 rounds of softmax regression. */
const ENGINE = {
  clients: 10,
  alpha: 0.5,
  seed: 3,
  localEpochs: 1,
  lr: 0.1,
  batch: 32,
  samplesPerClient: 200,
  validators: 3,
  validatorSamples: 200,
  testSize: 500,
  rounds: 2,
  strategy: "fedavg",
  byzantine: 3,
  attack: "none",
  withProtocol: true,
} satisfies SimulationOptions;

describe("the new attacks in the engine", () => {
  for (const attack of ["noise-norm", "fang-trim", "fang-krum", "min-max", "min-sum"]) {
    it(`${attack}: runs end to end, the colluders crafting from their pooled benign updates`, async () => {
      const attackerUpdates: string[][] = [];
      const summary = await simulateFederated({
        ...ENGINE,
        attack,
        onValidation: (v) => {
          attackerUpdates.push(v.updates.filter((_, k) => v.attackers[k]).map((m) => bytes(m)));
        },
      });
      assert.equal(summary.attack, attack);
      assert.equal(summary.rounds.length, 2);
      assert.equal(summary.attackers.length, 3);
      assert.ok(summary.backdoorSuccess >= 0 && summary.backdoorSuccess <= 1);
      for (const round of attackerUpdates) {
        assert.equal(round.length, 3);
        // Deterministic crafts from one shared pool are identical; the random ones differ per colluder.
        const distinct = new Set(round).size;
        assert.equal(distinct, attack === "noise-norm" || attack === "fang-trim" ? 3 : 1, attack);
      }
    });
  }

  it("backdoor: plain FedAvg without validators learns the trigger; without attackers it does not", async () => {
    const plain = { ...ENGINE, withProtocol: false, rounds: 3 };
    const attacked = await simulateFederated({ ...plain, attack: "backdoor" });
    const clean = await simulateFederated({ ...plain, byzantine: 0 });
    console.log(`backdoor ASR ${attacked.backdoorSuccess}, without attackers ${clean.backdoorSuccess}`);
    assert.ok(clean.backdoorSuccess < 0.1, `base rate ${clean.backdoorSuccess}`);
    assert.ok(attacked.backdoorSuccess > clean.backdoorSuccess + 0.3, `ASR ${attacked.backdoorSuccess}`);
    assert.ok(attacked.finalAccuracy > 0.5, "the main task still learns (what hides the backdoor)");
  });
});
