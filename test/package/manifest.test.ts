// The rules that make ledgermind usable as a package, on the repository's package.json and on the manifests
// and tarballs that issue 11 found broken. scripts/check-package.ts applies the same rules to the packed
// tarball and then uses it from an empty folder.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  type Manifest,
  manifestProblems,
  type PlatformFields,
  REQUIRED_FILES,
  tarballProblems,
} from "../../scripts/package-rules.ts";

const readJson = (path: string) => JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
const PKG = readJson("../../package.json") as Manifest & { devDependencies: Record<string, string> };
const installedPlatform = (dep: string) =>
  readJson(`../../node_modules/${dep}/package.json`) as PlatformFields;
const anyPlatform = (): PlatformFields => ({});

describe("the package manifest", () => {
  it("the repository's package.json breaks no rule", () => {
    assert.deepEqual(manifestProblems(PKG, installedPlatform), []);
  });

  it("exporting the TypeScript sources is refused (plain node: ERR_UNKNOWN_FILE_EXTENSION)", () => {
    const problems = manifestProblems({ ...PKG, exports: { ".": "./src/index.ts" } }, anyPlatform);
    assert.match(problems.join("\n"), /exports\["\."\] must map "types" and "default"/);
    const untyped = manifestProblems(
      { ...PKG, exports: { ".": { default: "./dist/index.js" } } },
      anyPlatform,
    );
    assert.match(untyped.join("\n"), /exports\["\."\]\.types must be a \.d\.ts under \.\/dist\//);
  });

  it("compiling at the user's install (prepare) is refused", () => {
    const scripts = { ...PKG.scripts, prepare: "tsx scripts/compile-contracts.ts" };
    assert.deepEqual(manifestProblems({ ...PKG, scripts }, anyPlatform), [
      "scripts.prepare runs at the user's install: tsx scripts/compile-contracts.ts",
    ]);
  });

  it("a platform's native package among the dependencies is refused (macOS and ARM could not install)", () => {
    const dependencies = { ...PKG.dependencies, "@nomicfoundation/edr-linux-x64-gnu": "0.22.0" };
    const problems = manifestProblems({ ...PKG, dependencies }, installedPlatform);
    assert.deepEqual(problems, [
      "@nomicfoundation/edr-linux-x64-gnu installs on linux x64 glibc only: make it an optionalDependency",
    ]);
  });

  it("a TypeScript loader among the dependencies is refused (the package runs with plain node)", () => {
    const dependencies = { ...PKG.dependencies, tsx: "4.23.15" };
    assert.deepEqual(manifestProblems({ ...PKG, dependencies }, anyPlatform), [
      "tsx is a runtime dependency: the compiled package must run with plain node",
    ]);
  });

  it("promises no Node that the embedded chain's EDR refuses (its native package is skipped there)", () => {
    const edr = readJson("../../node_modules/@nomicfoundation/edr/package.json") as Manifest;
    assert.ok(edr.engines?.node, "EDR declares the Node versions it runs on");
    const normalize = (range: string) => range.replace(/\s+/g, "");
    assert.equal(normalize(PKG.engines?.node ?? ""), normalize(edr.engines.node));
  });
});

describe("the tarball's files", () => {
  it("what the library, the CLI and the contracts need, and nothing else, passes", () => {
    assert.deepEqual(
      tarballProblems([...REQUIRED_FILES, "dist/chain/compile.js", "contracts/MindToken.sol"]),
      [],
    );
  });

  it("TypeScript sources or a missing build are named", () => {
    const files = [
      ...REQUIRED_FILES.filter((f) => f !== "dist/chain/generated/contracts.js"),
      "src/index.ts",
    ];
    assert.deepEqual(tarballProblems(files), [
      "dist/chain/generated/contracts.js is missing",
      "src/index.ts is shipped: only dist/ runs",
    ]);
    assert.deepEqual(tarballProblems([...REQUIRED_FILES, "lib/extra.ts"]), [
      "lib/extra.ts is TypeScript: plain node cannot load it",
    ]);
  });
});
