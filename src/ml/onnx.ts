/**
 * Canonical models in and out of ONNX (pure, no I/O).
 *
 * Export: a canonical dense model becomes an ONNX graph (opset ONNX_OPSET, IR ONNX_IR_VERSION) that any
 * ONNX runtime runs: one Gemm per layer (kernel [in, out], transB = 0, so the canonical row-major layout
 * is the ONNX layout), Relu after every hidden layer, then Softmax (plain ids: the classifiers of
 * models.ts, whose predict gives probabilities) or Sigmoid ("-sigmoid" ids, fixed-point.ts). Weights
 * are float32 initializers dequantized from the canonical ints, so an ONNX runtime computes what
 * Ledgermind's float inference computes. Bytes are deterministic: the same model exports to the same
 * bytes.
 *
 * Import: a graph that is a single chain of the operators the canonical models use (Gemm, or MatMul
 * with an optional Add; Relu; a final Softmax or Sigmoid) becomes a canonical model: weights quantized
 * by the canonical encoding's rules (`quantize`), the architecture id read from the layer widths.
 * Identity, and Flatten or Reshape to [batch, features], are passed over, since converters insert them
 * and they do not change a row-major feature vector. Anything else (another operator, a branch, a
 * second output, weights held outside the file) is refused by name, never approximated.
 */
import onnxProto from "onnx-proto";
import { parseDenseArchitecture } from "../oracle/fixed-point.ts";
import {
  type CanonicalModel,
  DEFAULT_SCALE_BITS,
  dequantize,
  type QuantizedTensor,
  quantize,
} from "./encoding.ts";

const { onnx } = onnxProto;
type Node = onnxProto.onnx.INodeProto;
type Tensor = onnxProto.onnx.ITensorProto;
type Int64 = number | { toString(): string };

/** Opset 13: Softmax over the last axis only, as a row of class scores needs (older opsets flatten). */
export const ONNX_OPSET = 13;
/** IR version 8, what opsets 13 to 15 were released with; every ONNX runtime since 2021 reads it. */
export const ONNX_IR_VERSION = 8;
export const ONNX_INPUT = "input";
export const ONNX_OUTPUT = "output";

export class OnnxError extends Error {
  override name = "OnnxError";
}

/** The graph uses an operator that has no canonical counterpart. */
export class UnsupportedOnnxOperatorError extends OnnxError {
  override name = "UnsupportedOnnxOperatorError";
  constructor(
    readonly operator: string,
    readonly node: string,
  ) {
    super(
      `ONNX operator ${operator} (node ${JSON.stringify(node)}) has no canonical counterpart; ` +
        "importable graphs chain Gemm or MatMul+Add, Relu, and a final Softmax or Sigmoid (Identity, Flatten, Reshape to [batch, features] are passed over)",
    );
  }
}

/**
 * ONNX bytes of a canonical dense model (logreg-*, mlp-*, mlp-*-sigmoid): input ONNX_INPUT [batch, in],
 * output ONNX_OUTPUT [batch, out] (probabilities).
 *
 * @example
 * const onnxBytes = exportOnnx(decodeModel(readFileSync("w.lmq")));
 * // ort.InferenceSession.create(onnxBytes) runs it; importOnnx(onnxBytes) gives the same model back.
 */
