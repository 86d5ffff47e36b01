/**
 * A worker of the evaluation pool (evaluate.ts, runPool): a child process that runs the grid runs it is
 * sent, one at a time, on the in-memory engine, and answers each with its result or its error.
 */
import { type GridRun, runResult, type WorkerReply } from "./evaluate.ts";
import { simulateFederated } from "./simulate.ts";

process.on("message", async (run: GridRun) => {
  let reply: WorkerReply;
  try {
    reply = { ok: true, result: runResult(run, await simulateFederated(run.options)) };
  } catch (err) {
    reply = { ok: false, id: run.id, error: err instanceof Error ? err.message : String(err) };
  }
  process.send?.(reply);
});
// Exits once the parent closes the channel (it is done, or gone).
process.on("disconnect", () => process.exit(0));
