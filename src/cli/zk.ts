/**
 * `ledgermind zk`: zero-knowledge proofs of inference for registered models (src/zk).
 *   build   compile the version's circuit, set up its keys, deploy its verifier, commit to the weights
 *           under a fresh salt and record verifier and commitment in the registry (src/zk/build.ts)
 *   prove   prove the version's answer on an input, for a prover's address
 *   verify  check a proof file against the verifier and commitment the registry records
 */
import type { Command } from "commander";
import { type Address, getAddress, type Hex } from "viem";
import { ZkInferenceVerifier } from "../chain/generated/contracts.ts";
import { decodeModel } from "../ml/encoding.ts";
import { formatFixed, openOracle } from "../oracle/client.ts";
import { loadVersionWeights } from "../oracle/operator.ts";
import { getZkVerifier, openRegistry } from "../registry/client.ts";
import { writeFileDurably } from "../storage/durable-file.ts";
import { buildZkVersion, ZkAlreadyBuiltError, type ZkBuild } from "../zk/build.ts";
import type { CircuitWeights } from "../zk/circuit.ts";
import { fieldToBytes32, MAX_INPUT_BITS } from "../zk/commitment.ts";
import { releaseCurve } from "../zk/groth16.ts";
import { prepareModelCircuit, proveInference } from "../zk/inference-proof.ts";
import { planOptionsOf, readZkSecret, zkSecretPath } from "../zk/secret.ts";
import {
  blobStore,
  emit,
  type GlobalOptions,
  globalOptions,
  parseAccount,
  parseAddress,
  parseModelRef,
  parsePositiveInt,
  UsageError,
  withChain,
} from "./context.ts";
import { readJsonFile } from "./files.ts";
import { parseInput } from "./oracle.ts";

/** A proof as `zk prove` writes it and `zk verify` reads it. */
interface ProofFile {
  modelId: string;
  version: number;
  input: string[];
  answer: string;
  prover: Address;
  commitment: Hex;
  statement: string;
  proof: string[];
}

