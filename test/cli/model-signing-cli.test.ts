/**
 * `ledgermind model version / sign / verify / card init` on a folder shaped like a Hugging Face snapshot
 * (config.json, two safetensors shards, tokenizer.json, README.md with YAML front matter), on the
 * embedded chain of a data dir of its own: registered, signed, verified, then tampered with (one byte in
 * a shard, a file added, a file removed), each tamper named on a line of its own; a modified bundle fails.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { assertOk, assertOneLineError, cliWith } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-model-signing-cli-"));
const { cli } = cliWith({ dataDir: join(TMP, "data") });
after(() => rmSync(TMP, { recursive: true, force: true }));

/** A safetensors file: its header, then `data` bytes of F32 values. */
function safetensors(tensors: Record<string, number[]>, metadata: Record<string, string>): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, shape] of Object.entries(tensors)) {
    const bytes = shape.reduce((p, d) => p * d, 1) * 4;
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, Buffer.alloc(offset, 7)]);
}

const MODEL = join(TMP, "tiny-llama");
mkdirSync(MODEL);
writeFileSync(
  join(MODEL, "config.json"),
  JSON.stringify({ architectures: ["LlamaForCausalLM"], model_type: "llama" }),
);
writeFileSync(
  join(MODEL, "model-00001-of-00002.safetensors"),
  safetensors({ "embed.weight": [16, 8] }, { format: "pt" }),
);
writeFileSync(
  join(MODEL, "model-00002-of-00002.safetensors"),
  safetensors({ "lm_head.weight": [8, 16], "norm.weight": [8] }, { format: "pt" }),
);
writeFileSync(join(MODEL, "tokenizer.json"), JSON.stringify({ version: "1.0", model: { type: "BPE" } }));
writeFileSync(
  join(MODEL, "README.md"),
  "---\nlicense: apache-2.0\ndatasets:\n  - tiny/stories\nmodel_name: tiny-llama\n---\n# Tiny llama\n",
);
const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
const PRIVATE = join(TMP, "key.pem");
const PUBLIC = join(TMP, "key.pub.pem");
writeFileSync(PRIVATE, keys.privateKey.export({ type: "pkcs8", format: "pem" }));
writeFileSync(PUBLIC, keys.publicKey.export({ type: "spki", format: "pem" }));
const BUNDLE = join(MODEL, "model.sig");
const verifyArgs = [
  "model",
  "verify",
  MODEL,
  "--model",
  "1",
  "--version",
  "1",
  "--bundle",
  BUNDLE,
  "--key",
  PUBLIC,
];

describe("a Hugging Face snapshot: registered, signed, verified, tampered", { concurrency: false }, () => {
  it("model version --weights FOLDER records the manifest, its format read from the shards", async () => {
    assertOk(await cli(["model", "register", "--name", "tiny-llama"]));
    const out = assertOk(await cli(["model", "version", "1", "--weights", MODEL]));
    assert.match(out, /^model 1 version 1: weights bafkrei[a-z2-7]+ \(safetens\)$/m);
  });

  it("model card init --weights FOLDER pre-fills from config.json, the shards and the README", async () => {
    const card = join(TMP, "card.json");
    assertOk(await cli(["model", "card", "init", card, "--weights", MODEL]));
    const c = JSON.parse(readFileSync(card, "utf8"));
    assert.equal(c.name, "tiny-llama");
    assert.equal(c.architecture, "LlamaForCausalLM");
    assert.equal(c.licence, "apache-2.0");
    assert.equal(c.dataProvenance[0].name, "tiny/stories");
    assert.deepEqual(c.training.hyperparameters, { format: "safetens", parameterCount: 264, dtypes: "F32" });
  });

  it("model sign writes model.sig and records it as an attestation; verify checks chain and bundle", async () => {
    const signed = assertOk(
      await cli(["model", "sign", MODEL, "--key", PRIVATE, "--model", "1", "--version", "1"]),
    );
    assert.match(signed, /wrote .*model\.sig: 5 file\(s\) signed/);
    assert.match(signed, /attestation #0 on model 1 version 1/);
    const out = assertOk(await cli(verifyArgs));
    assert.match(out, /^OK: .* is what .*model\.sig signs \(5 file\(s\)\)$/m);
    assert.match(out, /^OK: .* is model 1 version 1 .*1 attestation\(s\), every signature valid/m);
  });

  it("tampered: one byte in a shard, a file added, a file removed: each named on its own line", async () => {
    const shard = join(MODEL, "model-00002-of-00002.safetensors");
    const bytes = readFileSync(shard);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    writeFileSync(shard, bytes);
    writeFileSync(join(MODEL, "extra.py"), "print('hi')");
    rmSync(join(MODEL, "tokenizer.json"));
    const r = await cli(verifyArgs);
    assertOneLineError(r, /MISMATCH|differs/, 1);
    for (const against of ["", " (against "]) {
      const lines = r.stdout.split("\n").filter((l) => l.includes(against) || against === "");
      assert.ok(
        lines.some((l) => l.startsWith("differs: model-00002-of-00002.safetensors")),
        r.stdout,
      );
      assert.ok(
        lines.some((l) => l.startsWith("extra: extra.py")),
        r.stdout,
      );
      assert.ok(
        lines.some((l) => l.startsWith("missing: tokenizer.json")),
        r.stdout,
      );
    }
    assert.equal(
      r.stdout.split("\n").filter((l) => /^(differs|extra|missing): /.test(l)).length,
      6,
      r.stdout,
    );
  });

  it("modified bundle: a resource digest changed in the statement does not verify", async () => {
    const bundle = JSON.parse(readFileSync(BUNDLE, "utf8"));
    const payload = Buffer.from(bundle.dsseEnvelope.payload, "base64").toString();
    bundle.dsseEnvelope.payload = Buffer.from(
      payload.replace(/"digest": "[0-9a-f]/, '"digest": "f'),
    ).toString("base64");
    const forged = join(TMP, "forged.sig");
    writeFileSync(forged, JSON.stringify(bundle));
    const r = await cli(["model", "verify", MODEL, "--bundle", forged, "--key", PUBLIC]);
    assertOneLineError(r, /signature does not verify/, 1);
  });
});
