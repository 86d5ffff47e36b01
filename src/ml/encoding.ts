/**
 * Canonical model encoding (pure, no I/O).
 *
 * Floating point results differ across machines, libraries and summation orders, yet weights are
 * hashed, committed on-chain, scored, aggregated and proven. So every weight that leaves training is
 * quantized to fixed point (value = int / 2^scaleBits, int32), and the bytes below are the only form
 * that is ever hashed. Exactly one byte string encodes a given model: decode rejects anything that
 * encode would not have produced, so a hash names a model and a model has one hash.
 *
 * Layout (all integers unsigned 32-bit little-endian unless stated, strings UTF-8 with a u32 byte
 * length in front, no padding anywhere):
 *
 *   "LMQ1"                         4 bytes of magic
 *   architecture                   string
 *   scaleBits                      u32, 0..31
 *   tensorCount                    u32
 *   tensorCount times:
 *     name                         string, non-empty, unique within the model
 *     rank                         u32
 *     rank dims                    u32 each
 *   every tensor's values          int32 little-endian (signed), tensors in header order, row-major
 */

export interface ModelTensor {
  name: string;
  shape: number[];
  values: Float32Array | number[];
}

export interface QuantizedTensor {
  name: string;
  shape: number[];
  ints: Int32Array;
}

export interface CanonicalModel {
  architecture: string;
  /** value = int / 2^scaleBits */
  scaleBits: number;
  tensors: QuantizedTensor[];
}

export const MAGIC = "LMQ1";
export const DEFAULT_SCALE_BITS = 16;
export const MAX_SCALE_BITS = 31;
/**
 * Quantized values are kept in [-(2^31 - 1), 2^31 - 1]. Leaving out -2^31 makes the range symmetric,
 * so negating a weight (differences, signed updates in aggregation) can never overflow int32.
 */
export const MAX_INT = 0x7fffffff;

const MAGIC_BYTES = new TextEncoder().encode(MAGIC);

export class EncodingError extends Error {
  override name = "EncodingError";
}

export class QuantizationOverflowError extends Error {
  override name = "QuantizationOverflowError";
  constructor(
    readonly tensor: string,
    readonly index: number,
    readonly value: number,
    readonly scaleBits: number,
  ) {
    const what = Number.isFinite(value)
      ? `${value} exceeds the int32 range at scaleBits ${scaleBits} (|value| must be at most ${MAX_INT / 2 ** scaleBits}); lower scaleBits or rescale the weights`
      : `${value} is not finite; weights must be finite numbers (check training for divergence)`;
    super(`Cannot quantize tensor ${JSON.stringify(tensor)}: value at index ${index} ${what}`);
  }
}

/**
 * TextEncoder turns every lone surrogate into U+FFFD, so two different ill-formed strings would encode
 * to the same bytes (and decode to a third string). Refusing them keeps string <-> bytes one-to-one.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function encodeString(value: string, what: string): Uint8Array {
  if (LONE_SURROGATE.test(value))
    throw new EncodingError(`${what} is not well-formed Unicode (lone surrogate)`);
  return new TextEncoder().encode(value);
}

function checkScaleBits(scaleBits: number): void {
  if (!Number.isInteger(scaleBits) || scaleBits < 0 || scaleBits > MAX_SCALE_BITS) {
    throw new EncodingError(`scaleBits must be an integer from 0 to ${MAX_SCALE_BITS}, got ${scaleBits}`);
  }
}

/**
 * Fixed-point quantization: round(value * 2^scaleBits), ties away from zero.
 *
 * Multiplying by a power of two is exact in binary floating point (no rounding happens before the
 * explicit round), so the result depends only on the input values, never on the machine. Ties go away
 * from zero so that quantize(-x) === -quantize(x); Math.round alone sends -2.5 to -2 but 2.5 to 3.
 */
export function quantize(
  values: Float32Array | readonly number[],
  scaleBits: number,
  tensorName = "(unnamed)",
): Int32Array {
  checkScaleBits(scaleBits);
  const scale = 2 ** scaleBits;
  const ints = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i] as number;
    if (!Number.isFinite(value)) throw new QuantizationOverflowError(tensorName, i, value, scaleBits);
    const magnitude = Math.round(Math.abs(value) * scale);
    if (magnitude > MAX_INT) throw new QuantizationOverflowError(tensorName, i, value, scaleBits);
    ints[i] = value < 0 ? -magnitude : magnitude;
  }
  return ints;
}

/**
 * int / 2^scaleBits as float32. For values that started as float32 this returns a value within half
 * a quantization step of the original; float32 cannot hold more than 24 bits of an int32, which is
 * why the canonical form, not the floats, is what gets hashed.
 */
