import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type * as tf from "@tensorflow/tfjs";
import { flipLabels, freeRide, gaussianNoise, signFlip } from "../../src/learning/adversaries.ts";
import { fedAvg } from "../../src/learning/fedavg.ts";
import { SCORE_EXCLUDED, SCORE_SCALE } from "../../src/learning/finalize.ts";
import {
  acceptUpdates,
  consensusScores,
  DEFAULT_ACCEPT_THRESHOLD,
  deltaNorm,
  dormantInputsOf,
  dormantShare,
  type Evaluation,
  labelConsistency,
  medianScore,
  pairedStandardError,
  probeModel,
  SCORE_KEPT,
  SCORE_MAX,
  type ScoreResult,
  scoresFromGains,
  scoreUpdates,
} from "../../src/learning/scoring.ts";
import {
  canonicalOf,
  datasetEvaluator,
  federatedData,
  participantAddress,
  trainLocal,
} from "../../src/learning/simulate.ts";
import { initBackend } from "../../src/ml/backend.ts";
import type { CanonicalModel } from "../../src/ml/encoding.ts";
import { createModel, initialWeights } from "../../src/ml/models.ts";
import { createRng, type Dataset } from "../../src/ml/partition.ts";

/** A two-tensor model of architecture "t" from a flat list of ints. */
function mk(ints: readonly number[], architecture = "t"): CanonicalModel {
  return {
    architecture,
    scaleBits: 8,
    tensors: [
      { name: "w", shape: [ints.length - 1], ints: Int32Array.from(ints.slice(0, -1)) },
      { name: "b", shape: [1], ints: Int32Array.from(ints.slice(-1)) },
    ],
  };
}

