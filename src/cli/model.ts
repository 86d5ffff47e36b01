import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { basename, relative, resolve, sep } from "node:path";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";

import type { Hex } from "viem";
import { parse as parseYaml } from "yaml";
import { decodeModel, encodeCanonical, MAX_SCALE_BITS } from "../ml/encoding.ts";

import { VERDICTS, type VerdictName } from "../registry/attestation.ts";
import {
  addVersion,
  attest,
  CANONICAL_FORMAT,
  deprecateVersion,
  getLineage,
  getModel,
  getVersion,
  openRegistry,
  registerModel,
  type VersionRecord,
} from "../registry/client.ts";
import { describeModel, type ModelInfo, readFileInfo } from "../registry/formats.ts";
import {
  DEFAULT_SIGNATURE_FILE,
  decodeManifest,
  differenceLine,
  diffManifests,
  encodeManifest,
  type HashOptions,
  hashFile,
  hashModel,
  listModelFiles,
  type ModelManifest,
  manifestDigest,
} from "../registry/manifest.ts";
import { encodeModelCard, ModelCardError, parseModelCard } from "../registry/model-card.ts";
import { SigningKeyError, signManifest, verifyBundle } from "../registry/model-signing.ts";
import { loadOrCreatePqKey } from "../registry/pq-keystore.ts";
import { verifyVersion } from "../registry/verify.ts";
import { cidFromDigest, cidOf, digestFromCid } from "../storage/cid.ts";
import { type ModelCardTemplateOptions, modelCardTemplateText } from "./card-template.ts";
import {
  blobStore,
  collect,
  emit,
  type GlobalOptions,
  globalOptions,
  parseAccount,
  parseInteger,
  parseModelId,
  parseModelRef,
  parseName,
  parseVersion,
  UsageError,
  withChain,
} from "./context.ts";
import { readInputFile, readJsonFile } from "./files.ts";

/** A verification that found a mismatch: its problems are printed, then the process exits 1. */
export class VerificationFailedError extends Error {
  override name = "VerificationFailedError";
}

function parseMetric(text: string, previous: Record<string, number> = {}): Record<string, number> {
  const m = text.match(/^([^=]+)=(.+)$/);
  const value = m ? Number(m[2]) : Number.NaN;
  if (!m || !Number.isFinite(value)) throw new UsageError(`--metric takes NAME=NUMBER, got "${text}"`);
  return { ...previous, [m[1] as string]: value };
}

/** A dataset reference is a CID, or a file that is stored first so that its CID can be referenced. */
async function datasetCid(opts: GlobalOptions, ref: string): Promise<string> {
  if (existsSync(ref)) return blobStore(opts).put(await readInputFile(ref));
  digestFromCid(ref);
  return ref;
}

export function versionLines(r: VersionRecord): string[] {
  const metrics = Object.entries(r.metrics)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
  return [
    `model ${r.modelId} version ${r.version}${r.deprecated ? ` (DEPRECATED: ${r.deprecationReason ?? ""})` : ""}`,
    `  weights      ${r.weightsCid} (${r.format})`,
    `  parent       ${r.parent ? `${r.parent.modelId}@${r.parent.version}` : "none"}`,
    `  datasets     ${r.datasets.length ? r.datasets.join(", ") : "none"}`,
    `  metrics      ${metrics || "none"}`,
    `  licence      ${r.licence || "none"}`,
    `  model card   ${r.modelCardCid ?? "none"}`,
    `  training run ${r.trainingRunCid ?? "none"}`,
    `  published    ${new Date(r.createdAt * 1000).toISOString()} by ${r.publisher}`,
    `  attestations ${r.attestationCount}`,
    ...(r.zk ? [`  zk verifier  ${r.zk.verifier} (weights commitment ${r.zk.commitment})`] : []),
  ];
}

/** A file a command would overwrite: it refuses, unless told --force. Exit 1. */
export class FileExistsError extends Error {
  override name = "FileExistsError";
  constructor(path: string) {
    super(`${path} already exists; pass --force to overwrite it`);
  }
}

