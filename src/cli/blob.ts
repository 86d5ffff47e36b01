import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { blobStore, emit, globalOptions } from "./context.ts";
import { readInputFile } from "./files.ts";

export function registerBlobCommands(program: Command): void {
  const blob = program.command("blob").description("content-addressed storage: CID v1, raw, sha256");
  blob
    .command("put <FILE>")
    .description("store a file and print its CID")
    .action(async (file: string, _o, cmd: Command) => {
      const opts = globalOptions(cmd);
      const bytes = await readInputFile(file);
      const cid = await blobStore(opts).put(bytes);
      emit(opts, { cid, bytes: bytes.length }, () => [cid]);
    });
  blob
    .command("get <CID>")
    .description("fetch content by CID, verified against its digest")
    .option("-o, --out <FILE>", "write to a file instead of standard output")
    .action(async (cid: string, o: { out?: string }, cmd: Command) => {
      const opts = globalOptions(cmd);
      const bytes = await blobStore(opts).get(cid);
      if (o.out) {
        await writeFile(o.out, bytes);
        emit(opts, { cid, out: o.out, bytes: bytes.length }, () => [
          `${cid} -> ${o.out} (${bytes.length} bytes)`,
        ]);
      } else {
        process.stdout.write(bytes);
      }
    });
}
