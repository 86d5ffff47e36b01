import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Address, bytesToHex, hexToBytes } from "viem";
import { type PqKeyPair, pqKeygen } from "./attestation.ts";

export class PqKeyError extends Error {
  override name = "PqKeyError";
}

/**
 * An attester's ML-DSA-65 key. The seed comes from LEDGERMIND_MLDSA_SEED (32-byte hex) or from
 * `<dataDir>/keys/<address>.mldsa` (created on first use, readable by its owner only), never from the repository.
 */
export function loadOrCreatePqKey(
  dataDir: string,
  address: Address,
  env: NodeJS.ProcessEnv = process.env,
): PqKeyPair {
  const fromEnv = env.LEDGERMIND_MLDSA_SEED;
  if (fromEnv) {
    if (!/^(0x)?[0-9a-fA-F]{64}$/.test(fromEnv))
      throw new PqKeyError("LEDGERMIND_MLDSA_SEED must be 32 bytes of hex");
    return pqKeygen(hexToBytes(fromEnv.startsWith("0x") ? (fromEnv as `0x${string}`) : `0x${fromEnv}`));
  }
  const dir = join(dataDir, "keys");
  const file = join(dir, `${address.toLowerCase()}.mldsa`);
  if (existsSync(file)) {
    const text = readFileSync(file, "utf8").trim();
    if (!/^0x[0-9a-f]{64}$/.test(text)) throw new PqKeyError(`${file} does not hold a 32-byte hex seed`);
    return pqKeygen(hexToBytes(text as `0x${string}`));
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const seed = randomBytes(32);
  writeFileSync(file, `${bytesToHex(seed)}\n`, { mode: 0o600 });
  return pqKeygen(seed);
}
