/**
 * exportOnnx and importOnnx, checked by ONNX Runtime: a digit classifier trained here on real MNIST
 * digits, exported, gives ONNX Runtime's probabilities within 1e-5 of Ledgermind's float inference and
 * the same argmax on every test digit; imports of the layouts converters write (scikit-learn's
 * MatMul+Add, PyTorch's Gemm with transB and Flatten) give the weights back; everything else is refused by name.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import onnxProto from "onnx-proto";
import { initBackend } from "../../src/ml/backend.ts";
import {
  type CanonicalModel,
  decodeModel,
  encodeCanonical,
  encodeModel,
  toFloatTensors,
} from "../../src/ml/encoding.ts";
import { loadMnist, MNIST_FEATURES } from "../../src/ml/mnist.ts";
import { createModel, getWeights, setWeights } from "../../src/ml/models.ts";
import { exportOnnx, importOnnx, OnnxError, UnsupportedOnnxOperatorError } from "../../src/ml/onnx.ts";
import { predictProbabilities, trainModel } from "../../src/ml/train.ts";
import { inferFloat } from "../../src/oracle/fixed-point.ts";
import { YIELD_RISK_WEIGHTS } from "../oracle/yield-risk-weights.ts";
import { argmaxRows, runOnnx } from "./onnx-runtime.ts";

const { onnx } = onnxProto;
const FIXTURE = new URL("./fixtures/sklearn-mlp.onnx", import.meta.url);

/** The oracle tests' hand-picked yield-risk model: a sigmoid output. */
const sigmoidModel = (): CanonicalModel => decodeModel(YIELD_RISK_WEIGHTS);

type Node = onnxProto.onnx.INodeProto;

/** An ONNX model from nodes and float initializers, input "x" of `width` features, output "y". */
function graphOf(
  nodes: Node[],
  weights: Record<string, { dims: number[]; values: number[] }>,
  width: number,
): Uint8Array {
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: "", version: 13 }],
      graph: {
        name: "g",
        node: nodes,
        initializer: Object.entries(weights).map(([name, t]) => ({
          name,
          dims: t.dims,
          dataType: onnx.TensorProto.DataType.FLOAT,
          floatData: t.values,
        })),
        input: [
          {
            name: "x",
            type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: "n" }, { dimValue: width }] } } },
          },
        ],
        output: [{ name: "y", type: { tensorType: { elemType: 1 } } }],
      },
    }),
  ).finish();
}

describe("exportOnnx, checked by ONNX Runtime", () => {
  it("a digit classifier trained on MNIST: probabilities within 1e-5 of Ledgermind's float inference, same argmax on every test digit", async (t) => {
    await initBackend();
    const architecture = "mlp-784-128-10";
    const { train, test } = loadMnist({ train: 3000, test: 1000 });
    const model = createModel(architecture, 7);
    try {
      await trainModel(model, train, { epochs: 3, batchSize: 32, learningRate: 0.1, seed: 7 });
      const canonical = decodeModel(encodeModel({ architecture, tensors: getWeights(model) }));
      // Ledgermind's float inference runs what the registry holds: the canonical weights, dequantized.
      setWeights(model, toFloatTensors(canonical));
      const ours = predictProbabilities(model, test.x);
      const { output } = await runOnnx(exportOnnx(canonical), test.x, MNIST_FEATURES);
      assert.ok(output);
      assert.equal(output.length, ours.length);
      let worst = 0;
      for (let i = 0; i < ours.length; i++)
        worst = Math.max(worst, Math.abs((output[i] as number) - (ours[i] as number)));
      assert.ok(worst <= 1e-5, `largest difference ${worst}`);
      const labels = argmaxRows(ours, 10);
      assert.deepEqual(argmaxRows(output, 10), labels);
      // A trained model, not a constant one: the check above compares real predictions.
      const accuracy = labels.filter((l, i) => l === test.y[i]).length / test.n;
      assert.ok(accuracy > 0.85, `accuracy ${accuracy}`);
      t.diagnostic(
        `${test.n} test digits: largest |ONNX Runtime - float inference| ${worst}, accuracy ${accuracy}`,
      );
    } finally {
      model.dispose();
    }
  });

  it("a sigmoid model: ONNX Runtime within 1e-6 of the float64 reference on the same weights", async () => {
    const model = sigmoidModel();
    const rows = [
      [0.55, 0.7, 0.14, 0.6],
      [0, 0, 0, 0],
      [1, 1, 1, 1],
      [0.2, 0.9, 0.5, 0.1],
    ];
    const { output } = await runOnnx(exportOnnx(model), Float32Array.from(rows.flat()), 4);
    assert.ok(output);
    rows.forEach((row, r) => {
      const want = inferFloat(model, row)[0] as number;
      assert.ok(Math.abs((output[r] as number) - want) < 1e-6, `row ${r}: ${output[r]} vs ${want}`);
    });
  });

  it("is deterministic and imports back to the same canonical bytes", () => {
    const model = sigmoidModel();
    const bytes = exportOnnx(model);
    assert.deepEqual(exportOnnx(model), bytes);
    assert.deepEqual(encodeCanonical(importOnnx(bytes)), encodeCanonical(model));
    const proto = onnx.ModelProto.decode(bytes);
    assert.deepEqual(
      proto.graph?.node?.map((n) => n.opType),
      ["Gemm", "Relu", "Gemm", "Sigmoid"],
    );
    assert.equal(Number(proto.opsetImport[0]?.version), 13);
  });

  it("refuses an architecture it cannot run, and tensors that do not fit it", () => {
    assert.throws(
      () => exportOnnx({ architecture: "cnn-1", scaleBits: 16, tensors: [] }),
      /Cannot run architecture/,
    );
    const model = sigmoidModel();
    assert.throws(() => exportOnnx({ ...model, tensors: model.tensors.slice(1) }), OnnxError);
  });
});

