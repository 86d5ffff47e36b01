/**
 * Reports exchanged between operators over HTTP: the pure rules (leader rotation, the output a leader
 * proposes, when an operator signs), then operators on the embedded chain, each with its own HTTP server
 * and report routes, in this one process: a request answered by a report; a leader that proposes a wrong
 * output; tampered and replayed sign requests; a restart that would answer otherwise; one operator killed
 * with four operators (the report lands) and with three (commit-reveal takes over).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, decodeFunctionData, getAddress, parseEther, recoverTypedDataAddress } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { requireDeployment } from "../../src/chain/deploy.ts";
import { InferenceOracle, MindToken } from "../../src/chain/generated/contracts.ts";
import { sendAndWait } from "../../src/chain/tx.ts";
import {
  computeAnswer,
  getRequestStatus,
  type Oracle,
  openOracle,
  requestInference,
  setModelSpec,
  toFixedInput,
} from "../../src/oracle/client.ts";
import { type OperatorEvent, type RunningOperator, startOperator } from "../../src/oracle/operator.ts";
import { pickReportOutput, REPORT_TYPES, reportDomain, submitSignedReport } from "../../src/oracle/report.ts";
import {
  attemptAt,
  leaderOf,
  type PeerResolver,
  ReportExchange,
  refusalOf,
  reportRoutes,
  staticPeerResolver,
} from "../../src/oracle/report-exchange.ts";
import { addVersion, openRegistry, registerModel } from "../../src/registry/client.ts";
import { type BlobServer, createBlobServer } from "../../src/storage/blob-server.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";
import { YIELD_RISK_WEIGHTS } from "./yield-risk-weights.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-report-exchange-"));
const REQUESTER = 9;
/** Version 1: three operators; version 2: four. */
const TRIO = [1, 2, 3];
const QUARTET = [4, 5, 6, 7];
const LEADER_TIMEOUT_MS = 1_000;
const REPORT_WINDOW_MS = 5_000;

const INPUT = toFixedInput([0.55, 0.35, 0.3, 0.8]);
const HONEST = computeAnswer(YIELD_RISK_WEIGHTS, INPUT);

const A = "0x1000000000000000000000000000000000000001" as Address;
const B = "0x2000000000000000000000000000000000000002" as Address;
const C = "0x3000000000000000000000000000000000000003" as Address;
const D = "0x4000000000000000000000000000000000000004" as Address;

