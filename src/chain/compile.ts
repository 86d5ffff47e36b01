import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve, sep } from "node:path";
import type { Abi, Hex } from "viem";

const require = createRequire(import.meta.url);

/** Compiler settings are part of the cache key: change them and every artifact is rebuilt. */
export const SOLC_SETTINGS = {
  evmVersion: "prague",
  optimizer: { enabled: true, runs: 200 },
  viaIR: false,
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
} as const;

export interface ContractArtifact {
  contractName: string;
  sourceName: string;
  abi: Abi;
  bytecode: Hex;
  deployedBytecode: Hex;
}

export interface CompileResult {
  /** Hash of the compiler version, settings and every source that went in (imports included). */
  sourceHash: string;
  artifacts: Record<string, ContractArtifact>;
  fromCache: boolean;
}

export class CompilationError extends Error {
  override name = "CompilationError";
}

interface SolcOutput {
  errors?: { severity: string; formattedMessage: string }[];
  contracts: Record<
    string,
    Record<string, { abi: Abi; evm: { bytecode: { object: string }; deployedBytecode: { object: string } } }>
  >;
}

export const PROJECT_ROOT = resolve(dirname(new URL(import.meta.url).pathname), "../..");
export const CONTRACTS_DIR = join(PROJECT_ROOT, "contracts");
const DEFAULT_CACHE_DIR = join(PROJECT_ROOT, "artifacts");

/**
 * Library sources, besides `contracts/`, whose artifacts are kept: libraries with public functions that
 * contracts link (deployed once per chain), such as the Poseidon hashes of ZkInferenceVerifier.
 */
const LINKED_LIBRARY_SOURCES = ["poseidon-solidity/"];

/**
 * The linked libraries are compiled apart, for gas over size: a Poseidon hash is thousands of field
 * operations on constants, and at 200 runs solc's constant optimizer loads each constant with CODECOPY
 * instead of PUSH32, which doubles the hash's gas (PoseidonT6: 191k gas per transaction, 93k here).
 */
export const LINKED_LIBRARY_SETTINGS = {
  ...SOLC_SETTINGS,
  optimizer: { enabled: true, runs: 1_000_000_000 },
} as const;

const isLinkedLibrary = (sourceName: string) => LINKED_LIBRARY_SOURCES.some((p) => sourceName.startsWith(p));

/**
 * Reads every `.sol` file under `contracts/` (subfolders too) and every file they import, transitively,
 * keyed by import path.
 */
