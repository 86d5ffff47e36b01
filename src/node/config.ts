/**
 * The node's configuration file: YAML, checked against a schema into a typed `NodeConfig`. Pure: the
 * caller reads the file; this module only parses text.
 *
 * Keys never live in the file. The node signs with a configured account (an index), and accounts come
 * from the environment exactly as for every other command: `LEDGERMIND_KEYS`, or the development
 * accounts on a development chain. A value that looks like a private key or a mnemonic, or a field named
 * like one, is refused with a line saying where keys come from instead.
 */

import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { DEFAULT_DATA_DIR } from "../chain/connect.ts";
import { parseMind, parseModelRef } from "../cli/context.ts";
import type { DataSource } from "../learning/data-source.ts";
import { ATTACK_NAMES, attackByName, STRATEGY_NAMES } from "../learning/index.ts";
import { toFixedInput } from "../oracle/client.ts";
import { DEFAULT_LEADER_TIMEOUT_MS, DEFAULT_REPORT_WINDOW_MS } from "../oracle/report-exchange.ts";
import { readZkSecretFile, type ZkSecret } from "../zk/secret.ts";

/** The file is not a valid node configuration: one line naming the place in the file. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The port the node's HTTP server takes unless the config names one. */
export const DEFAULT_NODE_PORT = 8600;

export interface OracleRoleConfig {
  /** The model versions this node operates, one operator each. */
  models: { modelId: bigint; version: number }[];
  /** Stake to register with where not registered (MIND wei); default the oracle's minimum. */
  stake?: bigint;
  /** Another configured account that first sends what this node's account lacks of its stake. */
  fundFrom?: number;
  /** How often each operator looks for work, ms. */
  pollMs: number;
  /**
   * On a development chain, whether its operators mine a block when the chain idles (default true). One
   * clock is enough: operators of one machine's devnet leave it to one node.
   */
  mine: boolean;
  /** How long a report leader has before the next operator takes over, ms. */
  leaderTimeoutMs: number;
  /** How long reveals wait for a signed report before commit-reveal decides, ms. */
  reportWindowMs: number;
  /**
   * For demonstrations (as `oracle serve --faulty-offset`): added to every answer, in the oracle's fixed
   * point, so that this operator deviates and is slashed.
   */
  faultyOffset?: bigint;
  /**
   * Salt files of `ledgermind zk build` (absolute paths): for each version one names, the operator settles
   * requests by zero-knowledge proof (the version has its verifier in the registry).
   */
  zkSaltFiles?: string[];
}

/**
 * The MNIST split a federated task's members agree on (as `fl simulate` makes it): the held-out digits of
 * `validators` validators first, then the Dirichlet(alpha) label split of the rest over `clients` trainers.
 * Each member takes its own part by index and never sees the others'.
 */
export interface MnistSplitConfig {
  clients: number;
  validators: number;
  alpha: number;
  seed: number;
  samplesPerClient?: number;
  validatorSamples?: number;
}

/**
 * Compute-to-data (src/market/provider.ts): the node runs buyers' signed jobs on datasets it provides on the
 * DataMarket (this account must be each one's provider), next to their rows, and returns only results.
 */
export interface ProviderRoleConfig {
  datasets: { id: bigint; data: DataSourceConfig }[];
  /** Cap on one job's training, in samples seen (epochs x rows). */
  maxSamplePasses?: number;
}

/** Where a learning role's rows come from (src/learning/data-source.ts). */
export type DataSourceConfig = DataSource;

/** Membership of a task: staked when the node joins, unless it is already an active member. */
interface MembershipConfig {
  task: bigint;
  /** Stake to join with (MIND wei); default twice the task's minimum, so that a slash leaves it active. */
  stake?: bigint;
  /** Another configured account that first sends what the node's account lacks of its stake. */
  fundFrom?: number;
}

export interface TrainerRoleConfig extends MembershipConfig {
  /** This node's shard: trainer `index` of the split, or its own file. */
  data: DataSourceConfig;
  training: { epochs: number; batch: number; lr: number };
  /**
   * For demonstrations and tests: the node attacks as adversaries.ts's attack of this name. Only attacks
   * that need no other node's update (label-flip, sign-flip, noise, free-ride, backdoor, no-show).
   */
  attack?: string;
}

export interface ValidatorRoleConfig extends MembershipConfig {
  /** This node's held-out data: validator `index` of the split, or its own file. */
  data: DataSourceConfig;
  /** The aggregation every validator of the task recomputes (strategyByName); default fedavg. */
  strategy: string;
}

