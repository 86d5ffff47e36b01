/**
 * The node's configuration file: YAML, checked against a schema into a typed `NodeConfig`. Pure: the
 * caller reads the file; this module only parses text.
 *
 * Keys never live in the file. The node signs with a configured account (an index), and accounts come
 * from the environment exactly as for every other command: `LEDGERMIND_KEYS`, or the development
 * accounts on a development chain. A value that looks like a private key or a mnemonic, or a field named
 * like one, is refused with a line saying where keys come from instead.
 */

import { dirname, resolve } from "node:path";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { DEFAULT_DATA_DIR } from "../chain/connect.ts";
import { parseMind, parseModelRef } from "../cli/context.ts";
import { DEFAULT_LEADER_TIMEOUT_MS, DEFAULT_REPORT_WINDOW_MS } from "../oracle/report-exchange.ts";

/** The file is not a valid node configuration: one line naming the place in the file. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Roles a later node will run; named here so that a config using them hears so, not "unknown key". */
export const RESERVED_ROLES = ["trainer", "validator", "aggregator"] as const;

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
  /** With peers: how long a report leader has before the next operator takes over, ms. */
  leaderTimeoutMs: number;
  /** With peers: how long reveals wait for a report before commit-reveal decides, ms. */
  reportWindowMs: number;
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
  http: { host: string; port: number };
  /**
   * Other nodes' base URLs, asked for blobs this node lacks (every byte checked against its CID); an oracle
   * node also exchanges signed observations and report signatures with those that operate its models.
   */
  peers: string[];
  roles: { oracle?: OracleRoleConfig };
}

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
      if (KEY_NAME.test(k)) return [...path, k];
      const found = findSecret(v, [...path, k]);
      if (found) return found;
    }
  }
  return undefined;
}

/** Wraps a CLI parser (which throws a one-line error) as a zod transform. */
function via<T>(parse: (text: string) => T) {
  return (text: string, ctx: z.RefinementCtx): T => {
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

const schema = z.strictObject({
  dataDir: z.string().min(1).optional(),
  chain: z.strictObject({ rpc: httpUrl.optional(), deployment: z.string().min(1).optional() }).optional(),
  account: accountIndex.default(0),
  http: z
    .strictObject({
      host: z.string().min(1).default("127.0.0.1"),
      port: z.number().int().min(0).max(65_535).default(DEFAULT_NODE_PORT),
    })
    .default({ host: "127.0.0.1", port: DEFAULT_NODE_PORT }),
  peers: z.array(httpUrl.transform((s) => s.replace(/\/+$/, ""))).default([]),
  roles: z
    .strictObject({
      oracle: z
        .strictObject({
          models: z.array(z.string().transform(via(parseModelRef))).min(1),
          stake: z
            .union([z.string(), z.number()])
            .transform((v) => String(v))
            .transform(via((s) => parseMind(s, "stake")))
            .optional(),
          fundFrom: accountIndex.optional(),
          pollMs: z.number().int().min(10).max(3_600_000).default(500),
          leaderTimeoutMs: z.number().int().min(10).max(3_600_000).default(DEFAULT_LEADER_TIMEOUT_MS),
          reportWindowMs: z.number().int().min(10).max(3_600_000).default(DEFAULT_REPORT_WINDOW_MS),
        })
        .optional(),
    })
    .default({}),
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
  const roles = (raw as { roles?: unknown }).roles;
  if (roles !== null && typeof roles === "object")
    for (const role of RESERVED_ROLES)
      if (role in roles)
        throw fail(`roles.${role}: not yet supported by this node; use fl simulate/fl commands`);

  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw fail(issueLine(parsed.error.issues[0] as z.core.$ZodIssue));
  const c = parsed.data;
  if (c.chain?.rpc === undefined)
    throw fail(
      "chain.rpc: required: a node needs a chain other processes share (start one with `ledgermind chain`); the embedded chain belongs to one process",
    );
  const base = dirname(resolve(configPath));
  const oracle = c.roles.oracle;
  return {
    dataDir: resolve(base, c.dataDir ?? DEFAULT_DATA_DIR),
    chain: {
      rpc: c.chain.rpc,
      ...(c.chain.deployment === undefined ? {} : { deployment: resolve(base, c.chain.deployment) }),
    },
    account: c.account,
    http: c.http,
    peers: c.peers,
    roles: oracle
      ? {
          oracle: {
            models: oracle.models,
            pollMs: oracle.pollMs,
            leaderTimeoutMs: oracle.leaderTimeoutMs,
            reportWindowMs: oracle.reportWindowMs,
            ...(oracle.stake === undefined ? {} : { stake: oracle.stake }),
            ...(oracle.fundFrom === undefined ? {} : { fundFrom: oracle.fundFrom }),
          },
        }
      : {},
  };
}
