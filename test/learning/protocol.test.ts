import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, type Hex, keccak256, stringToHex, toHex } from "viem";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { mindBalance, transferMind } from "../../src/chain/token.ts";
import { ContractRefusedError } from "../../src/chain/tx.ts";
import { SCORE_EXCLUDED } from "../../src/learning/finalize.ts";
import {
  aggregateProposers,
  commitScores,
  commitUpdate,
  createTask,
  defaultTaskParams,
  fileRoleStore,
  getRound,
  joinTask,
  memberOf,
  memoryRoleStore,
  openTasks,
  openUpdate,
  type ProtocolOptions,
  type ProtocolRoles,
  type ProtocolRoundReport,
  packScores,
  phaseOf,
  type RoleStore,
  revealScores,
  runProtocol,
  scoreCommitment,
  scoresOf,
  startRound,
  type Tasks,
} from "../../src/learning/index.ts";
import { canonicalOf, simulateFederated } from "../../src/learning/simulate.ts";
import { encodeCanonical } from "../../src/ml/encoding.ts";
import { initialWeights } from "../../src/ml/models.ts";
import { addVersion, getVersion, openRegistry, registerModel } from "../../src/registry/client.ts";
import type { BlobStore } from "../../src/storage/blob-store.ts";
import { cidFromDigest, sha256Digest } from "../../src/storage/cid.ts";
import { FsBlobStore } from "../../src/storage/fs-blob-store.ts";

/** 3 trainers of 120 digits, 3 validators of 200, 400 test digits, softmax regression: a round is well under 1 s. */
const SMALL = {
  clients: 3,
  validators: 3,
  alpha: 0.5,
  seed: 7,
  samplesPerClient: 120,
  validatorSamples: 200,
  testSize: 400,
  rounds: 2,
  localEpochs: 1,
  lr: 0.1,
  batch: 32,
  architecture: "logreg-784-10",
  byzantine: 0,
  attack: "none",
  strategy: "fedavg",
} satisfies ProtocolOptions;

let chain: LedgerChain;
let tasks: Tasks;
let storeDir: string;
let store: FsBlobStore;

function mine(blocks: number): Promise<unknown> {
  return chain.publicClient.request({ method: "hardhat_mine", params: [toHex(blocks)] } as never);
}

before(async () => {
  chain = await connect({ ephemeral: true });
  await deployAll(chain);
  tasks = await openTasks(chain);
  storeDir = await mkdtemp(join(tmpdir(), "ledgermind-protocol-test-"));
  store = new FsBlobStore(storeDir);
});

after(async () => {
  await chain?.close();
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
});

/** A run on the shared chain and store; the roles as the last step saw them. */
async function run(
  options: Partial<ProtocolOptions> = {},
): Promise<{ summary: Awaited<ReturnType<typeof runProtocol>>; roles: ProtocolRoles }> {
  let roles: ProtocolRoles | undefined;
  const beforeStep = options.beforeStep;
  const summary = await runProtocol({
    ...SMALL,
    chain,
    store,
    ...options,
    beforeStep: async (context) => {
      roles = context.roles;
      await beforeStep?.(context);
    },
  });
  assert.ok(roles);
  return { summary, roles };
}

/** What a run decided, without what legitimately differs between runs (random salts, timings, gas). */
function decisions(reports: readonly ProtocolRoundReport[]) {
  return reports.map((r) => ({
    scores: r.scores,
    rewards: r.rewards,
    slashed: r.slashed,
    stakes: r.stakes,
    aggregateDigest: r.aggregateDigest,
    accuracy: r.accuracy,
  }));
}

let honest: Awaited<ReturnType<typeof run>>["summary"];

