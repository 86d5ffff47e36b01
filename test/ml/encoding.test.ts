import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type CanonicalModel,
  decodeModel,
  dequantize,
  EncodingError,
  encodeCanonical,
  encodeModel,
  MAX_INT,
  type ModelTensor,
  QuantizationOverflowError,
  quantize,
  sameArchitecture,
  toFloatTensors,
} from "../../src/ml/encoding.ts";

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomTensors(seed: number, range: number): ModelTensor[] {
  const next = rng(seed);
  const fill = (n: number) => Float32Array.from({ length: n }, () => (next() * 2 - 1) * range);
  return [
    { name: "dense1/kernel", shape: [7, 5], values: fill(35) },
    { name: "dense1/bias", shape: [5], values: fill(5) },
    { name: "dense2/kernel", shape: [5, 3], values: fill(15) },
    { name: "scalar", shape: [], values: fill(1) },
    // Large float32 values already lie on the fixed-point grid; small ones are where rounding shows.
    { name: "fine", shape: [64], values: Float32Array.from({ length: 64 }, () => next() * 2 - 1) },
  ];
}

/** The tiny model whose bytes are spelled out in the layout test. */
const tiny = {
  architecture: "mlp",
  tensors: [
    { name: "w", shape: [1, 2], values: [1.5, -0.25] },
    { name: "b", shape: [1], values: [0.5] },
  ],
};
// biome-ignore format: one header field per line
const tinyBytes = Uint8Array.from([
  0x4c, 0x4d, 0x51, 0x31, //                     "LMQ1"
  0x03, 0x00, 0x00, 0x00, 0x6d, 0x6c, 0x70, //   architecture: length 3, "mlp"
  0x10, 0x00, 0x00, 0x00, //                     scaleBits 16
  0x02, 0x00, 0x00, 0x00, //                     2 tensors
  0x01, 0x00, 0x00, 0x00, 0x77, //               name "w"
  0x02, 0x00, 0x00, 0x00, //                     rank 2
  0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, // shape [1, 2]
  0x01, 0x00, 0x00, 0x00, 0x62, //               name "b"
  0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // rank 1, shape [1]
  0x00, 0x80, 0x01, 0x00, //                     1.5   * 2^16 =  98304 = 0x00018000
  0x00, 0xc0, 0xff, 0xff, //                     -0.25 * 2^16 = -16384 = 0xffffc000
  0x00, 0x80, 0x00, 0x00, //                     0.5   * 2^16 =  32768 = 0x00008000
]);

/** Builds raw bytes for hand-made (possibly invalid) models. */
function rawModel(parts: {
  architecture?: string;
  scaleBits?: number;
  header: (string | number[])[];
  ints?: number[];
}) {
  const out: number[] = [0x4c, 0x4d, 0x51, 0x31];
  const u32 = (n: number) => out.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  const str = (s: string) => {
    const b = new TextEncoder().encode(s);
    u32(b.length);
    out.push(...b);
  };
  str(parts.architecture ?? "arch");
  u32(parts.scaleBits ?? 16);
  u32(parts.header.length / 2);
  for (let i = 0; i < parts.header.length; i += 2) {
    str(parts.header[i] as string);
    const shape = parts.header[i + 1] as number[];
    u32(shape.length);
    for (const d of shape) u32(d);
  }
  for (const v of parts.ints ?? []) u32(v >>> 0);
  return Uint8Array.from(out);
}

const throwsEncoding = (fn: () => unknown, message: RegExp) =>
  assert.throws(
    fn,
    (e: unknown) => e instanceof EncodingError && e.name === "EncodingError" && message.test(e.message),
  );

