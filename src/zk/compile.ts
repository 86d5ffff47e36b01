/**
 * Compiles a dense model's circuit with circom's WebAssembly build (the circom2 npm package: nothing is
 * downloaded), into `cacheDir/<digest>/`. The digest covers the generated source, the template library
 * and the compiler, so a cached circuit is reused exactly when it is the same circuit.
 */
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { PROJECT_ROOT } from "../chain/compile.ts";
import {
  type CircuitConstants,
  circuitDigest,
  type DenseCircuitPlan,
  denseCircuitSource,
  type PlanOptions,
  planDenseCircuit,
} from "./circuit.ts";

export const CIRCUITS_DIR = join(PROJECT_ROOT, "circuits");

/** Where compiled circuits and their keys are cached: $LEDGERMIND_ZK_CACHE, else ~/.cache/ledgermind/zk. */
export function defaultZkCacheDir(): string {
  return process.env.LEDGERMIND_ZK_CACHE ?? join(homedir(), ".cache", "ledgermind", "zk");
}
const require = createRequire(import.meta.url);
/** --O2 substitutes linear constraints away (Poseidon's mixing layers are linear): several times fewer. */
const CIRCOM_FLAGS = ["--r1cs", "--wasm", "--O2"];

export class ZkCompileError extends Error {
  override name = "ZkCompileError";
}

/** A compiled main circuit in the cache. */
export interface CompiledFiles {
  /** Names the circuit and its keys (hex sha256). */
  digest: string;
  dir: string;
  r1cs: string;
  wasm: string;
  /** Constraints in the R1CS (what proving time and the powers-of-tau size depend on). */
  constraints: number;
  fromCache: boolean;
}

export interface CompiledCircuit extends CompiledFiles {
  plan: DenseCircuitPlan;
}

function packageVersion(name: string): string {
  const pkg = JSON.parse(readFileSync(require.resolve(`${name}/package.json`), "utf8")) as {
    version: string;
  };
  return `${name}@${pkg.version}`;
}

/** The number of constraints in an .r1cs file, from its header section. */
export function r1csConstraints(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (new TextDecoder().decode(bytes.subarray(0, 4)) !== "r1cs")
    throw new ZkCompileError("not an .r1cs file");
  const sections = view.getUint32(8, true);
  let at = 12;
  for (let i = 0; i < sections; i++) {
    const type = view.getUint32(at, true);
    const size = Number(view.getBigUint64(at + 4, true));
    at += 12;
    if (type === 1) {
      const fieldSize = view.getUint32(at, true);
      // field size, prime, wires, public outputs, public inputs, private inputs, labels (u64), constraints
      return view.getUint32(at + 4 + fieldSize + 16 + 8, true);
    }
    at += size;
  }
  throw new ZkCompileError(".r1cs file without a header section");
}

/**
 * circom's WebAssembly build sees files through WASI preopens. Its own CLI preopens the working directory's
 * parents by relative path, which fails from another directory and through a symlinked node_modules; so a
 * child process (the compiler holds its thread for the whole compile) runs it with the root preopened and
 * absolute paths.
 */
const CIRCOM_RUNNER = `
const [circomIndex, wasmPath, ...args] = process.argv.slice(1);
const fs = require("fs");
const { CircomRunner, bindings } = require(circomIndex);
const runner = new CircomRunner({
  args,
  env: {},
  preopens: { "/": "/" },
  bindings: { ...bindings, fs, exit: (code) => process.exit(code), kill: (s) => process.kill(process.pid, s) },
});
runner.execute(fs.readFileSync(wasmPath)).then(() => process.exit(0), (e) => { console.error(String(e)); process.exit(1); });
`;

/** Runs circom (circom2's WebAssembly build) on `args`; paths in them must be absolute. */
export function runCircom(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["-e", CIRCOM_RUNNER, require.resolve("circom2"), require.resolve("circom2/circom.wasm"), ...args],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else
        reject(
          new ZkCompileError(
            `circom failed (exit ${code}): ${output.trim().split("\n").slice(-6).join(" | ")}`,
          ),
        );
    });
  });
}

/**
 * Generates and compiles the circuit of `architecture` at `scaleBits`, or reuses the cached one; a
 * constant-weights plan (`plan.weights`) needs the version's `constants`.
 */
export async function compileDenseCircuit(
  architecture: string,
  scaleBits: number,
  options: {
    cacheDir: string;
    log?: (line: string) => void;
    plan?: PlanOptions;
    constants?: CircuitConstants;
  },
): Promise<CompiledCircuit> {
  const plan = planDenseCircuit(architecture, scaleBits, options.plan);
  const files = await compileCircuitSource(denseCircuitSource(plan, options.constants), {
    cacheDir: options.cacheDir,
    ...(options.log
      ? {
          log: () =>
            options.log?.(
              `compiling the ${architecture} circuit, ${plan.weights} weights (circom, WebAssembly)`,
            ),
        }
      : {}),
  });
  return { ...files, plan };
}

/**
 * Compiles a main circom source that includes circuits/dense.circom (the only library file its digest
 * covers), or reuses the cached compile of the same source, library and compiler.
 */
export async function compileCircuitSource(
  source: string,
  options: { cacheDir: string; log?: () => void },
): Promise<CompiledFiles> {
  const library = readFileSync(join(CIRCUITS_DIR, "dense.circom"), "utf8");
  const digest = circuitDigest(
    source,
    library,
    `${packageVersion("circom2")} ${packageVersion("circomlib")} ${CIRCOM_FLAGS.join(" ")}`,
  );
  const dir = join(resolve(options.cacheDir), digest);
  const r1cs = join(dir, "main.r1cs");
  const wasm = join(dir, "main_js", "main.wasm");
  const fromCache = existsSync(r1cs) && existsSync(wasm);
  if (!fromCache) {
    options.log?.();
    const work = `${dir}.tmp-${process.pid}`;
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    try {
      writeFileSync(join(work, "main.circom"), source);
      const nodeModules = dirname(dirname(realpathSync(require.resolve("circomlib/package.json"))));
      await runCircom([
        join(work, "main.circom"),
        ...CIRCOM_FLAGS,
        "-o",
        work,
        "-l",
        CIRCUITS_DIR,
        "-l",
        nodeModules,
      ]);
      try {
        renameSync(work, dir);
      } catch (err) {
        // Another process compiled the same circuit meanwhile: same digest, same files.
        if (!existsSync(r1cs)) throw err;
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const constraints = r1csConstraints(readFileSync(r1cs));
  return { digest, dir, r1cs, wasm, constraints, fromCache };
}
