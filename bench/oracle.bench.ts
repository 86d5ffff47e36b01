import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Address,
  type Hash,
  type Hex,
  maxUint256,
  parseEther,
  type TransactionReceipt,
  toHex,
} from "viem";
import { connect, type LedgerChain } from "../src/chain/connect.ts";
import { ORACLE_PARAMS, requireDeployment } from "../src/chain/deploy.ts";
import { InferenceOracle, MindToken, StandInZkVerifier } from "../src/chain/generated/contracts.ts";
import { sendAndWait } from "../src/chain/tx.ts";
import {
  commitmentOf,
  computeAnswer,
  type FlatProof,
  fulfillByProof,
  getOracleParams,
  getRequestStatus,
  type Oracle,
  openOracle,
  requestInference,
  setModelSpec,
} from "../src/oracle/client.ts";
import { type RunningOperator, startOperator } from "../src/oracle/operator.ts";
import { reportDomain, signReport, submitSignedReport } from "../src/oracle/report.ts";
import { ReportExchange, reportRoutes } from "../src/oracle/report-exchange.ts";
import {
  addVersion,
  openRegistry,
  type Registry,
  registerModel,
  setZkVerifier,
} from "../src/registry/client.ts";
import { type BlobServer, createBlobServer } from "../src/storage/blob-server.ts";
import { cidOf, sha256Digest } from "../src/storage/cid.ts";
import { FsBlobStore } from "../src/storage/fs-blob-store.ts";
import { heaviestGas, largestRequest } from "../test/contracts/inference-oracle-fixture.ts";
import { YIELD_RISK_WEIGHTS } from "../test/oracle/yield-risk-weights.ts";
import type { Figures } from "./results-file.ts";

/**
 * Operator counts measured, each on its own model version with exactly that many operators (every one of
 * them answers: a report needs more than 2/3 of the version's stake). The deployed ORACLE_PARAMS
 * (maxOperators 32, minResponses 2) fit all of them.
 */
const SIZES = [3, 7, 15] as const;
const REQUESTER = 16;
/** Explicit limits, so that transactions queued for one block need no estimate against unmined state. */
const TX_GAS = 400_000n;
const FINALIZE_GAS = 3_000_000n;
const INPUT = [550_000n, 350_000n, 300_000n, 800_000n];

async function rpc(chain: LedgerChain, method: string, params: unknown[] = []): Promise<unknown> {
  return chain.publicClient.request({ method, params } as never);
}

/**
 * Sends transactions into one block: automine off, every transaction queued, one `evm_mine`. That is what
 * operators that answer promptly do on a chain with a block time: each phase lands in one block.
 */
async function inOneBlock(chain: LedgerChain, sends: (() => Promise<Hash>)[]): Promise<TransactionReceipt[]> {
  await rpc(chain, "evm_setAutomine", [false]);
  let hashes: Hash[];
  try {
    hashes = [];
    for (const send of sends) hashes.push(await send());
    await rpc(chain, "evm_mine");
  } finally {
    await rpc(chain, "evm_setAutomine", [true]);
  }
  const receipts = await Promise.all(
    hashes.map((hash) => chain.publicClient.getTransactionReceipt({ hash })),
  );
  const block = receipts[0]?.blockNumber;
  for (const r of receipts) {
    if (r.status !== "success") throw new Error(`bench transaction ${r.transactionHash} reverted`);
    if (r.blockNumber !== block) throw new Error("the batch did not fit one block");
  }
  return receipts;
}

async function mineTo(chain: LedgerChain, height: bigint): Promise<void> {
  const head = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
  if (height > head) await rpc(chain, "hardhat_mine", [toHex(height - head)]);
}

function write(chain: LedgerChain, oracle: Oracle, account: number, functionName: string, args: unknown[]) {
  return () =>
    chain.wallet(account).writeContract({
      address: oracle.address,
      abi: InferenceOracle.abi,
      functionName,
      args,
      gas: functionName === "finalize" ? FINALIZE_GAS : TX_GAS,
    } as never);
}

const sum = (receipts: TransactionReceipt[]) => receipts.reduce((s, r) => s + r.gasUsed, 0n);

/** The version whose operators are exactly accounts 1..k. */
const versionOf = (k: number) => SIZES.indexOf(k as (typeof SIZES)[number]) + 1;

