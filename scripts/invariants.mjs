#!/usr/bin/env node
// Runs the stateful invariant campaign (test/invariant) with forge and prints its size.
//   node scripts/invariants.mjs            CI's bounded campaign (foundry.toml's default profile)
//   node scripts/invariants.mjs --long     the long one (profile `long`), run by `npm run fuzz`
//   node scripts/invariants.mjs --all      also the invariants listed in PENDING below
// Extra arguments after `--` go to `forge test` (e.g. `-- --match-contract CropInsurance`).
import { spawnSync } from "node:child_process";
import { forgeBinary, runForge } from "./forge.mjs";

// Invariants that the current contracts break, each guarding an issue 9 fix made on another branch. The
// campaign found every one of them; they are left out until their fix is merged, then removed from here.
const PENDING = [
  "invariant_withdrawBearsScoredLosses", // case 5: CropInsurance.withdraw ignores scored losses (branch ins)
  "invariant_drainsWithoutOwnerHelp", // case 7: a policy whose assessment cannot be paid stays reserved (ins)
  "invariant_honestNeverSlashed", // case 3: a split decided by the lower value slashes the honest (oracle)
  "invariant_medianHasStrictMajority", // case 3: no strict majority behind a median (oracle)
  "invariant_reportNeedsTwoThirds", // case 2: minResponses signers, no share of the set (oracle)
  "invariant_honestMajorityPrevails", // cases 2 and 3: a report after reveals overrides them (oracle)
  "invariant_honestMembersNeverSlashed", // cases 3 and 11: one validator settles a round alone (branch lt)
  "invariant_aggregateNeedsMajority", // case 4: quorum may be half of the revealers or fewer (lt)
];

const argv = process.argv.slice(2);
const dashes = argv.indexOf("--");
const own = dashes === -1 ? argv : argv.slice(0, dashes);
const extra = dashes === -1 ? [] : argv.slice(dashes + 1);
const profile = own.includes("--long") ? "long" : "default";
const env = { ...process.env, FOUNDRY_PROFILE: profile };

const config = spawnSync(forgeBinary(), ["config", "--json"], { env, encoding: "utf8" });
if (config.status !== 0) {
  process.stderr.write(config.stderr);
  process.exit(1);
}
const { runs, depth } = JSON.parse(config.stdout).invariant;
const skipped = own.includes("--all") ? [] : PENDING;
console.log(
  `invariant campaign (profile ${profile}): ${runs} runs x depth ${depth} = ${runs * depth} calls per invariant` +
    (skipped.length ? `; ${skipped.length} pending invariants left out (--all runs them)` : ""),
);
const filter = skipped.length ? ["--no-match-test", `^(?:${skipped.join("|")})(?:\\(\\))?$`] : [];
process.exit(runForge(["test", "--summary", ...filter, ...extra], env));
