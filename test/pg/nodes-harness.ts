/**
 * Shields sharing one PostgreSQL, in this process: each node with its own directory (shield.yaml,
 * admin token, password file, SQLite log), free loopback ports, and helpers to send a request
 * through a node's proxy and call its admin API.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadShieldConfig } from "../../src/shield/config.js";
import { startManagedShield, type ManagedShield } from "../../src/shield/daemon.js";
import type { Resolver } from "../../src/shield/net/resolve.js";
import { ADMIN_TOKEN } from "../shield/admin-harness.js";
import { basic } from "../shield/proxy-harness.js";
import { ROLE_PASSWORD } from "./pg-harness.js";

export interface Node {
  name: string;
  dir: string;
  file: string;
  managed: ManagedShield;
  warnings: string[];
  proxyPort: number;
  /** The admin API's URL (admin.listen says port 0: the CLI needs --admin too). */
  admin: string;
  /** One request through this node's proxy as `agent`; the status it answered (0: no answer). */
  get(url: string, agent: string, pass: string): Promise<number>;
  api(method: string, p: string, body?: unknown): Promise<{ status: number; json: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any -- many shapes of answer
  restart(): Promise<void>;
  close(): Promise<void>;
}

const made: string[] = [];

/** Remove every node directory this file made, closed or not (a refused node never closes). */
export function removeNodeDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function nodeDir(
  name: string,
  storeUrl: string,
  policy: string,
  extra = "",
): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(tmpdir(), `clawguard-node-${name}-`));
  made.push(dir);
  const file = path.join(dir, "shield.yaml");
  writeFileSync(path.join(dir, "admin.token"), ADMIN_TOKEN + "\n", { mode: 0o600 });
  writeFileSync(path.join(dir, "pg.password"), ROLE_PASSWORD + "\n", { mode: 0o600 });
  writeFileSync(
    file,
    `node: ${name}
store:
  postgres: "${storeUrl}"
  password_file: pg.password
listen: 127.0.0.1:0
log: { path: shield.db }
admin:
  listen: 127.0.0.1:0
  token_file: admin.token
${extra}${policy}`,
  );
  return { dir, file };
}

/** `GET url` through a proxy, with Basic proxy credentials; resolves to the status, 0 on a reset. */
export function proxyGet(port: number, url: string, agent: string, pass: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: url,
        method: "GET",
        headers: { host: new URL(url).host, "proxy-authorization": basic(agent, pass), connection: "close" },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(10_000, () => req.destroy());
    req.on("error", () => resolve(0));
    req.end();
  });
}

export async function startNode(
  name: string,
  storeUrl: string,
  policy: string,
  opts: { resolver: Resolver; extra?: string; dir?: { dir: string; file: string } },
): Promise<Node> {
  const { dir, file } = opts.dir ?? nodeDir(name, storeUrl, policy, opts.extra);
  const warnings: string[] = [];
  const start = async () =>
    startManagedShield(await loadShieldConfig(file), {
      resolver: opts.resolver,
      watch: false,
      warn: (m) => warnings.push(m),
    });
  let managed = await start();
  const node: Node = {
    name,
    dir,
    file,
    get managed() {
      return managed;
    },
    warnings,
    get proxyPort() {
      return managed.shield.address.port;
    },
    get admin() {
      return `http://127.0.0.1:${managed.admin!.port}`;
    },
    get: (url, agent, pass) => proxyGet(managed.shield.address.port, url, agent, pass),
    async api(method, p, body) {
      const res = await fetch(`http://127.0.0.1:${managed.admin!.port}${p}`, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = { text };
      }
      return { status: res.status, json };
    },
    async restart() {
      await managed.close(100);
      managed = await start();
    },
    async close() {
      await managed.close(100);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return node;
}

export async function until<T>(
  what: () => Promise<T | undefined | false>,
  label: string,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