/**
 * The task's keeper, its creator: starts each round once the exit window has passed and finalizes it. On a
 * development chain, where blocks come only with transactions, it also closes windows: at once when every
 * active member has acted in it, otherwise one block whenever none came for `blockTimeMs`.
 */
export interface KeeperRoleConfig {
  task: bigint;
  blockTimeMs: number;
  /** Active trainers a round waits for before it starts (default 1). */
  minTrainers: number;
}

export interface NodeConfig {
  /** Absolute: the node's own folder (blobs, operator state, deployment manifest). */
  dataDir: string;
  chain: {
    rpc: string;
    /** Absolute path of a deployment manifest to use, when the data folder has none yet. */
    deployment?: string;
  };
  /** The configured account (from the environment) the node signs with. */
  account: number;
  http: {
    host: string;
    port: number;
    /** The base URL other nodes reach this one at, announced in the node directory; default the server's own. */
    publicUrl?: string;
  };
  /**
   * How blobs are fetched from other nodes (http-blob-store.ts's defaults where absent). A validator waits
   * for a stalled peer at most about (retries + 1) * stallTimeoutMs: keep that well inside a score window.
   */
  fetch: { timeoutMs?: number; stallTimeoutMs?: number; retries?: number };
  /**
   * Other nodes' base URLs, besides those announced on-chain: asked for blobs this node lacks (every byte
   * checked against its CID); an oracle node also exchanges signed observations and report signatures with
   * those that operate its models.
   */
  peers: string[];
  roles: {
    oracle?: OracleRoleConfig;
    trainer?: TrainerRoleConfig;
    validator?: ValidatorRoleConfig;
    /** Proposes each round's aggregate; the node must validate the same task (a proposal is a vote). */
    aggregator?: { task: bigint };
    keeper?: KeeperRoleConfig;
    provider?: ProviderRoleConfig;
  };
  /** How often the learning roles read the chain, ms. */
  learningPollMs: number;
}

/** Hosts that listen on every interface: the server's own URL then names no address a peer can reach. */
const WILDCARD_HOSTS = new Set(["0.0.0.0", "::", "[::]"]);

const HEX_KEY = /^(0x)?[0-9a-fA-F]{64}$/;
const KEY_NAME = /private|secret|mnemonic|seed|^keys?$/i;

/** `roles.oracle.models[0]` from a path of keys and indexes. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : `${out ? "." : ""}${String(part)}`;
  return out || "top level";
}

/** Finds the first field that is, or is named like, a secret; walks everything, known keys or not. */
function findSecret(value: unknown, path: PropertyKey[] = []): PropertyKey[] | undefined {
  if (typeof value === "string") {
    const words = value.trim().split(/\s+/);
    const mnemonic = words.length >= 12 && words.every((w) => /^[a-z]+$/.test(w));
    return HEX_KEY.test(value.trim()) || mnemonic ? path : undefined;
  }
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const found = findSecret(v, [...path, i]);
      if (found) return found;
    }
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      // A number is never a key (a data split's seed is one); a seed phrase or key text is.
      if (KEY_NAME.test(k) && typeof v !== "number") return [...path, k];
      const found = findSecret(v, [...path, k]);
      if (found) return found;
    }
  }
  return undefined;
}

/** Wraps a CLI parser (which throws a one-line error) as a zod transform. */
function via<I, T>(parse: (value: I) => T) {
  return (text: I, ctx: z.RefinementCtx): T => {
    try {
      return parse(text);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
      return z.NEVER;
    }
  };
}

const accountIndex = z.number().int().min(0);

const httpUrl = z
  .string()
  .refine((s) => /^https?:\/\/[^\s/]+/.test(s), { message: "expected an http(s) URL" });

const mind = (what: string) =>
  z
    .union([z.string(), z.number()])
    .transform((v) => String(v))
    .transform(via((s) => parseMind(s, what)));

const taskId = z
  .number()
  .int()
  .min(1)
  .transform((n) => BigInt(n));

/** Attacks a single node can make: those that see no other trainer's update. */
const SOLO_ATTACKS: readonly string[] = ATTACK_NAMES.filter(
  (name) => name !== "none" && attackByName(name).sees === "nothing",
);

const mnistPart = z.strictObject({
  clients: z.number().int().min(1),
  validators: z.number().int().min(1),
  alpha: z.number().positive(),
  seed: z.number().int(),
  samplesPerClient: z.number().int().min(1).optional(),
  validatorSamples: z.number().int().min(1).optional(),
  index: z.number().int().min(0),
});

const dataSource = z.union([
  z.strictObject({ mnist: mnistPart }),
  z.strictObject({
    csv: z.strictObject({ path: z.string().min(1), divideBy: z.number().positive().default(1) }),
  }),
]);

