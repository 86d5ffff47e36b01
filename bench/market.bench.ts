/**
 * Gas of the data market's transactions on a fresh embedded chain, and Ocean Protocol v4's equivalent flow
 * beside it on the same chain: its own contracts from the `@oceanprotocol/contracts` npm package
 * (ERC721Factory, ERC721Template, ERC20Template, FactoryRouter, FixedRateExchange), deployed as its
 * deployment script does, paid in the same MIND.
 *
 * What is compared: publishing a dataset for sale (ours: `publish`; Ocean: `createNftWithErc20WithFixedRate`,
 * an NFT, a datatoken and its fixed-rate exchange in one call) and one purchase of access (ours: `buyAccess`,
 * after one approval; Ocean: an approval, `buyDT` then `startOrder`). Both are measured in steady state: the
 * contracts' counters already started, the sellers already holding MIND.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  type Abi,
  type Address,
  encodePacked,
  type Hex,
  keccak256,
  maxUint256,
  parseEther,
  parseEventLogs,
  parseSignature,
  type TransactionReceipt,
  zeroAddress,
} from "viem";
import { connect, type LedgerChain } from "../src/chain/connect.ts";
import { MindToken } from "../src/chain/generated/contracts.ts";
import { transferMind } from "../src/chain/token.ts";
import { sendAndWait } from "../src/chain/tx.ts";
import {
  allowAlgorithm,
  buyAccess,
  grantAccess,
  openMarket,
  publishDataset,
  recordReceipt,
  revokeAccess,
} from "../src/market/client.ts";
import type { DatasetMetadata } from "../src/market/protocol.ts";
import { FsBlobStore } from "../src/storage/fs-blob-store.ts";
import type { Figures } from "./results-file.ts";

const METADATA: DatasetMetadata = {
  format: "ledgermind.dataset/1",
  name: "bench dataset",
  description: "admissions, one row per stay",
  schema: { age: "int", ward: "string", days: "int" },
  licence: "CC-BY-NC-4.0",
  size: { rows: 12_000, bytes: 480_000 },
};

const gas = (r: TransactionReceipt) => Number(r.gasUsed);

/** Gas of publish, buy, grant, revoke and receipt, and Ocean's publish and order beside them. */
export async function benchMarketGas(): Promise<Figures> {
  const chain = await connect({ ephemeral: true });
  const dir = mkdtempSync(join(tmpdir(), "lm-bench-market-"));
  try {
    const market = await openMarket(chain);
    const store = new FsBlobStore(dir);
    const [owner, buyer, warmBuyer, patient] = [1, 2, 3, 4];
    const account = (i: number) => (chain.accounts[i] as { address: Address }).address;
    for (const i of [buyer, warmBuyer]) await transferMind(chain, account(i), parseEther("1000"));

    const params = { store, metadata: METADATA, pricePerPeriod: parseEther("5"), period: 30 * 86_400 };
    const first = await publishDataset(market, params, owner);
    const { datasetId, receipt: publish } = await publishDataset(market, params, owner);
    // A first purchase pays the owner its first MIND (a fresh balance slot); the measured one does not.
    await buyAccess(market, { datasetId }, warmBuyer);
    const blockBefore = await chain.publicClient.getBlockNumber();
    const { receipt: buy } = await buyAccess(market, { datasetId }, buyer);
    const approve = await chain.publicClient.getBlock({ blockNumber: blockBefore + 1n });
    const now = Number((await chain.publicClient.getBlock()).timestamp);
    const grant = await grantAccess(
      market,
      { datasetId, account: account(patient), expiresAt: now + 86_400 },
      owner,
    );
    const revoke = await revokeAccess(market, { datasetId, account: account(patient) }, owner);
    const algorithm = { digest: keccak256(new TextEncoder().encode("bench algorithm")) } as const;
    const { algorithm: algorithmHex } = await allowAlgorithm(market, { datasetId, algorithm }, owner);
    const receipt = await recordReceipt(
      market,
      {
        datasetId,
        requestDigest: keccak256(new TextEncoder().encode("request 1")),
        algorithm: algorithmHex,
        resultDigest: keccak256(new TextEncoder().encode("result 1")),
        buyer: account(buyer),
      },
      owner,
    );
    const ocean = await benchOcean(chain, market.token);
    return {
      "gas.data.publish": gas(publish),
      "gas.data.publish.first": gas(first.receipt),
      "gas.data.buy": gas(buy),
      "gas.data.buy.approve": Number(approve.gasUsed),
      "gas.data.buy.with_approve": gas(buy) + Number(approve.gasUsed),
      "gas.data.grant": gas(grant),
      "gas.data.revoke": gas(revoke),
      "gas.data.receipt": gas(receipt),
      ...ocean,
    };
  } finally {
    await chain.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An Ocean v4 artifact from the npm package: its ABI and creation bytecode. */
function oceanArtifact(path: string): { abi: Abi; bytecode: Hex } {
  const root = dirname(createRequire(import.meta.url).resolve("@oceanprotocol/contracts/package.json"));
  const json = JSON.parse(readFileSync(join(root, "artifacts/contracts", path), "utf8")) as {
    abi: Abi;
    bytecode: Hex;
  };
  return { abi: json.abi, bytecode: json.bytecode };
}

const OCEAN = {
  collector: oceanArtifact("communityFee/OPFCommunityFeeCollector.sol/OPFCommunityFeeCollector.json"),
  router: oceanArtifact("pools/FactoryRouter.sol/FactoryRouter.json"),
  fixedRate: oceanArtifact("pools/fixedRate/FixedRateExchange.sol/FixedRateExchange.json"),
  erc20: oceanArtifact("templates/ERC20Template.sol/ERC20Template.json"),
  erc721: oceanArtifact("templates/ERC721Template.sol/ERC721Template.json"),
  factory: oceanArtifact("ERC721Factory.sol/ERC721Factory.json"),
};

/**
 * Ocean v4's publish and order on the same chain, in MIND: deployed as its scripts/deploy-contracts.js does
 * (the pool template left out, as there), then a publisher creates an NFT with a datatoken sold at a fixed
 * rate, and a buyer approves MIND, buys one datatoken and orders the service with it.
 */
async function benchOcean(chain: LedgerChain, mind: Address): Promise<Figures> {
  const deployer = chain.wallet(0);
  const [publisher, buyer] = [chain.wallet(5), chain.wallet(6)];
  const deploy = async (a: { abi: Abi; bytecode: Hex }, args: readonly unknown[]) => {
    const r = await sendAndWait(chain, () =>
      deployer.deployContract({ abi: a.abi, bytecode: a.bytecode, args }),
    );
    if (!r.contractAddress) throw new Error("an Ocean deployment created no contract");
    return r.contractAddress;
  };
  const call = (
    wallet: typeof deployer,
    address: Address,
    abi: Abi,
    functionName: string,
    args: readonly unknown[],
  ) => sendAndWait(chain, () => wallet.writeContract({ address, abi, functionName, args }));
  const me = deployer.account.address;
  const collector = await deploy(OCEAN.collector, [me, me]);
  const router = await deploy(OCEAN.router, [
    me,
    mind,
    "0x000000000000000000000000000000000000dEaD",
    collector,
    [],
  ]);
  const fixedRate = await deploy(OCEAN.fixedRate, [router]);
  const erc20 = await deploy(OCEAN.erc20, []);
  const erc721 = await deploy(OCEAN.erc721, []);
  const factory = await deploy(OCEAN.factory, [erc721, erc20, router]);
  await call(deployer, router, OCEAN.router.abi, "addFactory", [factory]);
  await call(deployer, router, OCEAN.router.abi, "addFixedRateContract", [fixedRate]);

  const publisherAddress = publisher.account.address;
  const create = (i: number) =>
    call(publisher, factory, OCEAN.factory.abi, "createNftWithErc20WithFixedRate", [
      {
        name: `bench dataset ${i}`,
        symbol: `BD${i}`,
        templateIndex: 1n,
        tokenURI: "https://example.org/metadata.json",
        transferable: true,
        owner: publisherAddress,
      },
      {
        templateIndex: 1n,
        strings: [`bench datatoken ${i}`, `DT${i}`],
        addresses: [publisherAddress, publisherAddress, zeroAddress, zeroAddress],
        uints: [parseEther("1000000"), 0n],
        bytess: [],
      },
      {
        fixedPriceAddress: fixedRate,
        // base token, owner, market fee collector, allowed swapper (zero: anyone)
        addresses: [mind, publisherAddress, publisherAddress, zeroAddress],
        // base decimals, datatoken decimals, rate (5 MIND a datatoken), market fee, mint on buy
        uints: [18n, 18n, parseEther("5"), 0n, 1n],
      },
    ]);
  await create(1);
  const published = await create(2);
  const [created] = parseEventLogs({
    abi: OCEAN.factory.abi,
    logs: published.logs,
    eventName: "TokenCreated",
  });
  const datatoken = (created?.args as { newTokenAddress?: Address } | undefined)?.newTokenAddress;
  if (!datatoken) throw new Error("createNftWithErc20WithFixedRate emitted no TokenCreated");
  const exchangeId = (await chain.publicClient.readContract({
    address: fixedRate,
    abi: OCEAN.fixedRate.abi,
    functionName: "generateExchangeId",
    args: [mind, datatoken],
  })) as Hex;

  // The publisher already holds MIND, as ours does when measured.
  await transferMind(chain, publisherAddress, parseEther("1"));
  await transferMind(chain, buyer.account.address, parseEther("1000"));
  const approval = await call(buyer, mind, MindToken.abi, "approve", [fixedRate, parseEther("10")]);
  const buyDT = await call(buyer, fixedRate, OCEAN.fixedRate.abi, "buyDT", [
    exchangeId,
    parseEther("1"),
    maxUint256,
    zeroAddress,
    0n,
  ]);
  // A provider fee of 0, signed by the provider (the publisher) as ERC20Template checks it.
  const validUntil = BigInt(Math.floor(Date.now() / 1000) + 3600);
  const providerData = "0x" as Hex;
  const message = keccak256(
    encodePacked(
      ["bytes", "address", "address", "uint256", "uint256"],
      [providerData, publisherAddress, mind, 0n, validUntil],
    ),
  );
  const { v, r, s } = parseSignature(await publisher.signMessage({ message: { raw: message } }));
  const startOrder = await call(buyer, datatoken, OCEAN.erc20.abi, "startOrder", [
    buyer.account.address,
    0n,
    {
      providerFeeAddress: publisherAddress,
      providerFeeToken: mind,
      providerFeeAmount: 0n,
      v: Number(v),
      r,
      s,
      validUntil,
      providerData,
    },
    { consumeMarketFeeAddress: zeroAddress, consumeMarketFeeToken: zeroAddress, consumeMarketFeeAmount: 0n },
  ]);
  return {
    "gas.data.ocean.publish": gas(published),
    "gas.data.ocean.buy": gas(approval) + gas(buyDT) + gas(startOrder),
    "gas.data.ocean.buy.approve": gas(approval),
    "gas.data.ocean.buy.buyDT": gas(buyDT),
    "gas.data.ocean.buy.startOrder": gas(startOrder),
  };
}
