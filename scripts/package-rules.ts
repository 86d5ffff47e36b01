/**
 * What makes ledgermind usable as an npm package, as pure checks over its manifest and its tarball's file
 * list: scripts/check-package.ts applies them to the packed tarball, test/package/manifest.test.ts to the
 * repository's package.json. Each returns one line per problem; none is a pass.
 */

export interface Manifest {
  name?: string;
  version?: string;
  engines?: { node?: string };
  bin?: string | Record<string, string>;
  exports?: unknown;
  files?: string[];
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** The part of a dependency's own package.json that says it installs on some platforms only. */
export interface PlatformFields {
  os?: string[];
  cpu?: string[];
  libc?: string[];
}

/** Lifecycle scripts that npm runs in the user's folder when it installs the package (prepare: from git). */
const INSTALL_SCRIPTS = ["preinstall", "install", "postinstall", "prepare"];

/** Packages that only load TypeScript: a user's plain `node` must never need them. */
const TYPESCRIPT_LOADERS = ["tsx", "ts-node", "typescript"];

/** The files a user's install must find: the library with its types, the CLI, the compiled contracts. */
export const REQUIRED_FILES = [
  "package.json",
  "bin/ledgermind.js",
  "dist/index.js",
  "dist/index.d.ts",
  "dist/cli/main.js",
  "dist/chain/generated/contracts.js",
  "dist/chain/generated/contracts.d.ts",
  "circuits/dense.circom",
  "circuits/ptau/ledgermind-dev-15.ptau",
];

/**
 * Problems with the manifest as shipped. `platformOf(name)` gives a runtime dependency's platform fields
 * (from its installed package.json).
 */
export function manifestProblems(pkg: Manifest, platformOf: (dep: string) => PlatformFields): string[] {
  const problems: string[] = [];
  const root = (pkg.exports as Record<string, unknown> | undefined)?.["."];
  if (typeof root !== "object" || root === null) {
    problems.push(`exports["."] must map "types" and "default", got ${JSON.stringify(root)}`);
  } else {
    const { types, default: main } = root as Record<string, unknown>;
    if (typeof types !== "string" || !/^\.\/dist\/.*\.d\.ts$/.test(types))
      problems.push(`exports["."].types must be a .d.ts under ./dist/, got ${JSON.stringify(types)}`);
    if (typeof main !== "string" || !/^\.\/dist\/.*\.js$/.test(main))
      problems.push(`exports["."].default must be JavaScript under ./dist/, got ${JSON.stringify(main)}`);
  }
  const bins = typeof pkg.bin === "string" ? { [pkg.name ?? ""]: pkg.bin } : (pkg.bin ?? {});
  for (const [name, file] of Object.entries(bins)) {
    if (!file.endsWith(".js")) problems.push(`bin ${name} must be a JavaScript file, got ${file}`);
  }
  if (!pkg.files?.some((f) => f.replace(/^\.\//, "").startsWith("dist"))) {
    problems.push(`files must list dist/, got ${JSON.stringify(pkg.files)}`);
  }
  for (const script of INSTALL_SCRIPTS) {
    if (pkg.scripts?.[script])
      problems.push(`scripts.${script} runs at the user's install: ${pkg.scripts[script]}`);
  }
  for (const dep of Object.keys(pkg.dependencies ?? {})) {
    if (TYPESCRIPT_LOADERS.includes(dep)) {
      problems.push(`${dep} is a runtime dependency: the compiled package must run with plain node`);
    }
    const { os, cpu, libc } = platformOf(dep);
    if (os || cpu || libc) {
      const only = [os, cpu, libc].filter(Boolean).join(" ");
      problems.push(`${dep} installs on ${only} only: make it an optionalDependency`);
    }
  }
  if (!pkg.engines?.node) problems.push("engines.node is missing");
  return problems;
}

/** Problems with the tarball's file list (paths relative to the package root, as `npm pack --json` lists them). */
export function tarballProblems(files: string[]): string[] {
  const problems = REQUIRED_FILES.filter((f) => !files.includes(f)).map((f) => `${f} is missing`);
  for (const file of files) {
    if (/^(src|test|bench|scripts)\//.test(file)) problems.push(`${file} is shipped: only dist/ runs`);
    else if (/\.(c|m)?ts$/.test(file) && !/\.d\.(c|m)?ts$/.test(file))
      problems.push(`${file} is TypeScript: plain node cannot load it`);
  }
  return problems;
}
