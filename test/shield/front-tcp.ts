/**
 * Both HTTP/1.1 parsers behind real sockets on loopback, for the differential tests: a stream is
 * written whole, or in pieces with pauses between them, and counts as read once the server has
 * received all of it and gone quiet, or has closed the connection. No window of time is guessed
 * at, so a busy machine makes these tests slower, never wrong.
 */
import type http from "node:http";
import net from "node:net";
import type { FrontServer } from "../../src/shield/proxy/front.js";
import {
  makeFront,
  makeNode,
  outcomeOf,
  touchesOf,
  track,
  type BodyMode,
  type Outcome,
} from "./parser-servers.js";

/**
 * Server-side sockets of the connections made here, by client port and server port: Linux gives
 * one client port to connections to different servers at once.
 */
const serverSide = new Map<string, net.Socket>();

export interface Listening {
  port: number;
  close(): Promise<void>;
}

async function listen(server: net.Server, mode: BodyMode): Promise<Listening> {
  server.on("connection", (socket: net.Socket) => {
    track(socket, mode);
    serverSide.set(`${socket.remotePort}:${socket.localPort}`, socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        (server as http.Server).closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** The shield's parser and Node's, each listening, their owners taking bodies in `mode`. */
export async function listenPair(mode: BodyMode): Promise<{ front: Listening; node: Listening }> {
  const front: FrontServer = makeFront();
  return { front: await listen(front.server, mode), node: await listen(makeNode(), mode) };
}

const turn = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a server read of one stream, and whether it hung (neither read it all nor closed). */
export interface TcpRead {
  outcome: Outcome;
  hung: boolean;
}

/**
 * After a piece: none (the next follows at once, and may reach the server with it), a turn of the
 * event loop (the server reads the piece alone), or a millisecond's sleep.
 */
export type Pause = "none" | "turn" | "sleep";

/**
 * Write `bytes` to `port` in the pieces `cuts` (ascending offsets) make, with `pauses[k]` (in
 * turn, over and over) after the k-th piece, and read what the server made of them.
 */
export async function sendTcp(
  port: number,
  bytes: Buffer,
  cuts: readonly number[] = [],
  pauses: readonly Pause[] = ["none"],
): Promise<TcpRead> {
  const client = net.connect({ host: "127.0.0.1", port, noDelay: true });
  client.on("error", () => {});
  // Answers are read and dropped: a client that never reads would stall the server's writes.
  client.resume();
  await new Promise((r) => client.once("connect", r));
  const key = `${client.localPort}:${client.remotePort}`;
  let server: net.Socket | undefined;
  while (!(server = serverSide.get(key))) await turn();
  serverSide.delete(key);
  let from = 0;
  for (const [k, cut] of [...cuts, bytes.length].entries()) {
    if (cut <= from || client.destroyed) continue;
    client.write(bytes.subarray(from, cut));
    from = cut;
    const pause = pauses[k % Math.max(1, pauses.length)];
    if (pause === "turn") await turn();
    else if (pause === "sleep") await sleep(1);
  }
  const deadline = Date.now() + 10_000;
  let hung = false;
  for (let quiet = 0; quiet < 3;) {
    const before = touchesOf(server);
    await turn();
    const done = server.destroyed || server.bytesRead >= bytes.length;
    quiet = done && touchesOf(server) === before ? quiet + 1 : 0;
    if (!done) {
      if (Date.now() > deadline) {
        hung = true;
        break;
      }
      await sleep(1);
    }
  }
  const outcome = outcomeOf(server);
  client.destroy();
  return { outcome, hung };
}