/** A file the user named that cannot be written (a missing folder, no permission). Exit 1. */
export class OutputFileError extends Error {
  override name = "OutputFileError";
}

/** Writes a file the user named; overwrites it only when `overwrite` says so. */
async function writeOutputFile(path: string, data: string | Uint8Array, overwrite: boolean): Promise<void> {
  try {
    await writeFile(path, data, { flag: overwrite ? "w" : "wx" });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new FileExistsError(path);
    throw new OutputFileError(`cannot write ${path}: ${code ?? (err as Error).message}`, { cause: err });
  }
}

/** Folders this large get a progress bar while they hash (on a terminal only). */
const PROGRESS_BAR_BYTES = 256 * 1024 * 1024;

/** Hashes a model folder (or file) into its manifest, with a progress bar on stderr for big ones. */
async function hashWithProgress(path: string, opts: HashOptions): Promise<ModelManifest> {
  if (!existsSync(path)) throw new UsageError(`no such file or folder: ${path}`);
  if (!process.stderr.isTTY) return hashModel(path, opts);
  let bar: SingleBar | undefined;
  let done = 0;
  try {
    return await hashModel(path, {
      ...opts,
      onProgress: (n, total) => {
        if (!bar && total >= PROGRESS_BAR_BYTES) {
          bar = new SingleBar({
            format: "hashing [{bar}] {percentage}% {value}/{total} MB",
            stream: process.stderr,
          });
          bar.start(Math.round(total / 2 ** 20), 0);
        }
        done += n;
        bar?.update(Math.round(done / 2 ** 20));
      },
    });
  } finally {
    bar?.stop();
  }
}

/** The paths inside `root` a manifest leaves out: the default signature file and any bundle named. */
function signatureIgnores(root: string, bundle?: string): string[] {
  const ignores = [DEFAULT_SIGNATURE_FILE];
  if (bundle) {
    const rel = relative(resolve(root), resolve(bundle));
    if (!rel.startsWith("..") && rel !== "") ignores.push(rel.split(sep).join("/"));
  }
  return ignores;
}

/** True when PATH is one file in Ledgermind's canonical encoding: it is stored and served as bytes. */
async function isCanonicalFile(path: string): Promise<boolean> {
  return statSync(path).isFile() && (await readFileInfo(path)).format === CANONICAL_FORMAT;
}

async function readKey(path: string, kind: "private" | "public"): Promise<KeyObject> {
  const pem = await readInputFile(path);
  try {
    return kind === "private" ? createPrivateKey(Buffer.from(pem)) : createPublicKey(Buffer.from(pem));
  } catch {
    throw new SigningKeyError(
      `${path} is not a PEM ${kind} key (make one: openssl ecparam -name prime256v1 -genkey -noout -out key.pem)`,
    );
  }
}

/** Reads a Hugging Face README's YAML front matter, when the model has one. */
async function readmeFrontMatter(root: string): Promise<Record<string, unknown>> {
  const path = resolve(root, "README.md");
  if (!statSync(root).isDirectory() || !existsSync(path)) return {};
  const m = (await readFile(path, "utf8")).match(/^---\r?\n([\s\S]*?)\r?\n---/);
  if (!m) return {};
  try {
    const doc = parseYaml(m[1] as string);
    return doc && typeof doc === "object" ? (doc as Record<string, unknown>) : {};
  } catch {
    throw new UsageError(`${path}: its YAML front matter does not parse`);
  }
}

function infoHyperparameters(info: ModelInfo): Record<string, string | number> {
  const out: Record<string, string | number> = { format: info.format };
  if (info.parameterCount !== undefined) out.parameterCount = info.parameterCount;
  if (info.dtypes?.length) out.dtypes = info.dtypes.join(",");
  if (info.quantization) out.quantization = info.quantization;
  if (info.contextLength !== undefined) out.contextLength = info.contextLength;
  return out;
}

interface TrainFlags {
  out: string;
  task: string;
  from?: string;
  digits: string;
  skip: string;
  epochs?: string;
  seed?: string;
  dataOut?: string;
}

