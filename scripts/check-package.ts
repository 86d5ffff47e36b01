/**
 * Uses ledgermind as a user would: packs the tarball (`npm pack`, whose prepack builds dist/), installs it
 * into an empty folder, and there runs `npx ledgermind --version`, `npx ledgermind demo`, a tiny
 * `npx ledgermind fl evaluate` (its runs are worker processes) and
 * test/package/register-model.mjs, a plain-JavaScript import of the library, and type-checks
 * test/package/consumer.ts against the package's declarations. Prints one line per step
 * with its time, and the tarball's size; exits 1 at the first failure.
 *   tsx scripts/check-package.ts [--keep]    --keep leaves the folder for a look afterwards
 * Packages come from npm's cache first (`--prefer-offline`): the install needs no network beyond the npm
 * registry. The install is `--engine-strict`: every engines range, ours and the dependencies', must admit
 * the Node it runs on (Node 20 is refused: there npm skips EDR's native package, whose engines say >= 22).
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Manifest, manifestProblems, type PlatformFields, tarballProblems } from "./package-rules.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const keep = process.argv.includes("--keep");

class PackageCheckError extends Error {
  override name = "PackageCheckError";
}

/** Runs a command to completion; its output is returned (stderr passes through, for npm's warnings). */
function run(cmd: string, args: string[], cwd: string, timeoutMs = 300_000): string {
  try {
    return execFileSync(cmd, args, {
      cwd,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      timeout: timeoutMs,
    });
  } catch (err) {
    const out = (err as { stdout?: string }).stdout ?? "";
    throw new PackageCheckError(
      `${cmd} ${args.join(" ")} failed in ${cwd}${out ? `:\n${out.slice(-4000)}` : ""}`,
    );
  }
}

function step<T>(label: string, body: () => T): T {
  const started = performance.now();
  const result = body();
  console.log(`${label}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

function fail(problems: string[], what: string): void {
  if (problems.length > 0) throw new PackageCheckError(`${what}:\n  ${problems.join("\n  ")}`);
}

const work = mkdtempSync(join(tmpdir(), "ledgermind-package-"));
try {
  const [packed] = step(
    "npm pack (build included)",
    () =>
      JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], ROOT, 600_000)) as {
        filename: string;
        size: number;
        unpackedSize: number;
        files: { path: string }[];
      }[],
  );
  if (!packed) throw new PackageCheckError("npm pack printed no tarball");
  const tarball = join(work, packed.filename);
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MiB`;
  console.log(
    `tarball ${packed.filename}: ${mib(statSync(tarball).size)} (${packed.files.length} files, ${mib(packed.unpackedSize)} unpacked)`,
  );
  fail(tarballProblems(packed.files.map((f) => f.path)), "the tarball");

  const app = join(work, "app");
  mkdirSync(app);
  writeFileSync(
    join(app, "package.json"),
    `${JSON.stringify({ name: "app", private: true, type: "module" })}\n`,
  );
  step("npm install of the tarball into an empty folder", () =>
    run(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund", "--engine-strict", tarball],
      app,
      600_000,
    ),
  );
  const installed = join(app, "node_modules", "ledgermind");
  const readManifest = (dir: string) =>
    JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Manifest;
  const pkg = readManifest(installed);
  fail(
    manifestProblems(pkg, (dep) => readManifest(join(app, "node_modules", dep)) as PlatformFields),
    "the installed package.json",
  );

  const version = step("npx ledgermind --version", () =>
    run("npx", ["--no-install", "ledgermind", "--version"], app),
  );
  if (version.trim() !== pkg.version) {
    throw new PackageCheckError(`npx ledgermind --version printed "${version.trim()}", not ${pkg.version}`);
  }
  const demo = step("npx ledgermind demo --json", () =>
    run("npx", ["--no-install", "ledgermind", "demo", "--json"], app),
  );
  JSON.parse(demo);

  // A worker process runs each run: the compiled CLI must start the compiled worker, with no TypeScript loader.
  step("npx ledgermind fl evaluate (4 tiny runs in a worker)", () =>
    run(
      "npx",
      [
        ...["--no-install", "ledgermind", "fl", "evaluate", "--grid", "reduced", "--seeds", "1"],
        ...["--attacks", "label-flip", "--runs", "fedavg", "--rounds", "1", "--samples-per-client", "20"],
        ...["--workers", "1", "--out", "evaluate.jsonl"],
      ],
      app,
    ),
  );
  const evaluated = readFileSync(join(app, "evaluate.jsonl"), "utf8").trim().split("\n");
  if (evaluated.length !== 4)
    throw new PackageCheckError(`fl evaluate wrote ${evaluated.length} runs, not 4`);
  copyFileSync(join(ROOT, "test/package/consumer.ts"), join(app, "consumer.ts"));
  // The repository's TypeScript and Node types: the user's own would be in their devDependencies.
  step("tsc on consumer.ts against the package's declarations", () =>
    run(
      process.execPath,
      [
        join(ROOT, "node_modules/typescript/bin/tsc"),
        ...["--noEmit", "--strict", "--skipLibCheck", "--target", "es2022"],
        ...["--module", "nodenext", "--moduleResolution", "nodenext"],
        ...["--typeRoots", join(ROOT, "node_modules/@types"), "--types", "node", "consumer.ts"],
      ],
      app,
    ),
  );
  copyFileSync(join(ROOT, "test/package/register-model.mjs"), join(app, "register-model.mjs"));
  const registered = step("node register-model.mjs", () =>
    run(process.execPath, ["register-model.mjs"], app),
  );
  console.log(`register-model.mjs: ${registered.trim()}`);
  console.log(`package check passed on Node ${process.version}`);
} catch (err) {
  if (!(err instanceof PackageCheckError)) throw err;
  console.error(`check-package: ${err.message}`);
  process.exitCode = 1;
} finally {
  if (keep) console.log(`left in ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