describe("report exchange rules (pure)", () => {
  it("leader rotation: index (r + k) mod n of the operators sorted by address, one attempt per timeout", () => {
    const shuffled = [C, A, D, B];
    assert.equal(leaderOf(0n, 0, shuffled), A);
    assert.equal(leaderOf(1n, 0, shuffled), B);
    assert.equal(leaderOf(1n, 1, shuffled), C);
    assert.equal(leaderOf(6n, 3, shuffled), B);
    assert.throws(() => leaderOf(1n, 0, []), /no operators/);
    assert.equal(attemptAt(0, 1_000), 0);
    assert.equal(attemptAt(999, 1_000), 0);
    assert.equal(attemptAt(2_500, 1_000), 2);
    assert.equal(attemptAt(-5, 1_000), 0);
  });

  it("the proposed output is the one with the most stake behind it; quorum is more than 2/3 and minResponses", () => {
    const s = 100n;
    const three = [
      { operator: C, output: 7n, stake: s },
      { operator: A, output: 7n, stake: s },
      { operator: B, output: 9n, stake: s },
    ];
    const choice = pickReportOutput(three, 3n * s, 2);
    assert.equal(choice?.output, 7n);
    assert.deepEqual(choice?.signers, [A, C]);
    // 2 of 3 equal stakes is exactly 2/3: not more, no report.
    assert.equal(choice?.quorum, false);
    const four = [...three, { operator: D, output: 7n, stake: s }];
    assert.equal(pickReportOutput(four, 4n * s, 2)?.quorum, true);
    assert.equal(pickReportOutput(four, 4n * s, 4)?.quorum, false);
    // A heavy liar outweighs by stake, not by count; a tie goes to the smaller output.
    assert.equal(
      pickReportOutput([...three, { operator: D, output: 9n, stake: 3n * s }], 6n * s, 1)?.output,
      9n,
    );
    assert.equal(pickReportOutput(three.slice(1), 2n * s, 1)?.output, 7n);
    assert.equal(pickReportOutput([], s, 1), undefined);
  });

  it("an operator signs only its own output, for an open request without reveals, among sorted signers", () => {
    const digest = `0x${"ab".repeat(32)}` as const;
    const own = { output: 5n, weightsDigest: digest };
    const open = { state: "open" as const, reveals: 0, weightsDigest: digest };
    const ok = { requestId: 1n, output: 5n, signers: [A, B] };
    assert.equal(refusalOf(A, own, open, ok), undefined);
    assert.equal(refusalOf(A, own, open, { ...ok, output: 6n })?.status, 409);
    assert.equal(refusalOf(A, undefined, open, ok)?.status, 404);
    assert.equal(refusalOf(A, own, undefined, ok)?.status, 404);
    assert.equal(refusalOf(C, own, open, ok)?.status, 400);
    assert.match(refusalOf(A, own, open, { ...ok, signers: [B, A] })?.error ?? "", /sorted/);
    assert.match(refusalOf(A, own, open, { ...ok, signers: [A, A] })?.error ?? "", /twice/);
    assert.equal(refusalOf(A, own, { ...open, state: "finalized" }, ok)?.status, 409);
    assert.equal(refusalOf(A, own, { ...open, reveals: 1 }, ok)?.status, 409);
    assert.equal(refusalOf(A, own, { ...open, weightsDigest: `0x${"cd".repeat(32)}` }, ok)?.status, 409);
  });
});

// ---------------------------------------------------------------------------------------------------------

let chain: LedgerChain;
let oracle: Oracle;
let modelId: bigint;
const store = new FsBlobStore(join(TMP, "blobs"));
/** Every operator's base URL, as the operators find each other in these tests. */
const urls = new Map<string, string>();
const resolve: PeerResolver = async (a) => urls.get(a.toLowerCase());
const nodes = new Map<number, OperatorNode>();

function addr(i: number): Address {
  return (chain.accounts[i] as { address: Address }).address;
}

/** One operator as a process would run it: its loop (leading when `leading`), its server with the routes. */
class OperatorNode {
  events: OperatorEvent[] = [];
  leading = true;
  running!: RunningOperator;
  exchange!: ReportExchange;
  server!: BlobServer;
  constructor(
    readonly account: number,
    readonly version: number,
  ) {}
  async start(faultyOffset?: bigint): Promise<this> {
    this.running = await startOperator(
      {
        chain,
        account: this.account,
        store,
        modelId,
        version: this.version,
        stateFile: join(TMP, `op-${this.account}.json`),
        pollMs: 100,
        reportWindowMs: REPORT_WINDOW_MS,
        faultyOffset,
        log: (e) => this.events.push(e),
      },
      (operator) => {
        this.exchange = new ReportExchange({ operator, peers: resolve, leaderTimeoutMs: LEADER_TIMEOUT_MS });
        return async () => (this.leading ? this.exchange.lead() : []);
      },
    );
    this.server = await createBlobServer(store, { routes: (app) => reportRoutes(app, this.exchange) });
    urls.set(addr(this.account).toLowerCase(), this.server.url);
    return this;
  }
  async stop(): Promise<void> {
    await this.running.stop();
    await this.server.close();
  }
  of<T extends OperatorEvent["type"]>(type: T, requestId: bigint) {
    return this.events.filter(
      (e): e is Extract<OperatorEvent, { type: T }> =>
        e.type === type && "requestId" in e && e.requestId === requestId,
    );
  }
}

