/**
 * The node's compute-to-data role: the provider of src/market/provider.ts for the datasets its config names,
 * each checked on the DataMarket (this account must be its provider) and with the privacy budget its
 * published metadata asks for. Results go to a store of its own, which no route serves as blobs: only the
 * job's buyer gets a result (see ComputeProvider.result).
 */
import { join } from "node:path";
import { type Address, isAddressEqual } from "viem";
import type { LedgerChain } from "../chain/connect.ts";
import { chainMarketAccess, registryModels } from "../market/chain-access.ts";
import { getDataset, getMetadata, openMarket } from "../market/client.ts";
import { privateRows } from "../market/private-data.ts";
import { ComputeProvider, type ProvidedDataset } from "../market/provider.ts";
import { openRegistry } from "../registry/client.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { FsBlobStore } from "../storage/fs-blob-store.ts";
import type { NodeConfig, ProviderRoleConfig } from "./config.ts";

export class ProviderRoleError extends Error {
  override name = "ProviderRoleError";
}

export async function startProviderRole(o: {
  chain: LedgerChain;
  config: NodeConfig & { roles: { provider: ProviderRoleConfig } };
  storeFor: (accounts: () => Promise<readonly Address[]>) => BlobStore;
}): Promise<ComputeProvider> {
  const { chain, config } = o;
  const role = config.roles.provider;
  const address = chain.wallet(config.account).account.address;
  const market = await openMarket(chain);
  const datasets = new Map<bigint, ProvidedDataset>();
  for (const d of role.datasets) {
    if (datasets.has(d.id)) throw new ProviderRoleError(`roles.provider: dataset ${d.id} is named twice`);
    const record = await getDataset(market, d.id);
    if (!isAddressEqual(record.provider, address))
      throw new ProviderRoleError(
        `dataset ${d.id}'s provider on the DataMarket is ${record.provider}, not this node's account ${address}: its owner names the provider`,
      );
    const metadata = await getMetadata(
      o.storeFor(async () => [record.owner, record.publisher]),
      record,
    );
    const budget = metadata.privacyBudget;
    datasets.set(d.id, {
      data: privateRows(d.data),
      ...(budget ? { dp: { epsilonBudget: budget.epsilon, delta: budget.delta } } : {}),
    });
  }
  return new ComputeProvider({
    domain: { chainId: chain.chainId, market: market.address },
    market: chainMarketAccess(market, config.account),
    models: registryModels(await openRegistry(chain), (holders) => o.storeFor(async () => holders)),
    datasets,
    results: new FsBlobStore(join(config.dataDir, "compute", "results")),
    stateDir: join(config.dataDir, "compute"),
    ...(role.maxSamplePasses === undefined ? {} : { maxSamplePasses: role.maxSamplePasses }),
  });
}
