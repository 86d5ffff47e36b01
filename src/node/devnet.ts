/**
 * A whole consortium on one machine: a development chain (anvil, as `ledgermind chain` runs it) or a chain
 * that already runs, and N `ledgermind node` processes, each with its own account, folder, port and data.
 * Nodes 0 to 2 validate a federated task (node 0 also aggregates and keeps the task, as its creator) and
 * operate the crop-insurance model in the oracle; nodes 3 and up are hospitals that train on their own
 * MNIST shards. The devnet sets the task and the model up as their owner (account 0), starts the nodes,
 * follows the rounds, asks the oracle, prints what happened, and stops every process it started, also when
 * it is interrupted.
 *
 * The devnet process itself only sets up, watches and asks: every round's work is done by the nodes,
 * which share nothing but the chain and each other's blobs over HTTP.
 */

import { join } from "node:path";
import { parseEther } from "viem";
import {
  defaultTaskParams,
  fetchVersionModel,
  getTask,
  memberOf,
  openTasks,
  type TaskParams,
  type Tasks,
} from "../learning/client.ts";
import { createFederatedTask } from "../learning/protocol.ts";
import { federatedData } from "../learning/simulate.ts";
import { initBackend } from "../ml/backend.ts";
import { toFloatTensors } from "../ml/encoding.ts";
import { createModel, setWeights } from "../ml/models.ts";
import { evaluate } from "../ml/train.ts";
import { requestInference, setModelSpec, waitForResult } from "../oracle/client.ts";
import { fromFixed } from "../oracle/fixed-point.ts";
import { FEATURE_COUNT, normalizeFeatures, type RawConditions, toOracleInput } from "../oracle/yield-data.ts";
import { trainYieldModel } from "../oracle/yield-model.ts";
import { addVersion, openRegistry, registerModel } from "../registry/client.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { FsBlobStore } from "../storage/fs-blob-store.ts";
import { Consortium, followRounds, servedBytes } from "./consortium.ts";

export class DevnetError extends Error {
  override name = "DevnetError";
}

/** Validators (and oracle operators): the contract's minimum of three. */
export const DEVNET_VALIDATORS = 3;
/** The most nodes: one development account each. */
export const DEVNET_MAX_NODES = 20;

export interface DevnetOptions {
  /** Node processes: 3 validators and operators, the rest trainers; at least 4. */
  nodes: number;
  rounds: number;
  /** A chain that already runs; default a fresh development chain, stopped at the end. */
  rpc?: string;
  /** The devnet's folder: node configs, folders and logs. */
  dir: string;
  /** Where the deployment manifest of `rpc` is (its data folder), when it is already deployed. */
  dataDir?: string;
  /** Seeds the split and the initial weights. */
  seed: number;
  alpha: number;
  /** Digits per hospital. */
  samplesPerClient: number;
  /** The task's model (logreg-784-10 or mlp-784-...-10); default logreg-784-10. */
  architecture?: string;
  /** Whether the three validators also operate the oracle and the devnet asks it (default true). */
  oracle?: boolean;
  /** For demonstrations: hospital `hospital` (0-based) attacks with adversaries.ts's `name`. */
  attack?: { hospital: number; name: string };
  /** A line of progress. */
  log: (line: string) => void;
  /** Aborted on Ctrl-C: everything started is stopped. */
  signal?: AbortSignal;
}

export interface DevnetRound {
  round: number;
  commits: number;
  accepted: number;
  aggregated: boolean;
  version: number;
  accuracy: number;
  /** From the devnet seeing the round start to seeing it settled (polled every 100 ms). */
  seconds: number;
}

export interface DevnetResult {
  chain: string;
  taskId: string;
  nodes: { index: number; account: string; roles: string[]; url: string; log: string }[];
  rounds: DevnetRound[];
  finalAccuracy: number;
  slashedMembers: number;
  oracle: { region: string; requestId: string; score: number; path: "signed report" | "commit-reveal" }[];
  /** Blob bytes the nodes served each other over the whole run (their /metrics, read before they stop). */
  bytesServed: number;
}

