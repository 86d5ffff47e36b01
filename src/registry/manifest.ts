/**
 * A model as a manifest: every file of a folder (or one file) as (relative path, size, sha256), in the
 * canonical order of the OpenSSF Model Signing specification. The digest of the manifest's canonical
 * encoding is what the registry records on-chain for a model that is not one LMQ1 file.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, realpath, stat } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";
import { type Hex, toHex } from "viem";

/** What the reference tool (`model_signing`) leaves out at a model's root, besides the signature file. */
export const IGNORED_NAMES: readonly string[] = [".git", ".gitattributes", ".github", ".gitignore"];
/** Where `model sign` writes a folder's signature bundle, as the reference tool does. */
export const DEFAULT_SIGNATURE_FILE = "model.sig";
/** Tags the canonical encoding, so that a manifest's digest cannot be mistaken for any other document's. */
export const MANIFEST_FORMAT_VERSION = "ledgermind/manifest/1";

export interface ManifestEntry {
  /** POSIX path relative to the model root; "." when the model is a single file. */
  path: string;
  size: number;
  /** Lowercase hex, no 0x, as the OpenSSF payload writes digests. */
  sha256: string;
}

export interface ModelManifest {
  /** The model's folder (or file) name: informative only, as in the specification. */
  name: string;
  /** Whether symbolic links were followed (the specification's `allow_symlinks`). */
  allowSymlinks: boolean;
  entries: ManifestEntry[];
}

export class ManifestError extends Error {
  override name = "ManifestError";
}

/** Path components compared by code point, as Python orders the reference's `PurePosixPath` keys. */
export function comparePaths(a: string, b: string): number {
  const pa = a.split("/");
  const pb = b.split("/");
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = Buffer.compare(Buffer.from(pa[i] as string), Buffer.from(pb[i] as string));
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

/** Pure: the manifest's canonical bytes (compact JSON, entries in canonical order; the name is left out). */
export function encodeManifest(m: Pick<ModelManifest, "entries">): Uint8Array {
  const files = [...m.entries]
    .sort((a, b) => comparePaths(a.path, b.path))
    .map((e) => ({ path: e.path, size: e.size, sha256: e.sha256 }));
  return new TextEncoder().encode(JSON.stringify({ format: MANIFEST_FORMAT_VERSION, files }));
}

/** Pure: reads back what `encodeManifest` wrote, refusing anything else. */
export function decodeManifest(bytes: Uint8Array, name = ""): ModelManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ManifestError("the stored manifest is not JSON");
  }
  const d = doc as { format?: unknown; files?: unknown };
  if (d.format !== MANIFEST_FORMAT_VERSION || !Array.isArray(d.files))
    throw new ManifestError(`the stored document is not a ${MANIFEST_FORMAT_VERSION} manifest`);
  const entries = d.files.map((f: { path?: unknown; size?: unknown; sha256?: unknown }) => {
    if (
      typeof f.path !== "string" ||
      !Number.isSafeInteger(f.size) ||
      typeof f.sha256 !== "string" ||
      !/^[0-9a-f]{64}$/.test(f.sha256)
    )
      throw new ManifestError("the stored manifest has a malformed entry");
    return { path: f.path, size: f.size as number, sha256: f.sha256 };
  });
  return { name, allowSymlinks: false, entries };
}

/** Pure: the digest recorded on-chain for a manifest. */
export function manifestDigest(m: Pick<ModelManifest, "entries">): Hex {
  return toHex(createHash("sha256").update(encodeManifest(m)).digest());
}

export type Difference =
  | { kind: "differs"; path: string; expected: ManifestEntry; actual: ManifestEntry }
  | { kind: "missing"; path: string; expected: ManifestEntry }
  | { kind: "extra"; path: string; actual: ManifestEntry };

/**
 * Pure: every file that differs, is missing or is extra, in canonical order. `size` undefined in an
 * expected entry means "not recorded" (a signature bundle records digests only).
 */
