/**
 * The data market (contracts/DataMarket.sol) from its users' side: publish a dataset (its metadata JSON
 * stored by CID), list and read datasets, buy access (approval then purchase, guarded against a price
 * raised in between), grant and revoke free access, allow algorithms, and record and read compute
 * receipts. Every refusal of the contract arrives as ContractRefusedError naming its custom error.
 */
import { type Address, formatEther, type Hex, parseEventLogs, type TransactionReceipt } from "viem";
import type { LedgerChain } from "../chain/connect.ts";
import { requireDeployment } from "../chain/deploy.ts";
import { DataMarket, MindToken } from "../chain/generated/contracts.ts";
import { mindBalance } from "../chain/token.ts";
import { decodeRevert, sendAndWait } from "../chain/tx.ts";
import { type Signer, walletOf } from "../learning/client.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { digestFromCid } from "../storage/cid.ts";
import {
  type AlgorithmRef,
  algorithmId,
  type ComputeReceipt,
  type DatasetMetadata,
  encodeMetadata,
  MarketInputError,
  parseMetadata,
  receiptTypedData,
} from "./protocol.ts";

const abi = DataMarket.abi;

/** A buyer holds less MIND than the access costs: nothing was sent. */
export class InsufficientMindError extends Error {
  override name = "InsufficientMindError";
  constructor(buyer: Address, balance: bigint, cost: bigint) {
    super(
      `${buyer} holds ${formatEther(balance)} MIND but the access costs ${formatEther(cost)} MIND: send it MIND with \`ledgermind token transfer\``,
    );
  }
}

/** A DataMarket deployment. */
export interface Market {
  chain: LedgerChain;
  address: Address;
  /** The MIND token it is paid in. */
  token: Address;
  /** The first block worth scanning for its events. */
  fromBlock: bigint;
}

/** A dataset as the contract holds it, with its current owner and provider. */
export interface MarketDataset {
  id: bigint;
  owner: Address;
  publisher: Address;
  provider: Address;
  /** MIND wei per period; 0: not for sale. */
  pricePerPeriod: bigint;
  /** Seconds. */
  period: number;
  royaltyBps: number;
  metadataCid: string;
  metadataDigest: Hex;
}

/** A recorded compute receipt. */
export interface RecordedReceipt {
  requestDigest: Hex;
  datasetId: bigint;
  buyer: Address;
  algorithm: Hex;
  resultDigest: Hex;
  /** Unix seconds. */
  recordedAt: number;
}

/** The deployment manifest's DataMarket; or the one at `address` (its events scanned from `fromBlock`). */
export async function openMarket(
  chain: LedgerChain,
  at?: { address: Address; fromBlock?: bigint },
): Promise<Market> {
  if (at) {
    const token = await chain.publicClient.readContract({ address: at.address, abi, functionName: "token" });
    return { chain, address: at.address, token, fromBlock: at.fromBlock ?? 0n };
  }
  const manifest = await requireDeployment(chain);
  const entry = manifest.contracts.DataMarket;
  return {
    chain,
    address: entry.address,
    token: manifest.contracts.MindToken.address,
    fromBlock: BigInt(entry.block),
  };
}

function write(
  market: Market,
  signer: Signer,
  functionName: string,
  args: readonly unknown[],
): Promise<TransactionReceipt> {
  const wallet = walletOf(market.chain, signer);
  return sendAndWait(market.chain, () =>
    wallet.writeContract({ address: market.address, abi, functionName, args } as Parameters<
      typeof wallet.writeContract
    >[0]),
  );
}

export interface PublishDatasetParameters {
  /** Where the metadata JSON goes; buyers and providers fetch it by CID. */
  store: BlobStore;
  metadata: DatasetMetadata;
  /** MIND wei per period; 0: not for sale (grants only). */
  pricePerPeriod: bigint;
  /** Seconds, 1 to 10 years. */
  period: number;
  /** The publisher's share of later owners' sales (default 0). */
  royaltyBps?: number;
}

/**
 * Stores the metadata JSON and publishes the dataset: the signer receives its data NFT.
 * @returns the new dataset's id, its metadata CID and the transaction's receipt
 * @throws InvalidMetadataError for metadata that does not parse; ContractRefusedError (InvalidPeriod,
 *   RoyaltyTooHigh, ...) for terms the contract refuses
 * @example await publishDataset(market, { store, metadata, pricePerPeriod: parseEther("5"), period: 86_400 }, 1)
 */
export async function publishDataset(
  market: Market,
  { store, metadata, pricePerPeriod, period, royaltyBps = 0 }: PublishDatasetParameters,
  signer: Signer,
): Promise<{ datasetId: bigint; metadataCid: string; receipt: TransactionReceipt }> {
  const metadataCid = await store.put(encodeMetadata(metadata));
  const receipt = await write(market, signer, "publish", [
    metadataCid,
    digestFromCid(metadataCid),
    pricePerPeriod,
    BigInt(period),
    royaltyBps,
  ]);
  const [event] = parseEventLogs({ abi, logs: receipt.logs, eventName: "DatasetPublished" });
  if (!event) throw new Error("publish emitted no DatasetPublished event");
  return { datasetId: event.args.datasetId, metadataCid, receipt };
}

