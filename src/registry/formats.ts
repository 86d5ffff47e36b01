/**
 * What a model's files say about it, read from their headers only (never the weights): safetensors
 * (8-byte little-endian header length, then a JSON header), GGUF (@huggingface/gguf), ONNX (named
 * only: its graph is read elsewhere) and Ledgermind's own LMQ1. Fills the version's format tag and the
 * model card's architecture.
 */
import { open, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { GGMLFileQuantizationType, gguf } from "@huggingface/gguf";
import { MAGIC as LMQ1_MAGIC } from "../ml/encoding.ts";
import { CANONICAL_FORMAT } from "./client.ts";

/** Format tags as the registry records them (at most 8 bytes). */
export const FORMATS = {
  lmq1: CANONICAL_FORMAT,
  safetensors: "safetens",
  gguf: "gguf",
  onnx: "onnx",
  /** A folder or file of none of the above (tokenizers, configs only). */
  files: "files",
} as const;
export type FormatTag = (typeof FORMATS)[keyof typeof FORMATS];

export class FormatError extends Error {
  override name = "FormatError";
}

/** A header larger than this is not a safetensors header (the format caps it at 100 MB). */
const MAX_SAFETENSORS_HEADER = 100_000_000;

export interface SafetensorsInfo {
  format: "safetens";
  tensors: { name: string; dtype: string; shape: number[] }[];
  parameterCount: number;
  metadata: Record<string, string>;
}

export interface GgufInfo {
  format: "gguf";
  architecture?: string;
  /** The file type's name (Q4_K_M, F16...), or its number when the library does not know it. */
  quantization?: string;
  contextLength?: number;
  parameterCount: number;
}

export type FileInfo = SafetensorsInfo | GgufInfo | { format: "onnx" | "LMQ1" | "files" };

async function readHead(path: string, length: number, position = 0): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Pure: a safetensors header's JSON, checked and summed up. */
export function parseSafetensorsHeader(json: string): SafetensorsInfo {
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(json);
  } catch {
    throw new FormatError("the safetensors header is not JSON");
  }
  const tensors: SafetensorsInfo["tensors"] = [];
  let parameterCount = 0;
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = value as Record<string, string>;
      continue;
    }
    const t = value as { dtype?: unknown; shape?: unknown };
    if (
      typeof t.dtype !== "string" ||
      !Array.isArray(t.shape) ||
      !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)
    )
      throw new FormatError(`safetensors tensor ${name} has no valid dtype and shape`);
    tensors.push({ name, dtype: t.dtype, shape: t.shape });
    parameterCount += t.shape.reduce((p: number, d: number) => p * d, 1);
  }
  return { format: "safetens", tensors, parameterCount, metadata };
}

export async function readSafetensors(path: string): Promise<SafetensorsInfo> {
  const head = await readHead(path, 8);
  if (head.length < 8) throw new FormatError(`${path} is too short for a safetensors file`);
  const length = Number(head.readBigUInt64LE(0));
  if (length > MAX_SAFETENSORS_HEADER)
    throw new FormatError(`${path}: safetensors header of ${length} bytes`);
  const json = await readHead(path, length, 8);
  if (json.length < length) throw new FormatError(`${path} ends inside its safetensors header`);
  return parseSafetensorsHeader(json.toString("utf8"));
}

export async function readGguf(path: string): Promise<GgufInfo> {
  let parsed: Awaited<ReturnType<typeof gguf>> & { parameterCount: number };
  try {
    parsed = await gguf(path, { allowLocalFile: true, computeParametersCount: true });
  } catch (err) {
    throw new FormatError(`${path} is not a readable GGUF file: ${(err as Error).message}`);
  }
  // The parser reads past the end of a cut file as zeros: a header that ends beyond the file is no header.
  const { size } = await stat(path);
  if (BigInt(parsed.tensorDataOffset) > BigInt(size))
    throw new FormatError(
      `${path} ends inside its GGUF header (${size} bytes, the header needs ${parsed.tensorDataOffset})`,
    );
  const meta = parsed.metadata as Record<string, unknown>;
  const architecture =
    typeof meta["general.architecture"] === "string" ? meta["general.architecture"] : undefined;
  const fileType = meta["general.file_type"];
  const context = architecture ? meta[`${architecture}.context_length`] : undefined;
  return {
    format: "gguf",
    architecture,
    quantization:
      typeof fileType === "number" ? (GGMLFileQuantizationType[fileType] ?? String(fileType)) : undefined,
    contextLength: context === undefined ? undefined : Number(context),
    parameterCount: parsed.parameterCount,
  };
}

