import type { Command } from "commander";
import { formatEther } from "viem";
import {
  explainResult,
  explanationLines,
  formatFixed,
  openOracle,
  type RequestStatus,
  requestInference,
  setModelSpec,
  toFixedInput,
  waitForResult,
} from "../oracle/client.ts";
import {
  formatOperatorEvent,
  fundStake,
  type OperatorEvent,
  operatorStateFile,
  startOperator,
} from "../oracle/operator.ts";
import {
  DEFAULT_LEADER_TIMEOUT_MS,
  DEFAULT_REPORT_WINDOW_MS,
  ReportExchange,
  reportRoutes,
  staticPeerResolver,
} from "../oracle/report-exchange.ts";
import { openRegistry } from "../registry/client.ts";
import { type BlobServer, createBlobServer } from "../storage/blob-server.ts";
import { operatorZkOptions, readZkSecret } from "../zk/secret.ts";
import { parsePeers } from "./blob.ts";
import {
  blobStore,
  collect,
  emit,
  type GlobalOptions,
  globalOptions,
  jsonReplacer,
  parseAccount,
  parseInteger,
  parseMind,
  parseModelRef,
  parsePositiveInt,
  UsageError,
  withChain,
} from "./context.ts";

/** The on-chain result differs from the model re-run: printed, then the process exits 1. */
export class ResultMismatchError extends Error {
  override name = "ResultMismatchError";
}

function parseNumber(text: string, what: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value))
    throw new UsageError(`${what} must be a number, got "${text}"`);
  return value;
}

