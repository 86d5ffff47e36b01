// Groth16 setup (phase 2) of a compiled circuit, cached by the circuit's digest.
import {
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import { r1cs, zKey } from "snarkjs";
import { cidOf } from "../storage/cid.ts";
import { type ProgressLog, progressLogger } from "./progress.ts";
import { checkPtauFits, resolvePtau } from "./ptau.ts";

/** A compiled circuit (src/zk/compile.ts gives more): file paths, and the digest that names its keys. */
export interface CircuitFiles {
  r1cs: string;
  wasm: string;
  digest: string;
}

/** A circuit's proving key and verification key, as setupCircuit leaves them in the cache. */
export interface CircuitSetup {
  circuit: CircuitFiles;
  /** The proving key (snarkjs .zkey). */
  zkey: string;
  /** The verification key (snarkjs JSON). */
  verificationKey: Groth16VerificationKey;
  verificationKeyPath: string;
  constraints: number;
  /** True when the keys were already in the cache and nothing was computed. */
  fromCache: boolean;
}

/** snarkjs's verification key JSON: the fields Ledgermind reads; the rest passes through to snarkjs. */
export interface Groth16VerificationKey extends Record<string, unknown> {
  protocol: string;
  curve: string;
  nPublic: number;
}

export interface SetupOptions {
  /** The key cache: keys go to `<cacheDir>/<digest>/`. */
  cacheDir: string;
  /** The powers-of-tau file; default resolvePtau() ($LEDGERMIND_PTAU, else the development file). */
  ptau?: string;
  /** Progress lines of the slow steps (default: none). */
  log?: ProgressLog;
}

/**
 * Stated, not secret: snarkjs mixes 64 bytes of system randomness into every contribution's entropy, so
 * the phase-2 secret is fresh each setup and never derivable from this string.
 */
const PHASE2_ENTROPY = "ledgermind groth16 phase 2";

const ZKEY_FILE = "circuit.zkey";
const VK_FILE = "verification_key.json";
/** Which ptau file the keys were made from: keys are remade after a switch of file (say, to a ceremony's). */
const PTAU_FILE = "ptau.txt";

function ptauIdentity(ptau: string): string {
  return `${basename(ptau)} ${statSync(ptau).size}\n`;
}

function readIfExists(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, "utf8") : undefined;
}

/** The CID of the proving key cached for a circuit, if it has one with its verification key. */
export function cachedProvingKeyCid(circuit: CircuitFiles, cacheDir: string): string | undefined {
  const dir = join(cacheDir, circuit.digest);
  const zkeyPath = join(dir, ZKEY_FILE);
  return existsSync(zkeyPath) && existsSync(join(dir, VK_FILE)) ? cidOf(readFileSync(zkeyPath)) : undefined;
}

