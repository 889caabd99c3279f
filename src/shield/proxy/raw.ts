/** What the proxy writes on a socket the HTTP server handed over: answers and request heads. */
import type net from "node:net";

export function sourceOf(socket: net.Socket): string {
  const a = socket.remoteAddress ?? "";
  // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; agents are configured by IPv4.
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}

export function rawReply(socket: net.Socket, status: number, text: string, extraHeaders = ""): void {
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\n${extraHeaders}Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** A response head for a socket that closes after the body: no framing but the close. */
export function rawResponseHead(status: number, reason: string, headers: readonly string[]): string {
  let out = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (let i = 0; i < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return out + "Connection: close\r\n\r\n";
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
