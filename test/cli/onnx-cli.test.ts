/**
 * `ledgermind model import --onnx` and `model export --onnx`: the scikit-learn fixture converts to
 * canonical weights that `model version` registers, export then import gives the same bytes back, and
 * what cannot be converted is one line and a non-zero exit.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import onnxProto from "onnx-proto";
import { decodeModel } from "../../src/ml/encoding.ts";
import { cidOf } from "../../src/storage/cid.ts";
import { assertOk, assertOneLineError, cliWith, parseJson } from "./cli-process.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-onnx-cli-"));
const { cli } = cliWith({ dataDir: join(TMP, "data") });
after(() => rmSync(TMP, { recursive: true, force: true }));

const FIXTURE = join(TMP, "sklearn-mlp.onnx");
copyFileSync(new URL("../ml/fixtures/sklearn-mlp.onnx", import.meta.url), FIXTURE);
const at = (name: string) => join(TMP, name);

describe("model import --onnx / model export --onnx", () => {
  it("imports the scikit-learn MLP, exports it, and imports the export to the same canonical bytes", async () => {
    const imported = parseJson<{
      architecture: string;
      scaleBits: number;
      parameters: number;
      weightsCid: string;
    }>(await cli(["--json", "model", "import", "--onnx", FIXTURE, "--out", at("mlp.lmq")]));
    assert.deepEqual(
      { architecture: imported.architecture, scaleBits: imported.scaleBits, parameters: imported.parameters },
      { architecture: "mlp-64-16-10", scaleBits: 16, parameters: 64 * 16 + 16 + 16 * 10 + 10 },
    );
    const weights = readFileSync(at("mlp.lmq"));
    assert.equal(cidOf(weights), imported.weightsCid);
    assert.equal(decodeModel(weights).architecture, "mlp-64-16-10");

    assert.match(
      assertOk(await cli(["model", "export", at("mlp.lmq"), "--onnx", at("mlp.onnx")])),
      /^wrote .*mlp\.onnx: mlp-64-16-10 as ONNX \(opset 13/,
    );
    const proto = onnxProto.onnx.ModelProto.decode(readFileSync(at("mlp.onnx")));
    assert.deepEqual(
      proto.graph?.node?.map((n) => n.opType),
      ["Gemm", "Relu", "Gemm", "Softmax"],
    );
    assertOk(await cli(["model", "import", "--onnx", at("mlp.onnx"), "--out", at("again.lmq")]));
    assert.deepEqual(readFileSync(at("again.lmq")), weights);
  });

  it("the imported weights register as a version", async () => {
    const { modelId } = parseJson<{ modelId: string }>(
      await cli(["--json", "model", "register", "--name", "sklearn digits"]),
    );
    const version = parseJson<{ version: number; weightsCid: string }>(
      await cli(["--json", "model", "version", modelId, "--weights", at("mlp.lmq")]),
    );
    assert.equal(version.version, 1);
    assert.equal(version.weightsCid, cidOf(readFileSync(at("mlp.lmq"))));
  });

  it("--scale-bits sets the weights' scale; out of range is a usage error", async () => {
    assertOk(await cli(["model", "import", "--onnx", FIXTURE, "--out", at("s24.lmq"), "--scale-bits", "24"]));
    assert.equal(decodeModel(readFileSync(at("s24.lmq"))).scaleBits, 24);
    assertOneLineError(
      await cli(["model", "import", "--onnx", FIXTURE, "--out", at("s40.lmq"), "--scale-bits", "40"]),
      /--scale-bits takes an integer from 0 to 31/,
      2,
    );
  });

  it("refuses to overwrite unasked, and files of the wrong kind, in one line", async () => {
    assertOneLineError(
      await cli(["model", "import", "--onnx", FIXTURE, "--out", at("mlp.lmq")]),
      /already exists; pass --force/,
      1,
    );
    assertOk(await cli(["model", "import", "--onnx", FIXTURE, "--out", at("mlp.lmq"), "--force"]));
    assertOneLineError(
      await cli(["model", "import", "--onnx", at("mlp.lmq"), "--out", at("x.lmq")]),
      /not an ONNX model/,
      1,
    );
    assertOneLineError(
      await cli(["model", "export", FIXTURE, "--onnx", at("x.onnx")]),
      /not a canonical model/,
      1,
    );
  });
});