export function exportOnnx(model: CanonicalModel): Uint8Array {
  const arch = parseDenseArchitecture(model.architecture);
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const layers = arch.sizes.length - 1;
  if (model.tensors.length !== 2 * layers)
    throw new OnnxError(`${model.architecture}: expected ${2 * layers} tensors, got ${model.tensors.length}`);
  const nodes: Node[] = [];
  const initializers: Tensor[] = [];
  let current = ONNX_INPUT;
  for (let l = 0; l < layers; l++) {
    const shapes = {
      kernel: [arch.sizes[l] as number, arch.sizes[l + 1] as number],
      bias: [arch.sizes[l + 1] as number],
    };
    for (const part of ["kernel", "bias"] as const) {
      const name = `dense${l}.${part}`;
      const t = byName.get(name);
      const want = shapes[part];
      if (!t || t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i]))
        throw new OnnxError(`${model.architecture}: needs tensor ${name} [${want.join(", ")}]`);
      initializers.push(floatInitializer(name, t, model.scaleBits));
    }
    const z = l === layers - 1 ? `dense${l}.logits` : `dense${l}.z`;
    nodes.push({
      name: `dense${l}`,
      opType: "Gemm",
      input: [current, `dense${l}.kernel`, `dense${l}.bias`],
      output: [z],
    });
    current = z;
    if (l < layers - 1) {
      nodes.push({ name: `dense${l}.relu`, opType: "Relu", input: [current], output: [`dense${l}.a`] });
      current = `dense${l}.a`;
    }
  }
  nodes.push(
    arch.output === "sigmoid"
      ? { name: "sigmoid", opType: "Sigmoid", input: [current], output: [ONNX_OUTPUT] }
      : {
          name: "softmax",
          opType: "Softmax",
          input: [current],
          output: [ONNX_OUTPUT],
          attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: -1 }],
        },
  );
  const valueInfo = (name: string, width: number) => ({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimParam: "batch" }, { dimValue: width }] },
      },
    },
  });
  const proto = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: "", version: ONNX_OPSET }],
    producerName: "ledgermind",
    docString: `Exported from the canonical encoding (LMQ1), architecture ${model.architecture}, weights int / 2^${model.scaleBits}`,
    graph: {
      name: model.architecture,
      node: nodes,
      initializer: initializers,
      input: [valueInfo(ONNX_INPUT, arch.sizes[0] as number)],
      output: [valueInfo(ONNX_OUTPUT, arch.sizes[layers] as number)],
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}

/** Little-endian raw data whatever the machine's byte order, so the exported bytes do not depend on it. */
function floatInitializer(name: string, t: QuantizedTensor, scaleBits: number): Tensor {
  const values = dequantize(t.ints, scaleBits);
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] as number, true);
  return { name, dims: [...t.shape], dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw };
}

export interface ImportOnnxOptions {
  /** Fixed-point scale of the canonical weights; default DEFAULT_SCALE_BITS (16). */
  scaleBits?: number;
}

interface Layer {
  kernel: Float64Array;
  inputs: number;
  outputs: number;
  bias?: Float64Array;
}

/**
 * The canonical model of an ONNX graph made of the canonical operators (see the module comment).
 * Weights are quantized exactly as encodeModel quantizes them; the architecture id comes from the layer
 * widths and the final activation (Softmax: mlp-<in>-<hidden...>-<out> or logreg-<in>-<out>; Sigmoid:
 * mlp-...-<out>-sigmoid).
 * Throws UnsupportedOnnxOperatorError naming the first operator that has no counterpart, OnnxError for
 * any other graph that is not a chain of dense layers.
 *
 * @example
 * const model = importOnnx(readFileSync("mlp.onnx")); // model.architecture: "mlp-64-16-10"
 * writeFileSync("mlp.lmq", encodeCanonical(model)); // what `model version --weights` registers
 */
