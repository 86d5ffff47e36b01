import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ATTACK_NAMES,
  alie,
  alieZ,
  attackByName,
  copyUpdate,
  copyWithNoise,
  flipLabels,
  freeRide,
  gaussianNoise,
  isNoShow,
  normalQuantile,
  noShow,
  signFlip,
} from "../../src/learning/adversaries.ts";
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
      assert.equal(attack.trains, ["none", "label-flip", "sign-flip", "alie"].includes(name), name);
    }
    assert.equal(bytes(attackByName("none").craft({ global, own }) as CanonicalModel), bytes(own));
    assert.throws(() => attackByName("sybil"), /Unknown attack "sybil"/);
    assert.throws(() => attackByName("sign-flip").craft({ global }), /needs own/);
    assert.throws(() => attackByName("copy").craft({ global }), /visible/);
  });
});