/** What a model's files and README say for its card; LMQ1 weights name their architecture themselves. */
async function cardPrefill(path: string): Promise<ModelCardTemplateOptions> {
  if (!existsSync(path)) throw new UsageError(`no such file or folder: ${path}`);
  if (await isCanonicalFile(path))
    return { architecture: decodeModel(await readInputFile(path)).architecture };
  const files = await listModelFiles(path, { ignore: [DEFAULT_SIGNATURE_FILE], allowSymlinks: true });
  const info = await describeModel(
    path,
    files.map((f) => f.path),
  );
  const front = await readmeFrontMatter(path);
  const list = (v: unknown) => (Array.isArray(v) ? v : typeof v === "string" ? [v] : []).map(String);
  return {
    name: typeof front.model_name === "string" ? front.model_name : basename(resolve(path)),
    architecture: info.architecture,
    licence: typeof front.license === "string" ? front.license : undefined,
    datasets: list(front.datasets),
    hyperparameters: infoHyperparameters(info),
  };
}

function registerCardCommands(model: Command): void {
  const card = model.command("card").description("model cards: EU AI Act Annex IV technical documentation");
  card
    .command("init")
    .argument("[FILE]", "where to write the card", "model-card.json")
    .description(
      "write a model card template (every Annex IV field, TODOs to replace) that `model version --card` accepts as is",
    )
    .option("--name <NAME>", "the model's name")
    .option(
      "--weights <PATH>",
      "pre-fill from the model: an LMQ1 file, or any model file or folder (safetensors, GGUF, ONNX, a Hugging Face README's front matter)",
    )
    .option("--licence <SPDX>", "the model's licence, an SPDX id (default: LicenseRef-TODO)")
    .option("--force", "overwrite the file if it exists")
    .action(
      async (
        file: string,
        o: { name?: string; weights?: string; licence?: string; force?: boolean },
        cmd: Command,
      ) => {
        const opts = globalOptions(cmd);
        if (o.name !== undefined && !/\S/.test(o.name)) throw new UsageError("--name must not be empty");
        const prefill = o.weights ? await cardPrefill(o.weights) : {};
        let text: string;
        try {
          text = modelCardTemplateText({
            ...prefill,
            name: o.name ?? prefill.name,
            licence: o.licence ?? prefill.licence,
          });
        } catch (err) {
          // Only the options can make the template invalid: a usage error.
          if (err instanceof ModelCardError) throw new UsageError(err.message);
          throw err;
        }
        await writeOutputFile(file, text, o.force ?? false);
        emit(opts, { file }, () => [
          `wrote ${file}: a valid Annex IV model card; replace each TODO before publishing a version with it`,
        ]);
      },
    );
}

function registerTrainCommand(model: Command): void {
  model
    .command("train")
    .description(
      "train weights to register: the demo's digit classifier on the MNIST digits shipped with the package, or the crop-insurance yield-risk model",
    )
    .requiredOption("--out <FILE>", "where to write the weights (LMQ1)")
    .option(
      "--task <TASK>",
      "digits (mlp-784-64-10, 10 classes) or yield (mlp-4-16-1-sigmoid, 4 inputs)",
      "digits",
    )
    .option("--from <FILE>", "digits: fine-tune these weights instead of starting afresh")
    .option("--digits <N>", "digits: how many training digits", "2000")
    .option("--skip <N>", "digits: training digits to pass over first (a fine-tune on unseen digits)", "0")
    .option("--epochs <N>", "passes over the training data (default: 2 for digits, 30 for yield)")
    .option(
      "--seed <N>",
      "seeds the initial weights and the shuffling (default: 1 for digits, the demo's for yield)",
    )
    .option("--data-out <FILE>", "also write the training data, to cite with `model version --dataset`")
    .action(async (o: TrainFlags, cmd: Command) => {
      const opts = globalOptions(cmd);
      const { TRAIN_TASKS, trainDigits, trainYield, trainedLine } = await import("./train.ts");
      if (!(TRAIN_TASKS as readonly string[]).includes(o.task))
        throw new UsageError(`--task must be one of ${TRAIN_TASKS.join(", ")}, got "${o.task}"`);
      if (o.task !== "digits" && o.from !== undefined) throw new UsageError("--from fine-tunes digits only");
      const epochs = o.epochs === undefined ? undefined : parseInteger(o.epochs, "--epochs", 1, 1000);
      const seed = o.seed === undefined ? undefined : parseInteger(o.seed, "--seed", 0);
      const trained =
        o.task === "digits"
          ? await trainDigits({
              digits: parseInteger(o.digits, "--digits", 1),
              skip: parseInteger(o.skip, "--skip", 0),
              epochs: epochs ?? 2,
              seed: seed ?? 1,
              from: o.from === undefined ? undefined : await readInputFile(o.from),
            })
          : await trainYield({ epochs, seed });
      // Training output is rewritten like a compiler's: the run that made it can make it again.
      await writeOutputFile(o.out, trained.weights, true);
      if (o.dataOut) await writeOutputFile(o.dataOut, trained.data, true);
      const { weights: _, data: __, ...summary } = trained;
      emit(opts, { out: o.out, dataOut: o.dataOut, weightsCid: cidOf(trained.weights), ...summary }, () => [
        trainedLine(trained, o.out),
        ...(o.dataOut ? [`wrote ${o.dataOut}: its ${trained.trainSize} training samples`] : []),
      ]);
    });
}

