/**
 * Manifests and OpenSSF Model Signing bundles: the reference tool's golden payloads reproduced byte for
 * byte from folders rebuilt as its fixtures make them, canonical order, what is ignored, every tamper
 * named, and bundles that verify only unmodified and only under their key.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  comparePaths,
  DEFAULT_SIGNATURE_FILE,
  decodeManifest,
  diffManifests,
  encodeManifest,
  hashModel,
  ManifestError,
  manifestDigest,
} from "../../src/registry/manifest.ts";
import {
  BundleError,
  manifestFromStatement,
  signManifest,
  statementJson,
  verifyBundle,
} from "../../src/registry/model-signing.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-model-signing-"));
after(() => rmSync(TMP, { recursive: true, force: true }));
const GOLDEN = new URL("./fixtures/model-signing/", import.meta.url);
const golden = (name: string) => readFileSync(new URL(name, GOLDEN), "utf8");

/** The reference's conftest.py fixtures, in folders named as its goldens name their subjects. */
const FIXTURES: Record<string, { folder: string; make: (root: string) => void }> = {
  sample_model_folder: {
    folder: "sample_model",
    make: (root) => {
      for (let i = 0; i < 2; i++) {
        mkdirSync(join(root, `d${i}`));
        for (let j = 0; j < 3; j++)
          writeFileSync(join(root, `d${i}`, `f${i}${j}`), `This is file f${i}${j} in d${i}.`);
      }
      for (let i = 0; i < 4; i++) writeFileSync(join(root, `f${i}`), `This is file f${i} in root.`);
    },
  },
  deep_model_folder: {
    folder: "deep_model",
    make: (root) => {
      const deep = join(root, "d0", "d1", "d2", "d3", "d4");
      mkdirSync(deep, { recursive: true });
      for (let i = 0; i < 4; i++) writeFileSync(join(deep, `f${i}`), `This is file f${i}.`);
    },
  },
  symlink_model_folder: {
    folder: "symlink_model",
    make: (root) => {
      const external = join(TMP, "external-file");
      writeFileSync(external, "This is a simple model");
      symlinkSync(external, join(root, "symlink_file"));
    },
  },
  empty_model_folder: { folder: "empty_folder_model", make: () => {} },
};

function rebuild(name: string): string {
  const fixture = FIXTURES[name] as (typeof FIXTURES)[string];
  const root = join(mkdtempSync(join(TMP, "model-")), fixture.folder);
  mkdirSync(root);
  fixture.make(root);
  return root;
}

describe("OpenSSF Model Signing payloads: the reference's goldens, byte for byte", () => {
  for (const name of Object.keys(FIXTURES)) {
    it(name, async () => {
      const manifest = await hashModel(rebuild(name), { allowSymlinks: true });
      assert.equal(`${statementJson(manifest)}\n`, golden(name));
    });
  }

  it("the goldens read back as the manifests they sign (root digest checked)", async () => {
    const signed = manifestFromStatement(Buffer.from(golden("sample_model_folder")));
    const local = await hashModel(rebuild("sample_model_folder"));
    assert.equal(signed.name, "sample_model");
    assert.deepEqual(diffManifests(signed.entries, local.entries), []);
  });
});