function secretPath(opts: GlobalOptions, modelId: bigint, version: number, explicit?: string): string {
  return explicit ?? zkSecretPath(opts.dataDir, modelId, version);
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

export function registerZkCommands(program: Command): void {
  const zk = program
    .command("zk")
    .description("zero-knowledge proofs that a registered model produced an output");

  zk.command("build")
    .description(
      "compile a version's circuit, set up its keys, deploy its verifier and record it with a weights commitment",
    )
    .requiredOption("--model <ID@VERSION>", "the model version (LMQ1 weights in the blob store)")
    .option("--secret <FILE>", "where to keep the salt (default: <data-dir>/zk/model-<id>-v<version>.json)")
    .option("--ptau <FILE>", "powers-of-tau file (default: $LEDGERMIND_PTAU, else the development file)")
    .option("--account <INDEX>", "which configured account signs (the model's owner)")
    .option(
      "--weights <KIND>",
      "private: weights hidden behind the commitment, one circuit per architecture; constant: weights baked into a circuit of this version, about 24 times fewer constraints for an MNIST MLP (the weights are public by CID anyway)",
      "private",
    )
    .option(
      "--input-bits <N>",
      "inputs are proven in [-2^N, 2^N) in fixed point 1e6 (20 covers [-1.04, 1.04])",
      "40",
    )
    .action(
      async (
        o: {
          model: string;
          secret?: string;
          ptau?: string;
          account?: string;
          weights: string;
          inputBits: string;
        },
        cmd: Command,
      ) => {
        const opts = globalOptions(cmd);
        const { modelId, version } = parseModelRef(o.model);
        const account = parseAccount(o.account);
        if (o.weights !== "private" && o.weights !== "constant")
          throw new UsageError(`--weights must be private or constant, got ${o.weights}`);
        const plan = {
          weights: o.weights as CircuitWeights,
          inputBits: parsePositiveInt(o.inputBits, "--input-bits", MAX_INPUT_BITS),
        };
        const path = secretPath(opts, modelId, version, o.secret);
        await withChain(opts, async (chain) => {
          let built: ZkBuild;
          try {
            built = await buildZkVersion(chain, blobStore(opts), {
              modelId,
              version,
              secretPath: path,
              account,
              plan,
              ...(o.ptau === undefined ? {} : { ptau: o.ptau }),
              log: progress,
            });
          } catch (error) {
            if (error instanceof ZkAlreadyBuiltError) throw new UsageError(error.message);
            throw error;
          }
          const { secret, architecture, constraints, gasUsed } = built;
          const kind = secret.plan?.weights ?? "private";
          emit(opts, { ...secret, salt: undefined, secret: path, constraints, gasUsed }, () => [
            `model ${modelId}@${version}: circuit ${architecture} with ${kind} weights (${constraints} constraints), verifier ${secret.verifier}`,
            `weights commitment ${secret.commitment}; the salt is in ${path} (${kind === "private" ? "keep it: it hides the weights" : "keep it: proofs rebuild the circuit from it"})`,
          ]);
        });
      },
    );

  zk.command("prove")
    .description("prove the version's answer on an input, for a prover's address")
    .requiredOption("--model <ID@VERSION>", "the model version (built with zk build)")
    .requiredOption("--input <VALUES>", "comma-separated real numbers (fixed point 1e6)")
    .option("--prover <ADDRESS>", "who may submit the proof (default: the --account's address)")
    .option("--account <INDEX>", "the configured account whose address proves (default: 0)")
    .option("--secret <FILE>", "the salt file of zk build")
    .option("--out <FILE>", "write the proof here (default: print it)")
    .action(
      async (
        o: { model: string; input: string; prover?: string; account?: string; secret?: string; out?: string },
        cmd: Command,
      ) => {
        const opts = globalOptions(cmd);
        const { modelId, version } = parseModelRef(o.model);
        const input = parseInput(o.input);
        const secret = readZkSecret(secretPath(opts, modelId, version, o.secret), modelId, version);
        await withChain(
          opts,
          async (chain) => {
            const prover = o.prover
              ? parseAddress(o.prover, "--prover")
              : chain.wallet(parseAccount(o.account)).account.address;
            const reg = await openRegistry(chain);
            const recorded = await getZkVerifier(reg, { modelId, version });
            if (!recorded || recorded.commitment !== secret.commitment)
              throw new UsageError(
                `the registry records ${recorded ? `the commitment ${recorded.commitment}` : "no zk verifier"} for model ${modelId}@${version}, not the secret's ${secret.commitment}`,
              );
            const { weights } = await loadVersionWeights(
              chain,
              await openOracle(chain),
              blobStore(opts),
              modelId,
              version,
            );
            const model = decodeModel(weights);
            try {
              const circuit = await prepareModelCircuit(model, {
                log: progress,
                salt: BigInt(secret.salt),
                plan: planOptionsOf(secret),
                ...(secret.provingKey
                  ? { provingKey: { cid: secret.provingKey, store: blobStore(opts) } }
                  : {}),
              });
              const started = performance.now();
              const made = await proveInference(circuit, {
                model,
                salt: BigInt(secret.salt),
                input,
                prover,
              });
              const seconds = (performance.now() - started) / 1000;
              const file: ProofFile = {
                modelId: String(modelId),
                version,
                input: input.map(String),
                answer: made.answer.toString(),
                prover,
                commitment: fieldToBytes32(made.commitment),
                statement: made.statement.toString(),
                proof: made.proof.map(String),
              };
              if (o.out) writeFileDurably(o.out, `${JSON.stringify(file, null, 2)}\n`);
              if (o.out || !opts.json)
                emit(opts, { ...file, seconds }, () => [
                  `model ${modelId}@${version} answers ${formatFixed(made.answer)} (fixed point ${made.answer}) for ${prover}: proven in ${seconds.toFixed(2)} s${o.out ? `, written to ${o.out}` : ""}`,
                  ...(o.out ? [] : [JSON.stringify(file)]),
                ]);
              else emit(opts, file, () => []);
            } finally {
              await releaseCurve();
            }
          },
          { readOnly: true },
        );
      },
    );

  zk.command("verify")
    .description("check a proof file on-chain, against the verifier and commitment the registry records")
    .requiredOption("--proof <FILE>", "a proof written by zk prove")
    .action(async (o: { proof: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const file = (await readJsonFile(o.proof)) as ProofFile;
      if (!Array.isArray(file.proof) || file.proof.length !== 8 || !Array.isArray(file.input))
        throw new UsageError(`${o.proof} is not a proof file of zk prove`);
      const modelId = BigInt(file.modelId);
      await withChain(
        opts,
        async (chain) => {
          const reg = await openRegistry(chain);
          const recorded = await getZkVerifier(reg, { modelId, version: file.version });
          if (!recorded) throw new UsageError(`model ${modelId}@${file.version} has no zk verifier`);
          const valid = await chain.publicClient.readContract({
            address: recorded.verifier,
            abi: ZkInferenceVerifier.abi,
            functionName: "verifyInference",
            args: [
              recorded.commitment,
              file.input.map(BigInt),
              BigInt(file.answer),
              getAddress(file.prover),
              file.proof.map(BigInt) as unknown as readonly [
                bigint,
                bigint,
                bigint,
                bigint,
                bigint,
                bigint,
                bigint,
                bigint,
              ],
            ],
          });
          const stale = recorded.commitment !== file.commitment;
          emit(opts, { valid, stale, verifier: recorded.verifier, commitment: recorded.commitment }, () => [
            valid
              ? `valid: model ${modelId}@${file.version} answers ${formatFixed(BigInt(file.answer))} on this input (prover ${file.prover})`
              : `invalid: the verifier ${recorded.verifier} refuses this proof${stale ? ` (it was made for the commitment ${file.commitment}, the registry records ${recorded.commitment})` : ""}`,
          ]);
          if (!valid) process.exitCode = 1;
        },
        { readOnly: true },
      );
    });
}
