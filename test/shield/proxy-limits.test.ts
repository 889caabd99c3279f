import { spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  basic,
  curl,
  rawExchange,
  sha256,
  startTestShield,
  TableResolver,
  Upstream,
  v4,
  type TestShield,
  HTTP_SERVERS,
} from "./proxy-harness.js";

describe.each(HTTP_SERVERS)("with the %s HTTP server", (httpServer) => {
  const TOKEN = "scout-token-for-limit-tests";
  const AUTH = `Proxy-Authorization: ${basic("scout", TOKEN)}\r\n`;

  let web: Upstream;
  let t: TestShield;
  let resetting: TestShield;
  const resolver = new TableResolver({ "allowed.test": v4("127.0.0.3"), "denied.test": v4("127.0.0.3") });

  const config = (extra = "") => `
listen: 127.0.0.1:3128
log: { path: ./unused.db }
limits: { header_timeout_ms: 1000, idle_timeout_ms: 1500, max_tunnels_per_agent: 2, max_header_bytes: 8192, connect_timeout_ms: 500 }
agents:
  - { id: scout, token_sha256: "${sha256(TOKEN)}", allow: [allowed.test, 127.0.0.3/32] }
  - { id: other, sources: [127.0.0.5/32], allow: [allowed.test, 127.0.0.3/32] }
deny: [denied.test]
${extra}`;

  beforeAll(async () => {
    web = await new Upstream("127.0.0.3").start();
    t = await startTestShield(config(), resolver.resolve, { httpServer });
    resetting = await startTestShield(config("refusal: reset"), resolver.resolve, { httpServer });
  });

  afterAll(async () => {
    await Promise.all([t?.close(), resetting?.close()]);
    await web?.stop();
  });

  const ok = () =>
    curl(["-x", t.proxyUrl, "--proxy-user", `scout:${TOKEN}`, `http://allowed.test:${web.port}/`]);

  /** Open a CONNECT tunnel and resolve with the socket once the shield answered. */
  function openTunnel(port: number, localAddress?: string): Promise<{ socket: net.Socket; status: number }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port, localAddress });
      let buf = "";
      socket.on("error", reject);
      socket.on("data", function onData(d: Buffer) {
        buf += d.toString("latin1");
        if (!buf.includes("\r\n\r\n")) return;
        socket.off("data", onData);
        resolve({ socket, status: Number(buf.slice(9, 12)) });
      });
      // From 127.0.0.5 the caller is "other" by its address; elsewhere it is scout by its token.
      const auth = localAddress ? "" : AUTH;
      socket.write(
        `CONNECT allowed.test:${web.port} HTTP/1.1\r\nHost: allowed.test:${web.port}\r\n${auth}\r\n`,
      );
    });
  }

  const closedWithin = (s: net.Socket, ms: number) =>
    new Promise<number>((resolve, reject) => {
      const started = Date.now();
      const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
      s.once("close", () => {
        clearTimeout(timer);
        resolve(Date.now() - started);
      });
    });

  describe("request smuggling", () => {
    const smuggled = `GET http://denied.test:PORT/ HTTP/1.1\r\nHost: denied.test\r\n${AUTH}\r\n`;
    const attempts: Array<[string, (port: number) => string]> = [
      [
        "Content-Length with Transfer-Encoding",
        (p) => {
          const inner = smuggled.replace("PORT", String(p));
          return `POST http://allowed.test:${p}/echo HTTP/1.1\r\nHost: allowed.test:${p}\r\n${AUTH}Content-Length: ${inner.length + 5}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${inner}`;
        },
      ],
      [
        "two different Content-Length values",
        (p) =>
          `POST http://allowed.test:${p}/echo HTTP/1.1\r\nHost: allowed.test:${p}\r\n${AUTH}Content-Length: 3\r\nContent-Length: 40\r\n\r\nabc${smuggled.replace("PORT", String(p))}`,
      ],
      [
        "a Content-Length list that disagrees",
        (p) =>
          `POST http://allowed.test:${p}/echo HTTP/1.1\r\nHost: allowed.test:${p}\r\n${AUTH}Content-Length: 3, 40\r\n\r\nabc`,
      ],
      [
        "an obfuscated Transfer-Encoding",
        (p) =>
          `POST http://allowed.test:${p}/echo HTTP/1.1\r\nHost: allowed.test:${p}\r\n${AUTH}Transfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabc`,
      ],
    ];
    it.each(attempts)("refuses %s with 400, closes, and sends nothing upstream", async (_name, build) => {
      const before = { conns: web.connections, reqs: web.requests.length };
      const r = await rawExchange(t.port, build(web.port), 1500);
      expect(r.reply).toMatch(/^HTTP\/1.1 400 /);
      expect(r.reply.match(/HTTP\/1.1/g)).toHaveLength(1);
      expect(r.closedByPeer).toBe(true);
      expect(web.connections).toBe(before.conns);
      expect(web.requests.length).toBe(before.reqs);
      expect(t.sink.records.at(-1)).toMatchObject({ decision: "denied" });
    });
  });

  describe("limits", () => {
    it("answers 431 to oversized headers and keeps serving", async () => {
      const r = await rawExchange(
        t.port,
        `GET http://allowed.test:${web.port}/ HTTP/1.1\r\nHost: allowed.test\r\n${AUTH}X-Pad: ${"a".repeat(9000)}\r\n\r\n`,
      );
      expect(r.reply).toMatch(/^HTTP\/1.1 431 /);
      expect(r.closedByPeer).toBe(true);
      expect((await ok()).status).toBe(200);
    });

    it("drops a slowloris client after the header timeout while serving others", async () => {
      const slow = net.connect({ host: "127.0.0.1", port: t.port });
      slow.on("error", () => {});
      // Read what the shield sends, so its close is seen.
      slow.resume();
      await new Promise((r) => slow.once("connect", r));
      const dropped = closedWithin(slow, 4000);
      const head = `GET http://allowed.test:${web.port}/ HTTP/1.1\r\nHost: allowed.test\r\n${AUTH}`;
      let i = 0;
      const drip = setInterval(() => {
        if (!slow.destroyed) slow.write(i < head.length ? head[i++]! : "X-Slow: 1\r\n");
      }, 50);
      try {
        const served = await Promise.all([ok(), ok(), ok()]);
        expect(served.map((s) => s.status)).toEqual([200, 200, 200]);
        const after = await dropped;
        // header_timeout_ms is 1000 and Node looks every 250 ms; the drip alone never ends.
        expect(after).toBeGreaterThanOrEqual(900);
        expect(after).toBeLessThan(3000);
      } finally {
        clearInterval(drip);
        slow.destroy();
      }
    });

    it("caps open tunnels per agent, and frees the slot when a tunnel closes", async () => {
      const a = await openTunnel(t.port);
      const b = await openTunnel(t.port);
      expect([a.status, b.status]).toEqual([200, 200]);
      const c = await openTunnel(t.port);
      expect(c.status).toBe(429);
      // Another agent is not limited by scout's tunnels.
      const d = await openTunnel(t.port, "127.0.0.5");
      expect(d.status).toBe(200);
      expect(t.shield.proxy.tunnels.count("scout")).toBe(2);
      a.socket.destroy();
      await expect.poll(() => t.shield.proxy.tunnels.count("scout")).toBe(1);
      const e = await openTunnel(t.port);
      expect(e.status).toBe(200);
      for (const s of [b, c, d, e]) s.socket.destroy();
      await expect.poll(() => t.shield.proxy.tunnels.size).toBe(0);
    });

    it("closes an idle tunnel and logs it once", async () => {
      const before = t.sink.records.length;
      const { socket, status } = await openTunnel(t.port);
      expect(status).toBe(200);
      socket.write(`GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n`);
      const took = await closedWithin(socket, 5000);
      expect(took).toBeGreaterThanOrEqual(1000);
      await expect.poll(() => t.sink.records.length).toBe(before + 1);
      const rec = t.sink.records.at(-1)!;
      expect(rec).toMatchObject({
        method: "CONNECT",
        agent: "scout",
        decision: "allowed",
        upstreamAddress: "127.0.0.3",
      });
      expect(rec.bytesUp).toBeGreaterThan(0);
      expect(rec.bytesDown).toBeGreaterThan(0);
    });
  });

  describe("connect timeout", () => {
    it("gives up on a destination that never completes the handshake, with 504", async () => {
      // A listener whose process never accepts: once its backlog is full the kernel drops SYNs.
      const child = spawn(
        process.execPath,
        [
          "-e",
          `const s = require("node:net").createServer().listen({ host: "127.0.0.3", port: 0, backlog: 1 }, () => {
           process.stdout.write(String(s.address().port) + "\\n");
           Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
         });`,
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      const fillers: net.Socket[] = [];
      try {
        const port = await new Promise<number>((resolve) =>
          child.stdout.once("data", (d: Buffer) => resolve(Number(d))),
        );
        for (let i = 0; i < 4; i++) fillers.push(net.connect(port, "127.0.0.3").on("error", () => {}));
        await new Promise((r) => setTimeout(r, 200));
        const started = Date.now();
        const c = await rawExchange(
          t.port,
          `CONNECT allowed.test:${port} HTTP/1.1\r\nHost: allowed.test\r\n${AUTH}\r\n`,
          5000,
        );
        expect(c.reply).toMatch(/^HTTP\/1.1 504 /);
        expect(Date.now() - started).toBeLessThan(3000);
        const h = await curl([
          "-x",
          t.proxyUrl,
          "--proxy-user",
          `scout:${TOKEN}`,
          `http://allowed.test:${port}/`,
        ]);
        expect(h.status).toBe(504);
        expect(t.sink.records.at(-1)?.reason).toMatch(/no answer within 500 ms/);
      } finally {
        for (const f of fillers) f.destroy();
        child.kill("SIGKILL");
      }
    });
  });

  describe("operator control", () => {
    it("closes an agent's open tunnels with closeWhere and re-reads its mode per request", async () => {
      const { socket } = await openTunnel(t.port);
      const other = await openTunnel(t.port, "127.0.0.5");
      const closed = closedWithin(socket, 2000);
      expect(t.shield.proxy.tunnels.closeWhere((x) => x.agent === "scout")).toBe(1);
      await closed;
      expect(other.socket.destroyed).toBe(false);
      other.socket.destroy();

      t.shield.policy.setMode({ agent: "scout" }, "lockdown");
      try {
        expect((await ok()).status).toBe(403);
        expect(t.sink.records.at(-1)).toMatchObject({ agent: "scout", decision: "denied" });
      } finally {
        t.shield.policy.setMode({ agent: "scout" }, null);
      }
      expect((await ok()).status).toBe(200);
    });
  });

  describe("operator control of plain HTTP", () => {
    it("cuts a download in flight with closeWhere", async () => {
      const size = 512 * 1024 * 1024;
      const outcome = await new Promise<{ received: number; complete: boolean }>((resolve, reject) => {
        const req = http.request({
          host: "127.0.0.1",
          port: t.port,
          path: `http://allowed.test:${web.port}/big?n=${size}`,
          headers: { "proxy-authorization": basic("scout", TOKEN), host: `allowed.test:${web.port}` },
        });
        req.on("error", reject);
        req.on("response", (res) => {
          let received = 0;
          res.once("data", () => {
            const live = t.shield.proxy.tunnels
              .list()
              .filter((c) => c.kind === "http" && c.agent === "scout");
            expect(live).toHaveLength(1);
            expect(t.shield.proxy.tunnels.closeWhere((c) => c.agent === "scout")).toBe(1);
          });
          res.on("data", (d: Buffer) => (received += d.length));
          res.on("error", () => {});
          res.on("close", () => resolve({ received, complete: res.complete }));
        });
        req.end();
      });
      expect(outcome.complete).toBe(false);
      expect(outcome.received).toBeLessThan(size);
      await expect.poll(() => t.shield.proxy.tunnels.size).toBe(0);
      expect(t.sink.records.at(-1)).toMatchObject({ agent: "scout", path: "/big" });
    });
  });

  describe("refusal: reset", () => {
    it("resets the connection instead of answering, for HTTP and CONNECT", async () => {
      const before = web.connections;
      const h = await curl([
        "-x",
        resetting.proxyUrl,
        "--proxy-user",
        `scout:${TOKEN}`,
        `http://denied.test:${web.port}/`,
      ]);
      expect(h.status).toBe(0);
      expect(h.code).toBe(56);
      const c = await rawExchange(
        resetting.port,
        `CONNECT denied.test:${web.port} HTTP/1.1\r\nHost: denied.test\r\n${AUTH}\r\n`,
      );
      expect(c.reply).toBe("");
      expect(c.reset).toBe(true);
      expect(web.connections).toBe(before);
      const allowed = await curl([
        "-x",
        resetting.proxyUrl,
        "--proxy-user",
        `scout:${TOKEN}`,
        `http://allowed.test:${web.port}/`,
      ]);
      expect(allowed.status).toBe(200);
    });
  });
});