describe("scoring: consensus and pure helpers", () => {
  it("medianScore: the contract's lower median; integers from 0 to SCORE_SCALE only", () => {
    assert.equal(SCORE_MAX, SCORE_SCALE);
    assert.equal(medianScore([5, 1, 9]), 5);
    assert.equal(medianScore([0, 1]), 0);
    assert.equal(medianScore([1, 4, 2, SCORE_MAX]), 2);
    assert.equal(medianScore([7]), 7);
    assert.throws(() => medianScore([]), /no scores/);
    assert.throws(() => medianScore([SCORE_MAX + 1]), /from 0 to 10000/);
    assert.throws(() => medianScore([1.5]), /from 0 to 10000/);
  });

  it("consensusScores takes the median per update; acceptUpdates needs the threshold (default SCORE_KEPT, 2)", () => {
    const matrix = [
      [0, 100, 10000, 0],
      [1, 90, 0, 0],
      [1, 80, 3000, 5],
    ];
    assert.deepEqual(consensusScores(matrix), [1, 90, 3000, 0]);
    // 1 is SCORE_EXCLUDED: not accepted (and, on the contract, not slashed either).
    assert.deepEqual(acceptUpdates(consensusScores(matrix)), [false, true, true, false]);
    assert.equal(SCORE_EXCLUDED, 1);
    assert.equal(DEFAULT_ACCEPT_THRESHOLD, SCORE_KEPT);
    assert.deepEqual(acceptUpdates([1, 90, 3000, 0], 91), [false, false, true, false]);
    assert.throws(() => consensusScores([[1, 2], [3]]), /rows/);
  });

  it("scoresFromGains clips at 0 and normalizes by the best", () => {
    assert.deepEqual(scoresFromGains([0.5, -1, 0.25, 0, Number.NEGATIVE_INFINITY]), [
      SCORE_MAX,
      0,
      5000,
      0,
      0,
    ]);
    assert.deepEqual(scoresFromGains([-1, -2]), [0, 0]);
  });

  it("probeModel and deltaNorm work on the integers", () => {
    const g = mk([0, 10, -10]);
    const u = mk([3, 10, -17]);
    assert.deepEqual(Array.from(probeModel(g, u, 0.5).tensors[0]?.ints ?? []), [2, 10]); // 1.5 -> 2
    assert.deepEqual(Array.from(probeModel(g, u, 0.5).tensors[1]?.ints ?? []), [-14]); // -3.5 -> -4
    assert.equal(deltaNorm(g, u), Math.sqrt(9 + 49));
    assert.equal(pairedStandardError([1, 2, 3], [1, 2, 3]), 0);
    assert.equal(pairedStandardError(undefined, [1]), 0);
  });

  it("pairedStandardError by class leaves out the spread between classes, the concentrated harm's cover", () => {
    const a = [1, 3, 10, 14];
    const b = [0, 0, 0, 0];
    // Pooled: the differences' variance 110 / 3 over 4 samples.
    assert.ok(Math.abs(pairedStandardError(a, b) - Math.sqrt(110 / 3 / 4)) < 1e-12);
    // By class: variances 2 and 8, each class 2 of 4 samples: 2 * 2 / 16 + 8 * 2 / 16.
    assert.ok(Math.abs(pairedStandardError(a, b, [0, 0, 1, 1]) - Math.sqrt(1.25)) < 1e-12);
    assert.equal(pairedStandardError(a, b, [5, 5, 5, 5]), pairedStandardError(a, b), "one class: pooled");
    assert.equal(
      pairedStandardError(a, b, [0, 0, 0, 1]),
      pairedStandardError(a, b),
      "a class of one: pooled",
    );
  });

  it("labelConsistency: positive when a class's score rises most on its own examples, negative for a flip", () => {
    const labels = [0, 0, 1, 1, 2, 2];
    const flat = Math.log(1 / 3);
    const global: Evaluation = { loss: 1, labels, logProbabilities: new Array(18).fill(flat) };
    /** Log-probabilities where sample i of class y gets +bump on class target(y). */
    const shifted = (target: (y: number) => number): Evaluation => {
      const lp: number[] = [];
      for (const y of labels) for (let c = 0; c < 3; c++) lp.push(c === target(y) ? flat + 1 : flat - 0.5);
      return { loss: 1, logProbabilities: lp, labels };
    };
    assert.ok(
      labelConsistency(
        shifted((y) => y),
        global,
      ) > 0.9,
    );
    assert.ok(
      labelConsistency(
        shifted((y) => (y + 1) % 3),
        global,
      ) < -0.9,
    );
    assert.ok(Number.isNaN(labelConsistency({ loss: 1 }, global)));
  });
});

