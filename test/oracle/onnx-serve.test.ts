/**
 * A model made outside Ledgermind, served by the oracle: the scikit-learn MLPClassifier of
 * test/ml/fixtures/sklearn-mlp.onnx (8x8 digits, made by scripts/fixtures/make-sklearn-onnx.py) is
 * imported into the canonical encoding, registered, and answered by three staked operators on the
 * embedded EVM. ONNX Runtime runs the original file on the same held-out digits.
 *
 * The oracle's answer for a 10-class model is a class label (answerOf: the index of the largest logit),
 * so "within one quantization step" of ONNX Runtime means the same label for every digit. Behind each
 * label, the integer logits are checked against ONNX Runtime's within the error that quantizing the
 * weights (half a step each) and rounding every activation to the oracle's 1e-6 can cause, bounded per
 * digit layer by layer.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, parseEther } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { requireDeployment } from "../../src/chain/deploy.ts";
import { MindToken } from "../../src/chain/generated/contracts.ts";
import { sendAndWait } from "../../src/chain/tx.ts";
import { type CanonicalModel, dequantize, encodeCanonical } from "../../src/ml/encoding.ts";
import { importOnnx } from "../../src/ml/onnx.ts";
import { getRequestStatus, requestInference, setModelSpec } from "../../src/oracle/client.ts";
import { fromFixed, inferFixed, ORACLE_ONE } from "../../src/oracle/fixed-point.ts";
import { createOperator, driveOperators, type InferenceOperator } from "../../src/oracle/operator.ts";
import { addVersion, openRegistry, registerModel } from "../../src/registry/client.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import { argmaxRows, exposeOutput, runOnnx } from "../ml/onnx-runtime.ts";

const FIXTURES = new URL("../ml/fixtures/", import.meta.url);
const ONNX_BYTES = readFileSync(new URL("sklearn-mlp.onnx", FIXTURES));
const DIGITS = JSON.parse(readFileSync(new URL("sklearn-mlp-digits.json", FIXTURES), "utf8")) as {
  pixels: number[][];
  labels: number[];
  sklearnPredictions: number[];
};
const FEATURES = 64;
const CLASSES = 10;
/** The logits before the fixture's Softmax, as scikit-learn's layout names them. */
const LOGITS = "add_result1";
const SERVED = 6;
const OPS = [1, 2, 3];
const REQUESTER = 4;

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-onnx-serve-"));
let chain: LedgerChain;

/** Pixel / 16 is exact both in float32 and in the oracle's 1e6 fixed point (62_500 per unit of pixel). */
const fixedInput = (pixels: number[]) => pixels.map((p) => (BigInt(p) * ORACLE_ONE) / 16n);

/**
 * Per output, the most the integer logits can differ from a float pass with the original weights:
 * layer by layer, e_out = Σ|W| e_in + δ (Σ|a| + 1) + 0.5e-6, with δ = 2^-(scaleBits+1) the largest
 * quantization error of a weight, a the float activations (|a| taken with e_in added), and 0.5e-6 the
 * rounding of an activation to the oracle's grid; ReLU does not widen it. Plus 1e-6 for ONNX Runtime's
 * own float32 arithmetic.
 */
function logitBound(model: CanonicalModel, input: number[]): number[] {
  const delta = 2 ** -(model.scaleBits + 1);
  let a = [...input];
  let e = input.map(() => 0);
  for (let l = 0; 2 * l < model.tensors.length; l++) {
    const kernel = model.tensors[2 * l] as { shape: number[]; ints: Int32Array };
    const bias = dequantize((model.tensors[2 * l + 1] as { ints: Int32Array }).ints, model.scaleBits);
    const w = dequantize(kernel.ints, model.scaleBits);
    const [inputs, outputs] = kernel.shape as [number, number];
    const mass = a.reduce((sum, v, i) => sum + Math.abs(v) + (e[i] as number), 0);
    const next = Array.from({ length: outputs }, (_, j) => {
      let z = bias[j] as number;
      for (let i = 0; i < inputs; i++) z += (w[i * outputs + j] as number) * (a[i] as number);
      return z;
    });
    e = next.map((_, j) => {
      let spread = 0;
      for (let i = 0; i < inputs; i++) spread += Math.abs(w[i * outputs + j] as number) * (e[i] as number);
      return spread + delta * (mass + 1) + 0.5e-6;
    });
    a = 2 * (l + 1) < model.tensors.length ? next.map((z) => Math.max(0, z)) : next;
  }
  return e.map((v) => v + 1e-6);
}