export function importOnnx(bytes: Uint8Array, options: ImportOnnxOptions = {}): CanonicalModel {
  let proto: onnxProto.onnx.ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new OnnxError(`not an ONNX model: ${(err as Error).message}`, { cause: err });
  }
  const graph = proto.graph;
  const graphNodes = graph?.node ?? [];
  if (!graph || graphNodes.length === 0) throw new OnnxError("the ONNX model has no graph (or an empty one)");
  const opset = proto.opsetImport.find((o) => !o.domain || o.domain === "ai.onnx");
  if (!opset) throw new OnnxError("the ONNX model imports no version of the default operator set");

  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? "", t]));
  const graphOutputs = graph.output ?? [];
  const dataInputs = (graph.input ?? []).filter((i) => !initializers.has(i.name ?? ""));
  if (dataInputs.length !== 1)
    throw new OnnxError(`expected one graph input besides the weights, found ${dataInputs.length}`);
  if (graphOutputs.length !== 1)
    throw new OnnxError(
      `expected one graph output, found ${graphOutputs.length} (${graphOutputs.map((o) => o.name).join(", ")})`,
    );
  const input = dataInputs[0] as onnxProto.onnx.IValueInfoProto;
  const declaredWidth = input.type?.tensorType?.shape?.dim?.slice(1).reduce<number | undefined>((w, d) => {
    const v = d.dimValue === undefined || d.dimValue === null ? undefined : toNumber(d.dimValue);
    return w === undefined || v === undefined || v === 0 ? undefined : w * v;
  }, 1);

  const layers: Layer[] = [];
  /** Whether a Relu follows each layer (one entry per layer, filled as the chain is read). */
  const relu: boolean[] = [];
  let output: "softmax" | "sigmoid" | undefined;
  let pendingMatMul = false;
  let current = input.name as string;
  const width = () => (layers.length > 0 ? (layers[layers.length - 1] as Layer).outputs : declaredWidth);

  for (const node of graphNodes) {
    const nodeInputs = node.input ?? [];
    const nodeOutputs = node.output ?? [];
    const name = node.name || nodeOutputs[0] || "(unnamed)";
    const op =
      node.domain && node.domain !== "ai.onnx" ? `${node.domain}.${node.opType}` : (node.opType as string);
    if (!SUPPORTED.has(op)) throw new UnsupportedOnnxOperatorError(op, name);
    if (output) throw new OnnxError(`node ${JSON.stringify(name)} (${op}) follows the final ${output}`);
    const others = nodeInputs.filter((i) => i !== current && i !== "");
    if (nodeInputs.filter((i) => i === current).length !== 1 || nodeOutputs.length !== 1)
      throw new OnnxError(
        `node ${JSON.stringify(name)} (${op}) is not on the single chain from the graph input: importable graphs do not branch`,
      );
    const endsMatMul = pendingMatMul;
    pendingMatMul = false;
    switch (op) {
      case "Gemm":
      case "MatMul": {
        if (nodeInputs[0] !== current)
          throw new OnnxError(
            `node ${JSON.stringify(name)} (${op}) multiplies the weights by the activations, not the activations by the weights`,
          );
        const layer =
          op === "Gemm" ? gemmLayer(node, name, initializers) : matMulLayer(node, name, initializers);
        const w = width();
        if (w !== undefined && w !== layer.inputs)
          throw new OnnxError(
            `node ${JSON.stringify(name)} (${op}) takes ${layer.inputs} features, but ${w} arrive`,
          );
        if (layers.length > 0 && !relu[layers.length - 1])
          throw new OnnxError(
            `node ${JSON.stringify(name)} (${op}) follows a dense layer without a Relu between them`,
          );
        layers.push(layer);
        relu.push(false);
        pendingMatMul = op === "MatMul";
        break;
      }
      case "Add": {
        const layer = layers[layers.length - 1];
        if (!endsMatMul || !layer || layer.bias)
          throw new OnnxError(`node ${JSON.stringify(name)} (Add) does not add a bias to a MatMul's output`);
        layer.bias = floats(initializerOf(others[0], name, initializers), name, [
          [layer.outputs],
          [1, layer.outputs],
        ]);
        break;
      }
      case "Relu": {
        if (layers.length === 0 || relu[layers.length - 1])
          throw new OnnxError(`node ${JSON.stringify(name)} (Relu) does not follow a dense layer`);
        relu[layers.length - 1] = true;
        break;
      }
      case "Softmax":
      case "Sigmoid": {
        if (layers.length === 0 || relu[layers.length - 1])
          throw new OnnxError(`node ${JSON.stringify(name)} (${op}) does not directly follow a dense layer`);
        if (op === "Softmax") {
          const axis = intAttribute(node, "axis", toNumber(opset.version ?? 0) >= 13 ? -1 : 1);
          if (axis !== -1 && axis !== 1)
            throw new OnnxError(
              `node ${JSON.stringify(name)} (Softmax) runs over axis ${axis}, not over the classes`,
            );
        }
        output = op === "Softmax" ? "softmax" : "sigmoid";
        break;
      }
      case "Flatten": {
        if (intAttribute(node, "axis", 1) !== 1)
          throw new OnnxError(`node ${JSON.stringify(name)} (Flatten) keeps more than the batch axis apart`);
        break;
      }
      case "Reshape": {
        const shape = ints(initializerOf(others[0], name, initializers), name);
        const w = width();
        const [batch, features] = shape;
        if (
          shape.length !== 2 ||
          (batch !== -1 && batch !== 0) ||
          features === undefined ||
          features < 1 ||
          (w !== undefined && w !== features)
        )
          throw new OnnxError(
            `node ${JSON.stringify(name)} (Reshape) to [${shape.join(", ")}] is not a reshape to [batch, features]`,
          );
        break;
      }
      // Identity: nothing to do.
    }
    current = nodeOutputs[0] as string;
  }
  if (current !== graphOutputs[0]?.name)
    throw new OnnxError(
      `the graph output ${JSON.stringify(graphOutputs[0]?.name)} is not the end of the chain`,
    );
  if (layers.length === 0) throw new OnnxError("the graph has no dense layer (Gemm or MatMul)");
  if (!output)
    throw new OnnxError(
      "the graph ends without Softmax or Sigmoid: canonical ids name a softmax classifier (mlp-*, logreg-*) or a sigmoid output (mlp-*-sigmoid), not a linear one",
    );
  const sizes = [(layers[0] as Layer).inputs, ...layers.map((l) => l.outputs)];
  if (output === "softmax" && (sizes[sizes.length - 1] as number) < 2)
    throw new OnnxError(
      "a Softmax over a single output is constant; canonical classifiers have at least 2 classes",
    );
  if (output === "sigmoid" && layers.length === 1)
    throw new OnnxError(
      "one dense layer with a Sigmoid has no canonical id (logreg-* is a softmax classifier)",
    );
  const architecture = `${layers.length === 1 ? "logreg" : "mlp"}-${sizes.join("-")}${output === "sigmoid" ? "-sigmoid" : ""}`;
  const scaleBits = options.scaleBits ?? DEFAULT_SCALE_BITS;
  const tensors: QuantizedTensor[] = layers.flatMap((layer, l) => [
    {
      name: `dense${l}.kernel`,
      shape: [layer.inputs, layer.outputs],
      ints: quantize(Array.from(layer.kernel), scaleBits, `dense${l}.kernel`),
    },
    {
      name: `dense${l}.bias`,
      shape: [layer.outputs],
      ints: quantize(Array.from(layer.bias ?? new Float64Array(layer.outputs)), scaleBits, `dense${l}.bias`),
    },
  ]);
  return { architecture, scaleBits, tensors };
}

