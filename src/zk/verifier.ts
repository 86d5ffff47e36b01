// The on-chain side of a circuit: snarkjs's Groth16 verifier (generated and compiled at run time, never
// committed), the Poseidon libraries (deployed once per chain) and the ZkInferenceVerifier wrapper.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { zKey } from "snarkjs";
import { type Abi, type Address, encodeFunctionData, type Hex, keccak256, toHex } from "viem";
import { CompilationError, SOLC_SETTINGS } from "../chain/compile.ts";
import type { LedgerChain } from "../chain/connect.ts";
import {
  PoseidonT3,
  PoseidonT4,
  PoseidonT5,
  PoseidonT6,
  ZkInferenceVerifier,
} from "../chain/generated/contracts.ts";
import { oncePerChain } from "../chain/once-per-chain.ts";
import { sendAndWait } from "../chain/tx.ts";
import type { SolidityProof } from "./groth16.ts";
import type { CircuitSetup } from "./setup.ts";

const require = createRequire(import.meta.url);

/** The Groth16 verifier of one circuit, compiled. */
export interface Groth16VerifierArtifact {
  abi: Abi;
  bytecode: Hex;
}

/** The Poseidon libraries the wrapper links, by fully qualified name (source path:library name). */
const POSEIDON_LIBRARIES = {
  "poseidon-solidity/PoseidonT3.sol:PoseidonT3": PoseidonT3,
  "poseidon-solidity/PoseidonT4.sol:PoseidonT4": PoseidonT4,
  "poseidon-solidity/PoseidonT5.sol:PoseidonT5": PoseidonT5,
  "poseidon-solidity/PoseidonT6.sol:PoseidonT6": PoseidonT6,
} as const;
export type PoseidonLibraries = Record<keyof typeof POSEIDON_LIBRARIES, Address>;

const VERIFIER_SOURCE = "Groth16Verifier.sol";

/** snarkjs's own Solidity template (its package exports only its entry point, so the path is derived). */
function groth16Template(): string {
  const snarkjsDir = dirname(fileURLToPath(import.meta.resolve("snarkjs")));
  return readFileSync(join(snarkjsDir, "templates", "verifier_groth16.sol.ejs"), "utf8");
}

/** The Solidity source of the circuit's Groth16 verifier (contract `Groth16Verifier`). */
export async function exportGroth16Verifier(setup: CircuitSetup): Promise<string> {
  return zKey.exportSolidityVerifier(setup.zkey, { groth16: groth16Template() });
}

/**
 * Compiles the circuit's Groth16 verifier with the project's solc and settings. The result is cached beside
 * the keys, named by the hash of source, compiler and settings (compiling takes seconds).
 */
