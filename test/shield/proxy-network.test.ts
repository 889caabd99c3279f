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
  v6,
  type TestShield,
  HTTP_SERVERS,
} from "./proxy-harness.js";

describe.each(HTTP_SERVERS)("with the %s HTTP server", (httpServer) => {
  const TOKEN = "scout-token-for-network-tests";
  const WARDEN = "warden-token-for-network-tests";

  let web: Upstream;
  let loop: Upstream;
  let mate: Upstream;
  let t: TestShield;

  // Every name below is allowed by a name rule; only what it resolves to decides.
  const resolver = new TableResolver({
    "public.evil.test": v4("127.0.0.3"),
    "loopback.evil.test": v4("127.0.0.1"),
    "metadata.evil.test": v4("169.254.169.254"),
    "private.evil.test": v4("10.0.0.1"),
    "cgnat.evil.test": v4("100.64.0.1"),
    "mapped.evil.test": v6("::ffff:10.0.0.1"),
    "mapped-loop.evil.test": v6("::ffff:127.0.0.1"),
    "nat64.evil.test": v6("64:ff9b::a9fe:a9fe"),
    "sixtofour.evil.test": v6("2002:7f00:1::1"),
    "ula.evil.test": v6("fd00::1"),
    "v6loop.evil.test": v6("::1"),
    "unspecified.evil.test": v4("0.0.0.0"),
    "mixed.evil.test": [
      [
        { address: "127.0.0.3", family: 4 },
        { address: "169.254.169.254", family: 4 },
      ],
    ],
    // Public-looking (CIDR-allowed) on the first query, loopback on every later one.
    "rebind.evil.test": [[{ address: "127.0.0.3", family: 4 }], [{ address: "127.0.0.1", family: 4 }]],
    "self.evil.test": v4("127.0.0.1"),
    "mate.evil.test": v4("127.0.0.2"),
  });

  const config = () => `
listen: 127.0.0.1:3128
log: { path: ./unused.db }
tiers:
  crew: { allow: ["*.evil.test", 127.0.0.3/32] }
agents:
  - { id: scout, tier: crew, token_sha256: "${sha256(TOKEN)}" }
  - { id: warden, token_sha256: "${sha256(WARDEN)}", allow: ["*.evil.test", 127.0.0.0/8] }
  - { id: admiral, sources: [127.0.0.2/32] }
`;

  const scout = ["--proxy-user", `scout:${TOKEN}`];
  const warden = ["--proxy-user", `warden:${WARDEN}`];

  beforeAll(async () => {
    web = await new Upstream("127.0.0.3").start();
    loop = await new Upstream("127.0.0.1").start(web.port);
    mate = await new Upstream("127.0.0.2").start(web.port);
    t = await startTestShield(config(), resolver.resolve, { httpServer });
  });

  afterAll(async () => {
    await t?.close();
    await Promise.all([web?.stop(), loop?.stop(), mate?.stop()]);
  });

  const untouched = () => {
    expect(loop.touched, "the 127.0.0.1 upstream was reached").toBe(false);
    expect(mate.touched, "the 127.0.0.2 upstream was reached").toBe(false);
  };

  describe("address classes", () => {
    it("reaches a name that resolves to an allowed address", async () => {
      const r = await curl(["-x", t.proxyUrl, ...scout, `http://public.evil.test:${web.port}/`]);
      expect(r.status).toBe(200);
    });

    const refused = [
      "loopback",
      "metadata",
      "private",
      "cgnat",
      "mapped",
      "mapped-loop",
      "nat64",
      "sixtofour",
      "ula",
      "v6loop",
      "unspecified",
      "mixed",
    ];
    it.each(refused)("refuses %s.evil.test over HTTP and CONNECT without dialling", async (name) => {
      const before = web.connections;
      const host = `${name}.evil.test:${web.port}`;
      const r = await curl(["-x", t.proxyUrl, ...scout, `http://${host}/`]);
      expect(r.status).toBe(403);
      const c = await curl(["-x", t.proxyUrl, ...scout, "--proxytunnel", `http://${host}/`]);
      expect(c.status).toBe(403);
      expect(web.connections).toBe(before);
      untouched();
      expect(t.sink.records.at(-1)).toMatchObject({
        host: `${name}.evil.test`,
        decision: "denied",
        upstreamAddress: null,
      });
    });

    it("refuses the same classes as IP literals", async () => {
      for (const host of [
        "127.0.0.1",
        "[::1]",
        "169.254.169.254",
        "[::ffff:a9fe:a9fe]",
        "[64:ff9b::7f00:1]",
        "0",
      ]) {
        const r = await curl(["-x", t.proxyUrl, ...scout, "--proxytunnel", `http://${host}:${web.port}/`]);
        expect(r.status, host).toBe(403);
      }
      untouched();
    });
  });

  describe("DNS rebinding", () => {
    it("dials the address it checked, and refuses when a later answer is loopback", async () => {
      const queries = () => resolver.queries.filter((q) => q === "rebind.evil.test").length;
      const r = await curl(["-x", t.proxyUrl, ...scout, `http://rebind.evil.test:${web.port}/echo`]);
      expect(r.status).toBe(200);
      expect(queries()).toBe(1);
      expect(t.sink.records.at(-1)).toMatchObject({ host: "rebind.evil.test", upstreamAddress: "127.0.0.3" });
      // The next query answers 127.0.0.1: refused, for plain HTTP and CONNECT alike.
      const again = await curl(["-x", t.proxyUrl, ...scout, `http://rebind.evil.test:${web.port}/echo`]);
      expect(again.status).toBe(403);
      const tunnel = await curl([
        "-x",
        t.proxyUrl,
        ...scout,
        "--proxytunnel",
        `http://rebind.evil.test:${web.port}/echo`,
      ]);
      expect(tunnel.status).toBe(403);
      expect(queries()).toBe(3);
      untouched();
    });
  });

  describe("the shield's own endpoints", () => {
    it("refuses CONNECT and HTTP to its own port even when a CIDR rule allows the address", async () => {
      // The CIDR rule really opens 127.0.0.1 for warden: another port there is reachable.
      const other = await curl(["-x", t.proxyUrl, ...warden, `http://127.0.0.1:${web.port}/`]);
      expect(other.status).toBe(200);
      const self = [
        `127.0.0.1:${t.port}`,
        `self.evil.test:${t.port}`,
        `2130706433:${t.port}`,
        `[::ffff:127.0.0.1]:${t.port}`,
      ];
      for (const target of self) {
        const c = await rawExchange(
          t.port,
          `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: ${basic("warden", WARDEN)}\r\n\r\n`,
          500,
        );
        expect(c.reply, target).toMatch(/^HTTP\/1.1 403 /);
        const h = await curl(["-x", t.proxyUrl, ...warden, `http://${target}/`]);
        expect(h.status, target).toBe(403);
      }
      // Refused before a byte reached the shield's port from the inside: only test clients connected.
      expect(t.sink.records.filter((r) => r.port === t.port).every((r) => r.decision === "denied")).toBe(
        true,
      );
    });
  });

  describe("fleet isolation", () => {
    it("refuses a destination that is another agent's source address", async () => {
      const r = await curl(["-x", t.proxyUrl, ...warden, `http://mate.evil.test:${web.port}/`]);
      expect(r.status).toBe(403);
      const literal = await curl([
        "-x",
        t.proxyUrl,
        ...warden,
        "--proxytunnel",
        `http://127.0.0.2:${web.port}/`,
      ]);
      expect(literal.status).toBe(403);
      expect(mate.touched).toBe(false);
    });
  });

  describe("name resolution failures", () => {
    it("answers 502 for a name that does not resolve, and logs why", async () => {
      const r = await curl(["-x", t.proxyUrl, ...scout, `http://nowhere.evil.test:${web.port}/`]);
      expect(r.status).toBe(502);
      expect(t.sink.records.at(-1)?.reason).toMatch(/ENOTFOUND/);
      expect(net.isIP(t.sink.records.at(-1)?.upstreamAddress ?? "")).toBe(0);
    });
  });
});
