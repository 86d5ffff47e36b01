/**
 * GGUF headers (src/registry/formats.ts readGguf and readFileInfo): a file written here by the GGUF
 * specification's layout (llama.cpp's docs/gguf.md: magic, version 3, tensor and key-value counts, typed
 * key-values, tensor infos, aligned data) is read back to its architecture, quantization, context length and
 * parameter count; a truncated one is a FormatError, not a crash.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FormatError, readFileInfo, readGguf } from "../../src/registry/formats.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-gguf-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

const UINT32 = 4;
const STRING = 8;

/** A little-endian GGUF v3 file: the given key-values and F32 tensors (their data zeros). */
function ggufFile(
  kv: [string, { type: typeof UINT32; value: number } | { type: typeof STRING; value: string }][],
  tensors: { name: string; dims: number[] }[],
): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    parts.push(b);
  };
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    parts.push(b);
  };
  const str = (s: string) => {
    u64(Buffer.byteLength(s));
    parts.push(Buffer.from(s, "utf8"));
  };
  parts.push(Buffer.from("GGUF", "latin1"));
  u32(3);
  u64(tensors.length);
  u64(kv.length);
  for (const [key, v] of kv) {
    str(key);
    u32(v.type);
    if (v.type === UINT32) u32(v.value);
    else str(v.value);
  }
  let offset = 0;
  for (const t of tensors) {
    str(t.name);
    u32(t.dims.length);
    for (const d of t.dims) u64(d);
    u32(0); // F32
    u64(offset);
    offset += t.dims.reduce((a, b) => a * b, 1) * 4;
  }
  const header = Buffer.concat(parts);
  const padded = Math.ceil(header.length / 32) * 32;
  return Buffer.concat([header, Buffer.alloc(padded - header.length), Buffer.alloc(offset)]);
}

describe("GGUF headers", () => {
  it("a llama file: architecture, quantization, context length and parameter count", async () => {
    const path = join(TMP, "tiny-llama.Q4_K_M.gguf");
    writeFileSync(
      path,
      ggufFile(
        [
          ["general.architecture", { type: STRING, value: "llama" }],
          ["general.file_type", { type: UINT32, value: 15 }],
          ["llama.context_length", { type: UINT32, value: 4096 }],
        ],
        [
          { name: "token_embd.weight", dims: [8, 16] },
          { name: "output_norm.weight", dims: [8] },
        ],
      ),
    );
    const info = await readGguf(path);
    assert.deepEqual(info, {
      format: "gguf",
      architecture: "llama",
      quantization: "Q4_K_M",
      contextLength: 4096,
      parameterCount: 8 * 16 + 8,
    });
    assert.equal((await readFileInfo(path)).format, "gguf");
  });

  it("a file cut inside its header is a FormatError naming it", async () => {
    const path = join(TMP, "cut.gguf");
    const whole = ggufFile([["general.architecture", { type: STRING, value: "llama" }]], []);
    writeFileSync(path, whole.subarray(0, 30));
    await assert.rejects(
      readGguf(path),
      (e: unknown) => e instanceof FormatError && e.message.includes(path),
    );
  });
});