/**
 * ONNX in and out (src/ml/onnx.ts): `import` converts to the canonical encoding, which is what
 * `model version --weights` registers and the oracle serves; `export` gives any ONNX runtime the model.
 */
function registerOnnxCommands(model: Command): void {
  model
    .command("import")
    .description(
      "convert an ONNX model (Gemm or MatMul+Add, Relu, Softmax or Sigmoid) to the canonical encoding (LMQ1), to register with `model version`",
    )
    .requiredOption("--onnx <FILE>", "the ONNX model")
    .requiredOption("--out <FILE>", "where to write the weights (LMQ1)")
    .option("--scale-bits <N>", "fixed-point scale of the weights: int / 2^N (default: 16)")
    .option("--force", "overwrite the output file if it exists")
    .action(async (o: { onnx: string; out: string; scaleBits?: string; force?: boolean }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const scaleBits =
        o.scaleBits === undefined ? undefined : parseInteger(o.scaleBits, "--scale-bits", 0, MAX_SCALE_BITS);
      const { importOnnx } = await import("../ml/onnx.ts");
      const canonical = importOnnx(await readInputFile(o.onnx), { scaleBits });
      const weights = encodeCanonical(canonical);
      await writeOutputFile(o.out, weights, o.force ?? false);
      const parameters = canonical.tensors.reduce((n, t) => n + t.ints.length, 0);
      emit(
        opts,
        {
          out: o.out,
          architecture: canonical.architecture,
          scaleBits: canonical.scaleBits,
          parameters,
          weightsCid: cidOf(weights),
        },
        () => [
          `wrote ${o.out}: ${canonical.architecture}, ${parameters} parameters at 2^-${canonical.scaleBits} (${cidOf(weights)})`,
        ],
      );
    });

  model
    .command("export <FILE>")
    .description("convert canonical weights (LMQ1) to ONNX, for any ONNX runtime")
    .requiredOption("--onnx <FILE>", "where to write the ONNX model")
    .option("--force", "overwrite the output file if it exists")
    .action(async (file: string, o: { onnx: string; force?: boolean }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const canonical = decodeModel(await readInputFile(file));
      const { exportOnnx, ONNX_INPUT, ONNX_OPSET, ONNX_OUTPUT } = await import("../ml/onnx.ts");
      const bytes = exportOnnx(canonical);
      await writeOutputFile(o.onnx, bytes, o.force ?? false);
      emit(
        opts,
        {
          out: o.onnx,
          architecture: canonical.architecture,
          opset: ONNX_OPSET,
          input: ONNX_INPUT,
          output: ONNX_OUTPUT,
          bytes: bytes.length,
        },
        () => [
          `wrote ${o.onnx}: ${canonical.architecture} as ONNX (opset ${ONNX_OPSET}, input "${ONNX_INPUT}", output "${ONNX_OUTPUT}"), ${bytes.length} bytes`,
        ],
      );
    });
}