const SUPPORTED = new Set([
  "Gemm",
  "MatMul",
  "Add",
  "Relu",
  "Sigmoid",
  "Softmax",
  "Identity",
  "Flatten",
  "Reshape",
]);

function toNumber(v: Int64): number {
  const n = typeof v === "number" ? v : Number(v.toString());
  if (!Number.isSafeInteger(n)) throw new OnnxError(`integer ${v.toString()} is out of range`);
  return n;
}

function attribute(node: Node, name: string): onnxProto.onnx.IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

function intAttribute(node: Node, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? toNumber(a.i ?? 0) : fallback;
}

function floatAttribute(node: Node, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? (a.f ?? 0) : fallback;
}

function initializerOf(name: string | undefined, node: string, initializers: Map<string, Tensor>): Tensor {
  const t = name === undefined ? undefined : initializers.get(name);
  if (!t)
    throw new OnnxError(
      `node ${JSON.stringify(node)} takes ${JSON.stringify(name)}, which is not a weight stored in the graph (initializer)`,
    );
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)
    throw new OnnxError(
      `weight ${JSON.stringify(t.name)} is stored outside the ONNX file (external data); save it inside`,
    );
  return t;
}

function dimsOf(t: Tensor): number[] {
  return (t.dims ?? []).map(toNumber);
}