const membership = {
  task: taskId,
  stake: mind("stake").optional(),
  fundFrom: accountIndex.optional(),
};

const schema = z.strictObject({
  dataDir: z.string().min(1).optional(),
  chain: z.strictObject({ rpc: httpUrl.optional(), deployment: z.string().min(1).optional() }).optional(),
  account: accountIndex.default(0),
  http: z
    .strictObject({
      host: z.string().min(1).default("127.0.0.1"),
      port: z.number().int().min(0).max(65_535).default(DEFAULT_NODE_PORT),
      publicUrl: httpUrl.transform((s) => s.replace(/\/+$/, "")).optional(),
    })
    .default({ host: "127.0.0.1", port: DEFAULT_NODE_PORT }),
  fetch: z
    .strictObject({
      timeoutMs: z.number().int().min(100).max(3_600_000).optional(),
      stallTimeoutMs: z.number().int().min(100).max(3_600_000).optional(),
      retries: z.number().int().min(0).max(10).optional(),
    })
    .default({}),
  peers: z.array(httpUrl.transform((s) => s.replace(/\/+$/, ""))).default([]),
  roles: z
    .strictObject({
      oracle: z
        .strictObject({
          models: z.array(z.string().transform(via(parseModelRef))).min(1),
          stake: mind("stake").optional(),
          fundFrom: accountIndex.optional(),
          pollMs: z.number().int().min(10).max(3_600_000).default(500),
          mine: z.boolean().default(true),
          leaderTimeoutMs: z.number().int().min(10).max(3_600_000).default(DEFAULT_LEADER_TIMEOUT_MS),
          reportWindowMs: z.number().int().min(10).max(3_600_000).default(DEFAULT_REPORT_WINDOW_MS),
          faultyOffset: z
            .number()
            .refine((x) => x !== 0, {
              message: "expected a non-zero offset (leave it out for an honest operator)",
            })
            .transform(via((x: number) => toFixedInput([x])[0] as bigint))
            .optional(),
          zkSaltFiles: z.array(z.string().min(1)).min(1).optional(),
        })
        .optional(),
      trainer: z
        .strictObject({
          ...membership,
          data: dataSource,
          attack: z
            .string()
            .refine((name) => SOLO_ATTACKS.includes(name), {
              message: `expected an attack one node can make alone: ${SOLO_ATTACKS.join(", ")}`,
            })
            .optional(),
          training: z
            .strictObject({
              epochs: z.number().int().min(1).default(1),
              batch: z.number().int().min(1).default(32),
              lr: z.number().positive().default(0.1),
            })
            .default({ epochs: 1, batch: 32, lr: 0.1 }),
        })
        .optional(),
      validator: z
        .strictObject({
          ...membership,
          data: dataSource,
          strategy: z
            .string()
            .refine((s) => (STRATEGY_NAMES as readonly string[]).includes(s), {
              message: `expected one of ${STRATEGY_NAMES.join(", ")}`,
            })
            .default("fedavg"),
        })
        .optional(),
      aggregator: z.strictObject({ task: taskId }).optional(),
      keeper: z
        .strictObject({
          task: taskId,
          blockTimeMs: z.number().int().min(10).max(600_000).default(1_000),
          minTrainers: z.number().int().min(1).default(1),
        })
        .optional(),
      provider: z
        .strictObject({
          datasets: z
            .array(
              z.strictObject({
                id: z
                  .number()
                  .int()
                  .min(1)
                  .transform((n) => BigInt(n)),
                data: dataSource,
              }),
            )
            .min(1),
          maxSamplePasses: z.number().int().min(1).optional(),
        })
        .optional(),
    })
    .default({}),
  learningPollMs: z.number().int().min(10).max(3_600_000).default(250),
});