/**
 * A dataset's terms, owner and provider.
 * @throws ContractRefusedError(UnknownDataset) for an id that was never published
 */
export async function getDataset(market: Market, datasetId: bigint): Promise<MarketDataset> {
  const read = market.chain.publicClient;
  // `dataset` first: for an unknown id it refuses with UnknownDataset, while ownerOf would race it with
  // ERC721NonexistentToken and whichever read failed first would name the error.
  const [d, owner, provider] = await read
    .readContract({ address: market.address, abi, functionName: "dataset", args: [datasetId] })
    .then((d) =>
      Promise.all([
        d,
        read.readContract({ address: market.address, abi, functionName: "ownerOf", args: [datasetId] }),
        read.readContract({ address: market.address, abi, functionName: "providerOf", args: [datasetId] }),
      ]),
    )
    .catch((err: unknown) => {
      throw decodeRevert(err);
    });
  return {
    id: datasetId,
    owner,
    publisher: d.publisher,
    provider,
    pricePerPeriod: d.pricePerPeriod,
    period: Number(d.period),
    royaltyBps: d.royaltyBps,
    metadataCid: d.metadataCid,
    metadataDigest: d.metadataDigest,
  };
}

/** Every dataset, by id (one read per dataset: the contract keeps no list to page through). */
export async function listDatasets(market: Market): Promise<MarketDataset[]> {
  const count = await market.chain.publicClient.readContract({
    address: market.address,
    abi,
    functionName: "datasetCount",
  });
  const ids = Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1));
  return Promise.all(ids.map((id) => getDataset(market, id)));
}

/** A dataset's metadata, fetched by its CID (the store verifies the bytes against it) and checked. */
export async function getMetadata(store: BlobStore, dataset: MarketDataset): Promise<DatasetMetadata> {
  return parseMetadata(await store.get(dataset.metadataCid));
}

export interface BuyAccessParameters {
  datasetId: bigint;
  /** How many periods (default 1). */
  periods?: number;
  /**
   * The most the buyer pays (default: the price read now times `periods`), so that a price raised
   * between the read and the purchase is refused (CostAboveMax) instead of paid.
   */
  maxCost?: bigint;
}

/**
 * Approves the market for the cost (unless already allowed) and buys access for the signer.
 * @returns the cost, when the paid access now ends (unix seconds) and the purchase's receipt
 * @throws InsufficientMindError when the buyer holds less than the price read now; ContractRefusedError: UnknownDataset,
 *   NotForSale, CostAboveMax...
 * @example await buyAccess(market, { datasetId: 1n, periods: 2 }, 2)
 */
export async function buyAccess(
  market: Market,
  { datasetId, periods = 1, maxCost }: BuyAccessParameters,
  signer: Signer,
): Promise<{ cost: bigint; paidUntil: number; receipt: TransactionReceipt }> {
  if (!Number.isInteger(periods) || periods < 1 || periods > 0xffff_ffff)
    throw new MarketInputError(`periods must be an integer from 1 to 2^32-1, got ${periods}`);
  const quoted = (await getDataset(market, datasetId)).pricePerPeriod * BigInt(periods);
  const limit = maxCost ?? quoted;
  const wallet = walletOf(market.chain, signer);
  // Checked here because the contract pays the fee first: its refusal would name the fee, not the cost.
  const balance = await mindBalance(market.chain, wallet.account.address);
  if (balance < quoted) throw new InsufficientMindError(wallet.account.address, balance, quoted);
  const allowance = await market.chain.publicClient.readContract({
    address: market.token,
    abi: MindToken.abi,
    functionName: "allowance",
    args: [wallet.account.address, market.address],
  });
  if (allowance < limit)
    await sendAndWait(market.chain, () =>
      wallet.writeContract({
        address: market.token,
        abi: MindToken.abi,
        functionName: "approve",
        args: [market.address, limit],
      }),
    );
  const receipt = await write(market, signer, "buyAccess", [datasetId, periods, limit]);
  const [event] = parseEventLogs({ abi, logs: receipt.logs, eventName: "AccessBought" });
  if (!event) throw new Error("buyAccess emitted no AccessBought event");
  return { cost: event.args.cost, paidUntil: Number(event.args.paidUntil), receipt };
}

/**
 * Grants `account` free access until `expiresAt` (unix seconds), replacing its previous grant; the
 * dataset's owner signs.
 * @throws ContractRefusedError: NotDatasetOwner, UnknownDataset, ExpiryNotInFuture
 */
export function grantAccess(
  market: Market,
  { datasetId, account, expiresAt }: { datasetId: bigint; account: Address; expiresAt: number },
  signer: Signer,
): Promise<TransactionReceipt> {
  return write(market, signer, "grantAccess", [datasetId, account, BigInt(expiresAt)]);
}

/**
 * Ends `account`'s grant now; its paid access, if any, runs on. The dataset's owner signs.
 * @throws ContractRefusedError: NotDatasetOwner, UnknownDataset, NoGrant
 */