describe("runProtocol on the embedded chain", () => {
  it("honest trainers: all paid, none slashed; each round appends the aggregate as the next version", async () => {
    ({ summary: honest } = await run());
    const registry = await openRegistry(chain);
    assert.equal(honest.rounds.length, 2);
    for (const r of honest.rounds) {
      assert.equal(r.submitted, 3);
      assert.equal(r.accepted, 3);
      assert.equal(r.slashed.length, 0);
      assert.equal(r.falseSlashes, 0);
      for (const t of honest.trainers)
        assert.ok((r.rewards[t] ?? 0n) > 0n, `trainer ${t} paid in round ${r.round}`);
      for (const v of honest.validators)
        assert.ok((r.rewards[v] ?? 0n) > 0n, `validator ${v} paid in round ${r.round}`);
      // Version 1 is the initial model; round k's aggregate is version k + 1, child of version k.
      assert.equal(r.newVersion, r.round + 1);
      const version = await getVersion(registry, honest.modelId, r.newVersion as number);
      assert.deepEqual(version.parent, { modelId: honest.modelId, version: r.round });
      assert.equal(version.weightsDigest, r.aggregateDigest);
      const bytes = await store.get(cidFromDigest(r.aggregateDigest as Hex));
      assert.equal(sha256Digest(bytes), r.aggregateDigest);
      assert.ok(r.gas.byKind.commit > 0n && r.gas.byKind.finalize > 0n && r.gas.byKind.aggregate > 0n);
      assert.equal(
        r.gas.total,
        Object.values(r.gas.byKind).reduce((a, b) => a + b, 0n),
      );
    }
    assert.equal(honest.finalVersion, 3);
    // Who holds each new version (the trainers ask them first): its round's proposer, validator 0.
    const proposers = (round: number, version: number) =>
      aggregateProposers(tasks, honest.taskId, round, honest.modelId, version).then((a) =>
        a.map((p) => p.toLowerCase()),
      );
    for (const r of honest.rounds)
      assert.deepEqual(await proposers(r.round, r.newVersion as number), [
        (honest.validators[0] as Address).toLowerCase(),
      ]);
    assert.deepEqual(await proposers(1, 3), [], "round 1 made version 2, not 3");
    assert.deepEqual(await proposers(0, 1), [], "version 1 comes from no round");
    // The same data, seeds, scoring and integer aggregation as the in-memory engine: the same model.
    const engine = await simulateFederated({ ...SMALL, withProtocol: true });
    const last = honest.rounds.at(-1) as ProtocolRoundReport;
    assert.equal(last.aggregateDigest, `0x${engine.finalDigest}`);
    assert.deepEqual(
      honest.rounds.map((r) => r.accuracy),
      engine.rounds.map((r) => r.accuracy),
    );
    assert.ok(honest.finalAccuracy > 0.3, `accuracy ${honest.finalAccuracy}`);
    assert.ok(Number.isNaN(honest.detectionRate));
  });

  it("a noise attacker (far beyond any honest norm: evidence of malice) is slashed each round and earns nothing; no honest trainer is slashed", async () => {
    const { summary } = await run({ clients: 4, byzantine: 1, attack: "gaussian-noise" });
    assert.equal(summary.attackers.length, 1);
    const attacker = summary.attackers[0] as Address;
    const tasksParams = defaultTaskParams({
      modelId: 1,
      baseVersion: 1,
      rounds: 2,
      trainers: 4,
      validators: 3,
    });
    let stake = 2n * tasksParams.minTrainerStake;
    for (const r of summary.rounds) {
      const slash = (stake * BigInt(tasksParams.slashBps)) / 10_000n;
      stake -= slash;
      assert.deepEqual(r.slashed, [{ address: attacker, role: "trainer", amount: slash }]);
      assert.equal(r.stakes[attacker], stake);
      assert.equal(r.rewards[attacker], undefined);
      assert.equal(r.scores[attacker], 0);
      assert.equal(r.falseSlashes, 0);
      assert.equal(r.attackersSlashed, 1);
      for (const t of summary.trainers.filter((a) => a !== attacker)) assert.ok((r.rewards[t] ?? 0n) > 0n);
    }
    assert.equal(summary.detectionRate, 1);
    assert.equal(summary.falseSlashes, 0);
  });

  it("a sign-flip attacker (large, but no evidence of malice) is excluded each round: unpaid, left out, not slashed", async () => {
    const { summary } = await run({ clients: 4, byzantine: 1, attack: "sign-flip" });
    const attacker = summary.attackers[0] as Address;
    const engine = await simulateFederated({
      ...SMALL,
      clients: 4,
      byzantine: 1,
      attack: "sign-flip",
      withProtocol: true,
    });
    for (const [i, r] of summary.rounds.entries()) {
      assert.deepEqual(r.slashed, []);
      assert.equal(r.scores[attacker], SCORE_EXCLUDED);
      assert.equal(r.rewards[attacker], undefined);
      assert.equal(r.accepted, 3);
      assert.equal(r.rejected, 1);
      // The engine settles with the contract's mirror: the same decisions, the same model.
      assert.equal(engine.rounds[i]?.excluded, 1);
      assert.equal(engine.rounds[i]?.accuracy, r.accuracy);
    }
    assert.equal(
      summary.rounds.at(-1)?.stakes[attacker],
      2n *
        defaultTaskParams({ modelId: 1, baseVersion: 1, rounds: 2, trainers: 4, validators: 3 })
          .minTrainerStake,
    );
    assert.equal(summary.falseSlashes, 0);
  });

  it("colluding attacks (min-max, backdoor) are crafted, scored and settled on the chain exactly as the engine does", async () => {
    for (const attack of ["min-max", "backdoor"]) {
      const setting = { clients: 5, byzantine: 2, attack };
      const { summary } = await run(setting);
      const engine = await simulateFederated({ ...SMALL, ...setting, withProtocol: true });
      assert.equal(summary.rounds.at(-1)?.aggregateDigest, `0x${engine.finalDigest}`, attack);
      summary.rounds.forEach((r, i) => {
        const e = engine.rounds[i] as (typeof engine.rounds)[number];
        // Trainer k of the chain is client k of the engine; their addresses differ.
        const chainScores = summary.trainers.map((t) => r.scores[t]);
        const engineScores = engine.participants.map((p) => e.scores[p]);
        assert.deepEqual(chainScores, engineScores, `${attack} round ${r.round}: consensus scores`);
        assert.deepEqual(
          summary.trainers.map((t) => r.rewards[t] ?? 0n),
          engine.participants.map((p) => e.rewards[p] ?? 0n),
          `${attack} round ${r.round}: rewards`,
        );
        assert.equal(r.accepted, e.accepted);
        assert.equal(r.falseSlashes, 0);
      });
    }
  });

  it("a trainer and a validator that crash after persisting, rebuilt from chain and store, finish the round identically", async () => {
    class SimulatedCrash extends Error {}
    /**
     * A role's store on disk that, armed, persists a record of `status` and then throws: a crash between the
     * store and the transaction. The rebuilt role reads the folder again.
     */
    const crashing = (status: string) => {
      const inner = fileRoleStore(join(storeDir, `role-${status}`));
      const control = { armed: false, crashed: 0 };
      const wrapped: RoleStore = {
        ...inner,
        set(key, value) {
          inner.set(key, value);
          if (control.armed && (value as { status?: string }).status === status) {
            control.armed = false;
            control.crashed++;
            throw new SimulatedCrash(`crashed after persisting ${status}`);
          }
        },
      };
      return { store: wrapped, control };
    };
    const trainer0 = crashing("prepared");
    const validator0 = crashing("committing");
    const crashedIn: string[] = [];
    const { summary } = await run({
      roleStore: (kind, i) =>
        kind === "trainer" && i === 0
          ? trainer0.store
          : kind === "validator" && i === 0
            ? validator0.store
            : memoryRoleStore(),
      beforeStep: async ({ round, phase, roles }) => {
        const victim =
          round === 2 && phase === "Commit" && trainer0.control.crashed === 0
            ? { kind: "trainer" as const, control: trainer0.control, step: () => roles.trainers[0]?.step() }
            : round === 2 && phase === "ScoreCommit" && validator0.control.crashed === 0
              ? {
                  kind: "validator" as const,
                  control: validator0.control,
                  step: () => roles.validators[0]?.step(),
                }
              : undefined;
        if (!victim) return;
        // The trainers publish first (their step is idempotent), so that the validator has updates to score
        // and persists its scores before it commits them.
        if (victim.kind === "validator") await Promise.all(roles.trainers.map((t) => t.step()));
        victim.control.armed = true;
        await assert.rejects(victim.step() as Promise<unknown>, SimulatedCrash);
        crashedIn.push(`${victim.kind}@${phase}`);
        roles.rebuild(victim.kind, 0);
      },
    });
    assert.deepEqual(crashedIn, ["trainer@Commit", "validator@ScoreCommit"]);
    assert.deepEqual(decisions(summary.rounds), decisions(honest.rounds));
  });

  it("a validator whose reveal landed but whose record of it was lost (a crash between the two) still votes on the aggregate", async () => {
    // Three equal validators and a quorum above 2/3 of the revealed stake: without its vote, no aggregate.
    // Validator 0 is the aggregator, whose proposal is its vote: the victim is validator 1.
    const own = memoryRoleStore();
    let taskId = 0n;
    let lost = 0;
    const { summary } = await run({
      roleStore: (kind, i) => (kind === "validator" && i === 1 ? own : memoryRoleStore()),
      onStart: (roster) => {
        taskId = roster.taskId;
      },
      beforeStep: ({ round, phase, roles }) => {
        if (round !== 2 || phase !== "Aggregate" || lost > 0) return;
        const key = `validator-${taskId}-${round}`;
        const record = own.get<{ status: string }>(key);
        assert.equal(record?.status, "revealed", "the validator revealed in round 2");
        own.set(key, { ...record, status: "committed" });
        lost++;
        roles.rebuild("validator", 1);
      },
    });
    assert.equal(lost, 1);
    assert.equal(summary.rounds[1]?.newVersion, 3, "round 2's aggregate was accepted");
    assert.deepEqual(decisions(summary.rounds), decisions(honest.rounds));
  });

  it("forged bytes, a wrong architecture and a blob never published score 0 with every validator; their trainers are slashed", async () => {
    // Keyed by the sha256 of the model inside a trainer's envelope: the published bytes are the envelope.
    const tampered = new Set<string>();
    const dropped = new Set<string>();
    const modelKey = (bytes: Uint8Array) => {
      try {
        return sha256Digest(openUpdate(bytes).model);
      } catch {
        return ""; // a registry version: plain canonical bytes
      }
    };
    /** A store (or a peer behind it) that serves substituted bytes for some updates, unverified, and loses others. */
    const lying: BlobStore = {
      put: async (bytes) =>
        dropped.has(modelKey(bytes)) ? cidFromDigest(sha256Digest(bytes)) : store.put(bytes),
      has: (cid) => store.has(cid),
      get: async (cid) => {
        const bytes = await store.get(cid);
        if (!tampered.has(modelKey(bytes))) return bytes;
        const forged = bytes.slice();
        forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
        return forged;
      },
    };
    const wrong = canonicalOf("mlp-784-8-10", initialWeights("mlp-784-8-10", 1));
    const { summary, roles } = await run({
      clients: 5,
      rounds: 1,
      store: lying,
      craft: (i, { own }) => {
        const key = "tensors" in own ? sha256Digest(encodeCanonical(own)) : "";
        if (i === 1) tampered.add(key);
        if (i === 3) dropped.add(key);
        return i === 2 ? wrong : undefined;
      },
    });
    const [r] = summary.rounds;
    assert.ok(r);
    const forgedBy = summary.trainers[1] as Address;
    const wrongBy = summary.trainers[2] as Address;
    const lostBy = summary.trainers[3] as Address;
    for (const bad of [forgedBy, wrongBy, lostBy]) assert.equal(r.scores[bad], 0);
    assert.deepEqual(r.slashed.map((s) => s.address).sort(), [forgedBy, wrongBy, lostBy].sort());
    assert.equal(r.accepted, 2);
    assert.equal(r.newVersion, 2);
    for (const v of roles.validators) {
      const record = v.record(1);
      assert.ok(record);
      assert.deepEqual([record.scores[1], record.scores[2], record.scores[3]], [0, 0, 0]);
      assert.match(record.reasons[1] as string, /bytes hash to 0x[0-9a-f]{64}, not 0x/);
      assert.match(record.reasons[2] as string, /architecture mlp-784-8-10 is not the task's logreg-784-10/);
      assert.match(record.reasons[3] as string, /not published/);
    }
  });
});

describe("LearningTasks refusals through the client", () => {
  const trainer = 15;
  const validator = 16;
  /** A round starts with no fewer than three validators: these two join alongside `validator`. */
  const others = [17, 18];
  let taskId: bigint;
  let params: ReturnType<typeof defaultTaskParams>;

  before(async () => {
    const registry = await openRegistry(chain);
    const { modelId } = await registerModel(registry, "refusals", 0);
    const weights = encodeCanonical(canonicalOf("logreg-784-10", initialWeights("logreg-784-10", 3)));
    const { version } = await addVersion(registry, modelId, { weightsCid: await store.put(weights) }, 0);
    params = defaultTaskParams({ modelId, baseVersion: version, rounds: 1, trainers: 1, validators: 3 });
    ({ taskId } = await createTask(tasks, params, 0));
    for (const i of [trainer, validator, ...others]) {
      await transferMind(chain, chain.wallet(i).account.address, 100n * params.minValidatorStake, 0);
    }
  });

  it("a join below the minimum stake is refused (StakeTooLow) and changes nothing", async () => {
    const address = chain.wallet(trainer).account.address;
    const balance = await mindBalance(chain, address);
    const low = params.minTrainerStake - 1n;
    await assert.rejects(joinTask(tasks, taskId, "trainer", low, trainer), (err: unknown) => {
      assert.ok(err instanceof ContractRefusedError);
      assert.equal(err.errorName, "StakeTooLow");
      assert.deepEqual(err.args, [low, params.minTrainerStake]);
      return true;
    });
    assert.deepEqual(await memberOf(tasks, taskId, "trainer", address), {
      stake: 0n,
      earned: 0n,
      commitRound: 0,
      status: 0,
    });
    assert.equal(await mindBalance(chain, address), balance);
  });

  it("a reveal that does not match its commitment is refused (RevealMismatch) and changes nothing", async () => {
    await joinTask(tasks, taskId, "trainer", params.minTrainerStake, trainer);
    for (const i of [validator, ...others])
      await joinTask(tasks, taskId, "validator", params.minValidatorStake, i);
    const { round } = await startRound(tasks, taskId, 0);
    await commitUpdate(tasks, taskId, round, keccak256(stringToHex("an update")), 10, trainer);
    const info = await getRound(tasks, taskId, round);
    await mine(
      Number(info.commitDeadline + 1n - (await chain.publicClient.getBlockNumber({ cacheTime: 0 }))),
    );
    assert.equal(await phaseOf(tasks, taskId, round), "ScoreCommit");
    const me = chain.wallet(validator).account.address;
    const salt = keccak256(stringToHex("salt"));
    const words = packScores([7_000]);
    await commitScores(tasks, taskId, round, scoreCommitment(taskId, round, me, words, salt), validator);
    await mine(Number(info.scoreDeadline + 1n - (await chain.publicClient.getBlockNumber({ cacheTime: 0 }))));
    assert.equal(await phaseOf(tasks, taskId, round), "Reveal");
    for (const [w, s] of [
      [packScores([7_001]), salt],
      [words, keccak256(stringToHex("another salt"))],
    ] as const) {
      await assert.rejects(revealScores(tasks, taskId, round, w, s, validator), (err: unknown) => {
        assert.ok(err instanceof ContractRefusedError);
        assert.equal(err.errorName, "RevealMismatch");
        return true;
      });
    }
    const after = await getRound(tasks, taskId, round);
    assert.equal(after.reveals, 0);
    assert.equal(await scoresOf(tasks, taskId, round, me), undefined);
    // The true scores and salt are still accepted.
    await revealScores(tasks, taskId, round, words, salt, validator);
    assert.deepEqual(await scoresOf(tasks, taskId, round, me), [7_000]);
  });
});