export function diffManifests(
  expected: readonly Pick<ManifestEntry, "path" | "sha256">[],
  actual: readonly ManifestEntry[],
): Difference[] {
  const have = new Map(actual.map((e) => [e.path, e]));
  const want = new Map(expected.map((e) => [e.path, e]));
  const out: Difference[] = [];
  for (const [path, e] of want) {
    const a = have.get(path);
    const exp = { size: -1, ...e } as ManifestEntry;
    if (!a) out.push({ kind: "missing", path, expected: exp });
    else if (a.sha256 !== e.sha256 || (exp.size >= 0 && a.size !== exp.size))
      out.push({ kind: "differs", path, expected: exp, actual: a });
  }
  for (const [path, a] of have) if (!want.has(path)) out.push({ kind: "extra", path, actual: a });
  return out.sort((x, y) => comparePaths(x.path, y.path));
}

/** Pure: the one line `model verify` prints for a difference. */
export function differenceLine(d: Difference): string {
  switch (d.kind) {
    case "differs":
      return `differs: ${d.path} (sha256 ${d.actual.sha256}, expected ${d.expected.sha256})`;
    case "missing":
      return `missing: ${d.path}`;
    case "extra":
      return `extra: ${d.path} (not in the registered manifest)`;
  }
}

export interface HashOptions {
  /** Paths relative to the root left out besides IGNORED_NAMES (the signature file, say). */
  ignore?: readonly string[];
  /** Follow symbolic links; without it a link is refused, since it can point anywhere. */
  allowSymlinks?: boolean;
  /** Called with the number of bytes hashed since the last call, and the total to hash. */
  onProgress?: (bytes: number, total: number) => void;
}

interface Found {
  path: string;
  abs: string;
  size: number;
}

/** The files a manifest covers, in canonical order; a symbolic link is refused unless allowed. */
export async function listModelFiles(root: string, opts: HashOptions = {}): Promise<Found[]> {
  const top = await statOrThrow(root);
  if (!top.isDirectory() && !top.isFile()) throw new ManifestError(`${root} is neither a file nor a folder`);
  if (top.isFile()) return [{ path: ".", abs: resolve(root), size: top.size }];
  const ignored = new Set([...IGNORED_NAMES, ...(opts.ignore ?? [])]);
  const found: Found[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const abs = join(dir, entry.name);
      const rel = relative(base, abs).split(sep).join("/");
      if (ignored.has(rel)) continue;
      let info = await lstat(abs);
      if (info.isSymbolicLink()) {
        if (!opts.allowSymlinks)
          throw new ManifestError(`${rel} is a symbolic link; pass --allow-symlinks to follow it`);
        info = await stat(abs);
      }
      if (info.isDirectory()) await walk(abs);
      else if (info.isFile()) found.push({ path: rel, abs, size: info.size });
      else throw new ManifestError(`${rel} is neither a file nor a folder`);
    }
  };
  const base = await realpath(root);
  await walk(base);
  return found.sort((a, b) => comparePaths(a.path, b.path));
}

async function statOrThrow(path: string) {
  try {
    return await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ManifestError(
      code === "ENOENT" ? `no such file or folder: ${path}` : `cannot read ${path}: ${code}`,
    );
  }
}

/** Streams a file through SHA-256: memory stays flat however large the shard. */
export function hashFile(path: string, onBytes?: (n: number) => void): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const h = createHash("sha256");
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on("data", (chunk) => {
        h.update(chunk as Buffer);
        onBytes?.(chunk.length);
      })
      .on("error", (err) => reject(new ManifestError(`cannot read ${path}: ${err.message}`)))
      .on("end", () => resolvePromise(h.digest("hex")));
  });
}

/** Hashes a folder (or one file) into its manifest, one file at a time (the disk is the bottleneck). */
export async function hashModel(root: string, opts: HashOptions = {}): Promise<ModelManifest> {
  const files = await listModelFiles(root, opts);
  const total = files.reduce((s, f) => s + f.size, 0);
  const entries: ManifestEntry[] = [];
  for (const f of files) {
    const sha256 = await hashFile(f.abs, opts.onProgress && ((n) => opts.onProgress?.(n, total)));
    entries.push({ path: f.path, size: f.size, sha256 });
  }
  return { name: basename(resolve(root)), allowSymlinks: opts.allowSymlinks ?? false, entries };
}
