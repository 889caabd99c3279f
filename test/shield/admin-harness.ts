/**
 * A real shield with its admin listener for tests: config and token files in a temp dir, the
 * SQLite log, free loopback ports, and helpers to call the API and open CONNECT tunnels.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { startManagedShield, type ManagedShield } from "../../src/shield/daemon.js";
import { loadShieldConfig } from "../../src/shield/config.js";
import type { Resolver } from "../../src/shield/net/resolve.js";
import { basic } from "./proxy-harness.js";

export const ADMIN_TOKEN = "admin-token-0123456789abcdef0123456789";

export interface AdminShield {
  managed: ManagedShield;
  dir: string;
  file: string;
  admin: string;
  proxyUrl: string;
  proxyPort: number;
  adminPort: number;
  warnings: string[];
  api(
    method: string,
    p: string,
    body?: unknown,
    token?: string | null,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read many shapes of answer
  ): Promise<{ status: number; json: any; text: string }>;
  close(): Promise<void>;
}

/**
 * `body` is the config below `listen`, `log` and `admin` (which the harness writes). The
 * config lives in its own directory, which the shield watches.
 */
export async function startAdminShield(
  body: string,
  opts: {
    resolver?: Resolver;
    watch?: boolean;
    header?: string;
    /** The proxy's own listen (default 127.0.0.1:0); join codes need a real port. */
    listen?: string;
  } = {},
): Promise<AdminShield> {
  const dir = mkdtempSync(path.join(tmpdir(), "clawguard-admin-"));
  const file = path.join(dir, "shield.yaml");
  writeFileSync(path.join(dir, "admin.token"), ADMIN_TOKEN + "\n", { mode: 0o600 });
  writeFileSync(
    file,
    `${opts.header ?? "# shield for an admin test"}\nlisten: ${opts.listen ?? "127.0.0.1:0"}\nlog: { path: shield.db }\nadmin:\n  listen: 127.0.0.1:0\n  token_file: admin.token\n${body}`,
  );
  const warnings: string[] = [];
  const cfg = await loadShieldConfig(file);
  const managed = await startManagedShield(cfg, {
    resolver: opts.resolver,
    watch: opts.watch ?? true,
    debounceMs: 50,
    warn: (m) => warnings.push(m),
  });
  const adminPort = managed.admin!.port;
  const proxyPort = managed.shield.address.port;
  const admin = `http://127.0.0.1:${adminPort}`;
  return {
    managed,
    dir,
    file,
    admin,
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    proxyPort,
    adminPort,
    warnings,
    async api(method, p, body, token = ADMIN_TOKEN) {
      const res = await fetch(admin + p, {
        method,
        headers: {
          ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
      return { status: res.status, json, text };
    },
    async close() {
      await managed.close(100);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A loopback TCP port free a moment ago (for a config that must name its port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface Tunnel {
  socket: net.Socket;
  /** The proxy's answer to CONNECT (status line and headers). */
  head: string;
  closed: Promise<number>;
  /** Send an HTTP request through the tunnel and read the answer. */
  get(host: string, p?: string): Promise<string>;
}

/** CONNECT through the proxy as `agent` with `pass`; resolves after the proxy's reply. */
export function openTunnel(
  proxyPort: number,
  authority: string,
  agent: string,
  pass: string,
): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: proxyPort });
    let buf = "";
    const closed = new Promise<number>((r) => socket.once("close", () => r(Date.now())));
    socket.on("error", () => undefined);
    const onData = (d: Buffer) => {
      buf += d.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      resolve({
        socket,
        head: buf.slice(0, end),
        closed,
        get: (host, p = "/") =>
          new Promise((res2, rej2) => {
            let answer = "";
            const onAnswer = (x: Buffer) => {
              answer += x.toString("latin1");
              if (/\r\n\r\n[\s\S]*ok$/.test(answer) || /content-length: 0/i.test(answer)) {
                socket.off("data", onAnswer);
                res2(answer);
              }
            };
            socket.on("data", onAnswer);
            socket.once("close", () => rej2(new Error(`tunnel closed; got: ${answer}`)));
            socket.write(`GET ${p} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
          }),
      });
    };
    socket.on("data", onData);
    socket.once("close", () => reject(new Error(`proxy closed before answering CONNECT: ${buf}`)));
    socket.write(
      `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${basic(agent, pass)}\r\n\r\n`,
    );
  });
}

export async function until<T>(
  what: () => Promise<T | undefined> | T | undefined,
  label: string,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