describe("importOnnx", () => {
  it("scikit-learn's MLPClassifier layout (MatMul, Add, Relu, Softmax): mlp-64-16-10, weights within half a step", () => {
    const bytes = readFileSync(FIXTURE);
    const model = importOnnx(bytes);
    assert.equal(model.architecture, "mlp-64-16-10");
    assert.equal(model.scaleBits, 16);
    assert.deepEqual(
      model.tensors.map((t) => `${t.name} [${t.shape.join(", ")}]`),
      ["dense0.kernel [64, 16]", "dense0.bias [16]", "dense1.kernel [16, 10]", "dense1.bias [10]"],
    );
    const proto = onnx.ModelProto.decode(bytes);
    const coefficient = proto.graph?.initializer?.find((t) => t.name === "coefficient1");
    assert.ok(coefficient?.rawData);
    const view = new DataView(coefficient.rawData.buffer, coefficient.rawData.byteOffset);
    const kernel = model.tensors[2]?.ints as Int32Array;
    for (let i = 0; i < kernel.length; i++)
      assert.ok(Math.abs((kernel[i] as number) / 2 ** 16 - view.getFloat32(i * 4, true)) <= 2 ** -17);
    assert.equal(importOnnx(bytes, { scaleBits: 20 }).scaleBits, 20);
  });

  it("PyTorch's layout (Flatten, Gemm with transB = 1, Identity): the kernel comes back as [in, out]", async () => {
    // W stored [out = 2, in = 3] as torch.nn.Linear keeps it.
    const bytes = graphOf(
      [
        { opType: "Flatten", input: ["x"], output: ["f"], name: "flatten" },
        {
          opType: "Gemm",
          input: ["f", "W", "b"],
          output: ["z"],
          name: "fc",
          attribute: [{ name: "transB", type: 2, i: 1 }],
        },
        { opType: "Identity", input: ["z"], output: ["z2"], name: "id" },
        { opType: "Softmax", input: ["z2"], output: ["y"], name: "softmax" },
      ],
      { W: { dims: [2, 3], values: [1, 2, 3, 4, 5, 6] }, b: { dims: [2], values: [0.5, -0.5] } },
      3,
    );
    const model = importOnnx(bytes);
    assert.equal(model.architecture, "logreg-3-2");
    const [kernel, bias] = toFloatTensors(model);
    assert.deepEqual(Array.from(kernel?.values ?? []), [1, 4, 2, 5, 3, 6]);
    assert.deepEqual(Array.from(bias?.values ?? []), [0.5, -0.5]);
    // ONNX Runtime agrees that this is the same function as the import's re-export.
    const x = Float32Array.from([0.1, -0.2, 0.3]);
    const original = (await runOnnx(bytes, x, 3)).y as Float32Array;
    const exported = (await runOnnx(exportOnnx(model), x, 3)).output as Float32Array;
    assert.ok(Math.abs((original[0] as number) - (exported[0] as number)) < 1e-6);
  });

  it("a Conv layer is refused by name", () => {
    const bytes = graphOf(
      [
        { opType: "Conv", input: ["x", "K"], output: ["c"], name: "conv1" },
        { opType: "Softmax", input: ["c"], output: ["y"], name: "s" },
      ],
      { K: { dims: [1, 1, 1], values: [1] } },
      3,
    );
    assert.throws(
      () => importOnnx(bytes),
      (err: unknown) =>
        err instanceof UnsupportedOnnxOperatorError &&
        err.operator === "Conv" &&
        /ONNX operator Conv \(node "conv1"\)/.test(err.message),
    );
  });

  it("an operator of another domain (skl2onnx's ai.onnx.ml ZipMap) is refused with its domain", () => {
    const bytes = graphOf(
      [
        { opType: "MatMul", input: ["x", "W"], output: ["z"], name: "m" },
        { opType: "Softmax", input: ["z"], output: ["p"], name: "s" },
        { opType: "ZipMap", domain: "ai.onnx.ml", input: ["p"], output: ["y"], name: "zip" },
      ],
      { W: { dims: [2, 2], values: [1, 0, 0, 1] } },
      2,
    );
    assert.throws(() => importOnnx(bytes), /ONNX operator ai\.onnx\.ml\.ZipMap/);
  });

  it("refuses graphs that are not one chain of dense layers ending in Softmax or Sigmoid", () => {
    const W = { dims: [2, 2], values: [1, 0, 0, 1] };
    // A branch: the input feeds a second node besides the chain.
    assert.throws(
      () =>
        importOnnx(
          graphOf(
            [
              { opType: "MatMul", input: ["x", "W"], output: ["z"], name: "m" },
              { opType: "Relu", input: ["x"], output: ["skip"], name: "side" },
              { opType: "Softmax", input: ["z"], output: ["y"], name: "s" },
            ],
            { W },
            2,
          ),
        ),
      /node "side" \(Relu\) is not on the single chain/,
    );
    // A residual connection: the Add's other term is an activation, not a bias.
    assert.throws(
      () =>
        importOnnx(
          graphOf(
            [
              { opType: "MatMul", input: ["x", "W"], output: ["z"], name: "m" },
              { opType: "Add", input: ["z", "x"], output: ["r"], name: "residual" },
              { opType: "Softmax", input: ["r"], output: ["y"], name: "s" },
            ],
            { W },
            2,
          ),
        ),
      /not a weight stored in the graph/,
    );
    // A linear output.
    assert.throws(
      () =>
        importOnnx(graphOf([{ opType: "MatMul", input: ["x", "W"], output: ["y"], name: "m" }], { W }, 2)),
      /ends without Softmax or Sigmoid/,
    );
    // Two dense layers without a Relu between them.
    assert.throws(
      () =>
        importOnnx(
          graphOf(
            [
              { opType: "MatMul", input: ["x", "W"], output: ["a"], name: "m1" },
              { opType: "MatMul", input: ["a", "W"], output: ["b"], name: "m2" },
              { opType: "Softmax", input: ["b"], output: ["y"], name: "s" },
            ],
            { W },
            2,
          ),
        ),
      /without a Relu/,
    );
    // Widths that do not chain.
    assert.throws(
      () =>
        importOnnx(
          graphOf(
            [
              { opType: "MatMul", input: ["x", "W"], output: ["y0"], name: "m" },
              { opType: "Softmax", input: ["y0"], output: ["y"], name: "s" },
            ],
            { W },
            3,
          ),
        ),
      /takes 2 features, but 3 arrive/,
    );
    assert.throws(() => importOnnx(Uint8Array.from([0xff, 0xff, 0xff])), OnnxError);
  });

  it("weights kept outside the file (external data) are refused with what to do", () => {
    const proto = onnx.ModelProto.decode(exportOnnx(sigmoidModel()));
    const first = proto.graph?.initializer?.[0];
    assert.ok(first);
    first.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    assert.throws(
      () => importOnnx(onnx.ModelProto.encode(proto).finish()),
      /external data\); save it inside/,
    );
  });

  it("a weight too large for the scale is the encoding's overflow error", () => {
    const bytes = graphOf(
      [
        { opType: "MatMul", input: ["x", "W"], output: ["z"], name: "m" },
        { opType: "Softmax", input: ["z"], output: ["y"], name: "s" },
      ],
      { W: { dims: [2, 2], values: [1e6, 0, 0, 1] } },
      2,
    );
    assert.throws(() => importOnnx(bytes), /Cannot quantize tensor "dense0.kernel"/);
  });
});