export function dequantize(ints: Int32Array, scaleBits: number): Float32Array {
  checkScaleBits(scaleBits);
  const scale = 2 ** scaleBits;
  const values = new Float32Array(ints.length);
  for (let i = 0; i < ints.length; i++) values[i] = (ints[i] as number) / scale;
  return values;
}

/** Number of elements of a shape; checks every dimension fits the u32 the header stores it in. */
function elementCount(name: string, shape: readonly number[]): number {
  if (!Array.isArray(shape)) throw new EncodingError(`Tensor ${JSON.stringify(name)} has no shape array`);
  let count = 1;
  for (const dim of shape) {
    if (!Number.isInteger(dim) || dim < 0 || dim > 0xffffffff) {
      throw new EncodingError(
        `Tensor ${JSON.stringify(name)} has invalid dimension ${dim} in shape [${shape.join(", ")}]; dims are integers from 0 to 2^32-1`,
      );
    }
    count *= dim;
  }
  if (!Number.isSafeInteger(count)) {
    throw new EncodingError(
      `Tensor ${JSON.stringify(name)} shape [${shape.join(", ")}] has too many elements`,
    );
  }
  return count;
}

/** Quantizes float tensors and encodes them. */
export function encodeModel(model: {
  architecture: string;
  scaleBits?: number;
  tensors: readonly ModelTensor[];
}): Uint8Array {
  const scaleBits = model.scaleBits ?? DEFAULT_SCALE_BITS;
  checkScaleBits(scaleBits);
  const tensors = model.tensors.map((t): QuantizedTensor => {
    // Check the shape before quantizing so a mismatch is reported as such, not as an overflow.
    const count = elementCount(t.name, t.shape);
    if (t.values.length !== count) {
      throw new EncodingError(
        `Tensor ${JSON.stringify(t.name)} has ${t.values.length} values but shape [${t.shape.join(", ")}] needs ${count}`,
      );
    }
    return { name: t.name, shape: [...t.shape], ints: quantize(t.values, scaleBits, t.name) };
  });
  return encodeCanonical({ architecture: model.architecture, scaleBits, tensors });
}

/** Encodes an already quantized model. Rejects anything decodeModel would reject. */
export function encodeCanonical(model: CanonicalModel): Uint8Array {
  if (typeof model.architecture !== "string" || model.architecture.length === 0) {
    throw new EncodingError("Model architecture must be a non-empty string");
  }
  checkScaleBits(model.scaleBits);
  const architecture = encodeString(model.architecture, "Model architecture");
  const seen = new Set<string>();
  let headerSize = MAGIC_BYTES.length + 4 + architecture.length + 4 + 4;
  let valueCount = 0;
  const names: Uint8Array[] = [];
  for (const t of model.tensors) {
    if (typeof t.name !== "string" || t.name.length === 0) {
      throw new EncodingError("Every tensor needs a non-empty name");
    }
    // Names identify tensors when models are compared and aggregated; a duplicate would be ambiguous.
    if (seen.has(t.name)) throw new EncodingError(`Duplicate tensor name ${JSON.stringify(t.name)}`);
    seen.add(t.name);
    const count = elementCount(t.name, t.shape);
    if (!(t.ints instanceof Int32Array) || t.ints.length !== count) {
      throw new EncodingError(
        `Tensor ${JSON.stringify(t.name)} has ${t.ints?.length} ints but shape [${t.shape.join(", ")}] needs ${count}`,
      );
    }
    for (let i = 0; i < t.ints.length; i++) {
      if (t.ints[i] === -0x80000000) {
        throw new EncodingError(
          `Tensor ${JSON.stringify(t.name)} holds -2^31 at index ${i}; canonical ints lie in [-(2^31-1), 2^31-1]`,
        );
      }
    }
    const name = encodeString(t.name, `Tensor name ${JSON.stringify(t.name)}`);
    names.push(name);
    headerSize += 4 + name.length + 4 + 4 * t.shape.length;
    valueCount += count;
  }

  const bytes = new Uint8Array(headerSize + 4 * valueCount);
  const view = new DataView(bytes.buffer);
  let offset = 0;
  const putU32 = (n: number) => {
    view.setUint32(offset, n, true);
    offset += 4;
  };
  const putBytes = (b: Uint8Array) => {
    bytes.set(b, offset);
    offset += b.length;
  };
  putBytes(MAGIC_BYTES);
  putU32(architecture.length);
  putBytes(architecture);
  putU32(model.scaleBits);
  putU32(model.tensors.length);
  model.tensors.forEach((t, i) => {
    const name = names[i] as Uint8Array;
    putU32(name.length);
    putBytes(name);
    putU32(t.shape.length);
    for (const dim of t.shape) putU32(dim);
  });
  for (const t of model.tensors) {
    for (const v of t.ints) {
      view.setInt32(offset, v, true);
      offset += 4;
    }
  }
  return bytes;
}