describe("quantize", () => {
  it("rounds to nearest with ties away from zero", () => {
    const values = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999999999999994, -0.4, 2.6, -2.6, -0];
    assert.deepEqual([...quantize(values, 0)], [1, 2, 3, -1, -2, -3, 0, 0, 3, -3, 0]);
    // Half a step at scale 2^16 is a tie too.
    assert.deepEqual([...quantize([2 ** -17, -(2 ** -17), 3 * 2 ** -17], 16)], [1, -1, 2]);
  });

  it("is odd-symmetric: quantize(-x) === -quantize(x)", () => {
    const next = rng(1);
    const xs = Array.from({ length: 1000 }, () => (next() - 0.5) * 10);
    const pos = quantize(xs, 12);
    const neg = quantize(
      xs.map((x) => -x),
      12,
    );
    for (let i = 0; i < pos.length; i++) assert.equal(neg[i], -(pos[i] as number));
  });

  it("accepts the largest magnitude that fits and rejects the next step", () => {
    const max = MAX_INT / 2 ** 16;
    assert.deepEqual([...quantize([max, -max], 16)], [MAX_INT, -MAX_INT]);
    assert.throws(() => quantize([0, max + 2 ** -16], 16, "big"), QuantizationOverflowError);
    // -2^31 fits int32 but is excluded so negation never overflows.
    assert.throws(() => quantize([-(2 ** 31)], 0), QuantizationOverflowError);
  });

  it("throws QuantizationOverflowError naming the tensor and index for overflow, NaN and Infinity", () => {
    for (const bad of [
      40000,
      -40000,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      1e300,
    ]) {
      assert.throws(
        () => quantize([0.1, 0.2, bad], 16, "layer3/kernel"),
        (e: unknown) =>
          e instanceof QuantizationOverflowError &&
          e.name === "QuantizationOverflowError" &&
          e.tensor === "layer3/kernel" &&
          e.index === 2 &&
          Object.is(e.value, bad) &&
          e.message.includes('"layer3/kernel"') &&
          e.message.includes("index 2"),
      );
    }
  });

  it("rejects scaleBits outside 0..31", () => {
    for (const bad of [-1, 32, 1.5, Number.NaN]) throwsEncoding(() => quantize([1], bad), /scaleBits/);
    throwsEncoding(() => dequantize(new Int32Array(1), 40), /scaleBits/);
  });
});

describe("round trip", () => {
  for (const scaleBits of [0, 8, 16, 20]) {
    it(`stays within half a quantization step at scaleBits ${scaleBits}`, () => {
      const tensors = randomTensors(42 + scaleBits, scaleBits === 0 ? 1000 : 2 ** (30 - scaleBits));
      const model = decodeModel(encodeModel({ architecture: "mlp-7-5-3", scaleBits, tensors }));
      assert.equal(model.scaleBits, scaleBits);
      const back = toFloatTensors(model);
      const bound = 2 ** -(scaleBits + 1);
      let worst = 0;
      tensors.forEach((t, ti) => {
        const b = back[ti] as ModelTensor;
        assert.equal(b.name, t.name);
        assert.deepEqual(b.shape, t.shape);
        assert.ok(b.values instanceof Float32Array);
        assert.equal(b.values.length, t.values.length);
        for (let i = 0; i < t.values.length; i++) {
          worst = Math.max(worst, Math.abs((b.values[i] as number) - (t.values[i] as number)));
        }
      });
      assert.ok(worst <= bound, `max error ${worst} > ${bound}`);
      // The test must be able to fail: quantization really does lose something at these scales.
      if (scaleBits <= 16) assert.ok(worst > 0);
    });
  }

  it("uses scaleBits 16 by default", () => {
    assert.equal(decodeModel(encodeModel(tiny)).scaleBits, 16);
    assert.deepEqual(encodeModel(tiny), encodeModel({ ...tiny, scaleBits: 16 }));
    assert.notDeepEqual(encodeModel(tiny), encodeModel({ ...tiny, scaleBits: 15 }));
  });
});

describe("determinism", () => {
  it("encodes the tiny model exactly as the documented layout, byte by byte", () => {
    const bytes = encodeModel(tiny);
    assert.equal(bytes.length, tinyBytes.length);
    for (let i = 0; i < bytes.length; i++) assert.equal(bytes[i], tinyBytes[i], `byte ${i}`);
    const decoded = decodeModel(tinyBytes);
    assert.deepEqual(decoded, {
      architecture: "mlp",
      scaleBits: 16,
      tensors: [
        { name: "w", shape: [1, 2], ints: Int32Array.from([98304, -16384]) },
        { name: "b", shape: [1], ints: Int32Array.from([32768]) },
      ],
    });
  });

  it("gives identical bytes for the same input, whether Float32Array or number[]", () => {
    const tensors = randomTensors(7, 3);
    const a = encodeModel({ architecture: "x", tensors });
    const b = encodeModel({ architecture: "x", tensors: randomTensors(7, 3) });
    const c = encodeModel({
      architecture: "x",
      tensors: tensors.map((t) => ({ ...t, values: Array.from(t.values) })),
    });
    assert.deepEqual(b, a);
    assert.deepEqual(c, a);
    assert.notDeepEqual(encodeModel({ architecture: "x", tensors: randomTensors(8, 3) }), a);
  });

  it("re-encodes decoded bytes to the same bytes, also from a view into a larger buffer", () => {
    const bytes = encodeModel({ architecture: "ünïcödé 模型", tensors: randomTensors(3, 100) });
    assert.deepEqual(encodeCanonical(decodeModel(bytes)), bytes);
    const padded = new Uint8Array(bytes.length + 9);
    padded.set(bytes, 5);
    const view = padded.subarray(5, 5 + bytes.length);
    assert.deepEqual(encodeCanonical(decodeModel(view)), bytes);
  });

  it("keeps a leading byte-order mark in names rather than dropping it", () => {
    const bytes = encodeModel({
      architecture: "\uFEFFarch",
      tensors: [{ name: "\uFEFFw", shape: [1], values: [1] }],
    });
    const model = decodeModel(bytes);
    assert.equal(model.architecture, "\uFEFFarch");
    assert.equal(model.tensors[0]?.name, "\uFEFFw");
    assert.deepEqual(encodeCanonical(model), bytes);
  });

  it("supports scalars and empty tensors", () => {
    const bytes = encodeModel({
      architecture: "a",
      tensors: [
        { name: "s", shape: [], values: [-3.25] },
        { name: "e", shape: [4, 0], values: [] },
      ],
    });
    const model = decodeModel(bytes);
    assert.deepEqual(model.tensors[0]?.ints, Int32Array.from([-3.25 * 65536]));
    assert.deepEqual(model.tensors[1]?.shape, [4, 0]);
    assert.equal(model.tensors[1]?.ints.length, 0);
  });
});

