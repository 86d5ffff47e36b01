// The powers-of-tau file (phase 1 of the Groth16 setup): which one is used, and whether it is big enough.
import { closeSync, openSync, readSync } from "node:fs";
import { join, resolve } from "node:path";
import { PROJECT_ROOT } from "../chain/compile.ts";

/** The committed development file (toxic waste known from DEV_PTAU_ENTROPY: development only). */
export const DEV_PTAU_PATH = "circuits/ptau/ledgermind-dev-15.ptau";
export const DEV_PTAU_POWER = 15;
/** Stated on purpose: anyone can recompute this file's secret, which is why it is for development only. */
export const DEV_PTAU_ENTROPY = "ledgermind development powers of tau: NOT SECRET, do not use in production";
/** Points Ledgermind at another ptau file, e.g. a public ceremony's powersOfTau28_hez_final_NN.ptau. */
export const PTAU_ENV = "LEDGERMIND_PTAU";

export class PtauError extends Error {
  override name = "PtauError";
}

/** The circuit needs more powers of tau than the file holds. */
export class PtauTooSmallError extends PtauError {
  override name = "PtauTooSmallError";
  constructor(
    readonly ptauPath: string,
    readonly ptauPower: number,
    readonly neededPower: number,
    readonly constraints: number,
  ) {
    super(
      `the powers-of-tau file ${ptauPath} has power ${ptauPower}, but a circuit of ${constraints} constraints ` +
        `needs power ${neededPower}: use a file of power ${neededPower} or more (e.g. a public ceremony's ` +
        `powersOfTau28_hez_final_${String(neededPower).padStart(2, "0")}.ptau) through ${PTAU_ENV} or --ptau`,
    );
  }
}

/** The ptau file to use: an explicit path, else $LEDGERMIND_PTAU, else the development file. */
export function resolvePtau(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = explicit ?? env[PTAU_ENV];
  // A path the user gives is theirs, relative to where they run; the development file ships with the package.
  return chosen === undefined ? join(PROJECT_ROOT, DEV_PTAU_PATH) : resolve(chosen);
}

/**
 * The power Groth16 needs for a circuit: snarkjs's evaluation domain holds the constraints plus one
 * constraint per public input and the constant (nPubInputs + nOutputs + 1), rounded up to a power of two.
 */
export function requiredPower(constraints: number, publicSignals: number): number {
  const domain = constraints + publicSignals + 1;
  return Math.max(1, Math.ceil(Math.log2(domain)));
}

/**
 * Reads the power from a ptau file's header (section 1: n8 u32, q, power u32, ceremonyPower u32) without
 * loading the file, which is tens of megabytes.
 */
export function readPtauPower(path: string): number {
  const fd = (() => {
    try {
      return openSync(path, "r");
    } catch {
      throw new PtauError(`cannot read the powers-of-tau file ${path} (set ${PTAU_ENV} or pass --ptau)`);
    }
  })();
  try {
    const head = Buffer.alloc(12 + 4 + 8 + 4);
    readSync(fd, head, 0, head.length, 0);
    if (head.toString("latin1", 0, 4) !== "ptau") throw new PtauError(`${path} is not a powers-of-tau file`);
    // magic(4) version(4) nSections(4), then section type(4) size(8), then n8(4) q(n8) power(4)
    const n8 = head.readUInt32LE(24);
    const powerAt = Buffer.alloc(4);
    readSync(fd, powerAt, 0, 4, 28 + n8);
    return powerAt.readUInt32LE(0);
  } finally {
    closeSync(fd);
  }
}

/** Refuses (PtauTooSmallError) a ptau file too small for a circuit; returns the file's power. */
export function checkPtauFits(path: string, constraints: number, publicSignals: number): number {
  const power = readPtauPower(path);
  const needed = requiredPower(constraints, publicSignals);
  if (power < needed) throw new PtauTooSmallError(path, power, needed, constraints);
  return power;
}