export function revokeAccess(
  market: Market,
  { datasetId, account }: { datasetId: bigint; account: Address },
  signer: Signer,
): Promise<TransactionReceipt> {
  return write(market, signer, "revokeAccess", [datasetId, account]);
}

/** Whether `account` may use the dataset at the latest block's time (false for an unknown dataset). */
export function hasAccess(market: Market, datasetId: bigint, account: Address): Promise<boolean> {
  return market.chain.publicClient.readContract({
    address: market.address,
    abi,
    functionName: "hasAccess",
    args: [datasetId, account],
  });
}

/** An account's access: when its paid and its granted access end (unix seconds, 0: none), and whether it has access now. */
export async function accessOf(
  market: Market,
  datasetId: bigint,
  account: Address,
): Promise<{ paidUntil: number; grantedUntil: number; hasAccess: boolean }> {
  const [a, now] = await Promise.all([
    market.chain.publicClient.readContract({
      address: market.address,
      abi,
      functionName: "accessOf",
      args: [datasetId, account],
    }),
    hasAccess(market, datasetId, account),
  ]);
  return { paidUntil: Number(a.paidUntil), grantedUntil: Number(a.grantedUntil), hasAccess: now };
}

/**
 * Allows an algorithm (a registry model version or a digest) on a dataset; the dataset's owner signs.
 * @returns the algorithm's id and the transaction's receipt
 * @throws ContractRefusedError: NotDatasetOwner, UnknownDataset, AlgorithmAlreadyAllowed
 */
export async function allowAlgorithm(
  market: Market,
  { datasetId, algorithm }: { datasetId: bigint; algorithm: AlgorithmRef },
  signer: Signer,
): Promise<{ algorithm: Hex; receipt: TransactionReceipt }> {
  const id = algorithmId(algorithm);
  return { algorithm: id, receipt: await write(market, signer, "allowAlgorithm", [datasetId, id]) };
}

/** Stops an algorithm from running on a dataset; the dataset's owner signs. */
export function disallowAlgorithm(
  market: Market,
  { datasetId, algorithm }: { datasetId: bigint; algorithm: AlgorithmRef },
  signer: Signer,
): Promise<TransactionReceipt> {
  return write(market, signer, "disallowAlgorithm", [datasetId, algorithmId(algorithm)]);
}

/** Whether an algorithm may run on a dataset. */
export function isAllowed(market: Market, datasetId: bigint, algorithm: AlgorithmRef): Promise<boolean> {
  return market.chain.publicClient.readContract({
    address: market.address,
    abi,
    functionName: "isAllowed",
    args: [datasetId, algorithmId(algorithm)],
  });
}

/** Names the provider of a dataset (the zero address: the owner); the dataset's owner signs. */
export function setProvider(
  market: Market,
  { datasetId, provider }: { datasetId: bigint; provider: Address },
  signer: Signer,
): Promise<TransactionReceipt> {
  return write(market, signer, "setProvider", [datasetId, provider]);
}

/** Sets the price of one period (0: not for sale); the dataset's owner signs. */
export function setPrice(
  market: Market,
  { datasetId, pricePerPeriod }: { datasetId: bigint; pricePerPeriod: bigint },
  signer: Signer,
): Promise<TransactionReceipt> {
  return write(market, signer, "setPrice", [datasetId, pricePerPeriod]);
}

/** The provider's EIP-712 signature over a receipt, as `recordReceipt` checks it. */
export function signReceipt(market: Market, receipt: ComputeReceipt, signer: Signer): Promise<Hex> {
  const wallet = walletOf(market.chain, signer);
  return wallet.signTypedData({
    account: wallet.account,
    ...receiptTypedData(market.address, market.chain.chainId, receipt),
  });
}

/**
 * Records a job's receipt: the signer must be the dataset's provider; it signs the receipt unless
 * `signature` is given.
 * @throws ContractRefusedError: NotProvider, ReceiptAlreadyRecorded, AlgorithmNotAllowed, NoAccess,
 *   BadReceiptSignature, EmptyDigest, UnknownDataset
 */
export async function recordReceipt(
  market: Market,
  receipt: ComputeReceipt & { signature?: Hex },
  signer: Signer,
): Promise<TransactionReceipt> {
  const { signature, ...fields } = receipt;
  const signed = signature ?? (await signReceipt(market, fields, signer));
  return write(market, signer, "recordReceipt", [
    fields.datasetId,
    fields.requestDigest,
    fields.algorithm,
    fields.resultDigest,
    fields.buyer,
    signed,
  ]);
}

/** The receipt recorded for a request, or undefined when none was. */
export async function getReceipt(market: Market, requestDigest: Hex): Promise<RecordedReceipt | undefined> {
  const r = await market.chain.publicClient.readContract({
    address: market.address,
    abi,
    functionName: "receipt",
    args: [requestDigest],
  });
  if (r.recordedAt === 0) return undefined;
  return {
    requestDigest,
    datasetId: r.datasetId,
    buyer: r.buyer,
    algorithm: r.algorithm,
    resultDigest: r.resultDigest,
    recordedAt: r.recordedAt,
  };
}
