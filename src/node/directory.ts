/**
 * The node directory (contracts/NodeDirectory.sol) from a node's side: each account announces the base
 * URL its node serves blobs at, and a node turns the accounts whose content it needs (a model version's
 * operators, a round's trainers) into the peers its HttpBlobStore asks.
 *
 * An announced URL is a hint: the blob store checks every byte against its CID, so a wrong or stale
 * entry costs a failed fetch, never wrong content.
 */

import type { Address, TransactionReceipt } from "viem";
import type { LedgerChain } from "../chain/connect.ts";
import { requireDeployment } from "../chain/deploy.ts";
import { NodeDirectory } from "../chain/generated/contracts.ts";
import { sendAndWait } from "../chain/tx.ts";
import { type Signer, walletOf } from "../learning/client.ts";

/** A NodeDirectory deployment. */
export interface Directory {
  chain: LedgerChain;
  address: Address;
  /** Where its events start. */
  fromBlock: bigint;
}

/** The most addresses one `endpointsOf` call takes: the contract's MAX_LOOKUP (tested equal). */
export const MAX_LOOKUP = 256;

/** How long `directoryPeers` and `directoryEndpoints` keep an answer, unless told otherwise. */
export const DEFAULT_PEERS_TTL_MS = 10_000;

/** The deployment manifest's NodeDirectory. */
export async function openDirectory(chain: LedgerChain): Promise<Directory> {
  const entry = (await requireDeployment(chain)).contracts.NodeDirectory;
  return { chain, address: entry.address, fromBlock: BigInt(entry.block) };
}

/**
 * Announces (or replaces) the signer's own URL; the contract refuses an empty one, one longer than 256
 * bytes, one not starting with http:// or https://, and one holding a space or a control character.
 * @throws ContractRefusedError naming the contract's error (EmptyUrl, UrlTooLong, UnsupportedScheme,
 *   ForbiddenCharacter)
 * @example await announceEndpoint(await openDirectory(chain), "http://10.0.0.2:8600", 1)
 */
export function announceEndpoint(
  directory: Directory,
  url: string,
  signer: Signer,
): Promise<TransactionReceipt> {
  const wallet = walletOf(directory.chain, signer);
  return sendAndWait(directory.chain, () =>
    wallet.writeContract({
      address: directory.address,
      abi: NodeDirectory.abi,
      functionName: "announce",
      args: [url],
    }),
  );
}

/** The URL `node` announced, or undefined where it announced none. */
export async function endpointOf(directory: Directory, node: Address): Promise<string | undefined> {
  const url = await directory.chain.publicClient.readContract({
    address: directory.address,
    abi: NodeDirectory.abi,
    functionName: "endpointOf",
    args: [node],
  });
  return url === "" ? undefined : url;
}

/** The URLs of `nodes`, in their order (undefined where one announced none), read MAX_LOOKUP at a time. */
export async function endpointsOf(
  directory: Directory,
  nodes: readonly Address[],
): Promise<(string | undefined)[]> {
  const pages: Promise<readonly string[]>[] = [];
  for (let i = 0; i < nodes.length; i += MAX_LOOKUP)
    pages.push(
      directory.chain.publicClient.readContract({
        address: directory.address,
        abi: NodeDirectory.abi,
        functionName: "endpointsOf",
        args: [nodes.slice(i, i + MAX_LOOKUP)],
      }),
    );
  return (await Promise.all(pages)).flat().map((url) => (url === "" ? undefined : url));
}

/** Every account that ever announced a URL, in the order of its first announcement (withdrawn ones too). */
export async function announcedNodes(directory: Directory): Promise<Address[]> {
  const logs = await directory.chain.publicClient.getContractEvents({
    address: directory.address,
    abi: NodeDirectory.abi,
    eventName: "EndpointAnnounced",
    fromBlock: directory.fromBlock,
    strict: true,
  });
  return [...new Set(logs.map((log) => log.args.node))];
}

export interface DirectoryPeersOptions {
  /** How long an answer is kept before the accounts and their URLs are asked again (default 10 s). */
  ttlMs?: number;
  /** The clock, for tests. */
  now?: () => number;
}

/**
 * A peer list for HttpBlobStore: the announced URLs of the accounts `addresses` names (asked anew once the
 * last answer is `ttlMs` old), without those that announced none and without repeats. Calls while an
 * answer is being read share it; a failed read is not kept, so the next call asks again.
 * @example new HttpBlobStore(local, { peers: directoryPeers(directory, async () => operators) })
 */
export function directoryPeers(
  directory: Directory,
  addresses: () => Promise<readonly Address[]>,
  { ttlMs = DEFAULT_PEERS_TTL_MS, now = Date.now }: DirectoryPeersOptions = {},
): () => Promise<string[]> {
  let cached: { at: number; peers: Promise<string[]> } | undefined;
  return () => {
    if (cached === undefined || now() - cached.at >= ttlMs) {
      const peers = addresses()
        .then((accounts) => endpointsOf(directory, accounts))
        .then((urls) => [...new Set(urls.filter((url): url is string => url !== undefined))]);
      const entry = { at: now(), peers };
      cached = entry;
      peers.catch(() => {
        if (cached === entry) cached = undefined;
      });
    }
    return cached.peers;
  };
}

/**
 * The announced URLs of the accounts each call names, in their order, without those that announced none
 * and without repeats. Each account's answer is kept for ttlMs: a round's validators ask for one trainer's
 * URL per update, all at once. Accounts not yet known are read in one call; a failed read is not kept.
 * @example new HttpBlobStore(local, { peers, peersOf: directoryEndpoints(directory) })
 */
export function directoryEndpoints(
  directory: Directory,
  { ttlMs = DEFAULT_PEERS_TTL_MS, now = Date.now }: DirectoryPeersOptions = {},
): (accounts: readonly Address[]) => Promise<string[]> {
  const cache = new Map<string, { at: number; url: Promise<string | undefined> }>();
  return async (accounts) => {
    const keys = accounts.map((a) => a.toLowerCase());
    const stale = [...new Set(keys)].filter((key) => {
      const entry = cache.get(key);
      return entry === undefined || now() - entry.at >= ttlMs;
    });
    if (stale.length > 0) {
      const read = endpointsOf(directory, stale as Address[]);
      stale.forEach((key, i) => {
        const entry = { at: now(), url: read.then((urls) => urls[i]) };
        cache.set(key, entry);
        entry.url.catch(() => {
          if (cache.get(key) === entry) cache.delete(key);
        });
      });
    }
    const entries = keys.map((key) => cache.get(key) as { url: Promise<string | undefined> });
    const urls = await Promise.all(entries.map((entry) => entry.url));
    return [...new Set(urls.filter((url): url is string => url !== undefined))];
  };
}
