import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { type Address, formatEther, type Hex } from "viem";
import {
  accessOf,
  allowAlgorithm,
  buyAccess,
  getDataset,
  getMetadata,
  grantAccess,
  listDatasets,
  type MarketDataset,
  openMarket,
  publishDataset,
  revokeAccess,
} from "../market/client.ts";
import { computeJob } from "../market/compute-client.ts";
import type { JobKind, JobParams } from "../market/job.ts";
import {
  type AlgorithmRef,
  type DatasetMetadata,
  InvalidMetadataError,
  parseMetadata,
} from "../market/protocol.ts";
import { DEFAULT_NODE_PORT } from "../node/config.ts";
import { endpointOf, openDirectory } from "../node/directory.ts";
import { BlobNotFoundError } from "../storage/blob-store.ts";
import { cidFromDigest } from "../storage/cid.ts";
import {
  blobStore,
  emit,
  globalOptions,
  parseAccount,
  parseDatasetId,
  parseInteger,
  parseMind,
  parseModelRef,
  parsePositive,
  UsageError,
  withChain,
} from "./context.ts";
import { runNode } from "./node.ts";
import { parseTarget, resolveTarget } from "./token.ts";

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** A duration: seconds, or a number with s, m, h or d ("30d"). */
export function parseDuration(text: string, option: string): number {
  const m = /^([1-9]\d*)([smhd]?)$/.exec(text.trim());
  const seconds = m ? Number(m[1]) * (UNITS[m[2] || "s"] as number) : Number.NaN;
  if (!Number.isSafeInteger(seconds))
    throw new UsageError(
      `${option} takes a duration: seconds, or a number with s, m, h or d (30d), got "${text}"`,
    );
  return seconds;
}

/** `--model MODEL@VERSION` or `--digest HEX`, exactly one. */
function parseAlgorithm(o: { model?: string; digest?: string }): AlgorithmRef {
  if ((o.model === undefined) === (o.digest === undefined))
    throw new UsageError("name the algorithm with exactly one of --model MODEL@VERSION and --digest HEX");
  if (o.model !== undefined) {
    const { modelId, version } = parseModelRef(o.model);
    return { modelId, version };
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(o.digest as string))
    throw new UsageError(`--digest takes 32 bytes in hex (0x and 64 digits), got "${o.digest}"`);
  return { digest: o.digest as Hex };
}

