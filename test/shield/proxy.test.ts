import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { ProxyAgent, request as undiciRequest } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  basic,
  curl,
  makeCertificates,
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
  const SCOUT = "scout-secret-token";
  // Rover may go anywhere ("*"): only deny rules stop it, so a spelling that slipped past
  // normalisation would be let through.
  const ROVER = "rover-secret-token";

  let web: Upstream;
  let trap: Upstream;
  let tls: Upstream;
  let certs: ReturnType<typeof makeCertificates>;
  let t: TestShield;
  let tmp: string;
  const resolver = new TableResolver({
    "allowed.test": v4("127.0.0.3"),
    "a.wild.test": v4("127.0.0.3"),
    "denied.test": v4("127.0.0.3"),
    "only-admiral.test": v4("127.0.0.3"),
    "secure.test": v4("127.0.0.3"),
    "xn--bcher-kva.test": v4("127.0.0.3"),
    "tunnel.ngrok.io": v4("127.0.0.3"),
  });

  const config = () => `
listen: 127.0.0.1:3128
log: { path: ./unused.db }
mode: enforce
strip_headers: [X-Secret-Hint]
tiers:
  crew: { allow: [allowed.test, "*.wild.test", secure.test, 127.0.0.3/32, 127.0.0.4/32] }
  commodore: { allow: [only-admiral.test, 127.0.0.3/32] }
fleets:
  acme: { isolation: isolated }
agents:
  - { id: scout, fleet: acme, tier: crew, token_sha256: "${sha256(SCOUT)}" }
  - { id: admiral, fleet: acme, tier: commodore, sources: [127.0.0.2/32] }
  - { id: rover, fleet: acme, tier: crew, token_sha256: "${sha256(ROVER)}", allow: ["*"] }
deny: [denied.test, "bücher.test", "*.ngrok.io", 127.0.0.4/32]
`;

  const auth = ["--proxy-user", `scout:${SCOUT}`];

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), "clawguard-proxy-"));
    web = await new Upstream("127.0.0.3").start();
    // Same port on other loopback addresses: a request that lands there went somewhere it must not.
    trap = await new Upstream("127.0.0.4").start(web.port);
    certs = makeCertificates(["secure.test"]);
    tls = await new Upstream("127.0.0.3", { key: certs.key, cert: certs.cert }).start();
    t = await startTestShield(config(), resolver.resolve, { httpServer });
  });

  afterAll(async () => {
    await t?.close();
    await Promise.all([web?.stop(), trap?.stop(), tls?.stop()]);
    certs?.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });

  const at = (host: string, p = "/echo") => `http://${host}:${web.port}${p}`;

  describe("identity", () => {
    it("answers 407 with a Basic challenge when no agent matches, and sends nothing upstream", async () => {
      const before = web.requests.length;
      for (const args of [[], ["--proxy-user", "scout:wrong"], ["--proxy-user", `nobody:${SCOUT}`]]) {
        const r = await curl(["-x", t.proxyUrl, ...args, "-D", "-", at("allowed.test")]);
        expect(r.status).toBe(407);
        expect(r.body).toMatch(/proxy-authenticate: Basic realm="proxy"/i);
      }
      const connect = await curl(["-x", t.proxyUrl, "--proxytunnel", at("allowed.test")]);
      expect(connect.status).toBe(407);
      expect(web.requests.length).toBe(before);
    });

    it("identifies an agent by its token, and another by its source address", async () => {
      const scout = await curl(["-x", t.proxyUrl, ...auth, at("allowed.test")]);
      expect(scout.status).toBe(200);
      const admiral = await curl(["-x", t.proxyUrl, "--interface", "127.0.0.2", at("only-admiral.test")]);
      expect(admiral.status).toBe(200);
      const last = t.sink.records.slice(-2);
      expect(last.map((r) => [r.agent, r.fleet, r.tier, r.host, r.decision])).toEqual([
        ["scout", "acme", "crew", "allowed.test", "allowed"],
        ["admiral", "acme", "commodore", "only-admiral.test", "allowed"],
      ]);
    });

    it("never lets a header the agent sends change who it is", async () => {
      const before = web.requests.length;
      const r = await curl(["-x", t.proxyUrl, ...auth, "-H", "X-Agent-ID: admiral", at("only-admiral.test")]);
      expect(r.status).toBe(403);
      expect(web.requests.length).toBe(before);
      expect(t.sink.records.at(-1)).toMatchObject({
        agent: "scout",
        host: "only-admiral.test",
        decision: "denied",
      });
      // From the wrong source address the admiral is nobody, whatever it claims.
      const spoof = await curl(["-x", t.proxyUrl, "-H", "X-Agent-ID: admiral", at("only-admiral.test")]);
      expect(spoof.status).toBe(407);
    });

    it("keeps tokens out of the log", async () => {
      await curl(["-x", t.proxyUrl, ...auth, at("allowed.test")]);
      const text = JSON.stringify(t.sink.records);
      expect(text).not.toContain(SCOUT);
      expect(text).not.toContain(Buffer.from(`scout:${SCOUT}`).toString("base64"));
    });
  });

  describe("policy on the wire", () => {
    it("forwards allowed names and refuses denied ones with a bland 403, nothing upstream", async () => {
      expect((await curl(["-x", t.proxyUrl, ...auth, at("a.wild.test")])).status).toBe(200);
      const before = { web: web.requests.length, trap: trap.connections };
      for (const host of ["denied.test", "unlisted.test", "pastebin.com"]) {
        const r = await curl(["-x", t.proxyUrl, ...auth, "-D", "-", at(host)]);
        expect(r.status).toBe(403);
        expect(r.body).toMatch(/\r\n\r\nForbidden\n$/);
        expect(r.body).not.toMatch(/clawguard|shield|deny|rule|server:/i);
      }
      expect(web.requests.length).toBe(before.web);
      expect(t.sink.records.at(-1)).toMatchObject({
        agent: "scout",
        host: "pastebin.com",
        decision: "denied",
        bytesUp: 0,
      });
    });

    it("sees through every spelling of a denied name or address", async () => {
      const before = web.requests.length;
      const rover = ["--proxy-user", `rover:${ROVER}`];
      expect((await curl(["-x", t.proxyUrl, ...rover, at("unlisted.test.")])).status).toBe(502);
      const names = [
        "DENIED.TEST",
        "denied.test.",
        "Denied.Test.",
        "xn--bcher-kva.test",
        "XN--BCHER-KVA.test.",
        "TUNNEL.ngrok.IO.",
      ];
      // 127.0.0.4 is under a deny rule (and a tier allow rule): decimal, octal, hex, short and
      // IPv4-mapped IPv6 spellings of it.
      const addresses = [
        "2130706436",
        "0177.0.0.4",
        "0x7f000004",
        "0x7f.0.0.4",
        "127.4",
        "[::ffff:7f00:4]",
        "[::ffff:127.0.0.4]",
      ];
      for (const host of [...names, ...addresses]) {
        for (const who of [auth, rover]) {
          const r = await curl(["-x", t.proxyUrl, ...who, at(host)]);
          expect(r.status, host).toBe(403);
          const c = await curl(["-x", t.proxyUrl, ...who, "--proxytunnel", at(host)]);
          expect(c.status, `CONNECT ${host}`).toBe(403);
        }
      }
      expect(web.requests.length).toBe(before);
      expect(trap.touched).toBe(false);
      expect(t.sink.records.at(-1)).toMatchObject({ host: "127.0.0.4", decision: "denied" });
    });

    it("parses the same spellings of an allowed address and dials the canonical one", async () => {
      for (const host of ["2130706435", "0177.0.0.3", "0x7f.0.0.3", "127.0.3", "[::ffff:7f00:3]"]) {
        const r = await curl(["-x", t.proxyUrl, ...auth, at(host)]);
        expect(r.status, host).toBe(200);
        expect(t.sink.records.at(-1)).toMatchObject({ host: "127.0.0.3", upstreamAddress: "127.0.0.3" });
      }
    });

    it("decides before inviting a body: no 100 Continue for a denied upload", async () => {
      const r = await rawExchange(
        t.port,
        `POST ${at("denied.test")} HTTP/1.1\r\nHost: denied.test\r\nProxy-Authorization: ${basic("scout", SCOUT)}\r\n` +
          `Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n`,
        500,
      );
      expect(r.reply).toMatch(/^HTTP\/1.1 403 /);
      expect(r.reply).not.toContain("100 Continue");
    });

    it("refuses userinfo in the target and origin-form requests", async () => {
      const before = web.requests.length;
      const userinfo = await rawExchange(
        t.port,
        `GET http://allowed.test@denied.test:${web.port}/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: ${basic("scout", SCOUT)}\r\n\r\n`,
        500,
      );
      expect(userinfo.reply).toMatch(/^HTTP\/1.1 400 /);
      const origin = await rawExchange(
        t.port,
        `GET /echo HTTP/1.1\r\nHost: allowed.test:${web.port}\r\nProxy-Authorization: ${basic("scout", SCOUT)}\r\n\r\n`,
        500,
      );
      expect(origin.reply).toMatch(/^HTTP\/1.1 400 /);
      expect(web.requests.length).toBe(before);
    });
  });

  describe("forwarding", () => {
    it("removes hop-by-hop, identifying and configured headers, and keeps Host as asked", async () => {
      const r = await curl([
        "-x",
        t.proxyUrl,
        ...auth,
        ...["-H", "Via: 1.1 agent-box", "-H", "Forwarded: for=10.1.2.3", "-H", "X-Forwarded-For: 10.1.2.3"],
        ...["-H", "X-Forwarded-Host: inner", "-H", "X-Agent-ID: scout", "-H", "X-Agent-Fleet: acme"],
        ...["-H", "Proxy-Foo: bar", "-H", "X-Secret-Hint: s3cr3t", "-H", "X-Real-IP: 10.1.2.3"],
        ...["-H", "Connection: X-Hop", "-H", "X-Hop: 1", "-H", "X-Keep: yes"],
        at("allowed.test"),
      ]);
      expect(r.status).toBe(200);
      const seen = JSON.parse(r.body) as { headers: Record<string, string>; rawHeaders: string[] };
      const names = Object.keys(seen.headers);
      for (const banned of [
        /^via$/,
        /^forwarded$/,
        /^x-forwarded-/,
        /^x-agent-/,
        /^proxy-/,
        /^x-secret-hint$/,
        /^x-real-ip$/,
        /^x-hop$/,
      ]) {
        expect(
          names.filter((n) => banned.test(n)),
          String(banned),
        ).toEqual([]);
      }
      expect(seen.headers["x-keep"]).toBe("yes");
      expect(seen.headers["host"]).toBe(`allowed.test:${web.port}`);
      expect(JSON.stringify(seen)).not.toMatch(/clawguard|shield|scout/i);
    });

    it("streams large bodies both ways and logs the byte counts", async () => {
      const file = path.join(tmp, "upload.bin");
      writeFileSync(file, Buffer.alloc(3 * 1024 * 1024 + 17, 0x62));
      const up = await curl(["-x", t.proxyUrl, ...auth, "--data-binary", `@${file}`, at("allowed.test")]);
      expect(up.status).toBe(200);
      expect((JSON.parse(up.body) as { body: number }).body).toBe(3 * 1024 * 1024 + 17);
      const posted = t.sink.records.at(-1)!;
      expect(posted).toMatchObject({ method: "POST", path: "/echo" });
      // The body, and the request's head as budgets count it.
      expect(posted.bytesUp - (3 * 1024 * 1024 + 17)).toBeGreaterThan(100);
      expect(posted.bytesUp - (3 * 1024 * 1024 + 17)).toBeLessThan(1000);

      const n = 20 * 1024 * 1024 + 5;
      const down = await curl(["-x", t.proxyUrl, ...auth, at("allowed.test", `/big?n=${n}&secret=q`)]);
      expect(down.status).toBe(200);
      expect(down.body.length).toBe(n);
      await t.sink.waitFor(1);
      expect(t.sink.records.at(-1)).toMatchObject({ path: "/big", bytesDown: n, decision: "allowed" });
    });

    it("keeps the client connection alive across requests", async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      let connections = 0;
      const count = () => {
        connections += 1;
      };
      t.shield.proxy.server.on("connection", count);
      try {
        for (let i = 0; i < 3; i++) {
          const status = await new Promise<number>((resolve, reject) => {
            const req = http.request({
              host: "127.0.0.1",
              port: t.port,
              path: at("allowed.test"),
              headers: { "proxy-authorization": basic("scout", SCOUT), host: `allowed.test:${web.port}` },
              agent,
            });
            req.on("response", (res) => {
              res.resume();
              res.on("end", () => resolve(res.statusCode ?? 0));
            });
            req.on("error", reject);
            req.end();
          });
          expect(status).toBe(200);
        }
      } finally {
        t.shield.proxy.server.off("connection", count);
        agent.destroy();
      }
      expect(connections).toBe(1);
    });

    it("tunnels TLS with CONNECT for curl and undici, certificate checked end to end", async () => {
      const r = await curl([
        "-x",
        t.proxyUrl,
        ...auth,
        "--cacert",
        certs.ca,
        `https://secure.test:${tls.port}/echo`,
      ]);
      expect(r.status).toBe(200);
      expect((JSON.parse(r.body) as { headers: Record<string, string> }).headers["host"]).toBe(
        `secure.test:${tls.port}`,
      );
      await t.sink.waitFor(1);
      const dispatcher = new ProxyAgent({
        uri: t.proxyUrl,
        token: basic("scout", SCOUT),
        requestTls: { ca: await import("node:fs").then((fs) => fs.readFileSync(certs.ca, "utf8")) },
      });
      try {
        const res = await undiciRequest(`https://secure.test:${tls.port}/echo`, { dispatcher });
        expect(res.statusCode).toBe(200);
        await res.body.text();
      } finally {
        await dispatcher.close();
      }
      const connects = (await t.sink.waitFor(1)).filter((x) => x.method === "CONNECT" && x.port === tls.port);
      await expect
        .poll(() => t.sink.records.filter((x) => x.method === "CONNECT" && x.port === tls.port).length)
        .toBe(2);
      expect(connects[0]).toMatchObject({
        agent: "scout",
        host: "secure.test",
        path: null,
        upstreamAddress: "127.0.0.3",
      });
      const rec = t.sink.records.filter((x) => x.method === "CONNECT" && x.port === tls.port);
      expect(rec.every((x) => x.bytesUp > 0 && x.bytesDown > 0)).toBe(true);
    });

    it("carries a WebSocket upgrade as a tunnel, with the handshake headers masked", async () => {
      const before = web.requests.length;
      const r = await rawExchange(
        t.port,
        `GET ${at("allowed.test", "/ws")} HTTP/1.1\r\nHost: allowed.test:${web.port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nProxy-Authorization: ${basic("scout", SCOUT)}\r\nX-Forwarded-For: 10.9.9.9\r\n` +
          `Sec-WebSocket-Version: 13\r\n\r\nhello over the tunnel`,
        800,
      );
      expect(r.reply).toMatch(/^HTTP\/1.1 101 /);
      expect(r.reply).toContain("hello over the tunnel");
      const seen = web.requests[before]!;
      expect(seen.url).toBe("/ws");
      expect(seen.headers["upgrade"]).toBe("websocket");
      expect(seen.headers["proxy-authorization"]).toBeUndefined();
      expect(seen.headers["x-forwarded-for"]).toBeUndefined();
      await expect.poll(() => t.sink.records.at(-1)?.path).toBe("/ws");
      expect(t.sink.records.at(-1)).toMatchObject({ method: "GET", decision: "allowed" });
    });

    it("answers 502 when the destination refuses the connection", async () => {
      const closed = await new Upstream("127.0.0.3").start();
      const port = closed.port;
      await closed.stop();
      const r = await curl(["-x", t.proxyUrl, ...auth, `http://allowed.test:${port}/`]);
      expect(r.status).toBe(502);
      expect(t.sink.records.at(-1)?.reason).toMatch(/ECONNREFUSED/);
    });
  });
});
