import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeModelCard,
  encodeModelCard,
  type ModelCard,
  ModelCardError,
  parseModelCard,
} from "../../src/registry/model-card.ts";
import { cidOf } from "../../src/storage/cid.ts";

const datasetCid = cidOf(new TextEncoder().encode("mnist-train-partition-0"));

function validCard(): ModelCard {
  return {
    schema: "ledgermind.model-card/1",
    name: "Crop yield regressor",
    version: "1.0.0",
    description: "Predicts wheat yield per hectare from weather and soil features.",
    intendedPurpose: {
      purpose: "Parametric crop insurance payouts for smallholder farms.",
      intendedUsers: ["insurers", "agricultural cooperatives"],
      outOfScopeUses: ["credit scoring of individual farmers"],
    },
    provider: { name: "Ledgermind Labs", contact: "models@example.org" },
    architecture: "mlp-12-32-1",
    dataProvenance: [
      {
        name: "Regional yield records 2010-2023",
        cid: datasetCid,
        description: "Yearly yields per parcel with weather aggregates.",
        licence: "CC-BY-4.0",
        collection: "Reported by cooperatives, audited by sampling.",
        preprocessing: "Outliers beyond 5 sigma removed; features standardized.",
      },
      {
        name: "Soil survey",
        uri: "https://example.org/soil",
        description: "Soil type and organic content per parcel.",
        licence: "ODbL-1.0",
        collection: "Public survey.",
        preprocessing: "Joined by parcel id.",
      },
    ],
    training: {
      procedure: "Federated averaging over 20 rounds, 5 trainers.",
      hyperparameters: { learningRate: 0.01, batchSize: 32, optimizer: "adam", shuffle: true },
      computeDescription: "CPU only, about 2 core-hours in total.",
    },
    metrics: [
      { name: "MAE", value: 0.31, dataset: datasetCid, description: "t/ha on the held-out 2023 season" },
    ],
    knownLimitations: ["Not validated outside the temperate climate zone."],
    risks: {
      identified: ["Systematic underestimation in drought years could delay payouts."],
      foreseeableMisuse: ["Using predictions to price land."],
      mitigations: ["Payouts above a threshold require human review."],
    },
    humanOversight: {
      measures: ["A claims officer can override any payout decision."],
      interpretationGuidance: "Treat predictions within 0.5 t/ha of the trigger as uncertain.",
    },
    lifecycle: {
      changes: [{ version: "1.0.0", description: "First release." }],
      monitoring: "Monthly drift report from the indexer; retrain if MAE exceeds 0.5.",
    },
    licence: "Apache-2.0",
  };
}

/** Deep copy with keys of every object inserted in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reverseKeys(v)]),
    );
  }
  return value;
}

/** The failing paths reported for `json`. */
function failingPaths(json: unknown): string[] {
  try {
    parseModelCard(json);
  } catch (error) {
    assert.ok(error instanceof ModelCardError);
    assert.equal(error.name, "ModelCardError");
    assert.ok(!error.message.includes("\n"), "message is one line");
    for (const issue of error.issues) assert.ok(error.message.includes(issue.path));
    return error.issues.map((issue) => issue.path);
  }
  assert.fail("expected a ModelCardError");
}

describe("parseModelCard", () => {
  it("accepts a full valid card and returns it unchanged", () => {
    const card = validCard();
    assert.deepEqual(parseModelCard(structuredClone(card)), card);
  });

  it("names every missing field in the error", () => {
    const card = validCard() as Record<string, unknown>;
    delete card.knownLimitations;
    delete card.licence;
    delete (card.intendedPurpose as Record<string, unknown>).purpose;
    delete (card.humanOversight as Record<string, unknown>).interpretationGuidance;
    const paths = failingPaths(card);
    assert.deepEqual(
      paths.sort(),
      [
        "humanOversight.interpretationGuidance",
        "intendedPurpose.purpose",
        "knownLimitations",
        "licence",
      ].sort(),
    );
  });

  it("reports paths into arrays", () => {
    const card = validCard();
    (card.dataProvenance[1] as Record<string, unknown>).licence = "";
    (card.metrics[0] as Record<string, unknown>).value = "0.31";
    assert.deepEqual(failingPaths(card).sort(), ["dataProvenance[1].licence", "metrics[0].value"]);
    try {
      parseModelCard(card);
    } catch (error) {
      assert.match(String((error as Error).message), /^Invalid model card: .*dataProvenance\[1\]\.licence: /);
    }
  });

  it("requires at least one known limitation, data source, metric and intended user", () => {
    const card = validCard();
    card.knownLimitations = [];
    card.dataProvenance = [];
    card.metrics = [];
    card.intendedPurpose.intendedUsers = [];
    assert.deepEqual(failingPaths(card).sort(), [
      "dataProvenance",
      "intendedPurpose.intendedUsers",
      "knownLimitations",
      "metrics",
    ]);
  });

  it("rejects blank prose, the wrong schema version and non-object input", () => {
    const card = validCard();
    card.description = "   \n";
    (card as Record<string, unknown>).schema = "ledgermind.model-card/2";
    assert.deepEqual(failingPaths(card).sort(), ["description", "schema"]);
    assert.deepEqual(failingPaths(null), ["(root)"]);
    assert.deepEqual(failingPaths([validCard()]), ["(root)"]);
  });

  it("rejects unknown keys, naming the misspelt key", () => {
    const card = validCard() as Record<string, unknown>;
    card.knownLimitation = ["typo"];
    (card.provider as Record<string, unknown>).email = "x@example.org";
    assert.deepEqual(failingPaths(card).sort(), ["knownLimitation", "provider.email"]);
  });

  it("requires a cid or a uri on each data source, and checks both", () => {
    const card = validCard();
    delete (card.dataProvenance[0] as Record<string, unknown>).cid;
    assert.deepEqual(failingPaths(card), ["dataProvenance[0].cid"]);
    const badCid = validCard();
    (badCid.dataProvenance[0] as Record<string, unknown>).cid =
      "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
    assert.deepEqual(failingPaths(badCid), ["dataProvenance[0].cid"]);
    const badUri = validCard();
    (badUri.dataProvenance[1] as Record<string, unknown>).uri = "not a uri";
    assert.deepEqual(failingPaths(badUri), ["dataProvenance[1].uri"]);
  });

  it("checks hyperparameter values are scalars and metric values finite numbers", () => {
    const card = validCard();
    (card.training.hyperparameters as Record<string, unknown>).layers = [32, 1];
    (card.metrics[0] as Record<string, unknown>).value = Number.NaN;
    assert.deepEqual(failingPaths(card).sort(), ["metrics[0].value", "training.hyperparameters.layers"]);
  });

  it("accepts SPDX identifiers and expressions, rejects free text", () => {
    for (const ok of [
      "MIT",
      "Apache-2.0",
      "LicenseRef-acme-1",
      "MIT OR Apache-2.0",
      "GPL-2.0-only WITH Classpath-exception-2.0",
      "(MIT AND BSD-3-Clause)",
    ]) {
      assert.equal(parseModelCard({ ...validCard(), licence: ok }).licence, ok);
    }
    for (const bad of ["", "Apache 2.0", "all rights reserved", "MIT  OR Apache-2.0", " MIT"]) {
      assert.deepEqual(failingPaths({ ...validCard(), licence: bad }), ["licence"]);
    }
  });
});

