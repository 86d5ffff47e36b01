// One Groth16 proof in a process of its own, so that its peak memory is the proof's alone:
//   node --import tsx bench/zk-prove-process.ts WASM ZKEY INPUT_JSON
// prints {"seconds": S, "maxRssMb": M} (maxRSS of this process, which loads the keys and proves).
import { readFileSync } from "node:fs";
import { groth16 } from "snarkjs";
import { releaseCurve } from "../src/zk/groth16.ts";

const [wasm, zkey, inputPath] = process.argv.slice(2) as [string, string, string];
const input = JSON.parse(readFileSync(inputPath, "utf8"), (_, v) =>
  typeof v === "string" && /^-?\d+$/.test(v) ? BigInt(v) : v,
) as Record<string, unknown>;
const started = performance.now();
await groth16.fullProve(input, wasm, zkey);
const seconds = (performance.now() - started) / 1000;
await releaseCurve();
console.log(JSON.stringify({ seconds, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
