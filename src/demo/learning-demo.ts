import { join } from "node:path";
import { type Address, formatEther } from "viem";
import { getSettlement, getTask, memberOf, openTasks } from "../learning/client.ts";
import { createFederatedTask } from "../learning/protocol.ts";
import { type Consortium, followRounds } from "../node/consortium.ts";
import {
  DEVNET_NODE_EXTRA,
  DEVNET_VALIDATORS,
  devnetRoles,
  devnetWindows,
  mnistTestDigits,
  versionAccuracy,
} from "../node/devnet.ts";
import { FsBlobStore } from "../storage/fs-blob-store.ts";

/**
 * Five hospitals train one digit classifier without sharing a record, each as its own `ledgermind node`
 * process: each holds a non-IID shard of real MNIST digits (Dirichlet alpha 0.5), three validator nodes score
 * every update on their own held-out digits (validator A also aggregates and keeps the task, as its
 * creator), and one hospital poisons its updates by training on flipped labels. Every round's aggregate
 * becomes the model's next registry version. The nodes share nothing but the chain and each other's blobs
 * over HTTP; the demo only sets the task up and reads what happened from the chain.
 */
export const LEARNING_DEMO = {
  clients: 5,
  validators: DEVNET_VALIDATORS,
  /** 0-based: hospital 3. */
  poisoner: 2,
  attack: "label-flip",
  rounds: 5,
  alpha: 0.5,
  seed: 7,
  samplesPerClient: 500,
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
  /** Stake it lost to slashes over the task. */
  lost: bigint;
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
  /** From seeing the round start to seeing it settled. */
  seconds: number;
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
const VALIDATOR_NAMES = ["validator A", "validator B", "validator C"] as const;

/** Node `i` of the demo's consortium (the devnet's layout): validators 0 to 2, then the hospitals. */
function memberName(i: number): string {
  return i < DEVNET_VALIDATORS ? (VALIDATOR_NAMES[i] as string) : `hospital ${i - DEVNET_VALIDATORS + 1}`;
}

/**
 * Runs the federated-learning part of the demo on `consortium`'s chain: sets the task up as its creator
 * (account 0), starts one node process per member (accounts 0 to 7), follows the rounds from the chain and
 * stops the nodes.
 */
export async function runLearningDemo(opts: {
  consortium: Consortium;
  log?: (line: string) => void;
}): Promise<LearningDemoResult> {
  const log = opts.log ?? (() => {});
  const { consortium } = opts;
  const started = performance.now();
  const d = LEARNING_DEMO;
  const nodes = d.clients + d.validators;
  const tasks = await openTasks(consortium.creator);
  // The creator's node (validator A) serves the initial model from its own folder.
  const creatorStore = new FsBlobStore(join(consortium.dir, "validator-A", "blobs"));
  const { taskId, modelId, baseVersion } = await createFederatedTask(tasks, creatorStore, {
    architecture: d.architecture,
    seed: d.seed,
    rounds: d.rounds,
    trainers: d.clients,
    validators: d.validators,
    params: devnetWindows(d.clients),
  });
  consortium.checkAborted();
  const specs = Array.from({ length: nodes }, (_, i) => ({
    name: memberName(i).replace(" ", "-"),
    account: i,
    roles: devnetRoles(i, {
      taskId,
      attack: { hospital: d.poisoner, name: d.attack },
      nodes,
      seed: d.seed,
      alpha: d.alpha,
      samplesPerClient: d.samplesPerClient,
    }).yaml,
    extra: DEVNET_NODE_EXTRA,
  }));
  log(
    `task ${taskId} on model ${modelId}@${baseVersion}: ${d.clients} hospitals (non-IID shards, alpha ${d.alpha}), ${d.validators} validators, each its own node process; hospital ${d.poisoner + 1} trains on flipped labels`,
  );
  // Validator A first: it holds the initial model, which the others fetch as they start.
  const running = await consortium.start(specs, { firstAlone: true });
  log(
    `${running.length} node processes serving: ${running.map((n) => n.url.split(":").at(-1)).join(", ")} (ports)`,
  );

  const members = new Map<string, LearningDemoMember>();
  for (let i = 0; i < nodes; i++) {
    const address = consortium.creator.wallet(i).account.address;
    const role = i < d.validators ? "validator" : "trainer";
    const stake = (await memberOf(tasks, taskId, role, address)).stake;
    members.set(address.toLowerCase(), {
      name: memberName(i),
      address,
      role,
      poisoner: i === d.validators + d.poisoner,
      stakeBefore: stake,
      stakeAfter: stake,
      earned: 0n,
      slashedRounds: 0,
      lost: 0n,
    });
  }
  const nameOf = (a: Address) => members.get(a.toLowerCase())?.name ?? a;
  const test = await mnistTestDigits({
    clients: d.clients,
    validators: d.validators,
    alpha: d.alpha,
    seed: d.seed,
    samplesPerClient: d.samplesPerClient,
  });
  const rounds: LearningDemoRound[] = [];
  await followRounds({
    consortium,
    tasks,
    taskId,
    rounds: d.rounds,
    onSettled: async (round, info, seconds) => {
      const slashed: { name: string; amount: bigint }[] = [];
      if (info.finalized) {
        const s = await getSettlement(tasks, taskId, round);
        for (const x of [...s.trainers, ...s.validators]) {
          if (x.slashed === 0n) continue;
          const m = members.get(x.address.toLowerCase());
          if (m) {
            m.slashedRounds++;
            m.lost += x.slashed;
          }
          slashed.push({ name: nameOf(x.address), amount: x.slashed });
        }
      }
      for (const m of members.values()) {
        const now = await memberOf(tasks, taskId, m.role, m.address);
        m.stakeAfter = now.stake;
        m.earned = now.earned;
      }
      const version = info.aggregated ? info.newVersion : (rounds.at(-1)?.version ?? baseVersion);
      const accuracy = await versionAccuracy(tasks, creatorStore, modelId, version, test);
      rounds.push({
        round,
        accuracy,
        accepted: info.accepted,
        submitted: info.commits,
        slashed: slashed.map((x) => x.name),
        ...(info.aggregated ? { version: info.newVersion } : {}),
        seconds,
      });
      const lost = slashed.map((x) => `${x.name} -${mind(x.amount)}`).join(", ");
      log(
        `round ${round}: accuracy ${accuracy.toFixed(3)}, ${info.accepted}/${info.commits} updates accepted${info.aggregated ? `, registered as version ${info.newVersion}` : ", no aggregate"}; slashed: ${lost || "nobody"} (${seconds.toFixed(1)} s)`,
      );
      log(
        `  stakes: ${[...members.values()]
          .filter((m) => m.role === "trainer")
          .map((m) => `${m.name} ${mind(m.stakeAfter)}`)
          .join(", ")}`,
      );
    },
  });
  await consortium.stop(running);

  const list = [...members.values()];
  const honest = list.filter((m) => !m.poisoner);
  const poisoner = list.find((m) => m.poisoner);
  log("from the chain, after the task:");
  for (const m of list) {
    log(
      `${m.name.padEnd(11)} stake ${mind(m.stakeBefore)} -> ${mind(m.stakeAfter)} MIND, earned ${mind(m.earned)}, slashed ${mind(m.lost)} in ${m.slashedRounds} round(s)${m.poisoner ? "  (poisoner)" : ""}`,
    );
  }
  const finalVersion = (await getTask(tasks, taskId)).state.currentVersion;
  const finalAccuracy = rounds.at(-1)?.accuracy ?? Number.NaN;
  log(`final accuracy ${finalAccuracy.toFixed(3)}: model ${modelId} version ${finalVersion}`);
  return {
    taskId,
    modelId,
    members: list,
    rounds,
    finalAccuracy,
    finalVersion,
    poisonerSlashed: poisoner !== undefined && poisoner.lost > 0n && honest.every((m) => m.lost === 0n),
    falseSlashes: honest.filter((m) => m.lost > 0n).length,
    seconds: (performance.now() - started) / 1000,
  };
}
