/**
 * The compute-to-data provider's view of the chain: access and allowed algorithms read from the DataMarket at
 * each job, receipts recorded there and signed by the provider's account; job bases read from the model
 * registry, their weights fetched by CID (so checked against it) from a blob store.
 */
import type { Address, Hex } from "viem";
import type { Signer } from "../learning/client.ts";
import { decodeModel } from "../ml/encoding.ts";
import { getVersion, type Registry } from "../registry/client.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { hasAccess, isAllowed, type Market, recordReceipt } from "./client.ts";
import type { MarketAccess, ModelSource } from "./provider.ts";

export function chainMarketAccess(market: Market, provider: Signer): MarketAccess {
  return {
    hasAccess: (datasetId: bigint, account: Address) => hasAccess(market, datasetId, account),
    isAllowed: (datasetId: bigint, algorithm: Hex) => isAllowed(market, datasetId, { digest: algorithm }),
    async recordReceipt(r) {
      const receipt = await recordReceipt(market, r, provider);
      return { txHash: receipt.transactionHash };
    },
  };
}

/** Job bases from the registry; `storeOf` gives a store that fetches from the nodes of the given accounts. */
export function registryModels(registry: Registry, storeOf: (holders: Address[]) => BlobStore): ModelSource {
  return {
    async load(modelId: bigint, version: number) {
      const record = await getVersion(registry, modelId, version);
      return decodeModel(await storeOf([record.publisher]).get(record.weightsCid));
    },
  };
}