describe("scoring: scoreUpdates with a stub evaluator", () => {
  // Loss: squared distance of the weights from a target, per sample identical.
  const target = [4, 4, 4];
  const evaluator = (calls: CanonicalModel[]) => (m: CanonicalModel) => {
    calls.push(m);
    const flat = m.tensors.flatMap((t) => Array.from(t.ints));
    const loss = flat.reduce((s, v, i) => s + (v - (target[i] as number)) ** 2, 0) / 100;
    return { loss };
  };
  const g = mk([0, 0, 0]);

  it("a free rider (the global sent back) scores 0 without being evaluated; another architecture scores 0", async () => {
    const calls: CanonicalModel[] = [];
    const rider = freeRide(g);
    const alien = mk([1, 1, 1], "other");
    const r = await scoreUpdates(g, [rider, alien, mk([2, 1, 2])], evaluator(calls), {
      consistencyBound: Number.NEGATIVE_INFINITY,
    });
    assert.deepEqual(r.scores.slice(0, 2), [0, 0]);
    assert.deepEqual(r.verdicts, ["unchanged", "incompatible", "kept"]);
    assert.equal(r.scores[2], SCORE_MAX);
    assert.equal(calls.includes(rider) || calls.includes(alien), false, "neither was evaluated");
    // Only free riders: nothing is evaluated at all.
    const none: CanonicalModel[] = [];
    assert.deepEqual((await scoreUpdates(g, [freeRide(g), freeRide(g)], evaluator(none))).scores, [0, 0]);
    assert.equal(none.length, 0);
  });

  it("magnitude: above 4x the round's median norm is excluded (not slashed); above 20x is evidence (score 0)", async () => {
    const updates = [mk([1, 1, 1]), mk([2, 1, 1]), mk([1, 2, 1]), mk([-9, -9, -9]), mk([90, 90, 90])];
    const r = await scoreUpdates(g, updates, evaluator([]), { consistencyBound: Number.NEGATIVE_INFINITY });
    assert.deepEqual(r.verdicts.slice(3), ["norm", "extreme"]);
    assert.deepEqual(r.scores.slice(3), [SCORE_EXCLUDED, 0]);
    assert.ok(r.scores.slice(0, 3).every((s) => s >= SCORE_KEPT));
    assert.ok((r.normRatios[3] as number) > 4 && (r.normRatios[3] as number) < 20);
    assert.ok((r.normRatios[4] as number) > 20);
  });

  it("the significance removal excludes a harmful update and rescores the others", async () => {
    const updates = [mk([2, 2, 2]), mk([3, 2, 3]), mk([-3, -3, -3])];
    const kept = await scoreUpdates(g, updates, evaluator([]), {
      consistencyBound: Number.NEGATIVE_INFINITY,
      normBound: Number.POSITIVE_INFINITY,
      significance: Number.POSITIVE_INFINITY,
    });
    assert.equal(kept.scores[2], SCORE_KEPT, "without the removal, a harmful update is kept, unpaid");
    const removed = await scoreUpdates(g, updates, evaluator([]), {
      consistencyBound: Number.NEGATIVE_INFINITY,
      normBound: Number.POSITIVE_INFINITY,
      significance: 0,
    });
    assert.equal(removed.verdicts[2], "harmful");
    assert.equal(removed.scores[2], SCORE_EXCLUDED, "harm excludes; it is no evidence of malice");
  });

  it("the leave-one-out aggregate has equal weights; with weighting samples, the aggregate FedAvg will form", async () => {
    const calls: CanonicalModel[] = [];
    const equalCalls: CanonicalModel[] = [];
    const updates = [
      { model: mk([4, 4, 4]), samples: 1 },
      { model: mk([0, 0, 8]), samples: 3 },
    ];
    const options = { consistencyBound: Number.NEGATIVE_INFINITY };
    await scoreUpdates(g, updates, evaluator(calls), { ...options, weighting: "samples" });
    await scoreUpdates(g, updates, evaluator(equalCalls), options);
    const formed = fedAvg().aggregate(
      g,
      updates.map((u, i) => ({ participant: participantAddress(i), ...u })),
    );
    const flat = (m: CanonicalModel) => m.tensors.flatMap((t) => Array.from(t.ints)).join(",");
    assert.deepEqual(flat(formed), "1,1,7");
    assert.ok(
      calls.some((m) => flat(m) === flat(formed)),
      "weighting samples: FedAvg's aggregate",
    );
    assert.ok(!calls.some((m) => flat(m) === "2,2,6"), "weighting samples: not the equal-weight mean");
    assert.ok(
      equalCalls.some((m) => flat(m) === "2,2,6"),
      "by default, the equal-weight mean",
    );
  });

  it("a harmful update that weighs nothing in the aggregate is not excluded: the harm must be material", async () => {
    // A shard of 1 sample beside one of 1,000 moves the aggregate by a rounding step: consistent but
    // immaterial harm, as with the smallest shards of a 1,000-trainer round.
    const far = (m: CanonicalModel) => {
      const flat = m.tensors.flatMap((t) => Array.from(t.ints));
      return { loss: flat.reduce((sum, v) => sum + (v - 4000) ** 2, 0) / 100 };
    };
    const updates = [
      { model: mk([4000, 4000, 4000]), samples: 1000 },
      { model: mk([4000, -4000, 4000]), samples: 1 },
    ];
    const options = {
      consistencyBound: Number.NEGATIVE_INFINITY,
      normBound: Number.POSITIVE_INFINITY,
      weighting: "samples" as const,
    };
    const strict = await scoreUpdates(g, updates, far, { ...options, materiality: 0 });
    assert.equal(strict.verdicts[1], "harmful", "without materiality the tiny harm excludes it");
    const r = await scoreUpdates(g, updates, far, options);
    assert.deepEqual(r.verdicts, ["kept", "kept"]);
    assert.equal(r.scores[1], SCORE_KEPT, "kept, paid nothing: it adds nothing");
  });
});

