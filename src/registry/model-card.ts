/**
 * Model cards: the technical documentation of a model version, stored as a blob and referenced by CID
 * from the registry. The fields follow Annex IV of the EU AI Act (Regulation (EU) 2024/1689): general
 * description and intended purpose (§1), development process, data provenance and training (§2),
 * performance metrics and limitations (§3), risks and human oversight (§2(e), §3), changes over the
 * lifecycle (§6) and post-market monitoring (§9).
 *
 * Objects are strict: an unknown key is an error, not silently dropped, because a misspelt field
 * ("knownLimitation") would otherwise vanish from the document whose hash goes on-chain.
 */

import { z } from "zod";
import { digestFromCid } from "../storage/cid.ts";

export const MODEL_CARD_SCHEMA = "ledgermind.model-card/1";

/**
 * Required prose must say something. Checked with a pattern rather than .trim(), which would rewrite
 * the author's text (and its hash) instead of validating it.
 */
const text = z.string().regex(/\S/, "must not be empty or blank");
const texts = z.array(text);

/**
 * An SPDX licence identifier or expression ("MIT", "Apache-2.0", "LicenseRef-acme",
 * "MIT OR Apache-2.0", "GPL-2.0-only WITH Classpath-exception-2.0"). Checks the shape, not the SPDX
 * list, so that new identifiers and LicenseRef- ids do not need a code change.
 */
const spdx = z
  .string()
  .regex(
    /^\(?[A-Za-z0-9][A-Za-z0-9.+-]*\)?( (AND|OR|WITH) \(?[A-Za-z0-9][A-Za-z0-9.+-]*\)?)*$/,
    "expected an SPDX licence identifier or expression, e.g. MIT or Apache-2.0",
  );

/** A content address this system can verify (CIDv1 raw sha256), so a referenced dataset is checkable. */
const cid = z.string().refine(
  (value) => {
    try {
      digestFromCid(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: "expected a CIDv1 raw sha256 CID (bafkrei...)" },
);

const dataSource = z
  .strictObject({
    name: text,
    /** Where the data is in the blob store, when it is there. */
    cid: cid.optional(),
    /** Where the data is otherwise (a data NFT's URI, a public dataset's page). */
    uri: z.url().optional(),
    description: text,
    licence: text,
    /** How the data was obtained, labelled and selected (Annex IV §2(d)). */
    collection: text,
    /** Cleaning, enrichment, partitioning applied before training. */
    preprocessing: text,
  })
  .refine((source) => source.cid !== undefined || source.uri !== undefined, {
    message: "a data source needs a cid or a uri so it can be found",
    path: ["cid"],
  });

/** Hyperparameter values are scalars: anything richer belongs in the procedure text. */
const hyperparameter = z.union([z.string(), z.number(), z.boolean()]);

export const modelCardSchema = z.strictObject({
  schema: z.literal(MODEL_CARD_SCHEMA),
  name: text,
  /** Human label of this version ("1.2.0", "round-17"); the registry's version id is authoritative. */
  version: text,
  description: text,
  intendedPurpose: z.strictObject({
    purpose: text,
    intendedUsers: texts.min(1),
    outOfScopeUses: texts,
  }),
  provider: z.strictObject({
    name: text,
    /** Email address or URL where the provider can be reached. */
    contact: text,
  }),
  architecture: text,
  dataProvenance: z.array(dataSource).min(1),
  training: z.strictObject({
    procedure: text,
    hyperparameters: z.record(z.string().min(1), hyperparameter),
    computeDescription: text,
  }),
  metrics: z
    .array(
      z.strictObject({
        name: text,
        value: z.number(),
        dataset: text,
        description: text,
      }),
    )
    .min(1),
  knownLimitations: texts.min(1),
  risks: z.strictObject({
    /** Known and foreseeable risks to health, safety and fundamental rights. */
    identified: texts.min(1),
    foreseeableMisuse: texts.min(1),
    mitigations: texts,
  }),
  humanOversight: z.strictObject({
    measures: texts.min(1),
    /** How a person should read and, where needed, override the model's outputs. */
    interpretationGuidance: text,
  }),
  lifecycle: z.strictObject({
    /** Changes made over the model's lifecycle, one per version; empty for a first version. */
    changes: z.array(z.strictObject({ version: text, description: text })),
    /** The post-market monitoring plan. */
    monitoring: text,
  }),
  licence: spdx,
});

export type ModelCard = z.infer<typeof modelCardSchema>;

export class ModelCardError extends Error {
  override name = "ModelCardError";
  constructor(readonly issues: readonly { path: string; message: string }[]) {
    super(`Invalid model card: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")}`);
  }
}

/** `a.b[2].c`, the path a person would look for in the JSON. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "(root)" : out;
}

/** Validates untrusted JSON (from the blob store, a file, a request) as a model card. */
export function parseModelCard(json: unknown): ModelCard {
  const result = modelCardSchema.safeParse(json);
  if (!result.success) {
    throw new ModelCardError(
      result.error.issues.map((issue) => {
        // An unknown key is reported at its parent; naming the key itself is what the reader needs.
        const path =
          issue.code === "unrecognized_keys"
            ? issue.keys.map((key) => formatPath([...issue.path, key])).join(", ")
            : formatPath(issue.path);
        return { path, message: issue.message };
      }),
    );
  }
  return result.data;
}

/**
 * JSON with object keys sorted recursively (by UTF-16 code unit, as RFC 8785 does), no whitespace, so
 * equal cards give equal bytes and therefore equal CIDs regardless of how the object was built. For
 * the strings, finite numbers and booleans a card holds this coincides with RFC 8785 (JCS), since
 * JSON.stringify already escapes strings and prints numbers the way JCS requires.
 */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Canonical UTF-8 bytes of a card, validated first so an invalid card never gets a CID. */
export function encodeModelCard(card: ModelCard): Uint8Array {
  return new TextEncoder().encode(canonicalJson(parseModelCard(card)));
}

/** Parses and validates a card read back from the store. */
export function decodeModelCard(bytes: Uint8Array): ModelCard {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new ModelCardError([
      {
        path: "(root)",
        message: `not UTF-8 JSON (${error instanceof Error ? error.message : String(error)})`,
      },
    ]);
  }
  return parseModelCard(json);
}
