/**
 * What a run that starts processes may leave behind: processes found by a folder in their command lines, and
 * a chain by its port. For the tests that check a consortium stops everything it started.
 */
import { execFileSync } from "node:child_process";
import { createConnection } from "node:net";

/** Processes whose command line names `text`, other than this search. */
export function processesNaming(text: string): string[] {
  try {
    return execFileSync("pgrep", ["-af", text], { encoding: "utf8" })
      .trim()
      .split("\n")
      .filter((line) => line !== "" && !line.includes("pgrep"));
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** Whether something accepts connections on the URL's port. */
export function listening(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