/** Crop conditions the devnet asks the oracle about, from a drought to a good season. */
const DEVNET_REGIONS: { label: string; conditions: RawConditions }[] = [
  {
    label: "severe drought",
    conditions: { rainfallDeficit: 0.7, heatDays: 22, soilMoisture: 0.11, growingDegreeDays: 1900 },
  },
  {
    label: "near-normal season",
    conditions: { rainfallDeficit: 0.12, heatDays: 3, soilMoisture: 0.26, growingDegreeDays: 1550 },
  },
  {
    label: "good season",
    conditions: { rainfallDeficit: 0.0, heatDays: 0, soilMoisture: 0.31, growingDegreeDays: 1450 },
  },
];

/**
 * Blocks of slack in every window beyond the default one block per member: the keeper closes a window as
 * soon as everyone acted, so the slack costs nothing in a round where every node is well; when a node is
 * slow, stalls or is gone, the others get DEVNET_WINDOW_SLACK block times (DEVNET_BLOCK_TIME_MS each) to
 * give up on it (DEVNET_FETCH: a stalled peer costs at most about 2 stall timeouts) and still act in time.
 */
export const DEVNET_WINDOW_SLACK = 30;
export const DEVNET_BLOCK_TIME_MS = 500;
export const DEVNET_FETCH = "{ timeoutMs: 20000, stallTimeoutMs: 2000, retries: 1 }";

/** The devnet task's windows: the defaults for its members plus DEVNET_WINDOW_SLACK. */
export function devnetWindows(trainers: number): Partial<TaskParams> {
  const base = defaultTaskParams({
    modelId: 1,
    baseVersion: 1,
    rounds: 1,
    trainers,
    validators: DEVNET_VALIDATORS,
  });
  return {
    commitWindow: base.commitWindow + DEVNET_WINDOW_SLACK,
    scoreWindow: base.scoreWindow + DEVNET_WINDOW_SLACK,
    revealWindow: base.revealWindow + DEVNET_WINDOW_SLACK,
    aggregateWindow: base.aggregateWindow + DEVNET_WINDOW_SLACK,
  };
}

/** What node `i` does: the roles part of its config, and their names. */
export function devnetRoles(
  i: number,
  o: {
    taskId: bigint;
    /** The oracle model the validators operate, if any. */
    oracleModel?: string;
    attack?: { hospital: number; name: string };
    nodes: number;
    seed: number;
    alpha: number;
    samplesPerClient: number;
  },
): { yaml: string; roles: string[] } {
  const split = `{ clients: ${o.nodes - DEVNET_VALIDATORS}, validators: ${DEVNET_VALIDATORS}, alpha: ${o.alpha}, seed: ${o.seed}, samplesPerClient: ${o.samplesPerClient}`;
  if (i >= DEVNET_VALIDATORS) {
    const hospital = i - DEVNET_VALIDATORS;
    const attack = o.attack?.hospital === hospital ? `, attack: ${o.attack.name}` : "";
    return {
      yaml: `  trainer: { task: ${o.taskId}, fundFrom: 0${attack}, data: { mnist: ${split}, index: ${hospital} } } }`,
      roles: ["trainer"],
    };
  }
  const lines = [`  validator: { task: ${o.taskId}, fundFrom: 0, data: { mnist: ${split}, index: ${i} } } }`];
  const roles = ["validator"];
  if (o.oracleModel) {
    // Node 0 alone keeps the oracle's block clock: clocks in several processes could close a window early.
    lines.push(
      `  oracle: { models: ["${o.oracleModel}"], fundFrom: 0, pollMs: 200${i === 0 ? "" : ", mine: false"} }`,
    );
    roles.push("oracle");
  }
  if (i === 0) {
    lines.push(
      `  aggregator: { task: ${o.taskId} }`,
      `  keeper: { task: ${o.taskId}, blockTimeMs: ${DEVNET_BLOCK_TIME_MS}, minTrainers: ${o.nodes - DEVNET_VALIDATORS} }`,
    );
    roles.push("aggregator", "keeper");
  }
  return { yaml: lines.join("\n"), roles };
}

