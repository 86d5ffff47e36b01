import { readFile } from "node:fs/promises";
import { UsageError } from "./context.ts";

/** Reads a file the user named, turning "no such file" into a one-line usage error. */
export async function readInputFile(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UsageError(`no such file: ${path}`);
    if (code === "EISDIR") throw new UsageError(`${path} is a folder, not a file`);
    throw new UsageError(`cannot read ${path}: ${code ?? (err as Error).message}`);
  }
}

export async function readJsonFile(path: string): Promise<unknown> {
  const text = new TextDecoder().decode(await readInputFile(path));
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${path} is not valid JSON`);
  }
}