/**
 * Stores what a version records: an LMQ1 file as its bytes (the oracle serves them by CID); any other
 * file or folder as its manifest, whose digest is what the chain records, so `verify` can name files.
 */
async function storeWeights(
  store: ReturnType<typeof blobStore>,
  path: string,
  format: string | undefined,
  allowSymlinks = false,
): Promise<{ weightsCid: string; format: string }> {
  if (!existsSync(path)) throw new UsageError(`no such file or folder: ${path}`);
  if (format === CANONICAL_FORMAT || (format === undefined && (await isCanonicalFile(path)))) {
    const weights = await readInputFile(path);
    decodeModel(weights);
    return { weightsCid: await store.put(weights), format: CANONICAL_FORMAT };
  }
  const manifest = await hashWithProgress(path, { ignore: signatureIgnores(path), allowSymlinks });
  const detected =
    format ??
    (
      await describeModel(
        path,
        manifest.entries.map((e) => e.path),
      )
    ).format;
  return { weightsCid: await store.put(encodeManifest(manifest)), format: detected };
}

interface VerifyFlags {
  model?: string;
  version?: string;
  cid?: string;
  bundle?: string;
  key?: string;
  allowSymlinks?: boolean;
}

/** One line per file that differs from the registered manifest, when this node stores that manifest. */
async function registeredDiff(
  opts: GlobalOptions,
  record: VersionRecord,
  local: ModelManifest,
): Promise<string[]> {
  const store = blobStore(opts);
  if (!(await store.has(record.weightsCid)))
    return [
      `the registered manifest ${record.weightsCid} is not stored here: cannot name the files that differ`,
    ];
  let registered: ModelManifest;
  try {
    registered = decodeManifest(await store.get(record.weightsCid));
  } catch {
    return [
      `model ${record.modelId} version ${record.version} records one file (${record.weightsCid}), not a folder`,
    ];
  }
  return diffManifests(registered.entries, local.entries).map(differenceLine);
}

