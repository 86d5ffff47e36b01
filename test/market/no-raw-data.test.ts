import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { cidOf } from "../../src/storage/cid.ts";
import { PLAIN_DATASET, type ProviderFixture, startProvider } from "./provider-fixture.ts";

/** A raw request: the path is sent as written, not normalized as fetch would (`..` kept). */
function raw(url: string, method: string, path: string): Promise<{ status: number; body: Buffer }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("raw data is never served", () => {
  let f: ProviderFixture;
  before(async () => {
    f = await startProvider();
  });
  after(() => f.close());

  it("data exfiltration by route: no path returns any of the private rows", async () => {
    const rows = f.provider.options.datasets.get(PLAIN_DATASET)?.data.rows();
    assert.ok(rows && rows.n > 0);
    const pixels = new Uint8Array(rows.x.buffer, rows.x.byteOffset, rows.x.byteLength);
    // The rows as a holder might have stored or published them: raw floats, and JSON.
    const json = new TextEncoder().encode(JSON.stringify({ x: Array.from(rows.x), y: Array.from(rows.y) }));
    const firstRow = Array.from(rows.x.subarray(0, 784));
    // A run of the first row's non-zero pixels, as text: it appears in any textual dump of the data.
    const needle = firstRow
      .filter((v) => v > 0)
      .slice(0, 6)
      .join(",");
    assert.ok(needle.length > 10);
    const rowBytes = Buffer.from(pixels.subarray(0, 784 * 4));
    const paths = [
      "/data",
      "/data/1",
      "/datasets/1",
      "/datasets/1/rows",
      "/compute/datasets/1",
      "/compute/data/1",
      `/blobs/${cidOf(pixels)}`,
      `/blobs/${cidOf(json)}`,
      `/compute/results/${cidOf(pixels)}`,
      `/compute/results/${cidOf(json)}`,
      "/compute/results/../../nonces.log",
      "/compute/results/..%2f..%2fnonces.log",
      "/compute/results/%2e%2e%2f%2e%2e%2fprivacy-budgets.json",
      "/compute/jobs/../../jobs",
      "/blobs/..%2f..%2fnonces.log",
      "/blobs/../../../../etc/passwd",
      "/../../../../etc/passwd",
      `/compute/jobs/0x${"00".repeat(32)}`,
      "/compute/jobs/..%2f..%2fresults",
    ];
    for (const path of paths) {
      for (const method of ["GET", "HEAD"]) {
        const answer = await raw(f.url, method, path);
        assert.ok(answer.status >= 400, `${method} ${path} answered ${answer.status}`);
        assert.equal(answer.body.includes(rowBytes), false, `${method} ${path} sent the first row's bytes`);
        assert.equal(
          answer.body.toString("utf8").includes(needle),
          false,
          `${method} ${path} sent the first row`,
        );
      }
    }
  });

  it("data exfiltration by job: the job's record and result hold a model or metrics, never rows", async () => {
    const rows = f.provider.options.datasets.get(PLAIN_DATASET)?.data.rows();
    assert.ok(rows);
    const needle = Array.from(rows.x.subarray(0, 784))
      .filter((v) => v > 0)
      .slice(0, 6)
      .join(",");
    for (const kind of ["train", "evaluate"] as const) {
      const posted = await f.post(await f.sign({ kind }));
      assert.equal(posted.status, 202);
      const record = await raw(f.url, "GET", `/compute/jobs/${String(posted.body.id)}?waitMs=30000`);
      const text = record.body.toString("utf8");
      assert.equal(JSON.parse(text).status, "done", text);
      assert.equal(text.includes(needle), false);
      const bytes = await f.provider.options.results.get(JSON.parse(text).resultCid);
      assert.equal(
        Buffer.from(bytes).includes(Buffer.from(rows.x.buffer, rows.x.byteOffset, 784 * 4)),
        false,
      );
      assert.equal(Buffer.from(bytes).toString("latin1").includes(needle), false);
    }
  });
});