/**
 * Decodes and validates canonical bytes. Untrusted input: counts are checked against the bytes that
 * remain before anything is allocated, so a forged header cannot make us allocate gigabytes.
 */
export function decodeModel(bytes: Uint8Array): CanonicalModel {
  // fatal: invalid UTF-8 is an error rather than a silent U+FFFD, which would re-encode differently.
  // ignoreBOM: a leading U+FEFF is part of the string, not a marker to drop, for the same reason.
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  const need = (n: number, what: string) => {
    if (bytes.length - offset < n) {
      throw new EncodingError(
        `Truncated model: ${what} needs ${n} bytes at offset ${offset}, only ${bytes.length - offset} left`,
      );
    }
  };
  const u32 = (what: string) => {
    need(4, what);
    const n = view.getUint32(offset, true);
    offset += 4;
    return n;
  };
  const str = (what: string) => {
    const length = u32(`${what} length`);
    need(length, what);
    const slice = bytes.subarray(offset, offset + length);
    offset += length;
    try {
      return decoder.decode(slice);
    } catch {
      throw new EncodingError(`Invalid UTF-8 in ${what} at offset ${offset - length}`);
    }
  };

  need(MAGIC_BYTES.length, "magic");
  if (!MAGIC_BYTES.every((b, i) => bytes[i] === b)) {
    throw new EncodingError(`Bad magic: not a canonical model (expected bytes "${MAGIC}" at offset 0)`);
  }
  offset = MAGIC_BYTES.length;
  const architecture = str("architecture");
  if (architecture.length === 0) throw new EncodingError("Model architecture is empty");
  const scaleBits = u32("scaleBits");
  checkScaleBits(scaleBits);
  const tensorCount = u32("tensor count");
  // Each tensor header takes at least 8 bytes (name length and rank), so a count larger than that
  // allows is truncation, caught here before looping over billions of phantom tensors.
  need(tensorCount * 8, `${tensorCount} tensor headers`);

  const headers: { name: string; shape: number[]; count: number }[] = [];
  const seen = new Set<string>();
  let valueCount = 0;
  for (let i = 0; i < tensorCount; i++) {
    const name = str(`tensor ${i} name`);
    if (name.length === 0) throw new EncodingError(`Tensor ${i} has an empty name`);
    if (seen.has(name)) throw new EncodingError(`Duplicate tensor name ${JSON.stringify(name)}`);
    seen.add(name);
    const rank = u32(`tensor ${JSON.stringify(name)} rank`);
    need(rank * 4, `tensor ${JSON.stringify(name)} shape of rank ${rank}`);
    const shape: number[] = [];
    for (let d = 0; d < rank; d++) shape.push(u32(`tensor ${JSON.stringify(name)} dim ${d}`));
    const count = elementCount(name, shape);
    headers.push({ name, shape, count });
    valueCount += count;
  }

  const remaining = bytes.length - offset;
  if (remaining < valueCount * 4) {
    throw new EncodingError(
      `Truncated model: shapes need ${valueCount} int32 values (${valueCount * 4} bytes), only ${remaining} bytes left`,
    );
  }
  if (remaining > valueCount * 4) {
    throw new EncodingError(
      `Trailing bytes: ${remaining - valueCount * 4} bytes after the ${valueCount} int32 values the shapes declare`,
    );
  }

  const tensors = headers.map(({ name, shape, count }): QuantizedTensor => {
    const ints = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const v = view.getInt32(offset, true);
      if (v === -0x80000000) {
        throw new EncodingError(
          `Tensor ${JSON.stringify(name)} holds -2^31 at index ${i}, outside the canonical range`,
        );
      }
      ints[i] = v;
      offset += 4;
    }
    return { name, shape, ints };
  });
  return { architecture, scaleBits, tensors };
}

/** Dequantized float tensors, e.g. to load into a training framework. */
export function toFloatTensors(model: CanonicalModel): ModelTensor[] {
  return model.tensors.map((t) => ({
    name: t.name,
    shape: [...t.shape],
    values: dequantize(t.ints, model.scaleBits),
  }));
}

/**
 * Whether two models can be compared or aggregated weight by weight: same architecture string and the
 * same tensors (name and shape) in the same order. Order counts because the encoding lays values out
 * in tensor order. The scale is not compared: it is a property of the encoding, not the architecture.
 */
export function sameArchitecture(a: CanonicalModel, b: CanonicalModel): boolean {
  if (a.architecture !== b.architecture || a.tensors.length !== b.tensors.length) return false;
  return a.tensors.every((ta, i) => {
    const tb = b.tensors[i];
    return (
      tb !== undefined &&
      ta.name === tb.name &&
      ta.shape.length === tb.shape.length &&
      ta.shape.every((dim, d) => dim === tb.shape[d])
    );
  });
}