/** A float or double initializer's values, checked against the shapes it may have. */
function floats(t: Tensor, node: string, shapes: number[][]): Float64Array {
  const dims = dimsOf(t);
  if (!shapes.some((s) => s.length === dims.length && s.every((d, i) => d === dims[i])))
    throw new OnnxError(
      `node ${JSON.stringify(node)}: weight ${JSON.stringify(t.name)} has shape [${dims.join(", ")}], expected ${shapes.map((s) => `[${s.join(", ")}]`).join(" or ")}`,
    );
  const count = dims.reduce((a, b) => a * b, 1);
  const type = t.dataType;
  if (type !== onnx.TensorProto.DataType.FLOAT && type !== onnx.TensorProto.DataType.DOUBLE)
    throw new OnnxError(
      `weight ${JSON.stringify(t.name)} has ONNX data type ${type}; only float and double weights are imported`,
    );
  const size = type === onnx.TensorProto.DataType.FLOAT ? 4 : 8;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const listed = type === onnx.TensorProto.DataType.FLOAT ? t.floatData : t.doubleData;
  const length = raw ? raw.length / size : (listed?.length ?? 0);
  if (length !== count)
    throw new OnnxError(
      `weight ${JSON.stringify(t.name)} holds ${length} values, its shape [${dims.join(", ")}] needs ${count}`,
    );
  const out = new Float64Array(count);
  if (raw) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; i++)
      out[i] = size === 4 ? view.getFloat32(i * 4, true) : view.getFloat64(i * 8, true);
  } else {
    out.set(listed as number[]);
  }
  return out;
}

/** An int64 initializer's values (a Reshape's target shape). */
function ints(t: Tensor, node: string): number[] {
  if (t.dataType !== onnx.TensorProto.DataType.INT64 || dimsOf(t).length !== 1)
    throw new OnnxError(
      `node ${JSON.stringify(node)}: shape ${JSON.stringify(t.name)} is not a 1-D int64 tensor`,
    );
  if (t.rawData && t.rawData.length > 0) {
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    return Array.from({ length: t.rawData.length / 8 }, (_, i) =>
      toNumber(view.getBigInt64(i * 8, true).toString()),
    );
  }
  return (t.int64Data ?? []).map(toNumber);
}

function gemmLayer(node: Node, name: string, initializers: Map<string, Tensor>): Layer {
  if (intAttribute(node, "transA", 0) !== 0)
    throw new OnnxError(`node ${JSON.stringify(name)} (Gemm) transposes its input (transA = 1)`);
  const b = initializerOf((node.input ?? [])[1], name, initializers);
  const dims = dimsOf(b);
  if (dims.length !== 2)
    throw new OnnxError(
      `node ${JSON.stringify(name)} (Gemm): weight ${JSON.stringify(b.name)} is not a matrix`,
    );
  // PyTorch exports Linear as Gemm with transB = 1 and the weight [out, in]; the canonical kernel is [in, out].
  const transB = intAttribute(node, "transB", 0) === 1;
  const [inputs, outputs] = transB
    ? [dims[1] as number, dims[0] as number]
    : [dims[0] as number, dims[1] as number];
  const stored = floats(b, name, [dims]);
  const alpha = floatAttribute(node, "alpha", 1);
  const beta = floatAttribute(node, "beta", 1);
  const kernel = new Float64Array(inputs * outputs);
  for (let i = 0; i < inputs; i++)
    for (let j = 0; j < outputs; j++)
      kernel[i * outputs + j] = alpha * (stored[transB ? j * inputs + i : i * outputs + j] as number);
  const layer: Layer = { kernel, inputs, outputs };
  if ((node.input ?? [])[2]) {
    const c = floats(initializerOf((node.input ?? [])[2], name, initializers), name, [
      [outputs],
      [1, outputs],
    ]);
    layer.bias = c.map((v) => beta * v);
  }
  return layer;
}

function matMulLayer(node: Node, name: string, initializers: Map<string, Tensor>): Layer {
  const b = initializerOf((node.input ?? [])[1], name, initializers);
  const dims = dimsOf(b);
  if (dims.length !== 2)
    throw new OnnxError(
      `node ${JSON.stringify(name)} (MatMul): weight ${JSON.stringify(b.name)} is not a matrix`,
    );
  return { kernel: floats(b, name, [dims]), inputs: dims[0] as number, outputs: dims[1] as number };
}