describe("encodeModelCard", () => {
  it("produces sorted-key JSON without whitespace", () => {
    const text = new TextDecoder().decode(encodeModelCard(validCard()));
    assert.ok(text.startsWith('{"architecture":"mlp-12-32-1","dataProvenance":[{"cid":"bafkrei'));
    assert.ok(
      text.includes(
        '"hyperparameters":{"batchSize":32,"learningRate":0.01,"optimizer":"adam","shuffle":true}',
      ),
    );
    assert.ok(
      text.endsWith(
        '"schema":"ledgermind.model-card/1","training":{"computeDescription":"CPU only, about 2 core-hours in total.","hyperparameters":{"batchSize":32,"learningRate":0.01,"optimizer":"adam","shuffle":true},"procedure":"Federated averaging over 20 rounds, 5 trainers."},"version":"1.0.0"}',
      ),
    );
    assert.ok(!/[\n\t]|": |, "/.test(text));
    assert.deepEqual(JSON.parse(text), validCard());
  });

  it("gives identical bytes (and CID) under key reordering at every level", () => {
    const a = encodeModelCard(validCard());
    const reordered = reverseKeys(validCard()) as ModelCard;
    assert.notEqual(JSON.stringify(reordered), JSON.stringify(validCard()), "the reordering really reorders");
    const b = encodeModelCard(reordered);
    assert.deepEqual(b, a);
    assert.equal(cidOf(b), cidOf(a));
  });

  it("omits undefined optional fields rather than encoding them", () => {
    const card = validCard();
    const withUndefined = validCard();
    (withUndefined.dataProvenance[1] as Record<string, unknown>).cid = undefined;
    assert.deepEqual(encodeModelCard(withUndefined), encodeModelCard(card));
  });

  it("changes when any content changes, array order included", () => {
    const a = encodeModelCard(validCard());
    const changed = validCard();
    changed.metrics[0] = { ...(changed.metrics[0] as ModelCard["metrics"][number]), value: 0.32 };
    assert.notDeepEqual(encodeModelCard(changed), a);
    const swapped = validCard();
    swapped.dataProvenance.reverse();
    assert.notDeepEqual(encodeModelCard(swapped), a);
  });

  it("encodes non-ASCII text as UTF-8 and round-trips through decodeModelCard", () => {
    const card = { ...validCard(), description: "Rendement du blé — 小麦产量 🌾" };
    const bytes = encodeModelCard(card);
    assert.ok(bytes.length > new TextDecoder().decode(bytes).length, "multi-byte UTF-8 is present");
    assert.deepEqual(decodeModelCard(bytes), card);
    assert.deepEqual(encodeModelCard(decodeModelCard(bytes)), bytes);
  });

  it("refuses to encode an invalid card", () => {
    const card = validCard();
    card.knownLimitations = [];
    assert.throws(
      () => encodeModelCard(card),
      (e: unknown) => e instanceof ModelCardError && /knownLimitations/.test(e.message),
    );
  });
});

describe("decodeModelCard", () => {
  it("rejects bytes that are not UTF-8 JSON", () => {
    assert.throws(
      () => decodeModelCard(new TextEncoder().encode("{not json")),
      /Invalid model card: \(root\): not UTF-8 JSON/,
    );
    assert.throws(() => decodeModelCard(Uint8Array.from([0x7b, 0xff, 0x7d])), ModelCardError);
  });
});
