#!/usr/bin/env node
// The package ships the compiled CLI (dist/) and runs it with plain Node. A checkout of the repository
// also has src/ (never shipped): there the TypeScript runs through tsx, a devDependency, so that
// `npx ledgermind` never runs a dist/ older than the sources.
import { existsSync } from "node:fs";

const source = new URL("../src/cli/main.ts", import.meta.url);
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
} else {
  await import("../dist/cli/main.js");
}