/** The one line for a zod issue: where in the file, and what was expected there. */
function issueLine(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path);
  if (issue.code === "unrecognized_keys")
    return `${where}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
  return `${where}: ${issue.message}`;
}

/**
 * Parses a node configuration. `configPath` is where the text came from: relative paths in it (the data
 * folder, the deployment manifest) are taken from the file's folder, and every error names it.
 * @throws ConfigError, one line naming the path inside the file that is wrong.
 */
export function parseNodeConfig(text: string, configPath: string): NodeConfig {
  const fail = (line: string) => new ConfigError(`${configPath}: ${line}`);
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    if (error instanceof YAMLParseError) throw fail(`not valid YAML (${error.message.split("\n")[0]})`);
    throw error;
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw fail("expected a mapping of settings (dataDir, chain, account, http, peers, roles)");

  const secret = findSecret(raw);
  if (secret)
    throw fail(
      `${formatPath(secret)}: looks like a private key or mnemonic; keys never go in the config: set LEDGERMIND_KEYS in the node's environment and name the account by its index (account: 1)`,
    );
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw fail(issueLine(parsed.error.issues[0] as z.core.$ZodIssue));
  const c = parsed.data;
  if (c.chain?.rpc === undefined)
    throw fail(
      "chain.rpc: required: a node needs a chain other processes share (start one with `ledgermind chain`); the embedded chain belongs to one process",
    );
  if (WILDCARD_HOSTS.has(c.http.host) && c.http.publicUrl === undefined)
    throw fail(
      `http.publicUrl: required when http.host is ${c.http.host}: other nodes cannot reach a wildcard address, so name the URL they reach this node at (http://10.0.0.2:${c.http.port})`,
    );
  const base = dirname(resolve(configPath));
  const { oracle, trainer, validator, aggregator, keeper, provider } = c.roles;
  // `where`: the role's path under roles; `part`: which part of an MNIST split the rows are.
  const dataOf = (
    where: string,
    data: z.infer<typeof dataSource>,
    part: "trainer" | "validator" = "trainer",
  ): DataSourceConfig => {
    if ("csv" in data) {
      const path = resolve(base, data.csv.path);
      if (!existsSync(path)) throw fail(`roles.${where}.data.csv.path: no file at ${path}`);
      return { csv: { ...data.csv, path } };
    }
    const split = data.mnist;
    const count = part === "trainer" ? split.clients : split.validators;
    if (split.index >= count)
      throw fail(
        `roles.${where}.data.mnist.index: ${split.index} is not one of the split's ${count} ${part}s (0 to ${count - 1})`,
      );
    return { mnist: dropUndefined(split) };
  };
  if (aggregator && aggregator.task !== validator?.task)
    throw fail(
      `roles.aggregator: the aggregator must also validate task ${aggregator.task} (roles.validator.task): its proposal counts as its vote`,
    );
  // Each salt file exists and names one of the versions this node operates.
  const zkSaltFilesOf = (o: NonNullable<typeof oracle>) =>
    o.zkSaltFiles?.map((file, i) => {
      const where = `roles.oracle.zkSaltFiles.${i}`;
      const path = resolve(base, file);
      let secret: ZkSecret;
      try {
        secret = readZkSecretFile(path);
      } catch (error) {
        throw fail(`${where}: ${(error as Error).message}`);
      }
      if (!o.models.some((m) => String(m.modelId) === secret.modelId && m.version === secret.version))
        throw fail(
          `${where}: ${path} is the salt of model ${secret.modelId}@${secret.version}, which is not in roles.oracle.models`,
        );
      return path;
    });
  const member = <T extends { stake?: bigint; fundFrom?: number }>(r: T) => {
    const { stake, fundFrom, ...rest } = r;
    return {
      ...rest,
      ...(stake === undefined ? {} : { stake }),
      ...(fundFrom === undefined ? {} : { fundFrom }),
    };
  };
  const dropUndefined = <T extends object>(o: T): T =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return {
    dataDir: resolve(base, c.dataDir ?? DEFAULT_DATA_DIR),
    chain: {
      rpc: c.chain.rpc,
      ...(c.chain.deployment === undefined ? {} : { deployment: resolve(base, c.chain.deployment) }),
    },
    account: c.account,
    http: {
      host: c.http.host,
      port: c.http.port,
      ...(c.http.publicUrl === undefined ? {} : { publicUrl: c.http.publicUrl }),
    },
    fetch: dropUndefined(c.fetch),
    peers: c.peers,
    roles: {
      ...(oracle ? { oracle: member(dropUndefined({ ...oracle, zkSaltFiles: zkSaltFilesOf(oracle) })) } : {}),
      ...(trainer ? { trainer: member({ ...trainer, data: dataOf("trainer", trainer.data) }) } : {}),
      ...(validator
        ? { validator: member({ ...validator, data: dataOf("validator", validator.data, "validator") }) }
        : {}),
      ...(aggregator ? { aggregator } : {}),
      ...(keeper ? { keeper } : {}),
      ...(provider
        ? {
            provider: {
              datasets: provider.datasets.map((d, i) => ({
                id: d.id,
                data: dataOf(`provider.datasets.${i}`, d.data),
              })),
              ...(provider.maxSamplePasses === undefined
                ? {}
                : { maxSamplePasses: provider.maxSamplePasses }),
            },
          }
        : {}),
    },
    learningPollMs: c.learningPollMs,
  };
}