/** The verification key another process is writing beside the proving key it just placed (a few ms). */
async function theirVerificationKey(vkPath: string): Promise<Groth16VerificationKey> {
  for (let waited = 0; !existsSync(vkPath); waited += 50) {
    if (waited > 60_000) throw new Error(`${vkPath} did not appear beside its proving key`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return JSON.parse(readFileSync(vkPath, "utf8")) as Groth16VerificationKey;
}

/**
 * Installs a proving key made elsewhere (the model owner's, from `zk build`) as this circuit's keys in the
 * cache, with its verification key, replacing keys set up here: a prover must prove with the key whose
 * verifier is deployed, and a setup of its own would make another. The bytes are the caller's to check
 * (fetched by CID); a key of another circuit makes proofs that verifiers refuse, never a false proof.
 */
export async function installProvingKey(
  circuit: CircuitFiles,
  zkey: Uint8Array,
  opts: Pick<SetupOptions, "cacheDir" | "ptau">,
): Promise<void> {
  const dir = join(opts.cacheDir, circuit.digest);
  const zkeyPath = join(dir, ZKEY_FILE);
  mkdirSync(dir, { recursive: true });
  const staged = join(dir, `${ZKEY_FILE}.${process.pid}.installed`);
  writeFileSync(staged, zkey);
  try {
    const verificationKey = await zKey.exportVerificationKey(staged);
    rmSync(join(dir, VK_FILE), { force: true });
    renameSync(staged, zkeyPath);
    const ptau = resolvePtau(opts.ptau);
    // setupCircuit keeps keys marked as valid for the ptau file in use; these are, whatever made them.
    if (existsSync(ptau)) writeFileSync(join(dir, PTAU_FILE), ptauIdentity(ptau));
    writeFileSync(
      `${join(dir, VK_FILE)}.${process.pid}.tmp`,
      `${JSON.stringify(verificationKey, null, 2)}\n`,
    );
    renameSync(`${join(dir, VK_FILE)}.${process.pid}.tmp`, join(dir, VK_FILE));
  } finally {
    rmSync(staged, { force: true });
  }
}

/**
 * Groth16 setup: the circuit-specific key from the ptau file, one phase-2 contribution, and the
 * verification key. Keys already in `<cacheDir>/<digest>/` are reused when made from the same ptau file
 * (the verification key is written last, so its presence means the setup finished). Refuses a ptau file too small for the circuit
 * (PtauTooSmallError, naming the power needed).
 */
export async function setupCircuit(circuit: CircuitFiles, opts: SetupOptions): Promise<CircuitSetup> {
  const dir = join(opts.cacheDir, circuit.digest);
  const zkeyPath = join(dir, ZKEY_FILE);
  const vkPath = join(dir, VK_FILE);
  const info = await r1cs.info(circuit.r1cs);
  const constraints = info.nConstraints;
  const ptau = resolvePtau(opts.ptau);
  const ptauPath = join(dir, PTAU_FILE);
  const madeFromThisPtau = !existsSync(ptau) || readIfExists(ptauPath) === ptauIdentity(ptau);
  if (existsSync(zkeyPath) && existsSync(vkPath) && madeFromThisPtau) {
    const verificationKey = JSON.parse(readFileSync(vkPath, "utf8")) as Groth16VerificationKey;
    return {
      circuit,
      zkey: zkeyPath,
      verificationKey,
      verificationKeyPath: vkPath,
      constraints,
      fromCache: true,
    };
  }
  // Keys from another ptau file, or a proving key whose setup died before its verification key was written
  // (another process writes it milliseconds after the proving key): remade.
  if (existsSync(zkeyPath) && (!madeFromThisPtau || !existsSync(vkPath))) {
    rmSync(vkPath, { force: true });
    rmSync(zkeyPath, { force: true });
  }
  checkPtauFits(ptau, constraints, info.nPubInputs + info.nOutputs);
  const log = opts.log ?? (() => {});
  const logger = progressLogger(log);
  mkdirSync(dir, { recursive: true });
  // Unique names, so that two processes setting up the same circuit do not write into each other's files.
  const initial = join(dir, `initial.${process.pid}.zkey`);
  const contributed = join(dir, `${ZKEY_FILE}.${process.pid}.tmp`);
  try {
    log(`setup: Groth16 key for ${constraints} constraints (${circuit.digest})`);
    await zKey.newZKey(circuit.r1cs, ptau, initial, logger);
    log("setup: phase-2 contribution");
    await zKey.contribute(initial, contributed, "ledgermind", PHASE2_ENTROPY, logger);
    let verificationKey = (await zKey.exportVerificationKey(contributed, logger)) as Groth16VerificationKey;
    try {
      // Create-if-absent: when two processes set up the same circuit, the first to finish wins and the
      // other adopts its keys, so that no process proves with one key and verifies with the other's.
      linkSync(contributed, zkeyPath);
      writeFileSync(ptauPath, ptauIdentity(ptau));
      writeFileSync(`${vkPath}.${process.pid}.tmp`, `${JSON.stringify(verificationKey, null, 2)}\n`);
      renameSync(`${vkPath}.${process.pid}.tmp`, vkPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      verificationKey = await theirVerificationKey(vkPath);
    }
    log("setup: done");
    return {
      circuit,
      zkey: zkeyPath,
      verificationKey,
      verificationKeyPath: vkPath,
      constraints,
      fromCache: false,
    };
  } finally {
    rmSync(initial, { force: true });
    rmSync(contributed, { force: true });
  }
}
