/**
 * Making a registered version provable (`ledgermind zk build`, the insurance demo): its circuit compiled and
 * set up, its verifier deployed, its weights committed under a salt, and verifier and commitment recorded in
 * the registry. The salt reaches the disk before the commitment reaches the chain: without it, no proof.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { getAddress } from "viem";
import type { LedgerChain } from "../chain/connect.ts";
import { decodeModel } from "../ml/encoding.ts";
import { openOracle } from "../oracle/client.ts";
import { loadVersionWeights } from "../oracle/operator.ts";
import { getZkVerifier, openRegistry, setZkVerifier } from "../registry/client.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { writeFileDurably } from "../storage/durable-file.ts";
import type { PlanOptions } from "./circuit.ts";
import { fieldToBytes32, randomSalt, weightsCommitment } from "./commitment.ts";
import { releaseCurve } from "./groth16.ts";
import { prepareModelCircuit } from "./inference-proof.ts";
import { readZkSecret, type ZkSecret } from "./secret.ts";
import { deployCircuitVerifier } from "./verifier.ts";

export interface ZkBuildOptions {
  modelId: bigint;
  version: number;
  /** Where the salt is kept (0600); a salt already there, left by a build that stopped, is reused. */
  secretPath: string;
  /** The owner's account, which records the verifier. */
  account?: number;
  /** A powers-of-tau file other than the development one. */
  ptau?: string;
  /** The circuit's input bits and weights kind (default: 40 bits, private weights). */
  plan?: PlanOptions;
  /** Where compiled circuits and keys are cached (default: `defaultZkCacheDir()`). */
  cacheDir?: string;
  log?: (line: string) => void;
}

export interface ZkBuild {
  secret: ZkSecret;
  /** The circuit's architecture (`mlp-4-3-1-sigmoid`) and size. */
  architecture: string;
  constraints: number;
  gasUsed: bigint;
}

/** The version already has its verifier: it is recorded once. */
export class ZkAlreadyBuiltError extends Error {
  override name = "ZkAlreadyBuiltError";
}

/**
 * Builds version `modelId@version` for proofs, from its LMQ1 weights in `store` (checked against the
 * registry). Refuses a version that already has a verifier (it is set once).
 */
export async function buildZkVersion(
  chain: LedgerChain,
  store: BlobStore,
  o: ZkBuildOptions,
): Promise<ZkBuild> {
  const { modelId, version, secretPath } = o;
  const kept = existsSync(secretPath) ? readZkSecret(secretPath, modelId, version) : undefined;
  const reg = await openRegistry(chain);
  const existing = await getZkVerifier(reg, { modelId, version });
  if (existing)
    throw new ZkAlreadyBuiltError(
      `model ${modelId}@${version} already has the zk verifier ${existing.verifier}${kept ? ` (its salt is in ${secretPath})` : ""}`,
    );
  const oracle = await openOracle(chain);
  const { weights } = await loadVersionWeights(chain, oracle, store, modelId, version);
  const model = decodeModel(weights);
  const salt = kept ? BigInt(kept.salt) : randomSalt();
  try {
    const circuit = await prepareModelCircuit(model, {
      salt,
      ...(o.plan === undefined ? {} : { plan: o.plan }),
      ...(o.ptau === undefined ? {} : { ptau: o.ptau }),
      ...(o.cacheDir === undefined ? {} : { cacheDir: o.cacheDir }),
      ...(o.log ? { log: o.log } : {}),
    });
    o.log?.("deploying the verifier");
    const verifier = getAddress((await deployCircuitVerifier(chain, circuit)).verifier);
    const { inputBits, weights: kind } = circuit.compiled.plan;
    // Published, so that an operator on another machine proves with this key, not one of its own.
    const provingKey = await store.put(readFileSync(circuit.setup.zkey));
    const secret: ZkSecret = {
      modelId: String(modelId),
      version,
      salt: salt.toString(),
      commitment: fieldToBytes32(weightsCommitment(model, salt)),
      verifier,
      circuit: circuit.compiled.digest,
      plan: { inputBits, weights: kind },
      provingKey,
    };
    mkdirSync(dirname(secretPath), { recursive: true });
    writeFileDurably(secretPath, `${JSON.stringify(secret, null, 2)}\n`);
    chmodSync(secretPath, 0o600);
    const { gasUsed } = await setZkVerifier(
      reg,
      { modelId, version, verifier, commitment: secret.commitment },
      o.account,
    );
    return {
      secret,
      architecture: circuit.compiled.plan.architecture,
      constraints: circuit.compiled.constraints,
      gasUsed,
    };
  } finally {
    await releaseCurve();
  }
}
