import { createServer } from "node:net";

/**
 * A TCP port free on `host` now: the kernel picks it for a listener that closes at once. Another process
 * may take it before the caller binds it; callers that start several servers use it to know their URLs
 * before any of them listens (peers name each other in their configs).
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
