import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { base58btc } from "multiformats/bases/base58";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import * as Digest from "multiformats/hashes/digest";
import { sha256, sha512 } from "multiformats/hashes/sha2";
import {
  canonicalCid,
  cidFromDigest,
  cidOf,
  digestFromCid,
  InvalidCidError,
  InvalidDigestError,
  sha256Digest,
} from "../../src/storage/cid.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);

/** The CID as multiformats computes it with its own (possibly async) hasher: the reference. */
async function referenceCid(bytes: Uint8Array): Promise<string> {
  return CID.create(1, raw.code, await sha256.digest(bytes)).toString();
}

describe("sha256Digest", () => {
  it("matches the published sha256 test vectors", () => {
    assert.equal(
      sha256Digest(new Uint8Array()),
      "0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    assert.equal(
      sha256Digest(utf8("abc")),
      "0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });
});

describe("cidOf", () => {
  it("gives the well-known CID of the empty byte string", async () => {
    const cid = cidOf(new Uint8Array());
    assert.equal(cid, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    assert.equal(cid, await referenceCid(new Uint8Array()));
  });

  it("matches multiformats for 'hello world' and for random content", async () => {
    assert.equal(cidOf(utf8("hello world")), "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e");
    assert.equal(cidOf(utf8("hello world")), await referenceCid(utf8("hello world")));
    for (let n = 1; n < 2000; n += 397) {
      const bytes = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
      assert.equal(cidOf(bytes), await referenceCid(bytes));
    }
  });

  it("changes when a single bit changes", () => {
    const a = utf8("hello world");
    const b = a.slice();
    b[0] = (b[0] ?? 0) ^ 1;
    assert.notEqual(cidOf(a), cidOf(b));
  });
});

describe("cidFromDigest / digestFromCid", () => {
  it("round-trip between digest and CID", () => {
    const digest = sha256Digest(utf8("hello world"));
    const cid = cidFromDigest(digest);
    assert.ok(cid.startsWith("bafkrei"));
    assert.equal(digestFromCid(cid), digest);
  });

  it("accept upper-case hex and always return lower-case", () => {
    const digest = sha256Digest(utf8("x"));
    const upper = `0x${digest.slice(2).toUpperCase()}` as const;
    assert.equal(cidFromDigest(upper), cidFromDigest(digest));
    assert.equal(digestFromCid(cidFromDigest(upper)), digest);
  });

  it("reject digests of the wrong length or alphabet", () => {
    const digest = sha256Digest(utf8("x"));
    for (const bad of [digest.slice(0, -2), `${digest}00`, digest.slice(2), `0x${"g".repeat(64)}`, "0x"]) {
      assert.throws(() => cidFromDigest(bad as `0x${string}`), InvalidDigestError);
    }
  });

  it("accept another multibase spelling of the same CID and canonicalize it", () => {
    const cid = cidOf(utf8("hello world"));
    const b58 = CID.parse(cid).toString(base58btc);
    assert.ok(b58.startsWith("z"));
    assert.equal(digestFromCid(b58), digestFromCid(cid));
    assert.equal(canonicalCid(b58), cid);
  });

  it("reject malformed strings, naming the problem", () => {
    for (const bad of ["", "hello", "bafkrei!!!", cidOf(utf8("a")).slice(0, -4)]) {
      assert.throws(
        () => digestFromCid(bad),
        (error: unknown) =>
          error instanceof InvalidCidError && error.name === "InvalidCidError" && error.cid === bad,
      );
    }
    assert.throws(() => digestFromCid("not-a-cid"), /malformed/);
  });

  it("reject a non-raw codec (dag-pb CIDv0 and dag-cbor CIDv1)", async () => {
    const hash = await sha256.digest(utf8("x"));
    const v0 = CID.createV0(hash).toString();
    assert.throws(() => digestFromCid(v0), /version is 0/);
    const dagCbor = CID.createV1(0x71, hash).toString();
    assert.throws(
      () => digestFromCid(dagCbor),
      (e: unknown) => e instanceof InvalidCidError && /codec is 0x71/.test(e.message),
    );
  });

  it("reject a non-sha256 hash and a short sha256 digest", async () => {
    const sha512Cid = CID.createV1(raw.code, await sha512.digest(utf8("x"))).toString();
    assert.throws(
      () => digestFromCid(sha512Cid),
      (e: unknown) => e instanceof InvalidCidError && /hash is 0x13/.test(e.message),
    );
    const short = CID.createV1(raw.code, Digest.create(0x12, new Uint8Array(20))).toString();
    assert.throws(() => digestFromCid(short), /20 bytes, not 32/);
  });
});
