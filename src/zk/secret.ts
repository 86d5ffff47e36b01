/**
 * The file `zk build` leaves with the model's owner: the salt that opens the weights commitment recorded in
 * the registry. Whoever proves for the version (`zk prove`, `oracle serve --zk-secret`) needs it; whoever
 * holds it and the weights can tell the commitment's weights, so it stays with the weights.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Address, Hex } from "viem";
import type { PlanOptions } from "./circuit.ts";

export interface ZkSecret {
  modelId: string;
  version: number;
  /** Decimal field element. */
  salt: string;
  commitment: Hex;
  verifier: Address;
  /** The digest of the circuit the verifier checks. */
  circuit: string;
  /** The circuit's input bits and weights kind; absent in files of builds before constant weights (defaults). */
  plan?: Required<PlanOptions>;
  /** The CID of the proving key whose verifier is deployed, in the builder's blob store. */
  provingKey?: string;
}

/** The plan options a secret's circuit was built with (the defaults where the file predates them). */
export function planOptionsOf(secret: ZkSecret): PlanOptions {
  return secret.plan ?? {};
}

/** What an operator proves with, from a secret file: OperatorOptions' zk fields. */
export function operatorZkOptions(secret: ZkSecret): {
  zkSalt: bigint;
  zkPlan: PlanOptions;
  zkProvingKey?: string;
} {
  return {
    zkSalt: BigInt(secret.salt),
    zkPlan: planOptionsOf(secret),
    ...(secret.provingKey ? { zkProvingKey: secret.provingKey } : {}),
  };
}

export class ZkSecretError extends Error {
  override name = "ZkSecretError";
}

/** Where `zk build` keeps a version's secret by default. */
export function zkSecretPath(dataDir: string, modelId: bigint, version: number): string {
  return join(dataDir, "zk", `model-${modelId}-v${version}.json`);
}

/** Reads a secret file, refusing a missing file or one that is not a zk secret. */
export function readZkSecretFile(path: string): ZkSecret {
  if (!existsSync(path)) throw new ZkSecretError(`no zk secret at ${path}: run "ledgermind zk build" first`);
  let secret: ZkSecret;
  try {
    secret = JSON.parse(readFileSync(path, "utf8")) as ZkSecret;
  } catch {
    throw new ZkSecretError(`${path} is not a zk secret file (not JSON)`);
  }
  if (
    typeof secret !== "object" ||
    secret === null ||
    !/^\d+$/.test(String(secret.modelId)) ||
    !Number.isInteger(secret.version) ||
    !/^\d+$/.test(String(secret.salt))
  )
    throw new ZkSecretError(`${path} is not a zk secret file (no model, version or salt)`);
  if (
    secret.plan !== undefined &&
    (!Number.isInteger(secret.plan?.inputBits) || !["private", "constant"].includes(secret.plan?.weights))
  )
    throw new ZkSecretError(`${path} is not a zk secret file (its circuit plan is malformed)`);
  if (secret.provingKey !== undefined && typeof secret.provingKey !== "string")
    throw new ZkSecretError(`${path} is not a zk secret file (its proving key is not a CID)`);
  return secret;
}

/** Reads a version's secret, refusing a missing file or another version's. */
export function readZkSecret(path: string, modelId: bigint, version: number): ZkSecret {
  if (!existsSync(path))
    throw new ZkSecretError(
      `no zk secret for model ${modelId}@${version} at ${path}: run "ledgermind zk build" first`,
    );
  const secret = readZkSecretFile(path);
  if (secret.modelId !== String(modelId) || secret.version !== version)
    throw new ZkSecretError(`${path} is not the zk secret of model ${modelId}@${version}`);
  return secret;
}