/** `--listen HOST:PORT` (an IPv6 host in brackets). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new UsageError(`--listen takes HOST:PORT (for example 127.0.0.1:8601), got "${text}"`);
  return {
    host: (m[1] as string).replace(/^\[|\]$/g, ""),
    port: parseInteger(m[2] as string, "--listen's port", 0, 65_535),
  };
}

export function parseInput(text: string): bigint[] {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === ""))
    throw new UsageError(`--input takes comma-separated numbers (0.1,0.2,...), got "${text}"`);
  return toFixedInput(parts.map((p, i) => parseNumber(p, `--input value ${i + 1}`)));
}

function statusLine(s: RequestStatus): string {
  if (s.state === "finalized")
    return `request ${s.requestId}: finalized, result ${formatFixed(s.output ?? 0n)}`;
  if (s.state === "failed")
    return `request ${s.requestId}: failed (too few operators answered, or no value had a strict majority of their stake), fee refunded`;
  return `request ${s.requestId}: open (${s.commits} commit(s), ${s.reveals} reveal(s))`;
}

export function registerOracleCommands(program: Command): void {
  const oracle = program
    .command("oracle")
    .description("the inference oracle: model specs, operators, requests, explained results");

  oracle
    .command("spec")
    .description("declare how many input values a model version takes (the model's owner, once)")
    .requiredOption("--model <MODEL@VERSION>", "the model version, e.g. 1@1")
    .requiredOption("--input-size <N>", "the number of fixed-point input values")
    .option("--account <INDEX>", "which configured account signs (the model's owner)")
    .action(async (o: { model: string; inputSize: string; account?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const { modelId, version } = parseModelRef(o.model);
      const inputSize = parsePositiveInt(o.inputSize, "--input-size", 0xffff);
      await withChain(opts, async (chain) => {
        const { gasUsed } = await setModelSpec(chain, modelId, version, inputSize, parseAccount(o.account));
        emit(opts, { modelId, version, inputSize, gasUsed }, () => [
          `model ${modelId}@${version} takes ${inputSize} input value(s) (gas ${gasUsed})`,
        ]);
      });
    });

  oracle
    .command("serve")
    .description(
      "operate a model version: stake, then commit, reveal and finalize answers until SIGINT or SIGTERM",
    )
    .requiredOption("--model <MODEL@VERSION>", "the model version to serve")
    .option("--account <INDEX>", "which configured account operates")
    .option("--stake <MIND>", "stake to register with, if not registered (default: the oracle's minimum)")
    .option("--fund-from <INDEX>", "first send the stake from this configured account, if short of MIND")
    .option("--faulty-offset <X>", "add x to every answer: a faulty operator, for demonstrations")
    .option("--poll-ms <MS>", "how often to look for work", "500")
    .option(
      "--listen <HOST_PORT>",
      "serve signed observations and report signatures to the other operators, and answer by signed reports",
    )
    .option(
      "--peer <URL>",
      "another operator's base URL; several comma-separated or repeated (needs --listen)",
      collect,
    )
    .option(
      "--leader-timeout-ms <MS>",
      "how long a report leader has before the next takes over",
      String(DEFAULT_LEADER_TIMEOUT_MS),
    )
    .option(
      "--report-window-ms <MS>",
      "how long reveals wait for a report before commit-reveal decides",
      String(DEFAULT_REPORT_WINDOW_MS),
    )
    .option(
      "--zk-secret <FILE>",
      "settle requests by zero-knowledge proofs, with the salt file of zk build (the version needs its verifier)",
    )
    .action(
      async (
        o: {
          model: string;
          zkSecret?: string;
          account?: string;
          stake?: string;
          fundFrom?: string;
          faultyOffset?: string;
          pollMs: string;
          listen?: string;
          peer?: string[];
          leaderTimeoutMs: string;
          reportWindowMs: string;
        },
        cmd: Command,
      ) => {
        const opts = globalOptions(cmd);
        const { modelId, version } = parseModelRef(o.model);
        const account = parseAccount(o.account);
        const listen = o.listen === undefined ? undefined : parseListen(o.listen);
        const peers = parsePeers(o.peer ?? [], "--peer");
        if (peers.length > 0 && !listen)
          throw new UsageError(
            "--peer needs --listen: the other operators ask this one for its observation and signature",
          );
        const leaderTimeoutMs = parsePositiveInt(o.leaderTimeoutMs, "--leader-timeout-ms", 3_600_000);
        const reportWindowMs = parsePositiveInt(o.reportWindowMs, "--report-window-ms", 3_600_000);
        const stake = o.stake === undefined ? undefined : parseMind(o.stake, "--stake");
        const faultyOffset =
          o.faultyOffset === undefined
            ? undefined
            : toFixedInput([parseNumber(o.faultyOffset, "--faulty-offset")])[0];
        const pollMs = parsePositiveInt(o.pollMs, "--poll-ms", 3_600_000);
        const zkSecret = o.zkSecret === undefined ? undefined : readZkSecret(o.zkSecret, modelId, version);
        await withChain(opts, async (chain) => {
          const address = chain.wallet(account).account.address;
          const stateFile = operatorStateFile(opts.dataDir, chain, address, modelId, version);
          if (o.fundFrom !== undefined)
            await fundStake(chain, account, parseAccount(o.fundFrom), modelId, version, stake);
          const log = (e: OperatorEvent) => {
            if (opts.json) console.log(JSON.stringify(e, jsonReplacer));
            else console.log(formatOperatorEvent(e));
          };
          let exchange: ReportExchange | undefined;
          const running = await startOperator(
            {
              chain,
              account,
              store: blobStore(opts),
              modelId,
              version,
              stake,
              stateFile,
              faultyOffset,
              log,
              pollMs,
              ...(zkSecret ? operatorZkOptions(zkSecret) : {}),
              ...(listen ? { reportWindowMs } : {}),
            },
            listen &&
              ((operator) => {
                const x = new ReportExchange({ operator, peers: staticPeerResolver(peers), leaderTimeoutMs });
                exchange = x;
                return () => x.lead();
              }),
          );
          let server: BlobServer | undefined;
          if (listen && exchange) {
            const served = exchange;
            try {
              server = await createBlobServer(blobStore(opts), {
                ...listen,
                routes: (app) => reportRoutes(app, served),
              });
            } catch (error) {
              await running.stop();
              throw error;
            }
            if (!opts.json) console.log(`reports: serving on ${server.url}, ${peers.length} peer(s)`);
          }
          const stop = () => void running.stop();
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
          try {
            await running.done;
          } finally {
            process.off("SIGINT", stop);
            process.off("SIGTERM", stop);
            await server?.close();
          }
          if (!opts.json) console.log(`stopped; state kept in ${stateFile}`);
        });
      },
    );

  oracle
    .command("request")
    .description("request an inference: approves the fee, then asks the oracle")
    .requiredOption("--model <MODEL@VERSION>", "the model version")
    .requiredOption("--input <VALUES>", "comma-separated real numbers (fixed point 1e6 on-chain)")
    .option("--fee <MIND>", "fee offered to the operators that agree with the result", "1")
    .option("--majority", "aggregate by majority (labels) instead of the median")
    .option("--wait", "wait for the result")
    .option("--timeout <S>", "how long --wait waits", "120")
    .option("--account <INDEX>", "which configured account requests and pays")
    .action(
      async (
        o: {
          model: string;
          input: string;
          fee: string;
          majority?: boolean;
          wait?: boolean;
          timeout: string;
          account?: string;
        },
        cmd: Command,
      ) => {
        const opts: GlobalOptions = globalOptions(cmd);
        const { modelId, version } = parseModelRef(o.model);
        const input = parseInput(o.input);
        const fee = parseMind(o.fee, "--fee");
        const timeoutMs = parsePositiveInt(o.timeout, "--timeout", 86_400) * 1000;
        await withChain(opts, async (chain) => {
          const target = await openOracle(chain);
          const req = await requestInference(
            target,
            { modelId, version, input, fee, aggregation: o.majority ? "majority" : "median" },
            parseAccount(o.account),
          );
          const result = o.wait ? await waitForResult(target, req.requestId, { timeoutMs }) : undefined;
          emit(opts, { ...req, modelId, version, fee, result }, () => [
            `request ${req.requestId} for model ${modelId}@${version}: fee ${formatEther(fee)} MIND, commits until block ${req.commitDeadline}, reveals until block ${req.revealDeadline} (block ${req.blockNumber}, gas ${req.gasUsed})`,
            ...(result ? [statusLine(result)] : []),
          ]);
        });
      },
    );

  oracle
    .command("show <REQUEST>")
    .description(
      "a request's result, model version and weights digest, and whether re-running the model agrees",
    )
    .action(async (requestArg: string, _o: unknown, cmd: Command) => {
      const opts = globalOptions(cmd);
      if (!/^[1-9]\d*$/.test(requestArg))
        throw new UsageError(`a request id is a positive integer, got "${requestArg}"`);
      const requestId = BigInt(requestArg);
      await withChain(
        opts,
        async (chain) => {
          const reg = await openRegistry(chain);
          const e = await explainResult(reg, blobStore(opts), requestId);
          emit(opts, e, () => explanationLines(e));
          if (e.matches === false)
            throw new ResultMismatchError(
              `request ${requestId}: the on-chain result ${formatFixed(e.onChain as bigint)} differs from the model's ${formatFixed(e.recomputed)} by ${formatFixed(e.difference as bigint)}`,
            );
        },
        { readOnly: true },
      );
    });
}
