/**
 * The node in-process, without roles, on its own anvil: /health answers 200 while the chain answers and
 * 503 (quickly, naming the chain) once it is gone; an unknown path keeps the blob server's one-line JSON
 * error; and a node that cannot start (no deployment) never serves.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { connect } from "../../src/chain/connect.ts";
import { deployAll, NotDeployedError } from "../../src/chain/deploy.ts";
import { type DevNode, startDevNode } from "../../src/chain/devnode.ts";
import { parseNodeConfig } from "../../src/node/config.ts";
import { HEALTH_CHAIN_TIMEOUT_MS, startNode } from "../../src/node/node.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-node-inproc-"));
let dev: DevNode;
const lines: Record<string, unknown>[] = [];
const logger = pino({}, { write: (line: string) => void lines.push(JSON.parse(line)) });

before(async () => {
  dev = await startDevNode({ port: 0 });
  const chain = await connect({ rpc: dev.url, dataDir: join(TMP, "deployer") });
  await deployAll(chain);
  await chain.close();
});

after(async () => {
  await dev?.stop();
  rmSync(TMP, { recursive: true, force: true });
});

const configFor = (dataDir: string, deployment?: string) =>
  parseNodeConfig(
    [
      `dataDir: ${dataDir}`,
      `chain: { rpc: ${dev.url}${deployment ? `, deployment: ${deployment}` : ""} }`,
      "http: { port: 0 }",
    ].join("\n"),
    join(TMP, "node.yaml"),
  );

describe("node (in-process)", { concurrency: false }, () => {
  it("without a deployment it refuses to start and never serves", async () => {
    await assert.rejects(startNode({ config: configFor("empty"), logger }), NotDeployedError);
    assert.equal(lines.length, 0, "it never said it serves");
  });

  it("/health: 200 with the chain, 503 without it; unknown paths answer one-line JSON", async () => {
    const node = await startNode({ config: configFor("node-b", "deployer/deployments/1337.json"), logger });
    try {
      assert.match(String(lines.at(-1)?.msg), /^serving on http:\/\/127\.0\.0\.1:\d+$/);
      const ok = await fetch(`${node.url}/health`);
      assert.equal(ok.status, 200);
      const body = (await ok.json()) as Record<string, unknown>;
      assert.equal(body.status, "ok");
      assert.deepEqual(body.roles, []);

      const missing = await fetch(`${node.url}/nothing`);
      assert.equal(missing.status, 404);
      assert.match(((await missing.json()) as { error: string }).error, /^no such resource GET \/nothing/);

      await dev.stop();
      const started = Date.now();
      const down = await fetch(`${node.url}/health`);
      assert.equal(down.status, 503);
      const d = (await down.json()) as Record<string, unknown>;
      assert.equal(d.status, "unavailable");
      assert.match(String(d.error), /^the chain does not answer/);
      assert.equal(d.chainId, 1337);
      assert.ok(Date.now() - started < HEALTH_CHAIN_TIMEOUT_MS + 1_000, "answered within the health timeout");
      // The metrics still answer, the height left at its last value.
      const metrics = await (await fetch(`${node.url}/metrics`)).text();
      assert.match(metrics, /^ledgermind_node_http_requests_total\{route="\/health",status="503"\} 1$/m);
    } finally {
      await node.stop();
    }
    assert.equal(lines.at(-1)?.msg, "stopped");
  });
});