export async function compileGroth16Verifier(setup: CircuitSetup): Promise<Groth16VerifierArtifact> {
  const source = await exportGroth16Verifier(setup);
  const solcVersion = (require("solc/package.json") as { version: string }).version;
  const key = createHash("sha256")
    .update(`solc ${solcVersion}\n${JSON.stringify(SOLC_SETTINGS)}\n${source}`)
    .digest("hex")
    .slice(0, 16);
  const cached = join(dirname(setup.zkey), `groth16_verifier.${key}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, "utf8")) as Groth16VerifierArtifact;
  const solc = require("solc") as { compile(input: string): string };
  const output = JSON.parse(
    solc.compile(
      JSON.stringify({
        language: "Solidity",
        sources: { [VERIFIER_SOURCE]: { content: source } },
        settings: SOLC_SETTINGS,
      }),
    ),
  ) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts?: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  if (errors.length > 0) throw new CompilationError(errors.map((e) => e.formattedMessage).join("\n"));
  const compiled = output.contracts?.[VERIFIER_SOURCE]?.Groth16Verifier;
  if (!compiled)
    throw new CompilationError("snarkjs's verifier template produced no Groth16Verifier contract");
  const artifact: Groth16VerifierArtifact = {
    abi: compiled.abi,
    bytecode: `0x${compiled.evm.bytecode.object}`,
  };
  writeFileSync(`${cached}.${process.pid}.tmp`, JSON.stringify(artifact));
  renameSync(`${cached}.${process.pid}.tmp`, cached);
  return artifact;
}

/** The calldata of a Groth16 verifier's `verifyProof` for a flattened proof and its public signals. */
export function groth16VerifyCalldata(abi: Abi, proof: SolidityProof, publicSignals: readonly bigint[]): Hex {
  const p = proof;
  return encodeFunctionData({
    abi,
    functionName: "verifyProof",
    args: [
      [p[0], p[1]],
      [
        [p[2], p[3]],
        [p[4], p[5]],
      ],
      [p[6], p[7]],
      publicSignals,
    ],
  });
}

async function deploy(
  chain: LedgerChain,
  abi: Abi,
  bytecode: Hex,
  args: readonly unknown[],
): Promise<Address> {
  const wallet = chain.wallet(0);
  const receipt = await sendAndWait(chain, () =>
    wallet.deployContract({ abi, bytecode, args } as Parameters<typeof wallet.deployContract>[0]),
  );
  if (!receipt.contractAddress) throw new Error("the deployment created no contract");
  return receipt.contractAddress;
}

/** Compiles and deploys the circuit's Groth16 verifier; returns its address. */
export async function deployGroth16Verifier(chain: LedgerChain, setup: CircuitSetup): Promise<Address> {
  const { abi, bytecode } = await compileGroth16Verifier(setup);
  return deploy(chain, abi, bytecode, []);
}

const poseidonOnce = oncePerChain<PoseidonLibraries>();

/** Where a chain's Poseidon library addresses are kept, beside its deployment manifest. */
export function poseidonLibrariesPath(chain: LedgerChain): string {
  return join(chain.dataDir, "deployments", `${chain.manifestKey}.poseidon.json`);
}

/** The recorded libraries, when every one still has code on the chain (a reset chain has none). */
async function recordedLibraries(chain: LedgerChain): Promise<PoseidonLibraries | undefined> {
  const file = poseidonLibrariesPath(chain);
  if (chain.manifestKey === "ephemeral" || !existsSync(file)) return undefined;
  const recorded = JSON.parse(readFileSync(file, "utf8")) as Partial<PoseidonLibraries>;
  for (const name of Object.keys(POSEIDON_LIBRARIES) as (keyof PoseidonLibraries)[]) {
    const address = recorded[name];
    const code = address ? await chain.publicClient.getCode({ address }) : undefined;
    if (!code || code === "0x") return undefined;
  }
  return recorded as PoseidonLibraries;
}

/**
 * The Poseidon libraries of this chain: deployed once, their addresses recorded beside the chain's
 * deployment manifest (kept in memory only for an ephemeral chain) and reused while their code is there.
 */
export function deployPoseidonLibraries(chain: LedgerChain): Promise<PoseidonLibraries> {
  return poseidonOnce(chain, "poseidon", async () => {
    const known = await recordedLibraries(chain);
    if (known) return known;
    const addresses = {} as PoseidonLibraries;
    for (const [name, artifact] of Object.entries(POSEIDON_LIBRARIES)) {
      addresses[name as keyof PoseidonLibraries] = await deploy(chain, artifact.abi, artifact.bytecode, []);
    }
    if (chain.manifestKey !== "ephemeral") {
      const file = poseidonLibrariesPath(chain);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, `${JSON.stringify(addresses, null, 2)}\n`);
      renameSync(`${file}.tmp`, file);
    }
    return addresses;
  });
}

/** solc's link placeholder for a library: `__$` + the first 34 hex digits of keccak256(name) + `$__`. */
export function linkPlaceholder(fullyQualifiedName: string): string {
  return `__$${keccak256(toHex(fullyQualifiedName)).slice(2, 36)}$__`;
}

/** Replaces each library's placeholder with its address; refuses bytecode left with a placeholder. */
export function linkBytecode(bytecode: string, libraries: Record<string, Address>): Hex {
  let linked = bytecode;
  for (const [name, address] of Object.entries(libraries)) {
    linked = linked.split(linkPlaceholder(name)).join(address.slice(2).toLowerCase());
  }
  if (linked.includes("__$"))
    throw new CompilationError("bytecode still has an unlinked library placeholder");
  return linked as Hex;
}

/**
 * Deploys a ZkInferenceVerifier over a circuit's Groth16 verifier for the circuit's input bits, linking
 * the Poseidon libraries (deployed first where `libraries` is not given).
 */
export async function deployInferenceVerifier(
  chain: LedgerChain,
  groth16Verifier: Address,
  inputBits: number,
  libraries?: PoseidonLibraries,
): Promise<Address> {
  const linkTo = libraries ?? (await deployPoseidonLibraries(chain));
  const bytecode = linkBytecode(ZkInferenceVerifier.bytecode, linkTo);
  return deploy(chain, ZkInferenceVerifier.abi as Abi, bytecode, [groth16Verifier, BigInt(inputBits)]);
}

/** The circuit's whole on-chain side: its Groth16 verifier and the wrapper over it. */
export async function deployCircuitVerifier(
  chain: LedgerChain,
  circuit: { setup: CircuitSetup; compiled: { plan: { inputBits: number } } },
): Promise<{ groth16: Address; verifier: Address }> {
  const groth16 = await deployGroth16Verifier(chain, circuit.setup);
  return {
    groth16,
    verifier: await deployInferenceVerifier(chain, groth16, circuit.compiled.plan.inputBits),
  };
}
