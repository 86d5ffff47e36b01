import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Address, parseEther } from "viem";
import type { LedgerChain } from "./connect.ts";
import {
  DataMarket,
  InferenceOracle,
  LearningTasks,
  MindToken,
  ModelRegistry,
  NodeDirectory,
  sourceHash,
} from "./generated/contracts.ts";
import { sendAndWait } from "./tx.ts";

export const CONTRACT_NAMES = [
  "MindToken",
  "ModelRegistry",
  "InferenceOracle",
  "DataMarket",
  "LearningTasks",
  "NodeDirectory",
] as const;
export type ContractName = (typeof CONTRACT_NAMES)[number];

export interface Manifest {
  format: "ledgermind.deployment/1";
  chainId: number;
  sourceHash: string;
  deployedAt: string;
  deployer: Address;
  contracts: Record<ContractName, { address: Address; block: string }>;
}

export class NotDeployedError extends Error {
  override name = "NotDeployedError";
  constructor(chainId: number, detail: string) {
    super(
      `no Ledgermind deployment on chain ${chainId} (${detail}): run \`ledgermind deploy\` with the same --rpc`,
    );
  }
}

/** The whole supply of MIND, minted to the deployer, who funds participants from it. */
export const TOKEN_SUPPLY = parseEther("1000000000");

/**
 * The oracle's parameters. Windows are in blocks: on a development chain, where blocks come only with
 * transactions, operators mine empty blocks to move time on (see src/oracle/operator.ts).
 */
export const ORACLE_PARAMS = {
  minStake: parseEther("100"),
  commitWindow: 4,
  revealWindow: 4,
  minResponses: 2,
  /** 0.05 in the oracle's fixed point (1_000_000 = 1.0). */
  tolerance: 50_000n,
  slashBps: 1_000,
  callbackGasLimit: 300_000,
  maxOperators: 32,
} as const;

/** The data market's parameters: its fee in basis points of every sale (1%), paid to the deployer. */
export const MARKET_PARAMS = { feeBps: 100 } as const;

/** Where a chain's deployment manifest is kept: the data folder's deployments/, by chain. */
export function manifestPath(chain: LedgerChain): string {
  return join(chain.dataDir, "deployments", `${chain.manifestKey}.json`);
}

const ephemeralManifests = new WeakMap<LedgerChain, Manifest>();

/** Deploys every contract and writes the manifest for this chain. */
export async function deployAll(chain: LedgerChain): Promise<Manifest> {
  const wallet = chain.wallet(0);
  const deployer = wallet.account.address;
  const deployed = {} as Manifest["contracts"];
  const artifacts = { MindToken, ModelRegistry, InferenceOracle, LearningTasks, NodeDirectory, DataMarket };
  // Each constructor may name the contracts deployed before it.
  const constructorArgs = (name: ContractName): readonly unknown[] => {
    switch (name) {
      case "MindToken":
        return [deployer, TOKEN_SUPPLY];
      case "ModelRegistry":
        return [];
      case "InferenceOracle":
        return [deployed.MindToken.address, deployed.ModelRegistry.address, ORACLE_PARAMS];
      case "LearningTasks":
        return [deployed.MindToken.address, deployed.ModelRegistry.address, deployed.DataMarket.address];
      case "NodeDirectory":
        return [];
      case "DataMarket":
        return [deployed.MindToken.address, deployer, MARKET_PARAMS.feeBps];
    }
  };
  for (const name of CONTRACT_NAMES) {
    const { abi, bytecode } = artifacts[name];
    const receipt = await sendAndWait(chain, () =>
      wallet.deployContract({ abi, bytecode, args: constructorArgs(name) } as Parameters<
        typeof wallet.deployContract
      >[0]),
    );
    if (!receipt.contractAddress) throw new Error(`deploying ${name} created no contract`);
    deployed[name] = { address: receipt.contractAddress, block: receipt.blockNumber.toString() };
  }
  const manifest: Manifest = {
    format: "ledgermind.deployment/1",
    chainId: chain.chainId,
    sourceHash,
    deployedAt: new Date().toISOString(),
    deployer,
    contracts: deployed,
  };
  if (chain.manifestKey === "ephemeral") {
    ephemeralManifests.set(chain, manifest);
  } else {
    const file = manifestPath(chain);
    mkdirSync(join(chain.dataDir, "deployments"), { recursive: true });
    writeFileSync(`${file}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(`${file}.tmp`, file);
  }
  return manifest;
}

/** Reads this chain's manifest and checks that its contracts are really there. */
export async function readManifest(chain: LedgerChain): Promise<Manifest | undefined> {
  let manifest = ephemeralManifests.get(chain);
  if (!manifest) {
    const file = manifestPath(chain);
    if (!existsSync(file)) return undefined;
    manifest = JSON.parse(readFileSync(file, "utf8")) as Manifest;
  }
  if (manifest.chainId !== chain.chainId) {
    throw new NotDeployedError(chain.chainId, `the manifest names chain ${manifest.chainId}`);
  }
  for (const name of CONTRACT_NAMES) {
    const entry = manifest.contracts[name];
    if (!entry) throw new NotDeployedError(chain.chainId, `the manifest lacks ${name}`);
    const code = await chain.publicClient.getCode({ address: entry.address });
    if (!code || code === "0x")
      throw new NotDeployedError(chain.chainId, `no code at ${name}'s ${entry.address}`);
  }
  return manifest;
}

/**
 * The manifest every command reads. The embedded chain is Ledgermind's own, so it is deployed on first use;
 * an RPC chain must be deployed to explicitly.
 */
export async function requireDeployment(chain: LedgerChain): Promise<Manifest> {
  const manifest = await readManifest(chain);
  if (manifest) return manifest;
  if (chain.kind === "embedded") return deployAll(chain);
  throw new NotDeployedError(chain.chainId, "no manifest");
}
