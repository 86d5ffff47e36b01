/**
 * TensorFlow.js backend selection. WebAssembly (SIMD, single thread in Node) is several times faster
 * than the pure-JavaScript cpu backend for our dense models; cpu stays as the fallback. The wasm
 * binaries are loaded from node_modules (never fetched).
 */
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs";

export type BackendName = "wasm" | "cpu";

let wasmPathsSet = false;
let pending: Promise<BackendName> | undefined;
let pendingFor: BackendName | undefined;

function silenceCpuBanner(): void {
  // The cpu backend prints a multi-line "install tfjs-node" banner on first use in Node; we chose
  // the backend on purpose, so mark the banner as shown.
  const backend = tf.backend() as unknown as { firstUse?: boolean };
  if (typeof backend.firstUse === "boolean") backend.firstUse = false;
}

async function useCpu(): Promise<BackendName> {
  if (!(await tf.setBackend("cpu"))) throw new Error("tfjs: the cpu backend failed to initialize");
  await tf.ready();
  silenceCpuBanner();
  return "cpu";
}

/**
 * Runs `f` with console.log/warn/error captured (Emscripten and tfjs print several lines when the
 * wasm binary cannot load); returns what was printed. Functions that bound the console methods
 * while capturing keep forwarding to the real console afterwards.
 */
async function capturingConsole<T>(
  f: () => Promise<T>,
): Promise<{ result?: T; error?: unknown; printed: string[] }> {
  const methods = ["log", "warn", "error"] as const;
  const originals = methods.map((m) => console[m]);
  const printed: string[] = [];
  let capturing = true;
  methods.forEach((m, i) => {
    console[m] = (...args: unknown[]) => {
      if (capturing) printed.push(args.map((a) => (a instanceof Error ? a.message : String(a))).join(" "));
      else (originals[i] as (...a: unknown[]) => void)(...args);
    };
  });
  try {
    return { result: await f(), printed };
  } catch (error) {
    return { error, printed };
  } finally {
    capturing = false;
    methods.forEach((m, i) => {
      console[m] = originals[i] as (...a: unknown[]) => void;
    });
  }
}

/** Directory of the .wasm binaries: LEDGERMIND_WASM_DIR, else the installed package's dist/. */
function wasmDir(): string {
  const fromEnv = process.env.LEDGERMIND_WASM_DIR;
  if (fromEnv) return fromEnv;
  const require = createRequire(import.meta.url);
  return dirname(require.resolve("@tensorflow/tfjs-backend-wasm"));
}

async function useWasm(): Promise<BackendName> {
  const { result, error, printed } = await capturingConsole(async () => {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    if (!wasmPathsSet) {
      // A file: URL prefix with a trailing slash; Emscripten reads it with fs in Node, no fetch.
      wasm.setWasmPaths(`${pathToFileURL(wasmDir()).href}/`);
      wasmPathsSet = true;
    }
    if (!(await tf.setBackend("wasm"))) return undefined;
    await tf.ready();
    return "wasm" as const;
  });
  if (result) {
    for (const line of printed) process.stderr.write(`${line}\n`);
    return result;
  }
  const reason =
    error instanceof Error ? error.message : error ? String(error) : printed[0] || "setBackend failed";
  throw new Error(reason.split("\n")[0]);
}

/**
 * Initializes tfjs on the preferred backend (wasm by default), falling back to cpu with a one-line
 * warning on stderr if wasm cannot start. Idempotent: concurrent and repeated calls share one
 * initialization; a later call naming another backend switches to it (tensors move lazily).
 * Returns the backend in use.
 */
export function initBackend(preferred?: BackendName): Promise<BackendName> {
  if (pending && (preferred === undefined || preferred === pendingFor)) return pending;
  const want: BackendName = preferred ?? "wasm";
  pendingFor = want;
  const previous = pending ?? Promise.resolve(undefined);
  pending = previous
    .catch(() => undefined)
    .then(async (): Promise<BackendName> => {
      if (want === "cpu") return useCpu();
      try {
        return await useWasm();
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        process.stderr.write(
          `ledgermind: tfjs wasm backend unavailable (${message.split("\n")[0]}); using cpu\n`,
        );
        return useCpu();
      }
    });
  return pending;
}

/** The backend tfjs is using now, or undefined before initBackend. */
export function currentBackend(): BackendName | undefined {
  return pending ? (tf.getBackend() as BackendName) : undefined;
}
