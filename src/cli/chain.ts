import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { deployAll } from "../chain/deploy.ts";
import { startDevNode } from "../chain/devnode.ts";
import { advanceTime } from "../chain/time.ts";
import { emit, globalOptions, UsageError, withChain } from "./context.ts";

export function registerChainCommands(program: Command): void {
  program
    .command("chain")
    .description(
      "run a JSON-RPC development chain (anvil) that several processes can share; state kept in --data-dir",
    )
    .option("--port <PORT>", "port to listen on", "8545")
    .option("--host <HOST>", "address to listen on", "127.0.0.1")
    .action(async (o: { port: string; host: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new UsageError(`invalid --port "${o.port}"`);
      mkdirSync(opts.dataDir, { recursive: true });
      const node = await startDevNode({
        port,
        host: o.host,
        stateFile: join(opts.dataDir, "devchain-state.json"),
      });
      emit(opts, { url: node.url, chainId: 1337 }, () => [
        `development chain listening on ${node.url} (chain id 1337); stop with Ctrl-C`,
        `use it with: ledgermind --rpc ${node.url} deploy`,
      ]);
      const stop = () => void node.stop();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      await new Promise<void>((resolve) => node.process.once("exit", () => resolve()));
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
