/**
 * `ledgermind model card init` and `ledgermind model train`: the template is a valid Annex IV card as it
 * is (a version registered with it succeeds), init never overwrites a card unasked, and train writes
 * canonical weights of the demo's architectures from the digits shipped with the package.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { modelCardTemplate, modelCardTemplateText } from "../../src/cli/card-template.ts";
import { UsageError } from "../../src/cli/context.ts";
import { checkDigitsOptions, HELD_OUT_DIGITS, trainDigits } from "../../src/cli/train.ts";
import { DEMO_ARCHITECTURE } from "../../src/demo/registry-demo.ts";
import { decodeModel, encodeModel } from "../../src/ml/encoding.ts";
import { MNIST_FEATURES } from "../../src/ml/mnist.ts";
import { ModelCardError, parseModelCard } from "../../src/registry/model-card.ts";
import { assertOk, assertOneLineError, cliWith, parseJson } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-card-train-"));
const { cli } = cliWith({ dataDir: join(TMP, "data") });
after(() => rmSync(TMP, { recursive: true, force: true }));

const TINY = encodeModel({
  architecture: "logreg-2-2",
  tensors: [
    { name: "dense0.kernel", shape: [2, 2], values: [0.5, -0.5, 0.25, 1] },
    { name: "dense0.bias", shape: [2], values: [0, 0.1] },
  ],
});

describe("modelCardTemplate", () => {
  it("is a valid card as it is, every prose field a TODO", () => {
    const card = modelCardTemplate();
    assert.deepEqual(parseModelCard(card), card);
    assert.match(card.description, /^TODO: /);
    assert.match(card.dataProvenance[0]?.collection ?? "", /^TODO: /);
    assert.equal(card.licence, "LicenseRef-TODO");
  });

  it("takes what the author knows, and refuses a licence that is not SPDX", () => {
    const card = modelCardTemplate({ name: "my-model", architecture: "mlp-784-64-10", licence: "MIT" });
    assert.equal(card.name, "my-model");
    assert.equal(card.architecture, "mlp-784-64-10");
    assert.equal(card.licence, "MIT");
    assert.throws(() => modelCardTemplate({ licence: "not a licence" }), ModelCardError);
  });

  it("the file is indented JSON ending in a newline that parses back to the card", () => {
    const text = modelCardTemplateText({ name: "x" });
    assert.ok(text.endsWith("}\n"));
    assert.deepEqual(JSON.parse(text), modelCardTemplate({ name: "x" }));
  });
});

describe("ledgermind model card init", { concurrency: false }, () => {
  const card = join(TMP, "card.json");
  const weights = join(TMP, "tiny.lmq");

  it("writes a card that `model version --card` accepts as is", async () => {
    writeFileSync(weights, TINY);
    assertOk(await cli(["model", "card", "init", card, "--name", "tiny", "--weights", weights]));
    const written = JSON.parse(readFileSync(card, "utf8"));
    assert.equal(written.name, "tiny");
    assert.equal(written.architecture, "logreg-2-2");
    assertOk(await cli(["model", "register", "--name", "tiny"]));
    const v = parseJson<{ version: number }>(
      await cli(["--json", "model", "version", "1", "--weights", weights, "--card", card]),
    );
    assert.equal(v.version, 1);
  });

  it("refuses to overwrite a card (exit 1) unless --force; an empty --name is a usage error", async () => {
    writeFileSync(card, "my own card\n");
    const [refused, empty] = await Promise.all([
      cli(["model", "card", "init", card]),
      cli(["model", "card", "init", join(TMP, "other.json"), "--name", " "]),
    ]);
    assertOneLineError(refused, /card\.json already exists; pass --force to overwrite it/, 1);
    assert.equal(readFileSync(card, "utf8"), "my own card\n");
    assertOneLineError(empty, /--name must not be empty/, 2);
    assertOk(await cli(["model", "card", "init", card, "--force"]));
    parseModelCard(JSON.parse(readFileSync(card, "utf8")));
  });
});

describe("model train", () => {
  it("checkDigitsOptions: the training digits and the held-out ones never overlap", () => {
    checkDigitsOptions({ digits: 8000, skip: 1000 }, 10_000);
    assert.throws(
      () => checkDigitsOptions({ digits: 8000, skip: 1001 }, 10_000),
      (err: Error) => err instanceof UsageError && /exceeds the 9000 training digits/.test(err.message),
    );
  });

  it("trainDigits writes the demo's architecture, its data as bytes, a held-out accuracy", async () => {
    const first = await trainDigits({ digits: 300, skip: 0, epochs: 1, seed: 1 });
    assert.equal(decodeModel(first.weights).architecture, DEMO_ARCHITECTURE);
    assert.equal(first.data.length, 300 * (MNIST_FEATURES + 1));
    assert.ok(
      (first.metrics.accuracy ?? 0) > 0.3,
      `accuracy ${first.metrics.accuracy} on ${HELD_OUT_DIGITS}`,
    );
    const tuned = await trainDigits({ digits: 300, skip: 300, epochs: 1, seed: 1, from: first.weights });
    assert.notDeepEqual(tuned.weights, first.weights);
    await assert.rejects(
      trainDigits({ digits: 10, skip: 0, epochs: 1, seed: 1, from: TINY }),
      /--from holds a logreg-2-2 model; digits training fine-tunes mlp-784-64-10/,
    );
  });

  it("an unknown task, or --from with the yield task, is a one-line usage error", async () => {
    const out = join(TMP, "w.lmq");
    const [task, from] = await Promise.all([
      cli(["model", "train", "--task", "cats", "--out", out]),
      cli(["model", "train", "--task", "yield", "--from", out, "--out", out]),
    ]);
    assertOneLineError(task, /--task must be one of digits, yield, got "cats"/, 2);
    assertOneLineError(from, /--from fine-tunes digits only/, 2);
  });
});
