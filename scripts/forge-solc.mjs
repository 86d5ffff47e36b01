#!/usr/bin/env node
// Stands in for the native solc binary that forge cannot download offline: answers `--version` the way
// the native binary does and compiles `--standard-json` (read from stdin) with the solc npm package.
// Forge passes every source's content in the JSON input, so no import callback is needed.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");
const args = process.argv.slice(2);

if (args.includes("--version")) {
  // solc-js reports e.g. "0.8.37+commit.f401782d.Emscripten.clang"; forge parses the native banner.
  const version = String(solc.version()).replace(/\.Emscripten\.clang$/, ".Linux.g++");
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${version}\n`);
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write(
    `forge-solc: only --version and --standard-json are supported (got ${args.join(" ")})\n`,
  );
  process.exit(2);
}
const input = readFileSync(0, "utf8");
process.stdout.write(solc.compile(input));
