import { join } from "node:path";
import type { Command } from "commander";
import { chainDir } from "../chain/connect.ts";
import { deployAll } from "../chain/deploy.ts";
import { ANVIL_STOP_GRACE_MS, DEV_NODE_CHAIN_ID, DevNodeError, startDevNode } from "../chain/devnode.ts";
import { freshHeader, stderrNotice } from "../chain/embedded.ts";
import { repairJournal } from "../chain/journal.ts";
import { acquireChainLock, type ChainLock, processStart, stopLeftover } from "../chain/lock.ts";
import { advanceTime } from "../chain/time.ts";
import { emit, type GlobalOptions, globalOptions, UsageError, withChain } from "./context.ts";

/** `--rpc URL chain` used to start a chain of its own and say nothing of the URL. */
function refuseRpc(opts: GlobalOptions, command: string): void {
  if (opts.rpc) {
    throw new UsageError(
      `\`${command}\` works on the chain in --data-dir, not on --rpc ${opts.rpc}: drop --rpc, or give it to the commands that use that chain`,
    );
  }
}

/** Runs anvil until a signal (or anvil itself) ends it; anvil saves its state as it stops. */
async function serve(opts: GlobalOptions, lock: ChainLock, port: number, host: string): Promise<void> {
  const node = await startDevNode({ port, host, stateFile: join(opts.dataDir, "devchain-state.json") });
  const { anvil, watchdog } = node.pids;
  const anvilChild = { name: "anvil", pid: anvil, start: processStart(anvil) };
  lock.update({
    url: node.url,
    children: [{ name: "watchdog", pid: watchdog, start: processStart(watchdog) }, anvilChild],
  });
  emit(opts, { url: node.url, chainId: DEV_NODE_CHAIN_ID }, () => [
    `development chain listening on ${node.url} (chain id ${DEV_NODE_CHAIN_ID}); stop with Ctrl-C`,
    `use it with: ledgermind --rpc ${node.url} deploy`,
  ]);
  let stopping = false;
  const stop = () => {
    stopping = true;
    void node.stop();
  };
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const signal of signals) process.on(signal, stop);
  try {
    const code = await new Promise<number | null>((resolve) => node.process.once("exit", resolve));
    // A watchdog killed on its own leaves anvil running: stop it before the lock no longer names it.
    await stopLeftover(anvilChild, ANVIL_STOP_GRACE_MS);
    if (!stopping && code !== 0) throw new DevNodeError(`anvil stopped on its own (exit code ${code})`);
  } finally {
    for (const signal of signals) process.off(signal, stop);
  }
}

export function registerChainCommands(program: Command): void {
  const chain = program
    .command("chain")
    .description(
      "run a JSON-RPC development chain (anvil) that several processes can share; state kept in --data-dir",
    )
    .option("--port <PORT>", "port to listen on", "8545")
    .option("--host <HOST>", "address to listen on", "127.0.0.1")
    .action(async (o: { port: string; host: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      refuseRpc(opts, "chain");
      const port = Number(o.port);
      if (!/^\d+$/.test(o.port) || port > 65535) throw new UsageError(`invalid --port "${o.port}"`);
      // The embedded chain's lock: one process per data folder, whichever kind of chain it runs.
      const lock = await acquireChainLock(chainDir(opts.dataDir), "chain", stderrNotice);
      try {
        await serve(opts, lock, port, o.host);
      } finally {
        lock.release();
      }
    });

  chain
    .command("repair")
    .description(
      "cut the embedded chain's journal back to its last good entry, keeping the damaged file beside it",
    )
    .action(async (_o, cmd: Command) => {
      const opts = globalOptions(cmd);
      refuseRpc(opts, "chain repair");
      const dir = chainDir(opts.dataDir);
      const lock = await acquireChainLock(dir, "embedded", stderrNotice);
      try {
        const r = repairJournal(dir, freshHeader());
        emit(opts, r, () => [
          r.damage
            ? `repaired ${r.file}: kept its ${r.kept} entries before line ${r.damage.line} (${r.damage.reason}), dropped ${r.dropped} lines${r.headerRebuilt ? ", rebuilt its header" : ""}; the damaged file is kept at ${r.backup}`
            : `${r.file} is sound (${r.kept} entries): nothing to repair`,
        ]);
      } finally {
        lock.release();
      }
    });

  program
    .command("deploy")
    .description("deploy the Ledgermind contracts and write this chain's deployment manifest")
    .action(async (_o, cmd: Command) => {
      const opts = globalOptions(cmd);
      await withChain(opts, async (chain) => {
        const manifest = await deployAll(chain);
        emit(opts, manifest, () => [
          `deployed on chain ${manifest.chainId}:`,
          ...Object.entries(manifest.contracts).map(([name, c]) => `  ${name.padEnd(16)} ${c.address}`),
        ]);
      });
    });

  program
    .command("advance-time <SECONDS>")
    .description("development chains only: move the clock forward and mine a block")
    .action(async (seconds: string, _o, cmd: Command) => {
      const opts = globalOptions(cmd);
      if (!/^\d+$/.test(seconds)) throw new UsageError(`seconds must be a whole number, got "${seconds}"`);
      await withChain(opts, async (chain) => {
        const time = await advanceTime(chain, Number(seconds));
        emit(opts, { time }, () => [`chain time is now ${new Date(time * 1000).toISOString()}`]);
      });
    });
}