describe("scoring: the dormant-input screen (backdoor triggers on inputs no data uses)", () => {
  /** A 3-input, 2-unit first tensor (row-major [inputs, units]) and a bias. */
  const dense = (w: readonly number[]): CanonicalModel => ({
    architecture: "d",
    scaleBits: 8,
    tensors: [
      { name: "kernel", shape: [3, 2], ints: Int32Array.from(w) },
      { name: "bias", shape: [2], ints: Int32Array.from([0, 0]) },
    ],
  });

  it("dormantInputsOf names the features that are zero in every sample", () => {
    assert.deepEqual(dormantInputsOf([0, 1, 0, 0, 2, 0], 2, 3), [0, 2]);
    assert.deepEqual(dormantInputsOf([1, 1, 1], 1, 3), []);
    assert.throws(() => dormantInputsOf([0, 1], 2, 3), /2 values are not 2 samples x 3/);
  });

  it("dormantShare is the norm share of the first tensor's change on those rows", () => {
    const g = dense([0, 0, 0, 0, 0, 0]);
    assert.equal(dormantShare(g, dense([3, 4, 0, 0, 0, 0]), [0]), 1);
    assert.equal(dormantShare(g, dense([0, 0, 3, 4, 0, 0]), [0]), 0);
    assert.ok(Math.abs(dormantShare(g, dense([3, 0, 4, 0, 0, 0]), [0]) - 0.6) < 1e-12);
    assert.equal(dormantShare(g, g, [0]), 0);
  });

  it("an update that moves dormant inputs' weights is excluded, never slashed", async () => {
    const g = dense([0, 0, 0, 0, 0, 0]);
    const loss = (m: CanonicalModel) => ({
      loss: 10 - ((m.tensors[0] as { ints: Int32Array }).ints[2] as number),
    });
    const honest = [dense([0, 0, 2, 1, 1, 0]), dense([0, 0, 1, 2, 0, 1]), dense([0, 0, 2, 2, 1, 1])];
    const trigger = dense([5, 5, 2, 1, 1, 1]);
    const options = { consistencyBound: Number.NEGATIVE_INFINITY, dormantInputs: [0] };
    const r = await scoreUpdates(g, [...honest, trigger], loss, options);
    assert.equal(r.verdicts[3], "dormant");
    assert.equal(r.scores[3], SCORE_EXCLUDED);
    assert.ok(r.scores.slice(0, 3).every((s2) => s2 >= SCORE_KEPT));
    const without = await scoreUpdates(g, [...honest, trigger], loss, { ...options, dormantInputs: [] });
    assert.ok((without.scores[3] as number) >= SCORE_KEPT, "without the dormant inputs it is kept");
  });
});