/** One commit/reveal round by operators 1..k, each phase in one block; the request's EOA gets no callback. */
async function commitReveal(chain: LedgerChain, oracle: Oracle, modelId: bigint, k: number) {
  const req = await requestInference(
    oracle,
    { modelId, version: versionOf(k), input: INPUT, fee: parseEther("1") },
    REQUESTER,
  );
  const output = computeAnswer(YIELD_RISK_WEIGHTS, INPUT);
  const ops = Array.from({ length: k }, (_, i) => i + 1);
  const salt = (i: number) => toHex(i, { size: 32 }) as Hex;
  const address = (i: number) => (chain.accounts[i] as { address: Address }).address;
  const commits = await inOneBlock(
    chain,
    ops.map((i) =>
      write(chain, oracle, i, "commit", [
        req.requestId,
        commitmentOf(req.requestId, address(i), output, salt(i)),
      ]),
    ),
  );
  // The first block that may reveal is commitDeadline + 1: mine to just before it.
  await mineTo(chain, req.commitDeadline);
  const reveals = await inOneBlock(
    chain,
    ops.map((i) => write(chain, oracle, i, "reveal", [req.requestId, output, salt(i)])),
  );
  // Every committed operator revealed: the first operator finalizes in the next block.
  const [finalize] = await inOneBlock(chain, [write(chain, oracle, 1, "finalize", [req.requestId])]);
  if (!finalize) throw new Error("no finalize receipt");
  return {
    requestGas: req.gasUsed,
    gas: sum(commits) + sum(reveals) + finalize.gasUsed,
    blocks: finalize.blockNumber - req.blockNumber,
  };
}

/** One report round: operators 1..k sign, the requester submits in the next block. */
async function report(chain: LedgerChain, oracle: Oracle, modelId: bigint, weightsDigest: Hex, k: number) {
  const req = await requestInference(
    oracle,
    { modelId, version: versionOf(k), input: INPUT, fee: parseEther("1") },
    REQUESTER,
  );
  const output = computeAnswer(YIELD_RISK_WEIGHTS, INPUT);
  const domain = reportDomain(oracle);
  const signers = Array.from(
    { length: k },
    (_, i) => (chain.accounts[i + 1] as { address: Address }).address,
  );
  const signatures = await Promise.all(
    Array.from({ length: k }, (_, i) =>
      signReport(chain.accounts[i + 1] as never, domain, req.requestId, output, weightsDigest, signers),
    ),
  );
  const sent = await submitSignedReport(oracle, req.requestId, output, signatures, REQUESTER);
  return { gas: sent.gasUsed, blocks: sent.blockNumber - req.blockNumber };
}

/**
 * One fulfilment by proof on the version of operators 1..k: a stand-in verifier that accepts one proof
 * (a keccak comparison, not a pairing) is set in the registry, then operator 1 proves the request. The gas
 * is the oracle's own path plus the stand-in's few thousand; the real Groth16 verifier adds its own.
 */
async function zkFulfil(chain: LedgerChain, oracle: Oracle, reg: Registry, modelId: bigint, k: number) {
  const output = computeAnswer(YIELD_RISK_WEIGHTS, INPUT);
  const commitment = 12_345n;
  const proof = [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n] as const satisfies FlatProof;
  const deployed = await sendAndWait(chain, () =>
    chain.wallet(0).deployContract({
      abi: StandInZkVerifier.abi,
      bytecode: StandInZkVerifier.bytecode,
      args: [toHex(commitment, { size: 32 }), INPUT, output, proof],
    }),
  );
  const verifier = deployed.contractAddress as Address;
  await setZkVerifier(reg, { modelId, version: versionOf(k), verifier, commitment }, 0);
  const req = await requestInference(
    oracle,
    { modelId, version: versionOf(k), input: INPUT, fee: parseEther("1") },
    REQUESTER,
  );
  const done = await fulfillByProof(oracle, { requestId: req.requestId, input: INPUT, output, proof }, 1);
  return done.gasUsed;
}

/**
 * Gas of the inference oracle on a fresh embedded chain with the deployed ORACLE_PARAMS, per fulfilled
 * request: commit/reveal (every commit, reveal and the finalize) and report (the submitReport) for 3, 7
 * and 15 operators; the blocks from the request to the result when every operator answers promptly; and
 * `gas.oracle.max_tx.n255`, the largest single transaction (request, commit, reveal, finalize or report) of
 * a request with 255 operators in the worst order and a callback that burns all of MAX_CALLBACK_GAS
 * (`largestRequest` in test/contracts/inference-oracle-fixture.ts), which must stay under 10M gas; and
 * `gas.zk.fulfil_by_proof`, one `fulfillByProof` with a stand-in verifier (`zkFulfil`).
 */
