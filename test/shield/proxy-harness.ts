/**
 * Real pieces for the proxy's integration tests: upstream servers on loopback that record what
 * reached them, a self-signed CA made with the openssl CLI, a log sink that keeps records in
 * memory, and curl as the client.
 */
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseShieldConfig } from "../../src/shield/config.js";
import type { Resolver } from "../../src/shield/net/resolve.js";
import { startShield, type RunningShield, type StartShieldOptions } from "../../src/shield/server.js";
import type { LogRecord, LogSink } from "../../src/shield/types.js";

export const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** Keeps every record; `flush`/`close` are immediate because nothing is buffered. */
export class MemorySink implements LogSink {
  readonly records: LogRecord[] = [];
  closed = false;
  append(record: LogRecord): void {
    this.records.push(record);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
  }
  /** Resolves once `n` records arrived (records of tunnels come when the tunnel closes). */
  async waitFor(n: number, timeoutMs = 5000): Promise<LogRecord[]> {
    const until = Date.now() + timeoutMs;
    while (this.records.length < n) {
      if (Date.now() > until) throw new Error(`expected ${n} log records, have ${this.records.length}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.records;
  }
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/**
 * An HTTP (or HTTPS) origin that records every connection and request. Routes:
 * `/echo` answers the request as JSON, `/big?n=BYTES` streams n bytes, anything else "ok".
 * An Upgrade request gets 101 and then every byte is echoed back.
 */
export class Upstream {
  connections = 0;
  bytesIn = 0;
  readonly requests: SeenRequest[] = [];
  readonly server: http.Server;
  port = 0;

  constructor(
    readonly host: string,
    tls?: { key: string; cert: string },
  ) {
    this.server = tls ? https.createServer({ key: tls.key, cert: tls.cert }) : http.createServer();
    this.server.on(tls ? "secureConnection" : "connection", (s: net.Socket) => {
      this.connections += 1;
      s.on("data", (d: Buffer) => {
        this.bytesIn += d.length;
      });
    });
    this.server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const seen = {
          method: req.method ?? "",
          url: req.url ?? "",
          headers: req.headers,
          rawHeaders: req.rawHeaders,
          body: Buffer.concat(chunks),
        };
        this.requests.push(seen);
        const url = new URL(req.url ?? "/", "http://x");
        if (url.pathname === "/echo") {
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify({ ...seen, body: seen.body.length }));
        } else if (url.pathname === "/big") {
          const n = Number(url.searchParams.get("n") ?? "0");
          res.writeHead(200, { "content-type": "application/octet-stream" });
          const block = Buffer.alloc(64 * 1024, 0x61);
          let left = n;
          const pump = () => {
            while (left > 0) {
              const part = left >= block.length ? block : block.subarray(0, left);
              left -= part.length;
              if (!res.write(part)) return void res.once("drain", pump);
            }
            res.end();
          };
          pump();
        } else {
          res.end("ok");
        }
      });
    });
    this.server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      this.requests.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.alloc(0),
      });
      socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
      if (head.length) socket.write(head);
      socket.pipe(socket);
    });
  }

  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, this.host, () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  get touched(): boolean {
    return this.connections > 0 || this.bytesIn > 0 || this.requests.length > 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A CA and a leaf for `names`, made with the openssl CLI in a temp dir. */
export function makeCertificates(names: string[]): {
  ca: string;
  key: string;
  cert: string;
  cleanup(): void;
} {
  const dir = mkdtempSync(path.join(tmpdir(), "clawguard-ca-"));
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  run([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=test ca",
  ]);
  run([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "leaf.key",
    "-out",
    "leaf.csr",
    "-subj",
    `/CN=${names[0]}`,
  ]);
  const ext = `subjectAltName=${names.map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(",")}`;
  execFileSync("sh", ["-c", `printf '%s\\n' '${ext}' > leaf.ext`], { cwd: dir });
  run([
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "leaf.pem",
    "-days",
    "2",
    "-extfile",
    "leaf.ext",
  ]);
  const read = (f: string) => readFileSync(path.join(dir, f), "utf8");
  return {
    ca: path.join(dir, "ca.pem"),
    key: read("leaf.key"),
    cert: read("leaf.pem"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface CurlResult {
  status: number;
  body: string;
  /** curl's own exit code: 0 ok, 56 = connection reset/refused by proxy, 52 = empty reply, ... */
  code: number;
  stderr: string;
}

/** Run curl through the proxy; `%{http_code}` is the proxy's answer to CONNECT when it refused. */
export function curl(args: string[], timeoutMs = 10_000): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile(
      "curl",
      [
        "-sS",
        "--max-time",
        String(timeoutMs / 1000),
        "-o",
        "-",
        "-w",
        "\n%{http_code} %{http_connect}",
        "--noproxy",
        "",
        ...args,
      ],
      {
        timeout: timeoutMs + 2000,
        maxBuffer: 64 * 1024 * 1024,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      },
      (err, stdout, stderr) => {
        const cut = stdout.lastIndexOf("\n");
        const [http, connect] = stdout.slice(cut + 1).split(" ");
        const status = Number(http) || Number(connect) || 0;
        resolve({
          status,
          body: stdout.slice(0, cut),
          code: err ? ((err as { code?: number }).code ?? -1) : 0,
          stderr,
        });
      },
    );
  });
}

/** Send raw bytes on one connection and collect everything until the peer closes or `ms` passes. */
export function rawExchange(
  port: number,
  payload: string | Buffer,
  ms = 2000,
  opts: { localAddress?: string } = {},
): Promise<{ reply: string; closedByPeer: boolean; reset: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: opts.localAddress });
    const chunks: Buffer[] = [];
    let reset = false;
    const timer = setTimeout(() => finish(false), ms);
    const finish = (closedByPeer: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ reply: Buffer.concat(chunks).toString("latin1"), closedByPeer, reset });
    };
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ECONNRESET") reset = true;
    });
    s.on("close", () => finish(true));
    s.write(payload);
  });
}

/** Split a byte stream of responses into heads and bodies, reading each body by its framing. */
export function responses(stream: string): Array<{ status: number; head: string; body: string }> {
  const out: Array<{ status: number; head: string; body: string }> = [];
  let rest = stream;
  while (rest.length > 0) {
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) throw new Error(`incomplete head: ${JSON.stringify(rest)}`);
    const head = rest.slice(0, end);
    rest = rest.slice(end + 4);
    const length = /\r\ncontent-length: (\d+)/i.exec(head);
    let body = "";
    if (/\r\ntransfer-encoding: chunked/i.test(head)) {
      for (;;) {
        const eol = rest.indexOf("\r\n");
        if (eol < 0) throw new Error(`incomplete chunked body after ${JSON.stringify(head)}`);
        const size = parseInt(rest.slice(0, eol), 16);
        rest = rest.slice(eol + 2);
        if (size === 0) {
          rest = rest.slice(2);
          break;
        }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    } else if (length) {
      body = rest.slice(0, Number(length[1]));
      rest = rest.slice(body.length);
    } else {
      body = rest;
      rest = "";
    }
    out.push({ status: Number(head.slice(9, 12)), head, body });
  }
  return out;
}

export const basic = (user: string, pass: string) =>
  "Basic " + Buffer.from(`${user}:${pass}`).toString("base64");

/** A resolver from a table; a list of answers per name is consumed one per query (the last repeats). */
export class TableResolver {
  readonly queries: string[] = [];
  constructor(private readonly table: Record<string, Array<Array<{ address: string; family: 4 | 6 }>>>) {}
  readonly resolve: Resolver = async (host) => {
    const n = this.queries.filter((q) => q === host).length;
    this.queries.push(host);
    const answers = this.table[host];
    if (!answers) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return answers[Math.min(n, answers.length - 1)]!;
  };
}

export const v4 = (...addresses: string[]) => [addresses.map((address) => ({ address, family: 4 as const }))];
export const v6 = (...addresses: string[]) => [addresses.map((address) => ({ address, family: 6 as const }))];

export interface TestShield {
  shield: RunningShield;
  sink: MemorySink;
  port: number;
  proxyUrl: string;
  close(): Promise<void>;
}

/** The HTTP servers the shield can read agents' requests with; behaviour tests run on each. */
export const HTTP_SERVERS = ["clawguard", "node"] as const;
export type HttpServerName = (typeof HTTP_SERVERS)[number];

/**
 * Parse `yaml` with the real config loader and start the real shield on a free loopback port;
 * `httpServer` overrides the config's `http_server`.
 */
export async function startTestShield(
  yaml: string,
  resolver?: Resolver,
  opts: Omit<StartShieldOptions, "sink" | "resolver"> & { httpServer?: HttpServerName } = {},
): Promise<TestShield> {
  const { httpServer, ...rest } = opts;
  const cfg = parseShieldConfig(yaml, "shield.yaml");
  const sink = new MemorySink();
  const shield = await startShield(
    { ...cfg, listen: { host: "127.0.0.1", port: 0 }, httpServer: httpServer ?? cfg.httpServer },
    { ...rest, sink, resolver },
  );
  const port = shield.address.port;
  return { shield, sink, port, proxyUrl: `http://127.0.0.1:${port}`, close: () => shield.close(200) };
}
