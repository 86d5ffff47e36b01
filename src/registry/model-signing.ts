/**
 * OpenSSF Model Signing v1.0, key-based: the model's manifest as an in-toto v1 statement, in a DSSE
 * envelope, in a Sigstore bundle whose verification material is a public key hint (no Fulcio, no Rekor).
 * Payloads are byte for byte the reference tool's (sigstore/model-transparency), so either side verifies
 * the other's bundles.
 */
import { createHash, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import {
  BUNDLE_V03_MEDIA_TYPE,
  bundleFromJSON,
  bundleToJSON,
  isBundleWithDsseEnvelope,
  isBundleWithPublicKey,
  type SerializedBundle,
  toDSSEBundle,
} from "@sigstore/bundle";
import { comparePaths, type ManifestEntry, type ModelManifest } from "./manifest.ts";

export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
export const IN_TOTO_STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const MODEL_SIGNING_PREDICATE_TYPE = "https://model_signing/signature/v1.0";

/** A bundle that does not verify, or says something other than what is checked: one line, exit 1. */
export class BundleError extends Error {
  override name = "BundleError";
}

/** A key file that is not an ECDSA P-256/384/521 PEM key of the expected kind. */
export class SigningKeyError extends Error {
  override name = "SigningKeyError";
}

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest();

/**
 * Pure: the statement's JSON exactly as the reference prints it (protobuf's `MessageToJson`, indent 2,
 * the key orders its output has). The subject's digest is SHA-256 over every file digest in canonical order.
 */
export function statementJson(m: ModelManifest): string {
  const entries = [...m.entries].sort((a, b) => comparePaths(a.path, b.path));
  const root = createHash("sha256");
  for (const e of entries) root.update(Buffer.from(e.sha256, "hex"));
  const statement = {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [{ name: m.name, digest: { sha256: root.digest("hex") } }],
    predicateType: MODEL_SIGNING_PREDICATE_TYPE,
    predicate: {
      serialization: { method: "files", hash_type: "sha256", allow_symlinks: m.allowSymlinks },
      resources: entries.map((e) => ({ algorithm: "sha256", digest: e.sha256, name: e.path })),
    },
  };
  return JSON.stringify(statement, null, 2);
}

/** DSSE's pre-authentication encoding: what the signature covers. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType);
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `),
    type,
    Buffer.from(` ${payload.length} `),
    payload,
  ]);
}

/** The key's hint as the reference writes it: SHA-256 (hex) of its SubjectPublicKeyInfo PEM. */
export function publicKeyHint(key: KeyObject): string {
  return sha256(key.export({ type: "spki", format: "pem" }) as string).toString("hex");
}

function ecdsaHash(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const hash = { prime256v1: "sha256", secp384r1: "sha384", secp521r1: "sha512" }[curve ?? ""];
  if (key.asymmetricKeyType !== "ec" || !hash)
    throw new SigningKeyError("only ECDSA keys on P-256, P-384 or P-521 are supported (as by model_signing)");
  return hash;
}

/** Signs the manifest: the bundle as the JSON object the reference writes to `model.sig`. */
export function signManifest(m: ModelManifest, privateKey: KeyObject): SerializedBundle {
  if (privateKey.type !== "private") throw new SigningKeyError("signing needs a private key");
  const payload = Buffer.from(statementJson(m));
  const signature = sign(ecdsaHash(privateKey), pae(IN_TOTO_PAYLOAD_TYPE, payload), privateKey);
  const bundle = toDSSEBundle({
    artifact: payload,
    artifactType: IN_TOTO_PAYLOAD_TYPE,
    signature,
    keyHint: publicKeyHint(createPublicKey(privateKey)),
  });
  // The reference leaves the DSSE key id empty: the hint in the verification material names the key.
  for (const s of bundle.content.dsseEnvelope.signatures) s.keyid = "";
  return bundleToJSON(bundle);
}

export interface SignedManifest {
  name: string;
  /** File digests only: a bundle records no sizes. */
  entries: Pick<ManifestEntry, "path" | "sha256">[];
}

/**
 * Checks a bundle against a public key and returns the manifest it signs: media type, key hint, the
 * ECDSA signature over the DSSE envelope, the statement's types, and its root digest against its resources.
 */
export function verifyBundle(json: unknown, publicKey: KeyObject): SignedManifest {
  let bundle: ReturnType<typeof bundleFromJSON>;
  try {
    bundle = bundleFromJSON(json);
  } catch (err) {
    throw new BundleError(`not a Sigstore bundle: ${(err as Error).message}`);
  }
  if (bundle.mediaType !== BUNDLE_V03_MEDIA_TYPE)
    throw new BundleError(`bundle media type is ${bundle.mediaType}, expected ${BUNDLE_V03_MEDIA_TYPE}`);
  if (!isBundleWithDsseEnvelope(bundle)) throw new BundleError("the bundle holds no DSSE envelope");
  if (!isBundleWithPublicKey(bundle))
    throw new BundleError("the bundle is not key-based (certificate bundles need Fulcio's trust root)");
  const hint = bundle.verificationMaterial.content.publicKey.hint;
  if (hint && hint !== publicKeyHint(publicKey))
    throw new BundleError("the bundle was signed with another key (its public key hint does not match)");
  const envelope = bundle.content.dsseEnvelope;
  const sig = envelope.signatures[0]?.sig;
  let valid = false;
  try {
    valid =
      !!sig && verify(ecdsaHash(publicKey), pae(envelope.payloadType, envelope.payload), publicKey, sig);
  } catch (err) {
    if (err instanceof SigningKeyError) throw err;
  }
  if (!valid) throw new BundleError("the bundle's signature does not verify under the key");
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE)
    throw new BundleError(`DSSE payload type is ${envelope.payloadType}, expected ${IN_TOTO_PAYLOAD_TYPE}`);
  return manifestFromStatement(envelope.payload);
}

