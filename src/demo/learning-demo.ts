import { type Address, formatEther } from "viem";
import type { LedgerChain } from "../chain/connect.ts";
import { memberOf, openTasks } from "../learning/client.ts";
import { type ProtocolRoundReport, runProtocol } from "../learning/protocol.ts";
import type { BlobStore } from "../storage/blob-store.ts";

/**
 * Five hospitals train one digit classifier without sharing a record: each holds a non-IID shard of real
 * MNIST digits (Dirichlet alpha 0.5), three validators score every update on their own held-out digits,
 * and one hospital poisons its updates by training on flipped labels. Every round's aggregate becomes the
 * model's next registry version.
 */
export const LEARNING_DEMO = {
  clients: 5,
  validators: 3,
  byzantine: 1,
  attack: "label-flip",
  strategy: "fedavg",
  rounds: 5,
  alpha: 0.5,
  seed: 7,
  localEpochs: 1,
  lr: 0.1,
  batch: 32,
  architecture: "logreg-784-10",
} as const;

export interface LearningDemoMember {
  name: string;
  address: Address;
  role: "trainer" | "validator";
  poisoner: boolean;
  stakeBefore: bigint;
  stakeAfter: bigint;
  /** Rewards credited over the task. */
  earned: bigint;
  /** Rounds in which it was slashed. */
  slashedRounds: number;
}

export interface LearningDemoRound {
  round: number;
  accuracy: number;
  accepted: number;
  submitted: number;
  /** Names of the members slashed this round. */
  slashed: string[];
  /** The registry version the round's aggregate became. */
  version?: number;
  gas: bigint;
}

export interface LearningDemoResult {
  taskId: bigint;
  modelId: bigint;
  members: LearningDemoMember[];
  rounds: LearningDemoRound[];
  finalAccuracy: number;
  finalVersion: number;
  /** Whether the poisoner lost stake and honest hospitals did not. */
  poisonerSlashed: boolean;
  falseSlashes: number;
  seconds: number;
}

const mind = (wei: bigint) => Number(formatEther(wei)).toFixed(2);

/** Runs the federated-learning task of the demo on `chain`, keeping update blobs in `store`. */
export async function runLearningDemo(opts: {
  chain: LedgerChain;
  store: BlobStore;
  log?: (line: string) => void;
}): Promise<LearningDemoResult> {
  const log = opts.log ?? (() => {});
  const members = new Map<string, LearningDemoMember>();
  const nameOf = (a: Address) => members.get(a.toLowerCase())?.name ?? a;
  const rounds: LearningDemoRound[] = [];

  const onRound = (r: ProtocolRoundReport) => {
    const slashed = r.slashed.map((s) => nameOf(s.address));
    for (const s of r.slashed) {
      const m = members.get(s.address.toLowerCase());
      if (m) m.slashedRounds++;
    }
    for (const [address, reward] of Object.entries(r.rewards)) {
      const m = members.get(address.toLowerCase());
      if (m) m.earned += reward;
    }
    for (const [address, stake] of Object.entries(r.stakes)) {
      const m = members.get(address.toLowerCase());
      if (m) m.stakeAfter = stake;
    }
    rounds.push({
      round: r.round,
      accuracy: r.accuracy,
      accepted: r.accepted,
      submitted: r.submitted,
      slashed,
      ...(r.newVersion === undefined ? {} : { version: r.newVersion }),
      gas: r.gas.total,
    });
    const lost = r.slashed.map((s) => `${nameOf(s.address)} -${mind(s.amount)}`).join(", ");
    log(
      `round ${r.round}: accuracy ${r.accuracy.toFixed(3)}, ${r.accepted}/${r.submitted} updates accepted${r.newVersion === undefined ? "" : `, registered as version ${r.newVersion}`}; slashed: ${lost || "nobody"}`,
    );
    log(
      `  stakes: ${[...members.values()]
        .filter((m) => m.role === "trainer")
        .map((m) => `${m.name} ${mind(m.stakeAfter)}`)
        .join(", ")}`,
    );
  };

  const summary = await runProtocol({
    ...LEARNING_DEMO,
    chain: opts.chain,
    store: opts.store,
    onStart: async (roster) => {
      const poisoners = new Set(roster.attackers.map((a) => a.toLowerCase()));
      const tasks = await openTasks(opts.chain);
      const add = async (address: Address, name: string, role: "trainer" | "validator") => {
        const stake = (await memberOf(tasks, roster.taskId, role, address)).stake;
        members.set(address.toLowerCase(), {
          name,
          address,
          role,
          poisoner: poisoners.has(address.toLowerCase()),
          stakeBefore: stake,
          stakeAfter: stake,
          earned: 0n,
          slashedRounds: 0,
        });
      };
      for (const [i, a] of roster.trainers.entries()) await add(a, `hospital ${i + 1}`, "trainer");
      for (const [i, a] of roster.validators.entries())
        await add(a, `validator ${"ABC"[i] ?? i + 1}`, "validator");
      const poisoner = [...members.values()].find((m) => m.poisoner);
      log(
        `task ${roster.taskId} on model ${roster.modelId}@${roster.baseVersion}: ${roster.trainers.length} hospitals (non-IID shards, alpha ${LEARNING_DEMO.alpha}), ${roster.validators.length} validators; ${poisoner?.name ?? "nobody"} trains on flipped labels`,
      );
    },
    onRound,
  });

  const list = [...members.values()];
  const honest = list.filter((m) => m.role === "trainer" && !m.poisoner);
  const poisoner = list.find((m) => m.poisoner);
  for (const m of list) {
    log(
      `${m.name.padEnd(11)} stake ${mind(m.stakeBefore)} -> ${mind(m.stakeAfter)} MIND, earned ${mind(m.earned)}${m.poisoner ? "  (poisoner)" : ""}`,
    );
  }
  log(
    `final accuracy ${summary.finalAccuracy.toFixed(3)}: model ${summary.modelId} version ${summary.finalVersion}`,
  );
  return {
    taskId: summary.taskId,
    modelId: summary.modelId,
    members: list,
    rounds,
    finalAccuracy: summary.finalAccuracy,
    finalVersion: summary.finalVersion,
    poisonerSlashed:
      poisoner !== undefined &&
      poisoner.stakeAfter < poisoner.stakeBefore &&
      honest.every((m) => m.stakeAfter >= m.stakeBefore),
    falseSlashes: summary.falseSlashes,
    seconds: summary.seconds,
  };
}
