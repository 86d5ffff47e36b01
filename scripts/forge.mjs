#!/usr/bin/env node
// Runs Foundry's forge from the platform package (@foundry-rs/forge-<os>-<arch>) with the arguments given:
// the package's own launcher exits 0 even when tests fail, so CI must call the binary itself.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const ARCH = { x64: "amd64", arm64: "arm64" };

/** The absolute path of the forge binary for this machine. */
export function forgeBinary() {
  const arch = ARCH[process.arch];
  if (!arch) throw new Error(`forge: no binary for ${process.platform}-${process.arch}`);
  const pkg = `@foundry-rs/forge-${process.platform}-${arch}`;
  return join(dirname(require.resolve(`${pkg}/package.json`)), "bin", "forge");
}

/** Runs forge with `args`, inheriting stdio; returns its exit status (1 when it could not start). */
export function runForge(args, env = process.env) {
  const result = spawnSync(forgeBinary(), args, { stdio: "inherit", env });
  if (result.error) {
    console.error(`forge: ${result.error.message}`);
    return 1;
  }
  return result.status ?? 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exit(runForge(process.argv.slice(2)));
}