describe("scoring: honest and attacked updates on non-IID MNIST shards", () => {
  const arch = "logreg-784-10";
  let data: ReturnType<typeof federatedData>;
  let model: tf.LayersModel;
  let global: CanonicalModel;
  const train = (from: CanonicalModel, shard: Dataset, seed: string) =>
    trainLocal(model, from, shard, { epochs: 1, batch: 32, lr: 0.1, seed });

  before(async () => {
    await initBackend();
    data = federatedData({
      clients: 6,
      alpha: 0.5,
      seed: 11,
      validators: 3,
      samplesPerClient: 500,
      validatorSamples: 300,
      testSize: 500,
    });
    model = createModel(arch, 0);
    // Three honest FedAvg rounds first: scoring is hardest once the model has learned the easy part.
    global = canonicalOf(arch, initialWeights(arch, 11));
    for (let round = 0; round < 3; round++) {
      const updates = [];
      for (const [i, shard] of data.clients.entries()) {
        updates.push({
          participant: participantAddress(i),
          samples: shard.n,
          model: await train(global, shard, `warm/${round}/${i}`),
        });
      }
      global = fedAvg().aggregate(global, updates);
    }
  });

  it("shards are non-IID: every honest update is kept, sign-flip and label-flip are left out, noise and free-ride score 0", async () => {
    // Non-IID: on average, a client's label distribution is far from uniform (total variation).
    let distance = 0;
    for (const shard of data.clients) {
      const counts = new Array<number>(10).fill(0);
      for (const y of shard.y) counts[y] = (counts[y] as number) + 1;
      distance += counts.reduce((s, c) => s + Math.abs(c / shard.n - 0.1), 0) / 2;
    }
    console.log(`mean total variation from uniform labels: ${(distance / data.clients.length).toFixed(2)}`);
    assert.ok(distance / data.clients.length > 0.3, `non-IID shards (${distance / data.clients.length})`);
    const honest: CanonicalModel[] = [];
    for (const [i, shard] of data.clients.entries()) honest.push(await train(global, shard, `h/${i}`));
    const flipped = await train(global, flipLabels(data.clients[1] as Dataset), "flip");
    const attacks: Record<string, CanonicalModel> = {
      "sign-flip": signFlip(global, honest[0] as CanonicalModel, 5),
      "label-flip": flipped,
      noise: gaussianNoise(global, 1, createRng(3)),
      "free-ride": freeRide(global),
    };
    const updates = [...honest, ...Object.values(attacks)];
    const results: ScoreResult[] = [];
    for (const shard of data.validators) {
      results.push(await scoreUpdates(global, updates, datasetEvaluator(model, shard)));
    }
    const consensus = consensusScores(results.map((r) => r.scores));
    const accepted = acceptUpdates(consensus);
    const honestScores = consensus.slice(0, honest.length);
    assert.ok(accepted.slice(0, honest.length).every(Boolean), `honest consensus ${honestScores.join(", ")}`);
    assert.ok(
      honestScores.every((c) => c >= SCORE_KEPT),
      `no honest update is excluded or slashed: ${honestScores.join(", ")}`,
    );
    Object.keys(attacks).forEach((name, j) => {
      const c = consensus[honest.length + j] as number;
      assert.ok(c <= SCORE_EXCLUDED, `${name} consensus ${c}`);
    });
    // Why, in the validators' majority: sign-flip x5 is excluded by the magnitude screen, label-flip by
    // label consistency; noise is far beyond any honest norm and the free rider is the global itself: both
    // are evidence of malice.
    const verdictOf = (k: number) => {
      const verdicts = results.map((r) => r.verdicts[k]);
      return verdicts.find((v) => verdicts.filter((w) => w === v).length >= 2);
    };
    assert.equal(verdictOf(honest.length), "norm");
    assert.ok(["inconsistent", "flipped"].includes(verdictOf(honest.length + 1) as string));
    assert.equal(verdictOf(honest.length + 2), "extreme");
    assert.equal(verdictOf(honest.length + 3), "unchanged");
    assert.deepEqual(consensus.slice(honest.length + 2), [0, 0]);
    // The best honest update leads; scores are integers on the contract's scale.
    assert.equal(Math.max(...honestScores) > SCORE_MAX / 2, true);
    for (const r of results)
      for (const s of r.scores) assert.ok(Number.isInteger(s) && s >= 0 && s <= SCORE_MAX);
  });

  it("is deterministic: the same bytes and data give the same scores", async () => {
    const updates = [];
    for (const [i, shard] of data.clients.slice(0, 3).entries())
      updates.push(await train(global, shard, `d/${i}`));
    const evaluator = datasetEvaluator(model, data.validators[0] as Dataset);
    const a = await scoreUpdates(global, updates, evaluator);
    const b = await scoreUpdates(global, updates, evaluator);
    assert.deepEqual(a.scores, b.scores);
    assert.deepEqual(a.gains, b.gains);
  });
});
