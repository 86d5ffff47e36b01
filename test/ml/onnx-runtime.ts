/**
 * Test helpers around ONNX Runtime (onnxruntime-node, a devDependency: only tests and the bench load it),
 * the runtime nobody here wrote that checks exportOnnx and importOnnx.
 */
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";

const { onnx } = onnxProto;

/** Runs an ONNX model on `rows` (row-major, `width` features each) and returns every named output. */
export async function runOnnx(
  bytes: Uint8Array,
  x: Float32Array,
  width: number,
  outputs?: string[],
): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const input = session.inputNames[0] as string;
    const result = await session.run(
      { [input]: new ort.Tensor("float32", x, [x.length / width, width]) },
      outputs ?? [...session.outputNames],
    );
    return Object.fromEntries(
      Object.entries(result).map(([name, t]) => [name, Float32Array.from(t.data as Float32Array)]),
    );
  } finally {
    await session.release();
  }
}

/** The same model with an intermediate value (e.g. the logits before Softmax) also exposed as an output. */
export function exposeOutput(bytes: Uint8Array, name: string, width: number): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  model.graph?.output?.push({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimParam: "batch" }, { dimValue: width }] },
      },
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Index of the largest value of each row. */
export function argmaxRows(values: ArrayLike<number>, width: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * width < values.length; r++) {
    let best = 0;
    for (let j = 1; j < width; j++) {
      if ((values[r * width + j] as number) > (values[r * width + best] as number)) best = j;
    }
    out.push(best);
  }
  return out;
}
