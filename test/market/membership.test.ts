/**
 * Membership inference against the provider's training job, with and without DP. Loss-threshold attack
 * (Yeom et al. 2018) on MNIST digits: 500 members (the private training rows) and 500 non-members.
 *
 * Why `|advantage| <= 0.1` with DP is not a coin flip of a test: every seed is fixed (data split, shuffling,
 * initial weights, the noise), so the outcome is the same on every run; and the bound is not tight by luck:
 * for a model independent of membership, TPR - FPR over 500 + 500 samples has a standard deviation of at
 * most sqrt(0.25 / 500 + 0.25 / 500) = 0.032, so 0.1 is over 3 of them. (The paper's Theorem 1 bound for
 * epsilon-DP, e^epsilon - 1 = 0.65 at epsilon 0.5, is far looser.) The same attack on the same training
 * without DP must reach an advantage of at least 0.12 (over 3.7 of those deviations above chance; Yeom's
 * advantage is about the generalization gap, here 1 - 0.88), so the test fails if the attack is broken.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalOf } from "../../src/learning/simulate.ts";
import { runComputeJob } from "../../src/market/compute.ts";
import { lossThresholdAttack, perSampleLoss } from "../../src/market/membership.ts";
import { jobNoiseMultiplier } from "../../src/market/privacy-budget.ts";
import { initBackend } from "../../src/ml/backend.ts";
import { decodeModel, toFloatTensors } from "../../src/ml/encoding.ts";
import { loadMnist } from "../../src/ml/mnist.ts";
import { createModel, initialWeights, setWeights } from "../../src/ml/models.ts";
import { createRng, type Dataset } from "../../src/ml/partition.ts";
import { predictProbabilities } from "../../src/ml/train.ts";

const ARCHITECTURE = "mlp-784-64-10";
const PARAMS = { epochs: 30, batch: 16, lr: 0.1 };
const EPSILON = 0.5;
const DELTA = 1e-5;
const CLIP = 5;

describe("membership inference on the provider's training result", () => {
  it("the attack's advantage is near chance on the DP result, and well above it without DP", async () => {
    await initBackend();
    const { train: members, test: nonMembers } = loadMnist({ train: 500, test: 500 });
    const base = canonicalOf(ARCHITECTURE, initialWeights(ARCHITECTURE, 3));
    const model = createModel(ARCHITECTURE, 0);
    try {
      const attack = async (bytes: Uint8Array) => {
        setWeights(model, toFloatTensors(decodeModel(bytes)));
        const losses = (d: Dataset) => perSampleLoss(predictProbabilities(model, d.x), d.y);
        const accuracy = (d: Dataset) => {
          const p = predictProbabilities(model, d.x);
          let correct = 0;
          for (let i = 0; i < d.n; i++) {
            const row = Array.from(p.subarray(i * 10, i * 10 + 10));
            if (row.indexOf(Math.max(...row)) === d.y[i]) correct++;
          }
          return correct / d.n;
        };
        return {
          ...lossThresholdAttack(losses(members), losses(nonMembers)),
          testAccuracy: accuracy(nonMembers),
        };
      };
      const job = { model, base, data: members, kind: "train" as const, params: PARAMS, seed: "membership" };
      const plain = await attack((await runComputeJob(job)).bytes);
      const noiseMultiplier = jobNoiseMultiplier(EPSILON, { epsilonBudget: 1, delta: DELTA });
      const dp = await attack(
        (await runComputeJob({ ...job, noise: { noiseMultiplier, clipNorm: CLIP, rng: createRng("noise") } }))
          .bytes,
      );
      console.log(
        `membership advantage: without DP ${plain.advantage.toFixed(3)} (TPR ${plain.tpr.toFixed(3)}, FPR ${plain.fpr.toFixed(3)}, test accuracy ${plain.testAccuracy.toFixed(3)}); ` +
          `with DP (epsilon ${EPSILON}, delta ${DELTA}, sigma ${noiseMultiplier.toFixed(2)}, C ${CLIP}) ${dp.advantage.toFixed(3)} (TPR ${dp.tpr.toFixed(3)}, FPR ${dp.fpr.toFixed(3)}, test accuracy ${dp.testAccuracy.toFixed(3)})`,
      );
      assert.ok(plain.advantage >= 0.12, `the attack should work without DP: advantage ${plain.advantage}`);
      assert.ok(
        Math.abs(dp.advantage) <= 0.1,
        `DP should leave the attack near chance: advantage ${dp.advantage}`,
      );
    } finally {
      model.dispose();
    }
  });
});
