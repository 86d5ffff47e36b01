/** The node's config file: what a valid one becomes, and the one line each kind of mistake gets. Pure. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseEther } from "viem";
import { ConfigError, DEFAULT_NODE_PORT, formatPath, parseNodeConfig } from "../../src/node/config.ts";
import { DEFAULT_LEADER_TIMEOUT_MS, DEFAULT_REPORT_WINDOW_MS } from "../../src/oracle/report-exchange.ts";

const FILE = "/etc/ledgermind/node.yaml";
const RPC = "chain:\n  rpc: http://127.0.0.1:8545\n";

/** The ConfigError message for `text`, after the file name. */
function errorOf(text: string): string {
  try {
    parseNodeConfig(text, FILE);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    assert.doesNotMatch(error.message, /\n/, "one line");
    assert.ok(error.message.startsWith(`${FILE}: `), error.message);
    return error.message.slice(FILE.length + 2);
  }
  assert.fail(`accepted: ${text}`);
}

describe("node config", () => {
  it("a full file becomes a typed config; relative paths are the config folder's", () => {
    const config = parseNodeConfig(
      `${RPC}  deployment: deployments/1337.json
dataDir: hospital-a
account: 3
http: { host: 0.0.0.0, port: 8700, publicUrl: https://hospital-a.example.org/ledgermind/ }
peers: [http://10.0.0.2:8600/]
roles:
  oracle:
    models: ["1@1", "2@4"]
    stake: "150.5"
    fundFrom: 0
    pollMs: 200
`,
      FILE,
    );
    assert.deepEqual(config, {
      dataDir: "/etc/ledgermind/hospital-a",
      chain: { rpc: "http://127.0.0.1:8545", deployment: "/etc/ledgermind/deployments/1337.json" },
      account: 3,
      http: { host: "0.0.0.0", port: 8700, publicUrl: "https://hospital-a.example.org/ledgermind" },
      fetch: {},
      peers: ["http://10.0.0.2:8600"],
      roles: {
        oracle: {
          models: [
            { modelId: 1n, version: 1 },
            { modelId: 2n, version: 4 },
          ],
          stake: parseEther("150.5"),
          fundFrom: 0,
          pollMs: 200,
          mine: true,
          leaderTimeoutMs: DEFAULT_LEADER_TIMEOUT_MS,
          reportWindowMs: DEFAULT_REPORT_WINDOW_MS,
        },
      },
      learningPollMs: 250,
    });
  });

  it("defaults: the data folder beside the config, account 0, port 8600 on localhost, no roles", () => {
    assert.deepEqual(parseNodeConfig(RPC, "conf/node.yaml"), {
      dataDir: `${process.cwd()}/conf/.ledgermind`,
      chain: { rpc: "http://127.0.0.1:8545" },
      account: 0,
      http: { host: "127.0.0.1", port: DEFAULT_NODE_PORT },
      fetch: {},
      peers: [],
      roles: {},
      learningPollMs: 250,
    });
  });

  it("each mistake names its path in the file", () => {
    assert.equal(
      errorOf(`${RPC}roles: { oracle: { models: ["x"] } }`),
      'roles.oracle.models[0]: expected MODEL@VERSION (for example 1@2), got "x"',
    );
    assert.equal(
      errorOf(`${RPC}roles: { oracle: { models: ["1@1"], stake: lots } }`),
      'roles.oracle.stake: stake takes an amount of MIND (for example 1.5), got "lots"',
    );
    assert.match(errorOf(`${RPC}roles: { oracle: { models: [] } }`), /^roles\.oracle\.models: /);
    assert.match(errorOf(`${RPC}account: -1`), /^account: .*>=0/);
    assert.match(errorOf(`${RPC}http: { port: 70000 }`), /^http\.port: /);
    assert.equal(errorOf("chain: { rpc: ftp://x }"), "chain.rpc: expected an http(s) URL");
    assert.equal(errorOf(`${RPC}peers: [nowhere]`), "peers[0]: expected an http(s) URL");
  });

  it("a faulty oracle operator, for demonstrations: its offset in the oracle's fixed point; 0 is refused", () => {
    const faulty = parseNodeConfig(`${RPC}roles: { oracle: { models: ["1@1"], faultyOffset: 0.4 } }`, FILE);
    assert.equal(faulty.roles.oracle?.faultyOffset, 400_000n);
    const honest = parseNodeConfig(`${RPC}roles: { oracle: { models: ["1@1"] } }`, FILE);
    assert.equal("faultyOffset" in (honest.roles.oracle ?? {}), false, "an honest operator has no offset");
    assert.match(
      errorOf(`${RPC}roles: { oracle: { models: ["1@1"], faultyOffset: 0 } }`),
      /^roles\.oracle\.faultyOffset: expected a non-zero offset/,
    );
    assert.match(
      errorOf(`${RPC}roles: { oracle: { models: ["1@1"], faultyOffset: 1e300 } }`),
      /^roles\.oracle\.faultyOffset: /,
    );
  });

  it("an operator that proves: each salt file of zk build, relative to the config, names one of its versions", () => {
    const dir = mkdtempSync(join(tmpdir(), "ledgermind-config-zk-"));
    try {
      const file = join(dir, "node.yaml");
      const salt = (name: string, modelId: string, version: number) =>
        writeFileSync(join(dir, name), JSON.stringify({ modelId, version, salt: "12345" }));
      salt("model-1-v1.json", "1", 1);
      salt("model-2-v1.json", "2", 1);
      writeFileSync(join(dir, "garbage.json"), "not json");
      writeFileSync(join(dir, "null.json"), "null");
      const parse = (files: string) =>
        parseNodeConfig(`${RPC}roles: { oracle: { models: ["1@1"], zkSaltFiles: ${files} } }`, file);
      assert.deepEqual(parse('["model-1-v1.json"]').roles.oracle?.zkSaltFiles, [
        join(dir, "model-1-v1.json"),
      ]);
      const refusal = (files: string) => {
        try {
          parse(files);
        } catch (error) {
          assert.ok(error instanceof ConfigError, String(error));
          return error.message.slice(file.length + 2);
        }
        assert.fail(`accepted: ${files}`);
      };
      assert.match(
        refusal('["model-2-v1.json"]'),
        /^roles\.oracle\.zkSaltFiles\.0: .*model-2-v1\.json is the salt of model 2@1, which is not in roles\.oracle\.models$/,
      );
      assert.match(
        refusal('["model-1-v1.json", "missing.json"]'),
        /^roles\.oracle\.zkSaltFiles\.1: no zk secret at /,
      );
      assert.match(refusal('["garbage.json"]'), /^roles\.oracle\.zkSaltFiles\.0: .* is not a zk secret file/);
      assert.match(refusal('["null.json"]'), /^roles\.oracle\.zkSaltFiles\.0: .* is not a zk secret file/);
      assert.match(refusal("[]"), /^roles\.oracle\.zkSaltFiles: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a wildcard host needs http.publicUrl: the server's own URL would name no reachable address", () => {
    for (const host of ["0.0.0.0", "'::'"])
      assert.match(
        errorOf(`${RPC}http: { host: ${host}, port: 8700 }`),
        /^http\.publicUrl: required when http\.host is (0\.0\.0\.0|::): .*\(http:\/\/10\.0\.0\.2:8700\)$/,
      );
    assert.equal(
      errorOf(`${RPC}http: { publicUrl: "10.0.0.2:8600" }`),
      "http.publicUrl: expected an http(s) URL",
    );
  });

  it("unknown keys are refused, at the top and inside", () => {
    assert.equal(errorOf(`${RPC}colour: blue`), 'top level: unknown key "colour"');
    assert.equal(errorOf("chain: { rpc: http://x, id: 1 }"), 'chain: unknown key "id"');
    assert.equal(errorOf(`${RPC}roles: { miner: {} }`), 'roles: unknown key "miner"');
  });

  it("learning roles: a trainer's and a validator's part of the split, the aggregator beside its validator, the keeper", () => {
    const split = "{ clients: 4, validators: 3, alpha: 0.5, seed: 7";
    const config = parseNodeConfig(
      `${RPC}learningPollMs: 100
roles:
  trainer: { task: 2, stake: 25, fundFrom: 0, data: { mnist: ${split}, index: 3 } }, training: { lr: 0.05 } }
  validator: { task: 2, data: { mnist: ${split}, validatorSamples: 300, index: 0 } }, strategy: median }
  aggregator: { task: 2 }
  keeper: { task: 2 }
`,
      FILE,
    );
    const mnist = { clients: 4, validators: 3, alpha: 0.5, seed: 7 };
    assert.deepEqual(config.roles, {
      trainer: {
        task: 2n,
        stake: parseEther("25"),
        fundFrom: 0,
        data: { mnist: { ...mnist, index: 3 } },
        training: { epochs: 1, batch: 32, lr: 0.05 },
      },
      validator: {
        task: 2n,
        data: { mnist: { ...mnist, validatorSamples: 300, index: 0 } },
        strategy: "median",
      },
      aggregator: { task: 2n },
      keeper: { task: 2n, blockTimeMs: 1000, minTrainers: 1 },
    });
    assert.equal(config.learningPollMs, 100);
    assert.equal(
      errorOf(`${RPC}roles: { trainer: { task: 1, data: { mnist: ${split}, index: 4 } } } }`),
      "roles.trainer.data.mnist.index: 4 is not one of the split's 4 trainers (0 to 3)",
    );
    assert.equal(
      errorOf(`${RPC}roles: { aggregator: { task: 1 } }`),
      "roles.aggregator: the aggregator must also validate task 1 (roles.validator.task): its proposal counts as its vote",
    );
    assert.match(
      errorOf(
        `${RPC}roles: { validator: { task: 1, strategy: best, data: { mnist: ${split}, index: 0 } } } }`,
      ),
      /^roles\.validator\.strategy: expected one of fedavg, /,
    );
  });

  it("a trainer's own CSV file: its path is the config folder's, a missing file or a bad shape is one line", () => {
    const dir = mkdtempSync(join(tmpdir(), "ledgermind-config-csv-"));
    try {
      writeFileSync(join(dir, "records.csv"), "label,a,b\n1,0,255\n");
      const file = join(dir, "node.yaml");
      const config = parseNodeConfig(
        `${RPC}roles: { trainer: { task: 1, data: { csv: { path: records.csv, divideBy: 255 } } } }`,
        file,
      );
      assert.deepEqual(config.roles.trainer?.data, {
        csv: { path: join(dir, "records.csv"), divideBy: 255 },
      });
      const validator = parseNodeConfig(
        `${RPC}roles: { validator: { task: 1, data: { csv: { path: records.csv } } } }`,
        file,
      );
      assert.deepEqual(validator.roles.validator?.data, {
        csv: { path: join(dir, "records.csv"), divideBy: 1 },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(
      errorOf(`${RPC}roles: { trainer: { task: 1, data: { csv: { path: gone.csv } } } }`),
      "roles.trainer.data.csv.path: no file at /etc/ledgermind/gone.csv",
    );
    assert.match(
      errorOf(`${RPC}roles: { trainer: { task: 1, data: { csv: { path: a.csv, divideBy: 0 } } } }`),
      /^roles\.trainer\.data/,
    );
  });

  it("a private key or mnemonic in the file is refused wherever it is, and says where keys come from", () => {
    const key = `0x${"ab".repeat(32)}`;
    for (const [text, path] of [
      [`${RPC}account: 1\nprivateKey: "${key}"`, "privateKey"],
      [`${RPC}extra: ["${key.slice(2)}"]`, "extra[0]"],
      [
        `${RPC}wallet: { words: "test test test test test test test test test test test junk" }`,
        "wallet.words",
      ],
      [`${RPC}mnemonic: x`, "mnemonic"],
    ] as const)
      assert.equal(
        errorOf(text),
        `${path}: looks like a private key or mnemonic; keys never go in the config: set LEDGERMIND_KEYS in the node's environment and name the account by its index (account: 1)`,
      );
  });

  it("no chain.rpc: the embedded chain is one process's", () => {
    assert.match(
      errorOf("account: 1"),
      /^chain\.rpc: required: .*the embedded chain belongs to one process$/,
    );
  });

  it("not YAML, or not a mapping", () => {
    assert.match(errorOf("a: ["), /^not valid YAML \(/);
    assert.match(errorOf("- 1\n- 2"), /^expected a mapping of settings/);
    assert.match(errorOf(""), /^expected a mapping of settings/);
  });

  it("the README's example is a valid config", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const example = /```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(example, "a yaml block in the README");
    const config = parseNodeConfig(example, "/srv/node.yaml");
    assert.equal(config.dataDir, "/srv/hospital-a");
    assert.deepEqual(config.roles.oracle?.models, [{ modelId: 1n, version: 1 }]);
  });

  it("paths print as in the file", () => {
    assert.equal(formatPath(["roles", "oracle", "models", 0]), "roles.oracle.models[0]");
    assert.equal(formatPath([]), "top level");
  });
});