export function collectSources(contractsDir = CONTRACTS_DIR): Record<string, string> {
  const sources: Record<string, string> = {};
  const pending = (readdirSync(contractsDir, { recursive: true }) as string[])
    .filter((f) => f.endsWith(".sol"))
    .map((f) => `contracts/${f.split(sep).join("/")}`)
    .sort();
  const importRe = /^\s*import\s+(?:[^"']*from\s+)?["']([^"']+)["']/gm;
  while (pending.length > 0) {
    const path = pending.shift() as string;
    if (path in sources) continue;
    const content = readSource(path, contractsDir);
    sources[path] = content;
    for (const match of content.matchAll(importRe)) {
      pending.push(resolveImport(path, match[1] as string));
    }
  }
  return sources;
}

function resolveImport(from: string, spec: string): string {
  if (!spec.startsWith(".")) return spec;
  const parts = from.split("/").slice(0, -1);
  for (const seg of spec.split("/")) {
    if (seg === "..") parts.pop();
    else if (seg !== ".") parts.push(seg);
  }
  return parts.join("/");
}

function readSource(path: string, contractsDir: string): string {
  if (path.startsWith("contracts/"))
    return readFileSync(join(contractsDir, path.slice("contracts/".length)), "utf8");
  // Library imports (OpenZeppelin) resolve from node_modules, as Node would resolve the package.
  const [scope, name, ...rest] = path.split("/");
  const pkg = path.startsWith("@") ? `${scope}/${name}` : (scope as string);
  const sub = path.startsWith("@") ? rest.join("/") : [name, ...rest].join("/");
  const pkgDir = dirname(require.resolve(`${pkg}/package.json`));
  return readFileSync(join(pkgDir, sub), "utf8");
}

function solcVersion(): string {
  return (require("solc/package.json") as { version: string }).version;
}

export function hashSources(sources: Record<string, string>): string {
  const h = createHash("sha256");
  h.update(
    `solc ${solcVersion()}\n${JSON.stringify(SOLC_SETTINGS)}\n${JSON.stringify(LINKED_LIBRARY_SETTINGS)}\n`,
  );
  for (const path of Object.keys(sources).sort()) h.update(`${path}\n${sources[path]}\n`);
  return h.digest("hex");
}

/**
 * Compiles every contract in `contracts/` with the solc npm package (no compiler download).
 * Artifacts are cached by the hash of all inputs, so an unchanged tree costs one hash.
 */
export function compileContracts(opts: { cacheDir?: string; contractsDir?: string } = {}): CompileResult {
  const cacheDir = opts.cacheDir ?? DEFAULT_CACHE_DIR;
  const sources = collectSources(opts.contractsDir);
  const sourceHash = hashSources(sources);
  const cacheFile = join(cacheDir, `${sourceHash}.json`);
  if (existsSync(cacheFile)) {
    const artifacts = JSON.parse(readFileSync(cacheFile, "utf8")) as Record<string, ContractArtifact>;
    return { sourceHash, artifacts, fromCache: true };
  }
  const output = solcCompile(sources, SOLC_SETTINGS);
  const librarySources = Object.fromEntries(
    Object.entries(sources).filter(([path]) => isLinkedLibrary(path)),
  );
  const libraries =
    Object.keys(librarySources).length > 0 ? solcCompile(librarySources, LINKED_LIBRARY_SETTINGS) : undefined;
  const artifacts: Record<string, ContractArtifact> = {};
  for (const [sourceName, compiled] of Object.entries(output.contracts)) {
    if (!sourceName.startsWith("contracts/") && !isLinkedLibrary(sourceName)) continue;
    const contracts = isLinkedLibrary(sourceName) ? (libraries?.contracts[sourceName] ?? compiled) : compiled;
    for (const [contractName, c] of Object.entries(contracts)) {
      artifacts[contractName] = {
        contractName,
        sourceName,
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      };
    }
  }
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(artifacts));
  renameSync(tmp, cacheFile);
  return { sourceHash, artifacts, fromCache: false };
}

function solcCompile(sources: Record<string, string>, settings: object): SolcOutput {
  const solc = require("solc") as { compile(input: string): string };
  const input = {
    language: "Solidity",
    sources: Object.fromEntries(Object.entries(sources).map(([k, content]) => [k, { content }])),
    settings,
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  if (errors.length > 0) throw new CompilationError(errors.map((e) => e.formattedMessage).join("\n"));
  return output;
}

/** Renders artifacts as a TypeScript module whose ABIs are `as const`, so viem infers every call's types. */
export function renderTypedArtifacts(result: CompileResult): string {
  const lines = [
    "// Generated by scripts/compile-contracts.ts from contracts/*.sol. Do not edit: run `npm run compile`.",
    `export const sourceHash = ${JSON.stringify(result.sourceHash)};`,
  ];
  for (const name of Object.keys(result.artifacts).sort()) {
    const a = result.artifacts[name] as ContractArtifact;
    if (a.bytecode === "0x") continue; // interfaces and abstract contracts cannot be deployed
    lines.push(
      `export const ${name} = { abi: ${JSON.stringify(a.abi)} as const, bytecode: ${JSON.stringify(a.bytecode)} as \`0x\${string}\` };`,
    );
  }
  return `${lines.join("\n")}\n`;
}