/** Pure: the manifest an in-toto statement describes, once its root digest is checked. */
export function manifestFromStatement(payload: Uint8Array): SignedManifest {
  let s: {
    _type?: unknown;
    predicateType?: unknown;
    subject?: { name?: unknown; digest?: { sha256?: unknown } }[];
    predicate?: { serialization?: { method?: unknown; hash_type?: unknown }; resources?: unknown };
  };
  try {
    s = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    throw new BundleError("the signed statement is not JSON");
  }
  if (s._type !== IN_TOTO_STATEMENT_TYPE) throw new BundleError(`not an in-toto v1 statement: ${s._type}`);
  if (s.predicateType !== MODEL_SIGNING_PREDICATE_TYPE)
    throw new BundleError(`predicate type is ${s.predicateType}, expected ${MODEL_SIGNING_PREDICATE_TYPE}`);
  const serialization = s.predicate?.serialization;
  if (serialization?.method !== "files" || serialization.hash_type !== "sha256")
    throw new BundleError(
      `serialization ${serialization?.method}/${serialization?.hash_type} is not supported (files/sha256 is)`,
    );
  const subject = s.subject?.length === 1 ? s.subject[0] : undefined;
  if (!subject || typeof subject.digest?.sha256 !== "string")
    throw new BundleError("the statement must have exactly one subject with a sha256 digest");
  const resources = s.predicate?.resources;
  if (!Array.isArray(resources)) throw new BundleError("the statement lists no resources");
  const root = createHash("sha256");
  const entries = resources.map((r: { name?: unknown; algorithm?: unknown; digest?: unknown }) => {
    if (
      typeof r.name !== "string" ||
      r.algorithm !== "sha256" ||
      typeof r.digest !== "string" ||
      !/^[0-9a-f]{64}$/.test(r.digest)
    )
      throw new BundleError("the statement has a malformed resource");
    root.update(Buffer.from(r.digest, "hex"));
    return { path: r.name, sha256: r.digest };
  });
  if (root.digest("hex") !== subject.digest.sha256)
    throw new BundleError("the statement's subject digest does not match its resources");
  return { name: String(subject.name ?? ""), entries };
}
