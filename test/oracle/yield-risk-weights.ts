/**
 * A crop-yield risk model in the trained model's shape (mlp-4-3-1-sigmoid) with hand-picked weights: the
 * oracle's tests and its bench serve it, so that every answer is known without training.
 */
import { encodeModel } from "../../src/ml/encoding.ts";
import { yieldArchitecture } from "../../src/oracle/yield-model.ts";

export const YIELD_RISK_WEIGHTS: Uint8Array = encodeModel({
  architecture: yieldArchitecture(3),
  scaleBits: 16,
  tensors: [
    {
      name: "dense0.kernel",
      shape: [4, 3],
      values: [2.1, -0.4, 1.3, 1.7, 0.9, -0.6, -1.9, 0.3, -1.1, 0.8, -0.2, 0.45],
    },
    { name: "dense0.bias", shape: [3], values: [-0.3, 0.1, 0.05] },
    { name: "dense1.kernel", shape: [3, 1], values: [1.8, -0.7, 1.25] },
    { name: "dense1.bias", shape: [1], values: [-1.4] },
  ],
});

/** Four normalized conditions (a dry, hot season) the tests ask it about. */
export const DRY_SEASON = [0.55, 0.35, 0.3, 0.8];
