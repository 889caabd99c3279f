import { writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseShieldConfig } from "../../src/shield/config.js";
import { Policy } from "../../src/shield/policy/index.js";
import { selfEndpoints } from "../../src/shield/server.js";
import {
  curl,
  HTTP_SERVERS,
  startTestShield,
  TableResolver,
  Upstream,
  v4,
  type TestShield,
} from "./proxy-harness.js";

/** A TCP destination that counts every byte it receives and never answers. */
class Sink {
  received = 0;
  readonly server = net.createServer((s) => {
    s.on("data", (d: Buffer) => {
      this.received += d.length;
    });
    s.on("error", () => {});
  });
  port = 0;
  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.3", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }
  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const UPLOAD = 100_000;

// Each agent is known by its own source address, so each test has an agent of its own.
const config = `
listen: 127.0.0.1:3128
log: { path: ./unused.db }
fleets:
  pool: { budget: { requests: 3, shared: true } }
tiers:
  bulk: { allow: [127.0.0.3/32, web.test], budget: { upload: ${UPLOAD} } }
agents:
  - { id: counted, sources: [127.0.0.11/32], allow: [web.test, 127.0.0.3/32], budget: { requests: 3 } }
  - { id: neighbour, sources: [127.0.0.12/32], allow: [web.test, 127.0.0.3/32], budget: { requests: 3 } }
  - { id: tunneller, sources: [127.0.0.13/32], tier: bulk }
  - { id: poster, sources: [127.0.0.14/32], tier: bulk }
  - { id: auditee, sources: [127.0.0.15/32], mode: audit, allow: [web.test, 127.0.0.3/32], budget: { requests: 1, upload: 2000 } }
  - { id: bursty, sources: [127.0.0.16/32], allow: [web.test, 127.0.0.3/32], budget: { requests: 2, window: 1s } }
  - { id: late, sources: [127.0.0.17/32], allow: [127.0.0.3/32] }
  - { id: p1, fleet: pool, sources: [127.0.0.19/32], allow: [web.test, 127.0.0.3/32] }
  - { id: p2, fleet: pool, sources: [127.0.0.20/32], allow: [web.test, 127.0.0.3/32] }
  - { id: eager, sources: [127.0.0.18/32], allow: [127.0.0.3/32], budget: { upload: 1000 } }
`;

describe.each(HTTP_SERVERS)("with the %s HTTP server", (httpServer) => {
  let web: Upstream;
  let sink: Sink;
  let t: TestShield;
  const resolver = new TableResolver({ "web.test": v4("127.0.0.3") });

  beforeAll(async () => {
    web = await new Upstream("127.0.0.3").start();
    sink = await new Sink().start();
    t = await startTestShield(config, resolver.resolve, { httpServer });
  });

  afterAll(async () => {
    await t?.close();
    await Promise.all([web?.stop(), sink?.stop()]);
  });

  const get = (from: string, extra: string[] = []) =>
    curl(["-x", t.proxyUrl, "--interface", from, ...extra, `http://web.test:${web.port}/`]);

  /** Open a CONNECT tunnel to the sink from `from`; the status line's code, and the socket. */
  function connect(from: string): Promise<{ socket: net.Socket; status: number }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port: t.port, localAddress: from });
      let buf = "";
      socket.on("error", () => {});
      socket.once("close", () => resolve({ socket, status: 0 }));
      socket.on("data", function onData(d: Buffer) {
        buf += d.toString("latin1");
        if (!buf.includes("\r\n\r\n")) return;
        socket.off("data", onData);
        resolve({ socket, status: Number(buf.slice(9, 12)) });
      });
      socket.write(`CONNECT 127.0.0.3:${sink.port} HTTP/1.1\r\nHost: 127.0.0.3:${sink.port}\r\n\r\n`);
      setTimeout(() => reject(new Error("no answer to CONNECT")), 5000).unref();
    });
  }

  /** Write `total` bytes in 16 KiB pieces as fast as the socket takes them; resolves when it closes. */
  function push(socket: net.Socket, total: number): Promise<void> {
    return new Promise((resolve) => {
      const piece = Buffer.alloc(16 * 1024, 0x62);
      let left = total;
      const more = () => {
        while (left > 0 && !socket.destroyed) {
          left -= piece.length;
          if (!socket.write(piece)) return void socket.once("drain", more);
        }
      };
      socket.once("close", () => resolve());
      more();
    });
  }

  const lastOf = (agent: string) => t.sink.records.filter((r) => r.agent === agent).at(-1);

  describe("request budgets", () => {
    it("refuses the request past the budget as any refusal, names the budget in the log, and leaves other agents alone", async () => {
      for (let i = 0; i < 3; i++) expect((await get("127.0.0.11")).status).toBe(200);
      const before = web.requests.length;
      const refused = await get("127.0.0.11");
      expect(refused.status).toBe(403);
      expect(refused.body).not.toMatch(/budget|clawguard|shield/i);
      expect(web.requests.length).toBe(before);
      expect(lastOf("counted")).toMatchObject({
        decision: "denied",
        rule: "agent:counted budget",
        reason: "refused: request budget spent (3 requests per 1h, agent:counted)",
      });
      // A tunnel is a request too.
      expect((await connect("127.0.0.11")).status).toBe(403);
      expect((await get("127.0.0.12")).status).toBe(200);
    });

    it("holds a shared fleet budget against the fleet's agents together", async () => {
      expect((await get("127.0.0.19")).status).toBe(200);
      expect((await get("127.0.0.19")).status).toBe(200);
      expect((await get("127.0.0.20")).status).toBe(200);
      expect((await get("127.0.0.20")).status).toBe(403);
      expect(lastOf("p2")).toMatchObject({
        decision: "denied",
        rule: "fleet:pool budget",
        reason: "refused: request budget spent (3 requests per 1h, shared, fleet:pool)",
      });
      expect((await get("127.0.0.19")).status).toBe(403);
    });

    it("counts again once the window has moved on", async () => {
      expect((await get("127.0.0.16")).status).toBe(200);
      expect((await get("127.0.0.16")).status).toBe(200);
      expect((await get("127.0.0.16")).status).toBe(403);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await get("127.0.0.16")).status).toBe(200);
    });
  });

  describe("upload budgets", () => {
    it("cuts a tunnel at its budget: the destination never gets a byte past it, and the next tunnel is refused", async () => {
      const before = sink.received;
      const { socket, status } = await connect("127.0.0.13");
      expect(status).toBe(200);
      await push(socket, 2 * 1024 * 1024);
      await expect.poll(() => lastOf("tunneller")?.method).toBe("CONNECT");
      const got = sink.received - before;
      expect(got).toBeLessThanOrEqual(UPLOAD);
      // The cut comes at the piece that would pass the budget, not long before it.
      expect(got).toBeGreaterThan(UPLOAD - 64 * 1024);
      const rec = lastOf("tunneller")!;
      expect(rec).toMatchObject({
        decision: "denied",
        rule: "tier:bulk budget",
        reason: `cut: upload budget spent (upload ${UPLOAD} per 1h, tier:bulk)`,
      });
      expect(rec.bytesUp).toBe(got);
      expect((await connect("127.0.0.13")).status).toBe(403);
      expect(lastOf("tunneller")).toMatchObject({
        decision: "denied",
        reason: /^refused: upload budget spent/,
      });
    });

    it("cuts a tunnel whose first bytes, sent with the CONNECT, pass the budget, before any goes out", async () => {
      const before = sink.received;
      const reply = await new Promise<string>((resolve) => {
        const socket = net.connect({ host: "127.0.0.1", port: t.port, localAddress: "127.0.0.18" });
        let got = "";
        socket.on("data", (d: Buffer) => (got += d.toString("latin1")));
        socket.on("error", () => {});
        socket.on("close", () => resolve(got));
        socket.write(
          Buffer.concat([
            Buffer.from(`CONNECT 127.0.0.3:${sink.port} HTTP/1.1\r\nHost: 127.0.0.3:${sink.port}\r\n\r\n`),
            Buffer.alloc(5000, 0x66),
          ]),
        );
      });
      expect(reply).toMatch(/^HTTP\/1.1 200 /);
      await expect.poll(() => lastOf("eager")?.method).toBe("CONNECT");
      expect(lastOf("eager")).toMatchObject({ decision: "denied", rule: "agent:eager budget", bytesUp: 0 });
      expect(sink.received).toBe(before);
    });

    it("cuts a request body at the budget, and the destination sees less than the budget", async () => {
      const file = path.join(tmpdir(), `clawguard-budget-${process.pid}.bin`);
      writeFileSync(file, Buffer.alloc(1024 * 1024, 0x63));
      const before = web.bytesIn;
      const r = await curl([
        "-x",
        t.proxyUrl,
        "--interface",
        "127.0.0.14",
        "--data-binary",
        `@${file}`,
        `http://web.test:${web.port}/echo`,
      ]);
      expect(r.status).not.toBe(200);
      await expect.poll(() => lastOf("poster")?.decision).toBe("denied");
      expect(web.bytesIn - before).toBeLessThanOrEqual(UPLOAD);
      expect(lastOf("poster")).toMatchObject({
        rule: "tier:bulk budget",
        reason: /^cut: upload budget spent/,
      });
      expect(lastOf("poster")!.bytesUp).toBeLessThanOrEqual(UPLOAD);
    });

    it("in audit mode lets the agent past its budgets and records each overrun as audited", async () => {
      expect((await get("127.0.0.15")).status).toBe(200);
      expect(lastOf("auditee")).toMatchObject({ decision: "allowed" });
      expect((await get("127.0.0.15")).status).toBe(200);
      expect(lastOf("auditee")).toMatchObject({
        decision: "audited",
        rule: "agent:auditee budget",
        reason: "audit: request budget spent (upload 2000, 1 requests per 1h, agent:auditee)",
      });
      const before = sink.received;
      const { socket, status } = await connect("127.0.0.15");
      expect(status).toBe(200);
      socket.write(Buffer.alloc(50_000, 0x64));
      await expect.poll(() => sink.received - before).toBe(50_000);
      socket.destroy();
      await expect.poll(() => lastOf("auditee")?.method).toBe("CONNECT");
      expect(lastOf("auditee")).toMatchObject({ decision: "audited", bytesUp: 50_000 });
    });

    it("applies a budget a reload adds to a tunnel that is already open", async () => {
      const { socket, status } = await connect("127.0.0.17");
      expect(status).toBe(200);
      const before = sink.received;
      socket.write(Buffer.alloc(10_000, 0x65));
      await expect.poll(() => sink.received - before).toBe(10_000);
      const edited = parseShieldConfig(
        config.replace(
          "{ id: late, sources: [127.0.0.17/32], allow: [127.0.0.3/32] }",
          "{ id: late, sources: [127.0.0.17/32], allow: [127.0.0.3/32], budget: { upload: 5000 } }",
        ),
        "shield.yaml",
      );
      const cfg = { ...edited, listen: { host: "127.0.0.1", port: t.port } };
      t.shield.proxy.setPolicy(Policy.compile(cfg, { endpoints: selfEndpoints(cfg, t.port) }));
      try {
        const closed = new Promise((r) => socket.once("close", r));
        socket.write(Buffer.alloc(10_000, 0x65));
        await closed;
        expect(sink.received - before).toBe(10_000);
        expect(lastOf("late")).toMatchObject({
          decision: "denied",
          rule: "agent:late budget",
          bytesUp: 10_000,
        });
      } finally {
        t.shield.proxy.setPolicy(t.shield.policy);
      }
    });
  });
});
