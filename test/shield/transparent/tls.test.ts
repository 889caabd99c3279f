/**
 * Transparent TLS on loopback, with curl as an agent that believes it talks to the destination
 * itself (`--connect-to` stands in for the gateway's redirect): the shield decides on the
 * ClientHello's server name, dials the address it resolved and checked, and relays the bytes.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TransparentTls } from "../../../src/shield/transparent/tls.js";
import {
  curl,
  makeCertificates,
  startTestShield,
  TableResolver,
  Upstream,
  v4,
  type TestShield,
} from "../proxy-harness.js";

let t: TestShield;
let origin: Upstream;
let other: Upstream;
let tls: TransparentTls;
let port = 0;
let certs: ReturnType<typeof makeCertificates>;

beforeAll(async () => {
  certs = makeCertificates(["allowed.test", "denied.test", "meta.test"]);
  origin = await new Upstream("127.0.0.3", { key: certs.key, cert: certs.cert }).start();
  // Another server on the same port at another address: what a forged name would aim at.
  other = await new Upstream("127.0.0.4", { key: certs.key, cert: certs.cert }).start(origin.port);
  t = await startTestShield(
    `listen: 127.0.0.1:3128
log: { path: ./unused.db }
agents:
  - { id: scout, sources: [127.0.0.1/32], allow: ["allowed.test", "meta.test", 127.0.0.3/32] }
`,
    new TableResolver({
      "allowed.test": v4("127.0.0.3"),
      "denied.test": v4("127.0.0.4"),
      "meta.test": v4("169.254.169.254"),
    }).resolve,
  );
  tls = new TransparentTls(t.shield.proxy, { port: origin.port, headerTimeoutMs: 1000 });
  port = (await tls.listen("127.0.0.1", 0)).port;
});

afterAll(async () => {
  await tls?.close();
  await t?.close();
  await origin?.stop();
  await other?.stop();
  certs?.cleanup();
});

/** curl as the agent: it dials `dialled` (the redirect's stand-in) and asks for `name`. */
const agent = (name: string, extra: string[] = []) =>
  curl([
    "--cacert",
    certs.ca,
    "--connect-to",
    `${name}:${origin.port}:127.0.0.1:${port}`,
    ...extra,
    `https://${name}:${origin.port}/x`,
  ]);

describe("transparent TLS", () => {
  it("carries a connection whose server name the agent may reach, to the address the shield checked", async () => {
    const before = origin.requests.length;
    const r = await agent("allowed.test");
    expect(r.status).toBe(200);
    expect(origin.requests.length).toBe(before + 1);
    await expect
      .poll(() => t.sink.records.find((x) => x.method === "TLS" && x.host === "allowed.test")?.decision)
      .toBe("allowed");
    expect(t.sink.records.find((x) => x.method === "TLS" && x.host === "allowed.test")).toMatchObject({
      agent: "scout",
      upstreamAddress: "127.0.0.3",
    });
  });

  it("refuses a name the rules deny, and one whose address the checks refuse, without dialling", async () => {
    const before = other.connections;
    expect((await agent("denied.test")).status).toBe(0);
    expect((await agent("meta.test")).status).toBe(0);
    expect(other.connections).toBe(before);
    await expect
      .poll(() => t.sink.records.filter((x) => x.method === "TLS" && x.decision === "denied").length)
      .toBe(2);
  });

  it("refuses TLS without a server name, and an IP address as the name, naming why", async () => {
    // curl sends no SNI for an IP literal.
    expect(
      (
        await curl([
          "-k",
          "--connect-to",
          `127.0.0.3:${origin.port}:127.0.0.1:${port}`,
          `https://127.0.0.3:${origin.port}/`,
        ])
      ).status,
    ).toBe(0);
    await expect.poll(() => t.sink.records.some((x) => /without a server name/.test(x.reason))).toBe(true);
    const { execFile } = await import("node:child_process");
    await new Promise((r) =>
      execFile(
        "openssl",
        ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "127.0.0.3"],
        { timeout: 5000 },
        r,
      ),
    );
    await expect
      .poll(() => t.sink.records.some((x) => /an IP address as the server name/.test(x.reason)))
      .toBe(true);
  });

  it("refuses what is not TLS, and a ClientHello that never comes", async () => {
    const r = await curl(["--connect-to", `allowed.test:80:127.0.0.1:${port}`, "http://allowed.test/"]);
    expect(r.status).toBe(0);
    await expect.poll(() => t.sink.records.some((x) => /not TLS/.test(x.reason))).toBe(true);
    const net = await import("node:net");
    const s = net.connect(port, "127.0.0.1");
    s.on("error", () => undefined);
    await new Promise((r) => s.once("close", r));
    expect(t.sink.records.some((x) => /no complete ClientHello within 1000 ms/.test(x.reason))).toBe(true);
  });
});

// The certificate file is read once so a broken openssl shows here, not as a TLS error above.
it("has its test CA", () => expect(readFileSync(certs.ca, "utf8")).toMatch(/BEGIN CERTIFICATE/));