export async function benchOracleGas(): Promise<Figures> {
  const chain = await connect({ ephemeral: true });
  try {
    const manifest = await requireDeployment(chain);
    const largest = SIZES[SIZES.length - 1] as number;
    let oracle = await openOracle(chain);
    const params = await getOracleParams(oracle);
    if (params.maxOperators < largest || params.minResponses > SIZES[0]) {
      // The deployed oracle cannot take every size: a separate one, same windows, room for all.
      const deployed = await sendAndWait(chain, () =>
        chain.wallet(0).deployContract({
          abi: InferenceOracle.abi,
          bytecode: InferenceOracle.bytecode,
          args: [
            manifest.contracts.MindToken.address,
            manifest.contracts.ModelRegistry.address,
            { ...ORACLE_PARAMS, maxOperators: Math.max(largest, 16), minResponses: SIZES[0] },
          ],
        }),
      );
      oracle = await openOracle(chain, { address: deployed.contractAddress as Address });
    }
    const reg = await openRegistry(chain);
    const { modelId } = await registerModel(reg, "bench-model");
    const weightsCid = cidOf(YIELD_RISK_WEIGHTS);
    for (const k of SIZES) {
      await addVersion(reg, modelId, { weightsCid });
      await setModelSpec(oracle, modelId, versionOf(k), INPUT.length);
    }
    const weightsDigest = sha256Digest(YIELD_RISK_WEIGHTS);
    const token = manifest.contracts.MindToken.address;
    for (let i = 1; i <= largest; i++) {
      const who = (chain.accounts[i] as { address: Address }).address;
      const versions = SIZES.filter((k) => i <= k).map(versionOf);
      await sendAndWait(chain, () =>
        chain.wallet(0).writeContract({
          address: token,
          abi: MindToken.abi,
          functionName: "transfer",
          args: [who, ORACLE_PARAMS.minStake * BigInt(versions.length)],
        }),
      );
      await sendAndWait(chain, () =>
        chain.wallet(i).writeContract({
          address: token,
          abi: MindToken.abi,
          functionName: "approve",
          args: [oracle.address, maxUint256],
        }),
      );
      for (const v of versions) {
        await write(chain, oracle, i, "registerOperator", [modelId, v, ORACLE_PARAMS.minStake])();
      }
    }
    await sendAndWait(chain, () =>
      chain.wallet(0).writeContract({
        address: token,
        abi: MindToken.abi,
        functionName: "transfer",
        args: [(chain.accounts[REQUESTER] as { address: Address }).address, parseEther("1000")],
      }),
    );
    // Warm-up: the first request ever also initializes the request counter.
    await commitReveal(chain, oracle, modelId, SIZES[0]);

    const figures: Figures = {};
    const blocks = new Set<bigint>();
    for (const k of SIZES) {
      const round = await commitReveal(chain, oracle, modelId, k);
      figures[`gas.oracle.commit_reveal.n${k}`] = Number(round.gas);
      if (k === SIZES[0]) figures["gas.oracle.request"] = Number(round.requestGas);
      blocks.add(round.blocks);
    }
    if (blocks.size !== 1) throw new Error(`blocks to result varied with the operator count: ${[...blocks]}`);
    figures["oracle.blocks_to_result"] = Number([...blocks][0]);
    const reportBlocks = new Set<bigint>();
    for (const k of SIZES) {
      const round = await report(chain, oracle, modelId, weightsDigest, k);
      figures[`gas.oracle.report.n${k}`] = Number(round.gas);
      reportBlocks.add(round.blocks);
    }
    figures["oracle.blocks_to_result.report"] = Number([...reportBlocks][0]);
    // Measured with the stand-in verifier: re-measure with the real Groth16 verifier once it exists.
    figures["gas.zk.fulfil_by_proof"] = Number(await zkFulfil(chain, oracle, reg, modelId, SIZES[0]));

    const worst = await largestRequest(chain, {
      token,
      registry: manifest.contracts.ModelRegistry.address,
    });
    const txs = [worst.request, ...worst.commits, ...worst.reveals, worst.finalize, worst.report];
    const heaviest = heaviestGas(txs);
    if (heaviest >= 10_000_000n)
      throw new Error(`a 255-operator request needs a ${heaviest}-gas transaction`);
    figures["gas.oracle.max_tx.n255"] = Number(heaviest);
    return figures;
  } finally {
    await chain.close();
  }
}

