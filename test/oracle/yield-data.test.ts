import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  encodeYieldData,
  expectedYieldLoss,
  FEATURE_COUNT,
  FEATURE_NAMES,
  FIELD_CAPACITY,
  generateYieldData,
  KY_MAIZE,
  NOISE_SD,
  normalizeFeatures,
  type RawConditions,
  REGIONS,
  toOracleInput,
} from "../../src/oracle/yield-data.ts";

const calm: RawConditions = {
  rainfallDeficit: 0,
  heatDays: 0,
  soilMoisture: FIELD_CAPACITY,
  growingDegreeDays: 1500,
};

function column(x: Float32Array, f: number): number[] {
  const out: number[] = [];
  for (let i = f; i < x.length; i += FEATURE_COUNT) out.push(x[i] as number);
  return out;
}

function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i] as number;
  return s / values.length;
}

function correlation(a: number[], b: number[]): number {
  const ma = mean(a);
  const mb = mean(b);
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  a.forEach((v, i) => {
    const w = b[i] as number;
    sab += (v - ma) * (w - mb);
    saa += (v - ma) ** 2;
    sbb += (w - mb) ** 2;
  });
  return sab / Math.sqrt(saa * sbb);
}

describe("yield data generator", () => {
  it("is reproducible from its seed and differs between seeds", () => {
    const a = generateYieldData(500, 7);
    const b = generateYieldData(500, 7);
    const c = generateYieldData(500, 8);
    assert.deepEqual(encodeYieldData(a), encodeYieldData(b));
    assert.notDeepEqual(encodeYieldData(a), encodeYieldData(c));
    assert.deepEqual(a.expected, b.expected);
  });

  it("gives n rows of normalized features and losses in [0, 1]", () => {
    const d = generateYieldData(3000, "shape");
    assert.equal(d.n, 3000);
    assert.deepEqual(d.featureNames, FEATURE_NAMES);
    assert.equal(d.x.length, 3000 * FEATURE_COUNT);
    assert.equal(d.y.length, 3000);
    for (const v of d.x) assert.ok(v >= 0 && v <= 1, `feature ${v} outside [0, 1]`);
    for (const v of d.y) assert.ok(v >= 0 && v <= 1, `loss ${v} outside [0, 1]`);
    for (const v of d.expected) assert.ok(v >= 0 && v <= 1);
    // Losses spread over the range rather than piling up at one end.
    const sorted = Array.from(d.y).sort((p, q) => p - q);
    assert.ok((sorted[Math.floor(0.1 * d.n)] as number) < 0.1);
    assert.ok((sorted[Math.floor(0.9 * d.n)] as number) > 0.5);
    assert.equal(generateYieldData(0, 1).n, 0);
    assert.throws(() => generateYieldData(-1, 1), /n must be an integer/);
  });

  it("assigns samples to regions cyclically and to seasons in blocks", () => {
    const d = generateYieldData(2 * REGIONS + 3, 1);
    assert.equal(d.region[0], 0);
    assert.equal(d.region[REGIONS - 1], REGIONS - 1);
    assert.equal(d.region[REGIONS], 0);
    assert.equal(d.season[REGIONS - 1], 0);
    assert.equal(d.season[REGIONS], 1);
    assert.equal(d.season[2 * REGIONS + 2], 2);
  });

  it("follows the stated relation: no stress, no loss; FAO-33 water response with Ky", () => {
    assert.equal(expectedYieldLoss(calm), 0);
    // Soil at field capacity (w = 1), no heat: loss = Ky * 0.7 * deficit.
    for (const deficit of [0.1, 0.3, 0.5]) {
      const loss = expectedYieldLoss({ ...calm, rainfallDeficit: deficit });
      assert.ok(Math.abs(loss - KY_MAIZE * 0.7 * deficit) < 1e-12, `deficit ${deficit}: ${loss}`);
    }
    // Total water failure destroys the crop.
    assert.equal(expectedYieldLoss({ ...calm, rainfallDeficit: 1, soilMoisture: 0.05 }), 1);
  });

  it("loses more yield with more deficit, more heat, drier soil and excess thermal time", () => {
    const base: RawConditions = {
      rainfallDeficit: 0.2,
      heatDays: 5,
      soilMoisture: 0.22,
      growingDegreeDays: 1800,
    };
    const l0 = expectedYieldLoss(base);
    assert.ok(expectedYieldLoss({ ...base, rainfallDeficit: 0.3 }) > l0);
    assert.ok(expectedYieldLoss({ ...base, heatDays: 10 }) > l0);
    assert.ok(expectedYieldLoss({ ...base, soilMoisture: 0.15 }) > l0);
    assert.ok(expectedYieldLoss({ ...base, growingDegreeDays: 2000 }) > l0);
    assert.equal(expectedYieldLoss({ ...calm, growingDegreeDays: 1600 }), 0);
  });

  it("makes heat hurt more under drought (the interaction)", () => {
    const heatCost = (c: RawConditions) => expectedYieldLoss({ ...c, heatDays: 10 }) - expectedYieldLoss(c);
    const wet = heatCost(calm);
    const dry = heatCost({ ...calm, rainfallDeficit: 0.5, soilMoisture: 0.14 });
    // Relative to the yield left, heat removes 1 % per day when wet and up to 1.7 % per day when dry.
    assert.ok(Math.abs(wet - 0.1) < 1e-12);
    const left = 1 - expectedYieldLoss({ ...calm, rainfallDeficit: 0.5, soilMoisture: 0.14 });
    assert.ok(dry / left > wet * 1.2, `dry ${dry / left} vs wet ${wet}`);
  });

  it("adds zero-mean noise of the stated size, and co-moves drought features", () => {
    const d = generateYieldData(20_000, "noise");
    const residuals: number[] = [];
    for (let i = 0; i < d.n; i++) {
      const e = d.expected[i] as number;
      if (e > 0.15 && e < 0.85) residuals.push((d.y[i] as number) - e); // away from clipping
    }
    const m = mean(residuals);
    const sd = Math.sqrt(mean(residuals.map((r) => (r - m) ** 2)));
    assert.ok(Math.abs(m) < 0.002, `noise mean ${m}`);
    assert.ok(Math.abs(sd - NOISE_SD) < 0.002, `noise sd ${sd}`);
    const deficit = column(d.x, 0);
    const heat = column(d.x, 1);
    const soil = column(d.x, 2);
    assert.ok(correlation(deficit, heat) > 0.4, "dry seasons are hot seasons");
    assert.ok(correlation(deficit, soil) < -0.4, "dry seasons have dry soils");
    assert.ok(correlation(deficit, Array.from(d.y)) > 0.5);
  });

  it("normalizes raw conditions and converts them to the oracle's fixed point", () => {
    const f = normalizeFeatures({
      rainfallDeficit: 0.25,
      heatDays: 15,
      soilMoisture: 0.25,
      growingDegreeDays: 1600,
    });
    assert.deepEqual(
      f.map((v) => Number(v.toFixed(12))),
      [0.25, 0.25, 0.5, 0.5],
    );
    assert.deepEqual(toOracleInput(f), [250_000n, 250_000n, 500_000n, 500_000n]);
    assert.deepEqual(toOracleInput([0.0000005, -0.0000005, 1.2345674]), [1n, -1n, 1_234_567n]);
    assert.throws(() => toOracleInput([Number.NaN]), /not finite/);
  });
});