/** Reads a file's header and says what it is. */
export async function readFileInfo(path: string): Promise<FileInfo> {
  const head = await readHead(path, 9);
  if (head.subarray(0, 4).toString("latin1") === LMQ1_MAGIC) return { format: "LMQ1" };
  if (head.subarray(0, 4).toString("latin1") === "GGUF") return readGguf(path);
  const ext = extname(path).toLowerCase();
  if (ext === ".onnx") return { format: "onnx" };
  if (ext === ".safetensors" || (head.length === 9 && head[8] === 0x7b)) {
    try {
      return await readSafetensors(path);
    } catch (err) {
      if (ext === ".safetensors") throw err;
    }
  }
  return { format: "files" };
}

/** What a whole model (a folder or one file) is: its format tag and what its weight files say. */
export interface ModelInfo {
  format: FormatTag;
  /** For the card: from GGUF's architecture, else a summary of the safetensors shards. */
  architecture?: string;
  parameterCount?: number;
  quantization?: string;
  contextLength?: number;
  dtypes?: string[];
  files: { path: string; info: FileInfo }[];
}

const WEIGHT_EXTENSIONS = new Set([".safetensors", ".gguf", ".onnx", ".lmq", ".bin"]);

/**
 * Pure over what was read: the format is the weight files' when they share one (safetensors shards,
 * say), else "files"; configs and tokenizers do not count.
 */
export function summarize(
  files: { path: string; info: FileInfo }[],
  config?: { model_type?: unknown; architectures?: unknown },
): ModelInfo {
  const weights = files.filter((f) => f.info.format !== "files");
  const formats = new Set(weights.map((f) => f.info.format));
  const format = (formats.size === 1 ? [...formats][0] : "files") as FormatTag;
  const info: ModelInfo = { format, files };
  const st = weights.flatMap((f) => (f.info.format === "safetens" ? [f.info] : []));
  if (st.length > 0) {
    info.parameterCount = st.reduce((s, i) => s + i.parameterCount, 0);
    info.dtypes = [...new Set(st.flatMap((i) => i.tensors.map((t) => t.dtype)))].sort();
  }
  const g = weights.find((f) => f.info.format === "gguf")?.info as GgufInfo | undefined;
  if (g)
    Object.assign(info, {
      architecture: g.architecture,
      quantization: g.quantization,
      contextLength: g.contextLength,
      parameterCount: g.parameterCount,
    });
  const archs = Array.isArray(config?.architectures)
    ? config.architectures.filter((a) => typeof a === "string")
    : [];
  if (!info.architecture && (archs.length > 0 || typeof config?.model_type === "string"))
    info.architecture = archs[0] ?? (config?.model_type as string);
  return info;
}

/** Reads the headers of a model's weight files (and config.json's architecture, for a folder). */
export async function describeModel(root: string, paths: readonly string[]): Promise<ModelInfo> {
  const files: { path: string; info: FileInfo }[] = [];
  for (const path of paths) {
    const abs = path === "." ? root : join(root, path);
    if (path !== "." && !WEIGHT_EXTENSIONS.has(extname(path).toLowerCase())) continue;
    files.push({ path, info: await readFileInfo(abs) });
  }
  let config: { model_type?: unknown; architectures?: unknown } | undefined;
  if (paths.includes("config.json")) {
    try {
      config = JSON.parse((await readHead(join(root, "config.json"), 1 << 20)).toString("utf8"));
    } catch {
      config = undefined;
    }
  }
  return summarize(files, config);
}