describe("decodeModel errors", () => {
  it("rejects bad magic", () => {
    const bytes = tinyBytes.slice();
    bytes[3] = 0x32; // "LMQ2"
    throwsEncoding(() => decodeModel(bytes), /Bad magic/);
    throwsEncoding(() => decodeModel(new TextEncoder().encode('{"not":"a model"}')), /Bad magic/);
  });

  it("rejects every truncation of a valid model", () => {
    for (let n = 0; n < tinyBytes.length; n++) {
      throwsEncoding(() => decodeModel(tinyBytes.subarray(0, n)), /Truncated/);
    }
  });

  it("rejects trailing bytes", () => {
    const bytes = new Uint8Array(tinyBytes.length + 1);
    bytes.set(tinyBytes);
    throwsEncoding(() => decodeModel(bytes), /Trailing bytes: 1 bytes/);
    const plusOneInt = new Uint8Array(tinyBytes.length + 4);
    plusOneInt.set(tinyBytes);
    throwsEncoding(() => decodeModel(plusOneInt), /Trailing bytes: 4 bytes/);
  });

  it("rejects a shape that declares more values than present", () => {
    throwsEncoding(
      () => decodeModel(rawModel({ header: ["w", [2, 3]], ints: [1, 2, 3, 4, 5] })),
      /Truncated model: shapes need 6/,
    );
    assert.equal(
      decodeModel(rawModel({ header: ["w", [2, 3]], ints: [1, 2, 3, 4, 5, 6] })).tensors[0]?.ints[5],
      6,
    );
  });

  it("rejects forged huge counts without allocating", () => {
    const hugeTensors = rawModel({ header: [] });
    hugeTensors.set([0xff, 0xff, 0xff, 0xff], hugeTensors.length - 4);
    throwsEncoding(() => decodeModel(hugeTensors), /Truncated model: 4294967295 tensor headers/);
    throwsEncoding(
      () => decodeModel(rawModel({ header: ["w", [0xffffffff, 0xffffffff]] })),
      /Truncated|too many/,
    );
    const hugeRank = rawModel({ header: ["w", []] });
    hugeRank.set([0xff, 0xff, 0xff, 0x7f], hugeRank.length - 4);
    throwsEncoding(() => decodeModel(hugeRank), /Truncated model: tensor "w" shape of rank/);
  });

  it("rejects scaleBits out of range, empty architecture, empty and duplicate names", () => {
    throwsEncoding(() => decodeModel(rawModel({ scaleBits: 32, header: [] })), /scaleBits/);
    throwsEncoding(() => decodeModel(rawModel({ architecture: "", header: [] })), /architecture is empty/);
    throwsEncoding(() => decodeModel(rawModel({ header: ["", [1]], ints: [0] })), /empty name/);
    throwsEncoding(
      () => decodeModel(rawModel({ header: ["w", [1], "w", [1]], ints: [0, 0] })),
      /Duplicate tensor name "w"/,
    );
  });

  it("rejects invalid UTF-8 and the excluded int -2^31", () => {
    const bytes = rawModel({ header: ["w", [1]], ints: [0] });
    const nameAt = bytes.indexOf(0x77);
    bytes[nameAt] = 0xff;
    throwsEncoding(() => decodeModel(bytes), /Invalid UTF-8 in tensor 0 name/);
    throwsEncoding(
      () => decodeModel(rawModel({ header: ["w", [2]], ints: [5, 0x80000000] })),
      /-2\^31 at index 1/,
    );
  });
});