/** Requests timed by `benchOracleReportLatency`; the figure is their median. */
const LATENCY_REQUESTS = 5;

/**
 * `oracle.report.latency_s.n7`: seconds from sending a request to its result on chain through the report
 * path, with 7 operators exchanging observations and signatures over HTTP, each with its own server, its
 * own polling loop (100 ms) and its own state file, but all in this one process on the embedded chain
 * (the median of LATENCY_REQUESTS requests). The oracle here has 16-block windows: on the embedded chain
 * every transaction is a block of its own, and 7 commits do not fit the deployed 4-block commit window
 * (on a chain with real blocks they do); the report path itself does not depend on the windows.
 */
export async function benchOracleReportLatency(): Promise<Figures> {
  const n = 7;
  const chain = await connect({ ephemeral: true });
  const running: RunningOperator[] = [];
  const servers: BlobServer[] = [];
  let cleanup = () => {};
  try {
    const manifest = await requireDeployment(chain);
    const deployed = await sendAndWait(chain, () =>
      chain.wallet(0).deployContract({
        abi: InferenceOracle.abi,
        bytecode: InferenceOracle.bytecode,
        args: [
          manifest.contracts.MindToken.address,
          manifest.contracts.ModelRegistry.address,
          { ...ORACLE_PARAMS, commitWindow: 16, revealWindow: 16 },
        ],
      }),
    );
    const oracle = await openOracle(chain, { address: deployed.contractAddress as Address });
    const reg = await openRegistry(chain);
    const dir = mkdtempSync(join(tmpdir(), "ledgermind-bench-report-"));
    cleanup = () => rmSync(dir, { recursive: true, force: true });
    const store = new FsBlobStore(join(dir, "blobs"));
    const weightsCid = await store.put(YIELD_RISK_WEIGHTS);
    const { modelId } = await registerModel(reg, "bench-report-latency");
    await addVersion(reg, modelId, { weightsCid });
    await setModelSpec(oracle, modelId, 1, INPUT.length);
    for (const i of [...Array(n).keys()].map((k) => k + 1).concat(REQUESTER)) {
      await sendAndWait(chain, () =>
        chain.wallet(0).writeContract({
          address: manifest.contracts.MindToken.address,
          abi: MindToken.abi,
          functionName: "transfer",
          args: [(chain.accounts[i] as { address: Address }).address, parseEther("1000")],
        }),
      );
    }
    const urls = new Map<string, string>();
    for (let i = 1; i <= n; i++) {
      let exchange: ReportExchange | undefined;
      const op = await startOperator(
        {
          chain,
          account: i,
          store,
          modelId,
          version: 1,
          oracle,
          stateFile: join(dir, `op-${i}.json`),
          pollMs: 100,
          reportWindowMs: 10_000,
        },
        (operator) => {
          const x = new ReportExchange({ operator, peers: async (a) => urls.get(a.toLowerCase()) });
          exchange = x;
          return () => x.lead();
        },
      );
      running.push(op);
      const served = exchange as ReportExchange;
      const server = await createBlobServer(store, { routes: (app) => reportRoutes(app, served) });
      servers.push(server);
      urls.set(op.operator.address.toLowerCase(), server.url);
    }
    const seconds: number[] = [];
    for (let k = 0; k < LATENCY_REQUESTS; k++) {
      const started = performance.now();
      const { requestId } = await requestInference(
        oracle,
        { modelId, version: 1, input: INPUT, fee: parseEther("1") },
        REQUESTER,
      );
      for (;;) {
        const status = await getRequestStatus(oracle, requestId);
        if (status.state !== "open") {
          if (status.reveals !== 0 || status.state !== "finalized")
            throw new Error(`request ${requestId} was not answered by a report (${status.state})`);
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      seconds.push((performance.now() - started) / 1000);
    }
    seconds.sort((a, b) => a - b);
    const median = seconds[Math.floor(seconds.length / 2)] as number;
    return { [`oracle.report.latency_s.n${n}`]: Math.round(median * 100) / 100 };
  } finally {
    await Promise.all(running.map((r) => r.stop()));
    await Promise.all(servers.map((s) => s.close()));
    await chain.close();
    cleanup();
  }
}
