/**
 * The fleet's key revocation list, served to enrolled agents: one read-only path on a listener
 * of its own, bound to the shield's tunnel address. An agent's WireGuard address proves who it
 * is (a packet from it came from the holder of its key), so no token is asked for; any other
 * source is refused. The list names revoked serials and nothing secret; agents check that what
 * they get parses as a KRL (ssh-keygen -Q) before sshd ever reads it.
 */
import { readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";

export const KRL_PATH = "/ssh/krl";
/** A KRL of tens of thousands of serials is still far below this. */
const MAX_KRL_BYTES = 4 * 1024 * 1024;

export interface KrlServerOptions {
  /** The CA's KRL file (ssh-ca/krl). */
  file: string;
  /** The enrolled agent this source address is, or null. */
  identify: (address: string) => string | null;
}

function answer(res: http.ServerResponse, status: number, text: string): void {
  res
    .writeHead(status, {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    })
    .end(text + "\n");
}

/** The listener's request handler: GET (or HEAD) of KRL_PATH from an enrolled agent only. */
export function krlHandler(
  o: KrlServerOptions,
): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    req.resume();
    const p = new URL(req.url ?? "/", "http://krl").pathname;
    if (p !== KRL_PATH) return answer(res, 404, `no such path: the KRL is at ${KRL_PATH}`);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return answer(res, 405, "the KRL is read-only");
    }
    const source = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    if (o.identify(source) === null) return answer(res, 403, `${source} is not an enrolled agent`);
    readFile(o.file).then(
      (body) => {
        if (body.length > MAX_KRL_BYTES) return answer(res, 500, "the KRL is larger than agents accept");
        res.writeHead(200, {
          "content-type": "application/octet-stream",
          "content-length": body.length,
          "cache-control": "no-store",
        });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      (e: NodeJS.ErrnoException) =>
        e.code === "ENOENT"
          ? answer(res, 404, "this shield has no SSH CA yet: clawguard shield ca init")
          : answer(res, 500, `cannot read the KRL (${e.code ?? e.message})`),
    );
  };
}

/** Listen on `host:port`; resolves with the server once it is bound. */
export async function startKrlServer(
  host: string,
  port: number,
  o: KrlServerOptions,
): Promise<{ server: http.Server; address: AddressInfo }> {
  const server = http.createServer({ maxHeaderSize: 8 * 1024, headersTimeout: 10_000 }, krlHandler(o));
  server.requestTimeout = 15_000;
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
  return { server, address };
}