describe("encode errors", () => {
  it("rejects values that do not match the shape", () => {
    throwsEncoding(
      () => encodeModel({ architecture: "a", tensors: [{ name: "w", shape: [2, 2], values: [1, 2, 3] }] }),
      /"w" has 3 values but shape \[2, 2\] needs 4/,
    );
    const model: CanonicalModel = {
      architecture: "a",
      scaleBits: 16,
      tensors: [{ name: "w", shape: [3], ints: new Int32Array(2) }],
    };
    throwsEncoding(() => encodeCanonical(model), /"w" has 2 ints but shape \[3\] needs 3/);
  });

  it("rejects invalid dims, names, architecture and scale", () => {
    const t = (shape: number[]) => ({ architecture: "a", tensors: [{ name: "w", shape, values: [1] }] });
    throwsEncoding(() => encodeModel(t([-1])), /invalid dimension -1/);
    throwsEncoding(() => encodeModel(t([0.5])), /invalid dimension 0.5/);
    throwsEncoding(() => encodeModel(t([2 ** 32])), /invalid dimension/);
    throwsEncoding(() => encodeModel({ architecture: "", tensors: [] }), /architecture must be a non-empty/);
    throwsEncoding(() => encodeModel({ architecture: "a", scaleBits: 32, tensors: [] }), /scaleBits/);
    throwsEncoding(
      () => encodeModel({ architecture: "a", tensors: [{ name: "", shape: [1], values: [1] }] }),
      /non-empty name/,
    );
    throwsEncoding(
      () =>
        encodeModel({
          architecture: "a",
          tensors: [
            { name: "w", shape: [1], values: [1] },
            { name: "w", shape: [1], values: [2] },
          ],
        }),
      /Duplicate tensor name/,
    );
    // Two different lone surrogates would both encode as U+FFFD: refused instead of colliding.
    throwsEncoding(() => encodeModel({ architecture: "a\uD800", tensors: [] }), /lone surrogate/);
    throwsEncoding(
      () => encodeModel({ architecture: "a", tensors: [{ name: "\uDC00", shape: [1], values: [1] }] }),
      /lone surrogate/,
    );
    assert.doesNotThrow(() => encodeModel({ architecture: "emoji 😀", tensors: [] }));
  });

  it("rejects -2^31 in a hand-built canonical model", () => {
    const model: CanonicalModel = {
      architecture: "a",
      scaleBits: 0,
      tensors: [{ name: "w", shape: [1], ints: Int32Array.from([-(2 ** 31)]) }],
    };
    throwsEncoding(() => encodeCanonical(model), /-2\^31/);
  });

  it("reports overflow during encodeModel with the tensor's name", () => {
    assert.throws(
      () => encodeModel({ architecture: "a", tensors: [{ name: "head", shape: [1], values: [Number.NaN] }] }),
      (e: unknown) => e instanceof QuantizationOverflowError && e.tensor === "head",
    );
  });
});

describe("sameArchitecture", () => {
  const base = decodeModel(encodeModel({ architecture: "mlp", tensors: randomTensors(1, 1) }));
  const variant = (f: (m: CanonicalModel) => void): CanonicalModel => {
    const m = structuredClone(base);
    f(m);
    return m;
  };

  it("is true for the same layout with other values and another scale", () => {
    const other = decodeModel(
      encodeModel({ architecture: "mlp", scaleBits: 8, tensors: randomTensors(2, 1) }),
    );
    assert.equal(sameArchitecture(base, other), true);
    assert.equal(sameArchitecture(other, base), true);
  });

  it("is false when the architecture, a name, a shape, the order or the count differ", () => {
    assert.equal(
      sameArchitecture(
        base,
        variant((m) => {
          m.architecture = "cnn";
        }),
      ),
      false,
    );
    assert.equal(
      sameArchitecture(
        base,
        variant((m) => {
          (m.tensors[1] as { name: string }).name = "other";
        }),
      ),
      false,
    );
    assert.equal(
      sameArchitecture(
        base,
        variant((m) => {
          (m.tensors[0] as { shape: number[] }).shape = [5, 7];
        }),
      ),
      false,
    );
    assert.equal(
      sameArchitecture(
        base,
        variant((m) => {
          (m.tensors[0] as { shape: number[] }).shape = [7, 5, 1];
        }),
      ),
      false,
    );
    assert.equal(
      sameArchitecture(
        base,
        variant((m) => {
          m.tensors.reverse();
        }),
      ),
      false,
    );
    assert.equal(
      sameArchitecture(
        base,
        variant((m) => {
          m.tensors.pop();
        }),
      ),
      false,
    );
    assert.equal(
      sameArchitecture(
        variant((m) => {
          m.tensors.pop();
        }),
        base,
      ),
      false,
    );
  });
});