export function registerModelCommands(program: Command): void {
  const model = program.command("model").description("the on-chain model registry");
  registerTrainCommand(model);
  registerCardCommands(model);
  registerOnnxCommands(model);

  model
    .command("register")
    .description("register a new model (an ERC-721 token owned by the account)")
    .requiredOption("--name <NAME>", "the model's name")
    .option("--account <INDEX>", "which configured account signs")
    .action(async (o: { name: string; account?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      parseName(o.name, "--name");
      await withChain(opts, async (chain) => {
        const reg = await openRegistry(chain);
        const { modelId, gasUsed } = await registerModel(reg, o.name, parseAccount(o.account));
        emit(opts, { modelId, name: o.name, gasUsed }, () => [`registered model ${modelId} "${o.name}"`]);
      });
    });

  model
    .command("version <MODEL>")
    .description("append a version: stores the weights by CID and records their digest on-chain")
    .requiredOption(
      "--weights <PATH>",
      "the weights: an LMQ1 file (stored as is), or any model file or folder (recorded as the manifest of its files)",
    )
    .option("--format <TAG>", "format tag (up to 8 bytes; default: read from the files)")
    .option("--allow-symlinks", "follow symbolic links inside a model folder")
    .option("--parent <MODEL@VERSION>", "the version this one derives from")
    .option("--dataset <CID|FILE>", "a dataset it was trained on (repeatable)", collect)
    .option("--metric <NAME=VALUE>", "a metric (repeatable)", parseMetric)
    .option("--licence <SPDX>", "the weights' licence (SPDX id)")
    .option("--card <FILE>", "model card JSON (EU AI Act Annex IV fields), validated and stored by CID")
    .option("--training-run <FILE>", "a record of the training run, stored by CID")
    .option("--account <INDEX>", "which configured account signs")
    .action(async (modelArg: string, o, cmd: Command) => {
      const opts = globalOptions(cmd);
      const modelId = parseModelId(modelArg);
      const store = blobStore(opts);
      const { weightsCid, format } = await storeWeights(store, o.weights, o.format, o.allowSymlinks);
      const modelCardCid = o.card
        ? await store.put(encodeModelCard(parseModelCard(await readJsonFile(o.card))))
        : undefined;
      const trainingRunCid = o.trainingRun ? await store.put(await readInputFile(o.trainingRun)) : undefined;
      const datasets = await Promise.all(
        ((o.dataset as string[] | undefined) ?? []).map((d) => datasetCid(opts, d)),
      );
      await withChain(opts, async (chain) => {
        const reg = await openRegistry(chain);
        const { version, gasUsed } = await addVersion(
          reg,
          modelId,
          {
            weightsCid,
            format,
            parent: o.parent ? parseModelRef(o.parent) : undefined,
            datasets,
            metrics: o.metric,
            licence: o.licence,
            modelCardCid,
            trainingRunCid,
          },
          parseAccount(o.account),
        );
        emit(opts, { modelId, version, weightsCid, format, gasUsed }, () => [
          `model ${modelId} version ${version}: weights ${weightsCid} (${format})`,
        ]);
      });
    });

  model
    .command("show <MODEL>")
    .description("show a model, or one of its versions")
    .option("--version <N>", "a version number")
    .action(async (modelArg: string, o: { version?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const modelId = parseModelId(modelArg);
      const version = o.version === undefined ? undefined : parseVersion(o.version);
      await withChain(
        opts,
        async (chain) => {
          const reg = await openRegistry(chain);
          if (version !== undefined) {
            const record = await getVersion(reg, modelId, version);
            emit(opts, record, () => versionLines(record));
            return;
          }
          const info = await getModel(reg, modelId);
          const versions: VersionRecord[] = [];
          for (let v = 1; v <= info.versionCount; v++) versions.push(await getVersion(reg, modelId, v));
          emit(opts, { ...info, versions }, () => [
            `model ${info.modelId} "${info.name}" owned by ${info.owner}, ${info.versionCount} version(s)`,
            ...versions.map(
              (r) =>
                `  v${r.version} ${r.weightsCid} parent ${r.parent ? `${r.parent.modelId}@${r.parent.version}` : "none"}${r.deprecated ? " DEPRECATED" : ""}`,
            ),
          ]);
        },
        { readOnly: true },
      );
    });

  model
    .command("lineage <MODEL>")
    .description("a version and its ancestors, newest first")
    .option("--version <N>", "a version number (default: the latest)")
    .action(async (modelArg: string, o: { version?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const modelId = parseModelId(modelArg);
      await withChain(
        opts,
        async (chain) => {
          const reg = await openRegistry(chain);
          const version = o.version ? parseVersion(o.version) : (await getModel(reg, modelId)).versionCount;
          const lineage = await getLineage(reg, modelId, version);
          emit(opts, lineage, () => lineageLines(lineage));
        },
        { readOnly: true },
      );
    });

  model
    .command("attest <MODEL>")
    .description("attest a version, signed with both ECDSA (EIP-712) and ML-DSA-65")
    .requiredOption("--version <N>", "the version")
    .requiredOption("--claim <FILE>", "the claim document (an audit report, say), stored by CID")
    .requiredOption("--verdict <VERDICT>", `one of ${Object.keys(VERDICTS).join(", ")}`)
    .option("--account <INDEX>", "which configured account attests")
    .action(async (modelArg: string, o, cmd: Command) => {
      const opts = globalOptions(cmd);
      const modelId = parseModelId(modelArg);
      const version = parseVersion(o.version);
      if (!(o.verdict in VERDICTS))
        throw new UsageError(`--verdict must be one of ${Object.keys(VERDICTS).join(", ")}`);
      const claimCid = await blobStore(opts).put(await readInputFile(o.claim));
      await withChain(opts, async (chain) => {
        const reg = await openRegistry(chain);
        const account = parseAccount(o.account);
        const pqKey = loadOrCreatePqKey(opts.dataDir, chain.wallet(account).account.address);
        const { index, gasUsed } = await attest(reg, {
          modelId,
          version,
          claimCid,
          verdict: o.verdict as VerdictName,
          pqKey,
          account,
        });
        emit(opts, { modelId, version, index, claimCid, gasUsed }, () => [
          `attestation #${index} on model ${modelId} version ${version}: ${o.verdict} (claim ${claimCid})`,
        ]);
      });
    });

  model
    .command("sign <PATH>")
    .description(
      "sign a model file or folder as an OpenSSF Model Signing bundle (key-based); with --model and --version, also record the bundle as an attestation on that version",
    )
    .requiredOption("--key <PEM>", "the ECDSA private key (P-256, P-384 or P-521), PEM")
    .option("--bundle <FILE>", `where to write the bundle (default: ${DEFAULT_SIGNATURE_FILE} in the folder)`)
    .option("--model <ID>", "the model whose version these files are")
    .option("--version <N>", "the version")
    .option("--allow-symlinks", "follow symbolic links inside the folder")
    .option("--account <INDEX>", "which configured account attests")
    .action(async (path: string, o, cmd: Command) => {
      const opts = globalOptions(cmd);
      if ((o.model === undefined) !== (o.version === undefined))
        throw new UsageError("give both --model and --version, or neither");
      if (!existsSync(path)) throw new UsageError(`no such file or folder: ${path}`);
      const key = await readKey(o.key, "private");
      const bundlePath =
        o.bundle ?? (statSync(path).isDirectory() ? resolve(path, DEFAULT_SIGNATURE_FILE) : `${path}.sig`);
      const manifest = await hashWithProgress(path, {
        ignore: signatureIgnores(path, bundlePath),
        allowSymlinks: o.allowSymlinks,
      });
      const bundleText = `${JSON.stringify(signManifest(manifest, key), null, 2)}\n`;
      // A signature is rewritten like a compiler's output: signing the same files again makes it again.
      await writeOutputFile(bundlePath, bundleText, true);
      const bundleCid = cidOf(new TextEncoder().encode(bundleText));
      const lines = [`wrote ${bundlePath}: ${manifest.entries.length} file(s) signed (bundle ${bundleCid})`];
      if (o.model === undefined) {
        emit(opts, { bundle: bundlePath, bundleCid, files: manifest.entries.length }, () => lines);
        return;
      }
      const modelId = parseModelId(o.model);
      const version = parseVersion(o.version);
      await blobStore(opts).put(new TextEncoder().encode(bundleText));
      await withChain(opts, async (chain) => {
        const reg = await openRegistry(chain);
        const record = await getVersion(reg, modelId, version);
        if (manifestDigest(manifest) !== record.weightsDigest)
          throw new VerificationFailedError(
            `${path} is not model ${modelId} version ${version}: its manifest is ${cidFromDigest(manifestDigest(manifest))}, the version records ${record.weightsCid}`,
          );
        const account = parseAccount(o.account);
        const pqKey = loadOrCreatePqKey(opts.dataDir, chain.wallet(account).account.address);
        const { index, gasUsed } = await attest(reg, {
          modelId,
          version,
          claimCid: bundleCid,
          verdict: "pass",
          pqKey,
          account,
        });
        emit(opts, { bundle: bundlePath, bundleCid, modelId, version, index, gasUsed }, () => [
          ...lines,
          `attestation #${index} on model ${modelId} version ${version}: the bundle, signed ECDSA + ML-DSA-65`,
        ]);
      });
    });

  model
    .command("verify [PATH]")
    .description(
      "check a model file or folder (or a stored CID) against a version and every attestation's two signatures; with --bundle, against an OpenSSF Model Signing bundle",
    )
    .option("--model <ID>", "the model (needed unless --bundle is given)")
    .option("--version <N>", "the version")
    .option("--cid <CID>", "verify stored content by CID instead of a file")
    .option("--bundle <FILE>", "an OpenSSF Model Signing bundle to check the files against (needs --key)")
    .option("--key <PEM>", "the public key the bundle must be signed with, PEM")
    .option("--allow-symlinks", "follow symbolic links inside the folder")
    .action(async (path: string | undefined, o: VerifyFlags, cmd: Command) => {
      const opts = globalOptions(cmd);
      if (!path === !o.cid) throw new UsageError("give either a PATH or --cid, not both or neither");
      if ((o.model === undefined) !== (o.version === undefined))
        throw new UsageError("give both --model and --version, or neither");
      if (o.model === undefined && !o.bundle) throw new UsageError("give --model and --version, or --bundle");
      if (o.bundle && (!path || !o.key)) throw new UsageError("--bundle checks a PATH, under --key");
      if (path && !existsSync(path)) throw new UsageError(`no such file or folder: ${path}`);
      const lines: string[] = [];
      const problems: string[] = [];
      let local: ModelManifest | undefined;
      const localManifest = async (p: string) => {
        local ??= await hashWithProgress(p, {
          ignore: signatureIgnores(p, o.bundle),
          allowSymlinks: o.allowSymlinks,
        });
        return local;
      };
      if (o.bundle && path) {
        const signed = verifyBundle(await readJsonFile(o.bundle), await readKey(o.key as string, "public"));
        const diff = diffManifests(signed.entries, (await localManifest(path)).entries);
        if (diff.length === 0)
          lines.push(`OK: ${path} is what ${o.bundle} signs (${signed.entries.length} file(s))`);
        for (const d of diff) problems.push(`${differenceLine(d)} (against ${o.bundle})`);
      }
      if (o.model === undefined) {
        emit(opts, { ok: problems.length === 0, problems }, () => [...lines, ...problems]);
        if (problems.length > 0)
          throw new VerificationFailedError(`${problems.length} file(s) do not match ${o.bundle}`);
        return;
      }
      const modelId = parseModelId(o.model);
      const version = parseVersion(o.version as string);
      await withChain(
        opts,
        async (chain) => {
          const reg = await openRegistry(chain);
          let digest: Hex;
          if (o.cid) digest = digestFromCid(o.cid);
          else {
            const record = await getVersion(reg, modelId, version);
            const p = path as string;
            if (record.format === CANONICAL_FORMAT && statSync(p).isFile()) digest = `0x${await hashFile(p)}`;
            else {
              const manifest = await localManifest(p);
              digest = manifestDigest(manifest);
              if (digest !== record.weightsDigest)
                problems.push(...(await registeredDiff(opts, record, manifest)));
            }
          }
          const report = await verifyVersion(reg, modelId, version, digest);
          const all = [...problems, ...report.problems];
          emit(opts, { ...report, ok: all.length === 0, problems: all }, () => [
            ...lines,
            ...problems,
            report.ok
              ? `OK: ${path ?? o.cid} is model ${modelId} version ${version} (${report.expected.cid}); ${report.attestations.length} attestation(s), every signature valid (ECDSA + ML-DSA-65)`
              : `MISMATCH: ${report.problems.join("; ")}`,
            ...(report.deprecated ? ["warning: this version is deprecated"] : []),
          ]);
          if (all.length > 0) throw new VerificationFailedError(all.join("; "));
        },
        { readOnly: true },
      );
    });

  model
    .command("deprecate <MODEL>")
    .description("flag a version as deprecated, with a reason (nothing is erased)")
    .requiredOption("--version <N>", "the version")
    .requiredOption("--reason <TEXT>", "why")
    .option("--account <INDEX>", "which configured account signs")
    .action(
      async (modelArg: string, o: { version: string; reason: string; account?: string }, cmd: Command) => {
        const opts = globalOptions(cmd);
        const modelId = parseModelId(modelArg);
        const version = parseVersion(o.version);
        await withChain(opts, async (chain) => {
          const reg = await openRegistry(chain);
          await deprecateVersion(reg, modelId, version, o.reason, parseAccount(o.account));
          emit(opts, { modelId, version, deprecated: true, reason: o.reason }, () => [
            `model ${modelId} version ${version} deprecated: ${o.reason}`,
          ]);
        });
      },
    );
}

export function lineageLines(lineage: VersionRecord[]): string[] {
  return lineage.map((r, i) => {
    const metrics = Object.entries(r.metrics)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    return `${i === 0 ? "" : `${"  ".repeat(i - 1)}└─ `}${r.modelId}@${r.version} ${r.weightsCid} ${metrics}`;
  });
}
