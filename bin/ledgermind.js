#!/usr/bin/env node
// The package ships the compiled CLI (dist/) and runs it with plain Node. A checkout of the repository
// also has src/ (never shipped): there the TypeScript runs through tsx, a devDependency, so that
// `npx ledgermind` never runs a dist/ older than the sources.
import { existsSync } from "node:fs";

const source = new URL("../src/cli/main.ts", import.meta.url);
if (!existsSync(source)) {
  await import("../dist/cli/main.js");
} else if (!existsSync(new URL("../src/chain/generated/contracts.ts", import.meta.url))) {
  // Nothing compiles at install any more (npm test, npm run demo and npm run build do).
  console.error("ledgermind: this checkout's contracts are not compiled: run `npm run compile` first");
  process.exitCode = 1;
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
}