describe("manifest", () => {
  it("orders paths by component, as the reference does, not as strings sort", () => {
    const paths = ["a.txt", "a/b", "B", "a", "ä"];
    assert.deepEqual(paths.sort(comparePaths), ["B", "a", "a/b", "a.txt", "ä"]);
  });

  it("ignores .git, .gitattributes, .github, .gitignore and the signature file at the root", async () => {
    const root = rebuild("sample_model_folder");
    const before = await hashModel(root);
    mkdirSync(join(root, ".git"));
    writeFileSync(join(root, ".git", "HEAD"), "ref");
    for (const f of [".gitattributes", ".gitignore", DEFAULT_SIGNATURE_FILE])
      writeFileSync(join(root, f), "x");
    const afterIgnoring = await hashModel(root, { ignore: [DEFAULT_SIGNATURE_FILE] });
    assert.equal(manifestDigest(afterIgnoring), manifestDigest(before));
    writeFileSync(join(root, "d0", ".gitignore"), "not at the root: hashed");
    assert.notEqual(
      manifestDigest(await hashModel(root, { ignore: [DEFAULT_SIGNATURE_FILE] })),
      manifestDigest(before),
    );
  });

  it("refuses a symbolic link unless told to follow it (symlink escape)", async () => {
    const root = rebuild("symlink_model_folder");
    await assert.rejects(hashModel(root), ManifestError);
  });

  it("a single file is a manifest of one entry named '.'", async () => {
    const file = join(TMP, "weights.bin");
    writeFileSync(file, "This is a simple model");
    const m = await hashModel(file);
    assert.deepEqual(m.entries, [
      { path: ".", size: 22, sha256: "3aab065c7181a173b5dd9e9d32a9f79923440b413be1e1ffcdba26a7365f719b" },
    ]);
  });

  it("the digest binds paths and sizes: renaming a file changes it though the bytes are the same", () => {
    const a = { entries: [{ path: "a", size: 1, sha256: "0".repeat(64) }] };
    const b = { entries: [{ path: "b", size: 1, sha256: "0".repeat(64) }] };
    assert.notEqual(manifestDigest(a), manifestDigest(b));
    assert.deepEqual(decodeManifest(encodeManifest(a)).entries, a.entries);
  });

  it("names each file that differs, is missing or is extra", async () => {
    const root = rebuild("sample_model_folder");
    const registered = await hashModel(root);
    writeFileSync(join(root, "f0"), "This is file f0 in root!");
    rmSync(join(root, "d1", "f11"));
    writeFileSync(join(root, "new"), "x");
    const diff = diffManifests(registered.entries, (await hashModel(root)).entries);
    assert.deepEqual(
      diff.map((d) => `${d.kind} ${d.path}`),
      ["missing d1/f11", "differs f0", "extra new"],
    );
  });
});

describe("bundles", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const other = generateKeyPairSync("ec", { namedCurve: "P-256" });

  it("a bundle signs the statement and verifies under the key, giving back the manifest", async () => {
    const m = await hashModel(rebuild("sample_model_folder"));
    const bundle = signManifest(m, privateKey);
    assert.equal(bundle.mediaType, "application/vnd.dev.sigstore.bundle.v0.3+json");
    const signed = verifyBundle(JSON.parse(JSON.stringify(bundle)), publicKey);
    assert.deepEqual(diffManifests(signed.entries, m.entries), []);
    assert.equal(Buffer.from(bundle.dsseEnvelope?.payload ?? "", "base64").toString(), statementJson(m));
  });

  it("modified bundle: a changed resource digest does not verify", async () => {
    const m = await hashModel(rebuild("sample_model_folder"));
    const bundle = signManifest(m, privateKey);
    const envelope = bundle.dsseEnvelope as NonNullable<typeof bundle.dsseEnvelope>;
    const payload = Buffer.from(envelope.payload, "base64").toString().replace(/"fdd8/, '"0dd8');
    envelope.payload = Buffer.from(payload).toString("base64");
    assert.throws(() => verifyBundle(bundle, publicKey), /signature does not verify/);
  });

  it("modified bundle: a flipped signature byte does not verify", async () => {
    const bundle = signManifest(await hashModel(rebuild("deep_model_folder")), privateKey);
    const envelope = bundle.dsseEnvelope as NonNullable<typeof bundle.dsseEnvelope>;
    const sig = Buffer.from(envelope.signatures[0]?.sig ?? "", "base64");
    sig[sig.length - 1] = (sig[sig.length - 1] as number) ^ 1;
    (envelope.signatures[0] as { sig: string }).sig = sig.toString("base64");
    assert.throws(() => verifyBundle(bundle, publicKey), BundleError);
  });

  it("key substitution: a bundle does not verify under another key, even with the hint removed", async () => {
    const bundle = signManifest(await hashModel(rebuild("deep_model_folder")), privateKey);
    assert.throws(() => verifyBundle(bundle, other.publicKey), /another key/);
    const material = bundle.verificationMaterial as { publicKey?: { hint: string } };
    (material.publicKey as { hint: string }).hint = "";
    assert.throws(() => verifyBundle(bundle, other.publicKey), /signature does not verify/);
  });

  it("resource substitution: a statement whose root digest does not cover its resources is refused", () => {
    const text = golden("deep_model_folder").replace(/"6efa/, '"0efa');
    assert.throws(() => manifestFromStatement(Buffer.from(text)), /subject digest does not match/);
  });
});