function readMetadata(file: string): DatasetMetadata {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new UsageError(`--metadata ${file} cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
  try {
    return parseMetadata(bytes);
  } catch (err) {
    if (err instanceof InvalidMetadataError) throw new UsageError(`--metadata ${file}: ${err.message}`);
    throw err;
  }
}

const date = (seconds: number) => (seconds === 0 ? "never" : new Date(seconds * 1000).toISOString());

function datasetLine(d: MarketDataset): string {
  const price =
    d.pricePerPeriod === 0n ? "not for sale" : `${formatEther(d.pricePerPeriod)} MIND per ${d.period} s`;
  return `dataset ${d.id}: owner ${d.owner}, ${price}, metadata ${d.metadataCid}`;
}

/** `data publish | list | show | buy | grant | revoke | access | allow`: the data market. */
export function registerDataCommands(program: Command): void {
  const data = program
    .command("data")
    .description("the data market: datasets as NFTs, paid access, revocable grants, allowed algorithms");

  data
    .command("publish")
    .description("publish a dataset: store its metadata JSON and mint its data NFT to the signer")
    .requiredOption("--metadata <FILE>", "the metadata JSON (format ledgermind.dataset/1)")
    .option("--price <MIND>", "the price of one period; 0: not for sale, grants only", "0")
    .option("--period <DURATION>", "one access period: seconds, or with s, m, h or d", "30d")
    .option("--royalty-bps <BPS>", "your share of later owners' sales, in basis points (at most 2000)", "0")
    .option("--account <INDEX>", "which configured account publishes (default: 0)")
    .action(
      async (
        o: { metadata: string; price: string; period: string; royaltyBps: string; account?: string },
        cmd,
      ) => {
        const opts = globalOptions(cmd as Command);
        const metadata = readMetadata(o.metadata);
        const pricePerPeriod = parseMind(o.price, "--price");
        const period = parseDuration(o.period, "--period");
        const royaltyBps = parseInteger(o.royaltyBps, "--royalty-bps", 0, 10_000);
        const signer = parseAccount(o.account);
        await withChain(opts, async (chain) => {
          const market = await openMarket(chain);
          const { datasetId, metadataCid, receipt } = await publishDataset(
            market,
            { store: blobStore(opts), metadata, pricePerPeriod, period, royaltyBps },
            signer,
          );
          emit(
            opts,
            { datasetId, metadataCid, pricePerPeriod, period, royaltyBps, gasUsed: receipt.gasUsed },
            () => [
              `published dataset ${datasetId} (${metadata.name}), metadata ${metadataCid} (gas ${receipt.gasUsed})`,
            ],
          );
        });
      },
    );

  data
    .command("list")
    .description("every dataset: owner, price and metadata CID")
    .action(async (_o: unknown, cmd: Command) => {
      const opts = globalOptions(cmd);
      await withChain(
        opts,
        async (chain) => {
          const datasets = await listDatasets(await openMarket(chain));
          emit(opts, datasets, () => (datasets.length === 0 ? ["no datasets"] : datasets.map(datasetLine)));
        },
        { readOnly: true },
      );
    });

  data
    .command("show")
    .description("a dataset's terms, owner, provider and (when this data folder holds it) metadata")
    .argument("<ID>", "the dataset id")
    .action(async (idText: string, _o: unknown, cmd: Command) => {
      const opts = globalOptions(cmd);
      const datasetId = parseDatasetId(idText);
      await withChain(
        opts,
        async (chain) => {
          const d = await getDataset(await openMarket(chain), datasetId);
          const metadata = await getMetadata(blobStore(opts), d).catch((err: unknown) => {
            if (err instanceof BlobNotFoundError) return undefined;
            throw err;
          });
          emit(opts, { ...d, metadata }, () => [
            datasetLine(d),
            `  publisher ${d.publisher}, royalty ${d.royaltyBps} bps, provider ${d.provider}`,
            metadata
              ? `  ${metadata.name}: ${metadata.description} (${metadata.licence}, ${metadata.size.rows} rows)`
              : "  metadata not in this data folder's blob store",
          ]);
        },
        { readOnly: true },
      );
    });

  data
    .command("buy")
    .description("buy access by the period, paid in MIND (approves the market first)")
    .argument("<ID>", "the dataset id")
    .option("--periods <N>", "how many periods", "1")
    .option("--max-cost <MIND>", "the most you pay (default: the price read now times the periods)")
    .option("--account <INDEX>", "which configured account buys (default: 0)")
    .action(
      async (idText: string, o: { periods: string; maxCost?: string; account?: string }, cmd: Command) => {
        const opts = globalOptions(cmd);
        const datasetId = parseDatasetId(idText);
        const periods = parseInteger(o.periods, "--periods", 1, 0xffff_ffff);
        const maxCost = o.maxCost === undefined ? undefined : parseMind(o.maxCost, "--max-cost");
        const signer = parseAccount(o.account);
        await withChain(opts, async (chain) => {
          const { cost, paidUntil, receipt } = await buyAccess(
            await openMarket(chain),
            { datasetId, periods, ...(maxCost === undefined ? {} : { maxCost }) },
            signer,
          );
          emit(opts, { datasetId, periods, cost, paidUntil, gasUsed: receipt.gasUsed }, () => [
            `bought ${periods} period(s) of dataset ${datasetId} for ${formatEther(cost)} MIND: access until ${date(paidUntil)}`,
          ]);
        });
      },
    );

  data
    .command("grant")
    .description("grant an account free access until a time (the dataset's owner; revocable)")
    .argument("<ID>", "the dataset id")
    .argument("<WHO>", "an address or an account index")
    .requiredOption("--for <DURATION>", "how long from now: seconds, or with s, m, h or d")
    .option("--account <INDEX>", "which configured account signs, the owner (default: 0)")
    .action(async (idText: string, who: string, o: { for: string; account?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const datasetId = parseDatasetId(idText);
      const target = parseTarget(who);
      const seconds = parseDuration(o.for, "--for");
      const signer = parseAccount(o.account);
      await withChain(opts, async (chain) => {
        const account = resolveTarget(target, chain.accounts);
        const expiresAt = Number((await chain.publicClient.getBlock()).timestamp) + seconds;
        const receipt = await grantAccess(await openMarket(chain), { datasetId, account, expiresAt }, signer);
        emit(opts, { datasetId, account, expiresAt, gasUsed: receipt.gasUsed }, () => [
          `granted ${account} access to dataset ${datasetId} until ${date(expiresAt)}`,
        ]);
      });
    });

  data
    .command("revoke")
    .description("end an account's grant now (the dataset's owner); paid access runs to its end")
    .argument("<ID>", "the dataset id")
    .argument("<WHO>", "an address or an account index")
    .option("--account <INDEX>", "which configured account signs, the owner (default: 0)")
    .action(async (idText: string, who: string, o: { account?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const datasetId = parseDatasetId(idText);
      const target = parseTarget(who);
      const signer = parseAccount(o.account);
      await withChain(opts, async (chain) => {
        const account = resolveTarget(target, chain.accounts);
        const market = await openMarket(chain);
        const receipt = await revokeAccess(market, { datasetId, account }, signer);
        const access = await accessOf(market, datasetId, account);
        emit(opts, { datasetId, account, ...access, gasUsed: receipt.gasUsed }, () => [
          `revoked ${account}'s grant on dataset ${datasetId}; ${
            access.hasAccess ? `its paid access runs until ${date(access.paidUntil)}` : "it has no access now"
          }`,
        ]);
      });
    });

  data
    .command("access")
    .description("whether an account may use a dataset now, and until when it paid and was granted")
    .argument("<ID>", "the dataset id")
    .argument("<WHO>", "an address or an account index")
    .action(async (idText: string, who: string, _o: unknown, cmd: Command) => {
      const opts = globalOptions(cmd);
      const datasetId = parseDatasetId(idText);
      const target = parseTarget(who);
      await withChain(
        opts,
        async (chain) => {
          const account: Address = resolveTarget(target, chain.accounts);
          const market = await openMarket(chain);
          await getDataset(market, datasetId);
          const access = await accessOf(market, datasetId, account);
          emit(opts, { datasetId, account, ...access }, () => [
            `${account} ${access.hasAccess ? "has" : "has no"} access to dataset ${datasetId} (paid until ${date(
              access.paidUntil,
            )}, granted until ${date(access.grantedUntil)})`,
          ]);
        },
        { readOnly: true },
      );
    });

  data
    .command("allow")
    .description(
      "allow an algorithm on a dataset: a registry model version or an algorithm digest (the owner)",
    )
    .argument("<ID>", "the dataset id")
    .option("--model <MODEL@VERSION>", "a model version of the registry, e.g. 1@2")
    .option("--digest <HEX>", "an algorithm's 32-byte digest")
    .option("--account <INDEX>", "which configured account signs, the owner (default: 0)")
    .action(
      async (idText: string, o: { model?: string; digest?: string; account?: string }, cmd: Command) => {
        const opts = globalOptions(cmd);
        const datasetId = parseDatasetId(idText);
        const ref = parseAlgorithm(o);
        const signer = parseAccount(o.account);
        await withChain(opts, async (chain) => {
          const { algorithm, receipt } = await allowAlgorithm(
            await openMarket(chain),
            { datasetId, algorithm: ref },
            signer,
          );
          emit(opts, { datasetId, algorithm, gasUsed: receipt.gasUsed }, () => [
            `algorithm ${algorithm} may now run on dataset ${datasetId}`,
          ]);
        });
      },
    );

  data
    .command("compute")
    .description(
      "run a registry model version next to a dataset at its provider (compute-to-data): train it there and get the update, or evaluate it and get the metrics; never the rows. The request is signed by the buyer, the result checked against the receipt the provider records on-chain",
    )
    .requiredOption("--dataset <ID>", "the dataset id")
    .requiredOption("--model <MODEL@VERSION>", "the registry model version to run, allowed on the dataset")
    .option("--kind <KIND>", "train or evaluate", "train")
    .option("--epochs <N>", "training epochs", "1")
    .option("--batch <N>", "training batch size", "32")
    .option("--lr <RATE>", "training learning rate", "0.1")
    .option("--dp-epsilon <E>", "differential privacy: the epsilon this job spends, in (0, 1)")
    .option("--clip-norm <C>", "differential privacy: the L2 bound of the returned update's change", "5")
    .option(
      "--provider <URL>",
      "the provider's URL (default: the one its account announced in the node directory)",
    )
    .requiredOption("--out <FILE>", "where to write the result (model weights, or metrics JSON)")
    .option("--force", "overwrite the file if it exists")
    .option("--account <INDEX>", "which configured account buys and signs (default: 0)")
    .action(
      async (
        o: {
          dataset: string;
          model: string;
          kind: string;
          epochs: string;
          batch: string;
          lr: string;
          dpEpsilon?: string;
          clipNorm: string;
          provider?: string;
          out: string;
          force?: boolean;
          account?: string;
        },
        cmd: Command,
      ) => {
        const opts = globalOptions(cmd);
        const datasetId = parseDatasetId(o.dataset);
        const model = parseModelRef(o.model);
        if (o.kind !== "train" && o.kind !== "evaluate")
          throw new UsageError(`--kind is train or evaluate, got "${o.kind}"`);
        const kind: JobKind = o.kind;
        const params: JobParams = {
          epochs: parseInteger(o.epochs, "--epochs", 1, 10_000),
          batch: parseInteger(o.batch, "--batch", 1, 100_000),
          lr: parsePositive(o.lr, "--lr"),
          ...(o.dpEpsilon === undefined
            ? {}
            : {
                dp: {
                  epsilon: parsePositive(o.dpEpsilon, "--dp-epsilon"),
                  clipNorm: parsePositive(o.clipNorm, "--clip-norm"),
                },
              }),
        };
        if (existsSync(o.out) && !o.force)
          throw new UsageError(`--out ${o.out} exists; pass --force to overwrite it`);
        const signer = parseAccount(o.account);
        await withChain(
          opts,
          async (chain) => {
            const account = chain.accounts[signer];
            if (!account) throw new UsageError(`account #${signer} is not configured`);
            const market = await openMarket(chain);
            const dataset = await getDataset(market, datasetId);
            const url = o.provider ?? (await endpointOf(await openDirectory(chain), dataset.provider));
            if (url === undefined)
              throw new UsageError(
                `dataset ${datasetId}'s provider ${dataset.provider} announced no URL in the node directory: pass --provider URL`,
              );
            // A refusal or a failed job is the provider's one line (ComputeJobError), exit 1.
            const done = await computeJob(
              url.replace(/\/+$/, ""),
              { datasetId, model, kind, params },
              { account, domain: { chainId: chain.chainId, market: market.address } },
            );
            writeFileSync(o.out, done.bytes);
            const { job } = done;
            const resultCid = job.resultDigest ? cidFromDigest(job.resultDigest) : undefined;
            emit(opts, { ...job, resultCid, out: o.out }, () => [
              `job ${job.id} done at ${url}: ${kind} of model ${model.modelId}@${model.version} on dataset ${datasetId}${job.dp ? ` with DP (epsilon ${job.dp.epsilon})` : ""}`,
              `result ${resultCid} (receipt in transaction ${job.receiptTx}), written to ${o.out}`,
            ]);
          },
          { readOnly: true },
        );
      },
    );

  data
    .command("serve")
    .description(
      "provide datasets for compute-to-data: a node whose only role is the provider (its account must be each dataset's provider), reading the rows from a CSV file of yours (label first, then the features) that never leaves this machine; stops on Ctrl-C. For more datasets or other roles, a node config's roles.provider",
    )
    .requiredOption("--dataset <ID>", "the dataset id on the DataMarket")
    .requiredOption("--csv <FILE>", "the rows: one per line, the label first, then the features")
    .option("--divide-by <N>", "divide every feature by this (255 for raw pixels)", "1")
    .option("--port <PORT>", "the HTTP port", String(DEFAULT_NODE_PORT))
    .option("--host <HOST>", "the address to listen on", "127.0.0.1")
    .option("--account <INDEX>", "which configured account provides (default: 0)")
    .action(
      async (
        o: { dataset: string; csv: string; divideBy: string; port: string; host: string; account?: string },
        cmd: Command,
      ) => {
        const opts = globalOptions(cmd);
        if (opts.rpc === undefined)
          throw new UsageError(
            "data serve needs --rpc URL: buyers reach the provider over a chain other processes share (start one with `ledgermind chain`)",
          );
        const csv = resolve(o.csv);
        if (!existsSync(csv)) throw new UsageError(`--csv ${o.csv}: no such file`);
        await runNode(
          {
            dataDir: resolve(opts.dataDir),
            chain: { rpc: opts.rpc },
            account: parseAccount(o.account),
            http: { host: o.host, port: parseInteger(o.port, "--port", 0, 65_535) },
            fetch: {},
            peers: [],
            roles: {
              provider: {
                datasets: [
                  {
                    id: parseDatasetId(o.dataset),
                    data: { csv: { path: csv, divideBy: parsePositive(o.divideBy, "--divide-by") } },
                  },
                ],
              },
            },
            learningPollMs: 250,
          },
          { stopWithStdin: false },
        );
      },
    );
}
