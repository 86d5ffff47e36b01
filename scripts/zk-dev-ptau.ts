// Generates the DEVELOPMENT powers-of-tau file circuits/ptau/ledgermind-dev-15.ptau once (it is committed).
// Its single contribution uses the fixed entropy below, so its toxic waste is public: never use it in
// production (circuits/ptau/README.md says how to point Ledgermind at a public ceremony's file).
// Run: npx tsx scripts/zk-dev-ptau.ts   (phase-2 preparation takes minutes on this machine)
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { curves, powersOfTau } from "snarkjs";
import { PROJECT_ROOT } from "../src/chain/compile.ts";
import { progressLogger } from "../src/zk/progress.ts";
import { DEV_PTAU_ENTROPY, DEV_PTAU_PATH, DEV_PTAU_POWER } from "../src/zk/ptau.ts";

const log = progressLogger((line) => console.log(line), { verbose: true });
const work = mkdtempSync(join(tmpdir(), "ledgermind-ptau-"));
const started = performance.now();
const curve = await curves.getCurveFromName("bn128");
try {
  const fresh = join(work, "pot_0.ptau");
  const contributed = join(work, "pot_1.ptau");
  const prepared = join(work, "prepared.ptau");
  console.log(`powers of tau: new accumulator, power ${DEV_PTAU_POWER}`);
  await powersOfTau.newAccumulator(curve, DEV_PTAU_POWER, fresh, log);
  console.log("powers of tau: one contribution with the stated development entropy");
  await powersOfTau.contribute(fresh, contributed, "ledgermind development", DEV_PTAU_ENTROPY, log);
  console.log("powers of tau: preparing phase 2 (the slow step)");
  await powersOfTau.preparePhase2(contributed, prepared, log);
  copyFileSync(prepared, join(PROJECT_ROOT, DEV_PTAU_PATH));
  console.log(`wrote ${DEV_PTAU_PATH} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
} finally {
  await curve.terminate();
  rmSync(work, { recursive: true, force: true });
}
