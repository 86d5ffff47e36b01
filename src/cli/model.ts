import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
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
import { encodeModelCard, ModelCardError, parseModelCard } from "../registry/model-card.ts";
import { loadOrCreatePqKey } from "../registry/pq-keystore.ts";
import { verifyVersion } from "../registry/verify.ts";
import { cidOf, digestFromCid, sha256Digest } from "../storage/cid.ts";
import { modelCardTemplateText } from "./card-template.ts";
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

function registerCardCommands(model: Command): void {
  const card = model.command("card").description("model cards: EU AI Act Annex IV technical documentation");
  card
    .command("init")
    .argument("[FILE]", "where to write the card", "model-card.json")
    .description(
      "write a model card template (every Annex IV field, TODOs to replace) that `model version --card` accepts as is",
    )
    .option("--name <NAME>", "the model's name")
    .option("--weights <FILE>", "take the architecture from this weights file (LMQ1)")
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
        const architecture = o.weights ? decodeModel(await readInputFile(o.weights)).architecture : undefined;
        let text: string;
        try {
          text = modelCardTemplateText({ name: o.name, architecture, licence: o.licence });
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
      "--weights <FILE>",
      "the weights, in the canonical encoding (LMQ1) unless --format says otherwise",
    )
    .option("--format <TAG>", "format tag (up to 8 bytes)", CANONICAL_FORMAT)
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
      const weights = await readInputFile(o.weights);
      if (o.format === CANONICAL_FORMAT) decodeModel(weights);
      const store = blobStore(opts);
      const modelCardCid = o.card
        ? await store.put(encodeModelCard(parseModelCard(await readJsonFile(o.card))))
        : undefined;
      const trainingRunCid = o.trainingRun ? await store.put(await readInputFile(o.trainingRun)) : undefined;
      const datasets = await Promise.all(
        ((o.dataset as string[] | undefined) ?? []).map((d) => datasetCid(opts, d)),
      );
      const weightsCid = await store.put(weights);
      await withChain(opts, async (chain) => {
        const reg = await openRegistry(chain);
        const { version, gasUsed } = await addVersion(
          reg,
          modelId,
          {
            weightsCid,
            format: o.format,
            parent: o.parent ? parseModelRef(o.parent) : undefined,
            datasets,
            metrics: o.metric,
            licence: o.licence,
            modelCardCid,
            trainingRunCid,
          },
          parseAccount(o.account),
        );
        emit(opts, { modelId, version, weightsCid, gasUsed }, () => [
          `model ${modelId} version ${version}: weights ${weightsCid}`,
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
    .command("verify [FILE]")
    .description(
      "check a weights file (or a stored CID) and every attestation's two signatures against the chain",
    )
    .requiredOption("--model <ID>", "the model")
    .requiredOption("--version <N>", "the version")
    .option("--cid <CID>", "verify stored content by CID instead of a file")
    .action(
      async (file: string | undefined, o: { model: string; version: string; cid?: string }, cmd: Command) => {
        const opts = globalOptions(cmd);
        const modelId = parseModelId(o.model);
        const version = parseVersion(o.version);
        if (!file === !o.cid) throw new UsageError("give either a FILE or --cid, not both or neither");
        // A CID is checked without downloading anything: its digest is what the chain records.
        const digest = o.cid ? digestFromCid(o.cid) : sha256Digest(await readInputFile(file as string));
        await withChain(
          opts,
          async (chain) => {
            const reg = await openRegistry(chain);
            const report = await verifyVersion(reg, modelId, version, digest);
            emit(opts, report, () => [
              report.ok
                ? `OK: ${file ?? o.cid} is model ${modelId} version ${version} (${report.expected.cid}); ${report.attestations.length} attestation(s), every signature valid (ECDSA + ML-DSA-65)`
                : `MISMATCH: ${report.problems.join("; ")}`,
              ...(report.deprecated ? ["warning: this version is deprecated"] : []),
            ]);
            if (!report.ok) throw new VerificationFailedError(report.problems.join("; "));
          },
          { readOnly: true },
        );
      },
    );

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
