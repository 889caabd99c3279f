import net from "node:net";

/**
 * Bytes a socket may buffer before `write` asks the writer to wait. At the default 16 KiB every
 * 64 KiB read of a tunnel pauses and resumes its source (two epoll changes per chunk); at 1 MiB
 * a bulk transfer flows without that. Nothing is allocated until bytes are actually queued.
 */
export const SOCKET_HIGH_WATER_MARK = 1024 * 1024;

export class DialError extends Error {
  constructor(
    message: string,
    readonly code: "timeout" | "refused" | "unreachable" | "other",
  ) {
    super(message);
    this.name = "DialError";
  }
}

/**
 * Open a TCP connection to an IP address (never a name: the caller already resolved and
 * checked it). The socket destroys itself with a DialError if it is not connected within
 * `timeoutMs`, so a blackholed destination cannot hold a client forever.
 */
export function dialSocket(
  address: string,
  port: number,
  timeoutMs: number,
  onread?: net.OnReadOpts,
): net.Socket {
  if (net.isIP(address) === 0) throw new DialError(`dial: ${address} is not an IP address`, "other");
  // net.Socket passes highWaterMark on to its streams; Node's typings list it for servers only.
  const options: net.TcpNetConnectOpts & { highWaterMark: number } = {
    host: address,
    port,
    noDelay: true,
    highWaterMark: SOCKET_HIGH_WATER_MARK,
    ...(onread ? { onread } : {}),
  };
  const socket = net.connect(options);
  const timer = setTimeout(() => {
    socket.destroy(new DialError(`connect ${address}:${port}: no answer within ${timeoutMs} ms`, "timeout"));
  }, timeoutMs);
  timer.unref();
  socket.once("connect", () => clearTimeout(timer));
  socket.once("close", () => clearTimeout(timer));
  return socket;
}

/** dialSocket, resolved once connected or rejected with a DialError. */
export function dial(
  address: string,
  port: number,
  timeoutMs: number,
  onread?: net.OnReadOpts,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    try {
      socket = dialSocket(address, port, timeoutMs, onread);
    } catch (err) {
      reject(err);
      return;
    }
    const onError = (err: Error) => reject(asDialError(err, address, port));
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve(socket);
    });
  });
}

export function asDialError(err: Error, address: string, port: number): DialError {
  if (err instanceof DialError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const kind =
    code === "ECONNREFUSED"
      ? "refused"
      : code === "EHOSTUNREACH" || code === "ENETUNREACH"
        ? "unreachable"
        : code === "ETIMEDOUT"
          ? "timeout"
          : "other";
  return new DialError(`connect ${address}:${port}: ${code ?? err.message}`, kind);
}