async function request(version: number): Promise<bigint> {
  const r = await requestInference(
    oracle,
    { modelId, version, input: INPUT, fee: parseEther("3") },
    REQUESTER,
  );
  return r.requestId;
}

async function until(what: string, done: () => boolean | Promise<boolean>, ms = 40_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const settled = (id: bigint) => async () => (await getRequestStatus(oracle, id)).state !== "open";

async function logsOf(
  eventName: "Revealed" | "Committed" | "InferenceFinalized" | "OperatorSlashed",
  requestId: bigint,
) {
  return chain.publicClient.getContractEvents({
    address: oracle.address,
    abi: InferenceOracle.abi,
    eventName,
    args: { requestId },
    fromBlock: 0n,
  });
}

/**
 * Waits until `id` settles, then asserts it settled honestly: finalized on the honest answer and nobody
 * slashed. A failure shows what each operator of `ops` did on the request, in order, with its blocks.
 */
async function settledHonestly(id: bigint, ops: OperatorNode[]): Promise<void> {
  await until(`request ${id} settled`, settled(id), 60_000);
  const status = await getRequestStatus(oracle, id);
  const slashed = await logsOf("OperatorSlashed", id);
  const story = () =>
    JSON.stringify(
      {
        status,
        slashed: slashed.map((l) => l.args),
        events: ops.map((n) => ({
          account: n.account,
          events: n.events.filter((e) => "requestId" in e && e.requestId === id),
        })),
      },
      (_, v) => (typeof v === "bigint" ? v.toString() : v),
    );
  assert.equal(status.state, "finalized", story());
  assert.equal(status.output, HONEST, story());
  assert.equal(slashed.length, 0, story());
}

/** The signers of the `submitReport` that finalized `requestId`, read from its transaction. */
async function reportSigners(requestId: bigint): Promise<Address[]> {
  const [done] = await logsOf("InferenceFinalized", requestId);
  assert.ok(done, `request ${requestId} has no InferenceFinalized log`);
  const tx = await chain.publicClient.getTransaction({ hash: done.transactionHash });
  const call = decodeFunctionData({ abi: InferenceOracle.abi, data: tx.input });
  assert.equal(call.functionName, "submitReport", "finalized by a report, not by finalize()");
  return [...((call.args ?? [])[2] as Address[])];
}

async function post(url: string, body: string): Promise<{ status: number; json: Record<string, string> }> {
  const res = await fetch(`${url}/oracle/reports/sign`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  return { status: res.status, json: (await res.json()) as Record<string, string> };
}

const signBody = (requestId: bigint, output: bigint, signers: Address[]) =>
  JSON.stringify({ requestId: requestId.toString(), output: output.toString(), signers });

before(async () => {
  chain = await connect({ ephemeral: true });
  const manifest = await requireDeployment(chain);
  oracle = await openOracle(chain);
  const reg = await openRegistry(chain);
  const weightsCid = await store.put(YIELD_RISK_WEIGHTS);
  ({ modelId } = await registerModel(reg, "crop-yield-risk"));
  for (const v of [1, 2]) {
    await addVersion(reg, modelId, { weightsCid });
    await setModelSpec(chain, modelId, v, 4);
  }
  for (const i of [...TRIO, ...QUARTET, REQUESTER]) {
    await sendAndWait(chain, () =>
      chain.wallet(0).writeContract({
        address: manifest.contracts.MindToken.address,
        abi: MindToken.abi,
        functionName: "transfer",
        args: [addr(i), parseEther("500")],
      }),
    );
  }
  for (const i of TRIO) nodes.set(i, await new OperatorNode(i, 1).start());
  for (const i of QUARTET) nodes.set(i, await new OperatorNode(i, 2).start());
});

after(async () => {
  await Promise.all([...nodes.values()].map((n) => n.stop().catch(() => undefined)));
  await chain?.close();
  rmSync(TMP, { recursive: true, force: true });
});

describe("operators exchanging reports over HTTP (embedded chain, one process, one server each)", {
  concurrency: false,
}, () => {
  const trio = () => TRIO.map((i) => nodes.get(i) as OperatorNode);

  it("three operators answer a request through one signed report: no reveal, every operator a signer", async () => {
    const id = await request(1);
    await until(`request ${id} settled`, settled(id));
    const status = await getRequestStatus(oracle, id);
    assert.equal(status.state, "finalized");
    assert.equal(status.output, HONEST);
    assert.deepEqual(
      await reportSigners(id),
      TRIO.map(addr).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)),
    );
    assert.equal((await logsOf("Revealed", id)).length, 0);
    const [done] = await logsOf("InferenceFinalized", id);
    assert.equal((done?.args as { responders?: bigint } | undefined)?.responders, 3n);
    const reported = trio().flatMap((n) => n.of("reported", id));
    assert.equal(reported.length, 1, "one leader submitted");
    assert.equal(reported[0]?.operator, leaderOf(id, reported[0]?.attempt ?? -1, TRIO.map(addr)));
    await until("every operator saw the report", () => trio().every((n) => n.of("settled", id).length === 1));
  });

  it("a leader that proposes a wrong output gets no signatures; the right one gets all three", async () => {
    for (const n of trio()) n.leading = false;
    try {
      const id = await request(1);
      await until("every observation", async () =>
        (await Promise.all(trio().map((n) => fetch(`${n.server.url}/oracle/observations/${id}`)))).every(
          (r) => r.status === 200,
        ),
      );
      const signers = TRIO.map(addr).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
      for (const n of trio()) {
        const lie = await post(n.server.url, signBody(id, HONEST + 1n, signers));
        assert.equal(lie.status, 409);
        assert.match(lie.json.error ?? "", /signs only what it computed/);
        assert.equal(lie.json.signature, undefined);
      }
      // Tampered requests: itself left out, an unsorted list, not JSON, a field of the wrong shape.
      const [first] = trio() as [OperatorNode];
      const others = signers.filter((s) => s !== addr(first.account));
      assert.equal((await post(first.server.url, signBody(id, HONEST, others))).status, 400);
      assert.equal((await post(first.server.url, signBody(id, HONEST, [...signers].reverse()))).status, 400);
      const junk = await post(first.server.url, "{not json");
      assert.equal(junk.status, 400);
      assert.match(junk.json.error ?? "", /not JSON/);
      assert.equal(
        (await post(first.server.url, JSON.stringify({ requestId: id.toString(), output: 1 }))).status,
        400,
      );

      // The honest proposal is signed by all three, and the signatures land.
      const domain = reportDomain(oracle);
      const signatures = [];
      for (const n of trio()) {
        const ok = await post(n.server.url, signBody(id, HONEST, signers));
        assert.equal(ok.status, 200, JSON.stringify(ok.json));
        const signer = await recoverTypedDataAddress({
          domain,
          types: REPORT_TYPES,
          primaryType: "Report",
          message: {
            requestId: id,
            output: HONEST,
            weightsDigest: (await getRequestStatus(oracle, id)).weightsDigest,
            signers,
          },
          signature: ok.json.signature as `0x${string}`,
        });
        assert.equal(signer, addr(n.account));
        signatures.push({ signer, signature: ok.json.signature as `0x${string}` });
      }
      await submitSignedReport(oracle, id, HONEST, signatures, REQUESTER);
      assert.equal((await getRequestStatus(oracle, id)).output, HONEST);
      // Replayed once the request is settled: refused, nothing signed.
      const replay = await post(first.server.url, signBody(id, HONEST, signers));
      assert.equal(replay.status, 409);
      assert.match(replay.json.error ?? "", /finalized/);
      // The signatures are bound to their request: replayed on another one, the contract refuses them.
      const next = await request(1);
      await assert.rejects(submitSignedReport(oracle, next, HONEST, signatures, REQUESTER), /WrongSigner/);
      await settledHonestly(next, trio());
      assert.equal((await logsOf("Revealed", next)).length, 3, "settled by commit-reveal");
    } finally {
      for (const n of trio()) n.leading = true;
    }
  });

  it("restarted with a different answer, an operator still signs only the output it first computed", async () => {
    const [, , third] = trio() as [OperatorNode, OperatorNode, OperatorNode];
    for (const n of trio()) n.leading = false;
    try {
      const id = await request(1);
      await until("its observation", () => third.running.operator.observed(id) !== undefined);
      await third.stop();
      // Restarted on the same state file with weights that would now answer 0.5 higher.
      await third.start(500_000n);
      const signers = TRIO.map(addr).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
      const observation = await (await fetch(`${third.server.url}/oracle/observations/${id}`)).json();
      assert.equal(observation.output, HONEST.toString());
      assert.equal((await post(third.server.url, signBody(id, HONEST + 500_000n, signers))).status, 409);
      assert.equal((await post(third.server.url, signBody(id, HONEST, signers))).status, 200);
      for (const n of trio()) n.leading = true;
      await until(`request ${id} settled`, settled(id));
      assert.equal((await getRequestStatus(oracle, id)).output, HONEST);
    } finally {
      for (const n of trio()) n.leading = true;
      await third.stop();
      await third.start();
    }
  });

  it("one of four operators killed (the first leader): the next leader's report lands without it", async () => {
    const quartet = QUARTET.map((i) => nodes.get(i) as OperatorNode);
    const last = (
      await chain.publicClient.getContractEvents({
        address: oracle.address,
        abi: InferenceOracle.abi,
        eventName: "InferenceRequested",
        fromBlock: 0n,
      })
    ).length;
    const next = BigInt(last + 1);
    const firstLeader = leaderOf(next, 0, QUARTET.map(addr));
    const dead = quartet.find((n) => addr(n.account) === firstLeader) as OperatorNode;
    await dead.stop();
    try {
      const id = await request(2);
      assert.equal(id, next);
      await until(`request ${id} settled`, settled(id));
      assert.equal((await getRequestStatus(oracle, id)).output, HONEST);
      const live = quartet.filter((n) => n !== dead);
      const signers = await reportSigners(id);
      assert.deepEqual(
        signers,
        live.map((n) => addr(n.account)).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)),
      );
      assert.equal((await logsOf("Revealed", id)).length, 0);
      const [reported] = live.flatMap((n) => n.of("reported", id));
      assert.ok(reported && reported.attempt >= 1, "a later attempt's leader submitted");
      assert.equal(getAddress(reported.operator), leaderOf(id, reported.attempt, QUARTET.map(addr)));
    } finally {
      await dead.start();
    }
  });

  it("one of three operators killed: 2/3 is not more than 2/3, so commit-reveal takes over", async () => {
    const [dead, ...live] = trio() as [OperatorNode, OperatorNode, OperatorNode];
    await dead.stop();
    try {
      const id = await request(1);
      await settledHonestly(id, live);
      assert.equal((await logsOf("Revealed", id)).length, 2);
      assert.equal(live.flatMap((n) => n.of("reported", id)).length, 0);
      const unreported = live.flatMap((n) => n.of("unreported", id));
      assert.ok(unreported.length > 0);
      assert.match(unreported[0]?.reason ?? "", /no output is backed by more than 2\/3/);
    } finally {
      await dead.start();
    }
  });

  it("a static list of peer URLs resolves each operator's address by /oracle/whoami", async () => {
    const [first, second] = trio() as [OperatorNode, OperatorNode];
    const peers = staticPeerResolver([first.server.url, second.server.url, "http://127.0.0.1:9"]);
    assert.equal(await peers(addr(first.account)), first.server.url);
    assert.equal(await peers(addr(second.account)), second.server.url);
    assert.equal(await peers(addr(REQUESTER)), undefined);
  });
});
