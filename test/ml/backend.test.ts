import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { currentBackend, initBackend } from "../../src/ml/backend.ts";

describe("initBackend", () => {
  it("starts wasm by default from node_modules, once", async () => {
    assert.equal(currentBackend(), undefined);
    const [a, b] = await Promise.all([initBackend(), initBackend()]);
    assert.equal(a, "wasm");
    assert.equal(b, "wasm");
    assert.equal(await initBackend("wasm"), "wasm");
    assert.equal(tf.getBackend(), "wasm");
    assert.equal(currentBackend(), "wasm");
    const s = tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0]);
    assert.equal(s, 6);
  });

  it("switches to cpu when asked, and back", async () => {
    assert.equal(await initBackend("cpu"), "cpu");
    assert.equal(tf.getBackend(), "cpu");
    assert.equal(await initBackend(), "cpu");
    const s = tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0]);
    assert.equal(s, 6);
    assert.equal(await initBackend("wasm"), "wasm");
  });

  it("falls back to cpu with a one-line warning when wasm cannot load", () => {
    const backendUrl = new URL("../../src/ml/backend.ts", import.meta.url).href;
    const code = `const { initBackend } = await import(${JSON.stringify(backendUrl)}); console.log(await initBackend());`;
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      env: { ...process.env, LEDGERMIND_WASM_DIR: "/nonexistent-wasm-dir" },
      encoding: "utf8",
    });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout.trim(), "cpu");
    const lines = child.stderr.trim().split("\n");
    assert.equal(lines.length, 1, child.stderr);
    assert.match(
      lines[0] as string,
      /^ledgermind: tfjs wasm backend unavailable \(.*nonexistent-wasm-dir.*\); using cpu$/,
    );
  });
});