/** Runs the devnet (see the module doc). */
export async function runDevnet(o: DevnetOptions): Promise<DevnetResult> {
  if (!Number.isInteger(o.nodes) || o.nodes < DEVNET_VALIDATORS + 1 || o.nodes > DEVNET_MAX_NODES)
    throw new DevnetError(
      `--nodes must be ${DEVNET_VALIDATORS + 1} to ${DEVNET_MAX_NODES} (${DEVNET_VALIDATORS} validators and at least one hospital), got ${o.nodes}`,
    );
  const consortium = await Consortium.open({
    dir: o.dir,
    ...(o.rpc ? { rpc: o.rpc } : {}),
    ...(o.dataDir ? { dataDir: o.dataDir } : {}),
    what: "the devnet",
    log: o.log,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  try {
    const { creator, rpc } = consortium;
    // As their owner (account 0): the task's initial model and the oracle's model, both kept in node 0's
    // blob folder, which node 0 serves to the others.
    const creatorStore = nodeStore(o.dir, 0);
    const tasks = await openTasks(creator);
    const trainers = o.nodes - DEVNET_VALIDATORS;
    const { taskId, modelId: flModel } = await createFederatedTask(tasks, creatorStore, {
      architecture: o.architecture ?? "logreg-784-10",
      seed: o.seed,
      rounds: o.rounds,
      trainers,
      validators: DEVNET_VALIDATORS,
      params: devnetWindows(trainers),
    });
    o.log(
      `task ${taskId}: ${o.rounds} rounds of model ${flModel}, ${trainers} hospitals, ${DEVNET_VALIDATORS} validators`,
    );
    let oracleModel: { modelId: bigint; version: number } | undefined;
    if (o.oracle !== false) {
      const trained = await trainYieldModel();
      const registry = await openRegistry(creator);
      const { modelId } = await registerModel(registry, "maize-yield-risk");
      const { version } = await addVersion(registry, modelId, {
        weightsCid: await creatorStore.put(trained.canonical),
      });
      await setModelSpec(creator, modelId, version, FEATURE_COUNT);
      oracleModel = { modelId, version };
      o.log(`oracle model ${modelId}@${version}: the crop-insurance yield-risk model`);
    }
    consortium.checkAborted();

    const described: DevnetResult["nodes"] = [];
    const specs = Array.from({ length: o.nodes }, (_, i) => {
      const { yaml, roles } = devnetRoles(i, {
        ...o,
        taskId,
        ...(oracleModel ? { oracleModel: `${oracleModel.modelId}@${oracleModel.version}` } : {}),
      });
      return { name: `node-${i}`, account: i, roles: yaml, extra: DEVNET_NODE_EXTRA, names: roles };
    });
    // Node 0 first: it holds the initial model and the oracle's weights, which the others fetch as they
    // start. Then the others all at once: each joins and funds itself from account 0 (sends retry on a
    // nonce race).
    const nodes = await consortium.start(specs, { firstAlone: true });
    for (const n of nodes) {
      const i = n.account;
      described.push({
        index: i,
        account: creator.wallet(i).account.address,
        roles: specs[i]?.names ?? [],
        url: n.url,
        log: n.log,
      });
    }
    described.sort((a, b) => a.index - b.index);
    for (const n of described) o.log(`node ${n.index} (${n.roles.join(", ")}) serving on ${n.url}`);

    // Follow the rounds; each settled round's version is tested here, on MNIST's test digits.
    const test = await mnistTestDigits({
      clients: trainers,
      validators: DEVNET_VALIDATORS,
      alpha: o.alpha,
      seed: o.seed,
      samplesPerClient: o.samplesPerClient,
    });
    const rounds: DevnetRound[] = [];
    await followRounds({
      consortium,
      tasks,
      taskId,
      rounds: o.rounds,
      onSettled: async (round, info, seconds) => {
        const v = info.aggregated ? info.newVersion : (rounds.at(-1)?.version ?? 1);
        const accuracy = await versionAccuracy(tasks, nodeStore(o.dir, 0), flModel, v, test);
        const r = {
          round,
          commits: info.commits,
          accepted: info.accepted,
          aggregated: info.aggregated,
          version: v,
          accuracy,
          seconds,
        };
        rounds.push(r);
        o.log(
          `round ${round}/${o.rounds}: ${r.accepted} of ${r.commits} updates accepted, ${r.aggregated ? `aggregated as version ${v}` : "no aggregate"}, test accuracy ${accuracy.toFixed(4)}`,
        );
      },
    });
    let slashedMembers = 0;
    const { params } = await getTask(tasks, taskId);
    for (const n of described) {
      const role = n.roles.includes("trainer") ? "trainer" : "validator";
      const m = await memberOf(tasks, taskId, role, n.account as `0x${string}`);
      const min = role === "trainer" ? params.minTrainerStake : params.minValidatorStake;
      if (m.stake < 2n * min) slashedMembers++;
    }

    const answers: DevnetResult["oracle"] = [];
    for (const region of DEVNET_REGIONS) {
      if (!oracleModel) break;
      consortium.checkAborted();
      const input = toOracleInput(normalizeFeatures(region.conditions));
      const { requestId } = await requestInference(creator, { ...oracleModel, input, fee: parseEther("1") });
      const status = await waitForResult(creator, requestId, { timeoutMs: 90_000, signal: o.signal });
      if (status.state !== "finalized" || status.output === undefined)
        throw new DevnetError(
          `oracle request ${requestId} ${status.state} with ${status.commits} commit(s) and ${status.reveals} reveal(s) (see the node logs in ${o.dir})`,
        );
      const score = fromFixed(status.output);
      const path = answerPath(status);
      answers.push({ region: region.label, requestId: String(requestId), score, path });
      o.log(
        `oracle request ${requestId} (${region.label}): yield-loss score ${score.toFixed(3)}, by ${path}`,
      );
    }
    consortium.checkNodes();
    const bytesServed = (await Promise.all(nodes.map((n) => servedBytes(n)))).reduce((a, b) => a + b, 0);
    return {
      chain: rpc,
      taskId: String(taskId),
      nodes: described,
      rounds,
      finalAccuracy: rounds.at(-1)?.accuracy ?? Number.NaN,
      slashedMembers,
      oracle: answers,
      bytesServed,
    };
  } finally {
    await consortium.close();
  }
}

/** Config lines every devnet (and demo) node shares besides its roles. */
export const DEVNET_NODE_EXTRA = [`fetch: ${DEVNET_FETCH}`, "learningPollMs: 200"];

/** How a finalized request settled: a signed report settles with no reveal; commit-reveal needs them. */
export function answerPath(status: { reveals: number }): "signed report" | "commit-reveal" {
  return status.reveals === 0 ? "signed report" : "commit-reveal";
}

/** MNIST's test digits, as the split of a federated task's members leaves them (tfjs loaded first). */
export async function mnistTestDigits(split: Parameters<typeof federatedData>[0]) {
  await initBackend();
  return federatedData(split).test;
}

/** A task model version's accuracy on `test`, its weights read from `store` (checked against the chain). */
export async function versionAccuracy(
  tasks: Tasks,
  store: BlobStore,
  modelId: bigint,
  version: number,
  test: Awaited<ReturnType<typeof mnistTestDigits>>,
): Promise<number> {
  const { model } = await fetchVersionModel(tasks, store, modelId, version);
  const scratch = createModel(model.architecture, 0);
  try {
    setWeights(scratch, toFloatTensors(model));
    return (await evaluate(scratch, test, 2048)).accuracy;
  } finally {
    scratch.dispose();
  }
}

/** Node `i`'s blob folder: the devnet reads versions from node 0's, which holds every aggregate it attested. */
function nodeStore(dir: string, i: number): FsBlobStore {
  return new FsBlobStore(join(dir, `node-${i}`, "blobs"));
}