before(async () => {
  chain = await connect({ ephemeral: true });
});

after(async () => {
  await chain?.close();
  rmSync(TMP, { recursive: true, force: true });
});

describe("a scikit-learn MLP imported from ONNX, served by the oracle", () => {
  const model = importOnnx(ONNX_BYTES);
  let ortLabels: number[];
  let ortLogits: Float32Array;

  before(async () => {
    const x = Float32Array.from(DIGITS.pixels.flat().map((p) => p / 16));
    const out = await runOnnx(exposeOutput(ONNX_BYTES, LOGITS, CLASSES), x, FEATURES);
    ortLabels = argmaxRows(out.probabilities as Float32Array, CLASSES);
    ortLogits = out[LOGITS] as Float32Array;
  });

  it("ONNX Runtime runs the fixture as scikit-learn predicted it (the fixture is what its script says)", () => {
    assert.deepEqual(ortLabels, DIGITS.sklearnPredictions);
  });

  it("integer logits within the quantization bound of ONNX Runtime's, the same label, on every held-out digit", (t) => {
    let worst = 0;
    let worstBound = 0;
    DIGITS.pixels.forEach((pixels, r) => {
      const logits = inferFixed(model, fixedInput(pixels));
      const bound = logitBound(
        model,
        pixels.map((p) => p / 16),
      );
      logits.forEach((v, j) => {
        const diff = Math.abs(fromFixed(v) - (ortLogits[r * CLASSES + j] as number));
        assert.ok(diff <= (bound[j] as number), `digit ${r} class ${j}: ${diff} > ${bound[j]}`);
        worst = Math.max(worst, diff);
        worstBound = Math.max(worstBound, bound[j] as number);
      });
      assert.equal(argmaxRows(logits.map(Number), CLASSES)[0], ortLabels[r], `digit ${r}`);
    });
    t.diagnostic(
      `largest |integer - ONNX Runtime| logit ${worst} (bound up to ${worstBound}, weight step ${2 ** -model.scaleBits})`,
    );
  });

  it("registered and answered by three operators on the embedded EVM: ONNX Runtime's label for each digit", async () => {
    const manifest = await requireDeployment(chain);
    const reg = await openRegistry(chain);
    const store = new FsBlobStore(join(TMP, "blobs"));
    const weightsCid = await store.put(encodeCanonical(model));
    const { modelId } = await registerModel(reg, "sklearn-digits-mlp", 0);
    await addVersion(reg, modelId, { weightsCid, licence: "BSD-3-Clause" }, 0);
    await setModelSpec(chain, modelId, 1, FEATURES, 0);
    for (const i of [...OPS, REQUESTER]) {
      await sendAndWait(chain, () =>
        chain.wallet(0).writeContract({
          address: manifest.contracts.MindToken.address,
          abi: MindToken.abi,
          functionName: "transfer",
          args: [(chain.accounts[i] as { address: Address }).address, parseEther("1000")],
        }),
      );
    }
    const operators: InferenceOperator[] = [];
    for (const account of OPS) {
      operators.push(
        await createOperator({
          chain,
          account,
          store,
          modelId,
          version: 1,
          stateFile: join(TMP, `op-${account}.json`),
        }),
      );
    }
    // One request at a time: a request's commit window (a few blocks) would close while later ones are sent.
    for (const [r, pixels] of DIGITS.pixels.slice(0, SERVED).entries()) {
      const { requestId } = await requestInference(
        chain,
        { modelId, version: 1, input: fixedInput(pixels), aggregation: "majority" },
        REQUESTER,
      );
      await driveOperators(operators);
      const status = await getRequestStatus(chain, requestId);
      assert.equal(status.state, "finalized", `request for digit ${r}`);
      assert.equal(status.output, BigInt(ortLabels[r] as number), `digit ${r}`);
    }
  });
});
