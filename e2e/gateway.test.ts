import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shieldRunArgv } from "../src/shield/node-flags.js";
import { cmd, isRoot, PROJECT_DIR, sleep, type CmdResult } from "./lib/index.js";

/**
 * Gateway mode: the agent's only link is to the shield, on a private network; the shield has a
 * second link to the "internet". The agent sets no proxy; the shield's nftables table sends its
 * HTTP, HTTPS and DNS to the shield's own listeners and drops the rest. Then root on the agent
 * flushes its rules, adds routes and changes its addresses, and gains nothing.
 *
 *   cgw-agent 10.89.1.2 fd00:89:1::2 -- 10.89.1.1 fd00:89:1::1 cgw-shield 10.89.2.1 -- 10.89.2.2 cgw-inet
 *   cgw-inet's lo: allowed 10.200.0.10 2001:db8:200::10, denied 10.200.0.20, a resolver 10.200.0.53,
 *   and a catch-all 10.200.0.99 (TCP and UDP 9999)
 */
const NS = { agent: "cgw-agent", shield: "cgw-shield", inet: "cgw-inet" } as const;
const AGENT = { v4: "10.89.1.2", v6: "fd00:89:1::2" };
const SHIELD = { v4: "10.89.1.1", v6: "fd00:89:1::1", up4: "10.89.2.1" };
const INET = { v4: "10.89.2.2" };
const HOSTS = {
  allowed: "10.200.0.10",
  allowed6: "2001:db8:200::10",
  denied: "10.200.0.20",
  dns: "10.200.0.53",
  any: "10.200.0.99",
};
const BIN = path.join(PROJECT_DIR, "bin/clawguard.js");
const SHIELD_ETC = `/etc/netns/${NS.shield}`;
const AGENT_ETC = `/etc/netns/${NS.agent}`;

/** The internet: HTTP and HTTPS that say which address was reached, a resolver and a catch-all, all counted. */
const INET_SERVER = `
import http from "node:http";
import https from "node:https";
import net from "node:net";
import dgram from "node:dgram";
import fs from "node:fs";
const [cert, key] = process.argv.slice(2);
const seen = { http: {}, https: {}, dns: 0, tcp: 0, udp: 0 };
const count = (kind) => (req) => { const a = req.socket.localAddress.replace(/^::ffff:/, ""); seen[kind][a] = (seen[kind][a] ?? 0) + 1; };
const answer = (kind) => (req, res) => { count(kind)(req); res.end("reached " + req.socket.localAddress.replace(/^::ffff:/, "") + " " + kind + " " + req.headers.host + "\\n"); };
const listening = (srv) => new Promise((r) => srv.once("listening", r));
const servers = [
  http.createServer(answer("http")).listen(80, "::"),
  https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, answer("https")).listen(443, "::"),
  net.createServer((s) => { seen.tcp++; s.end("any"); }).listen(9999, "${HOSTS.any}"),
  http.createServer((req, res) => res.end(JSON.stringify(seen))).listen(9000, "127.0.0.1"),
];
const u = dgram.createSocket("udp4");
u.on("message", () => seen.udp++);
u.bind(9999, "${HOSTS.any}");
const d = dgram.createSocket("udp4");
d.on("message", (q, from) => {
  seen.dns++;
  const head = Buffer.from(q.subarray(0, 12));
  head.writeUInt16BE(0x8180, 2);
  head.writeUInt16BE(1, 6);
  d.send(Buffer.concat([head, q.subarray(12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 200, 0, 99])]), from.port, from.address);
});
d.bind(53, "${HOSTS.dns}");
await Promise.all([...servers.map(listening), listening(u), listening(d)]);
console.log("ready");
`;

/** A plain socket's view from the agent: does anything answer? */
const PROBE = `
import net from "node:net";
import dgram from "node:dgram";
const [kind, host, port, local] = process.argv.slice(2);
const say = (s) => { console.log(s); process.exit(0); };
setTimeout(() => say("blocked timeout"), 2000);
if (kind === "tcp") {
  const c = net.connect({ host, port: Number(port), ...(local ? { localAddress: local } : {}) });
  c.on("connect", () => say("open"));
  c.on("error", (e) => say("blocked " + e.code));
} else {
  const u = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  u.on("message", () => say("answered"));
  u.send(Buffer.from("hello"), Number(port), host, () => setTimeout(() => say("no answer"), 1500));
}
`;

/** DNS as the agent's resolver library asks it: the system's configured server (resolv.conf). */
const RESOLVE = `
import { Resolver } from "node:dns/promises";
const [type, name, server] = process.argv.slice(2);
const r = new Resolver({ timeout: 2000, tries: 1 });
if (server) r.setServers([server]);
const ask = { A: (n) => r.resolve4(n), AAAA: (n) => r.resolve6(n), TXT: (n) => r.resolveTxt(n) }[type];
ask(name).then((a) => console.log(JSON.stringify(a)), (e) => console.log(e.code));
`;

let work = "";
let inet: ChildProcess | undefined;
let shield: ChildProcess | undefined;

const inNs = (ns: string, argv: string[], timeoutMs = 60_000): Promise<CmdResult> =>
  cmd(["ip", "netns", "exec", ns, ...argv], {
    check: false,
    timeoutMs,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
const asAgent = (argv: string[]) => inNs(NS.agent, argv);
const curl = (args: string[]) =>
  asAgent(["curl", "-sS", "--max-time", "5", "--cacert", path.join(work, "ca.pem"), ...args]);
const probe = async (kind: "tcp" | "udp", host: string, port: number, local?: string) =>
  (
    await asAgent([
      process.execPath,
      path.join(work, "probe.mjs"),
      kind,
      host,
      String(port),
      ...(local ? [local] : []),
    ])
  ).stdout.trim();
const resolve = async (type: "A" | "AAAA" | "TXT", name: string, server?: string) =>
  (
    await asAgent([process.execPath, path.join(work, "resolve.mjs"), type, name, ...(server ? [server] : [])])
  ).stdout.trim();
const seen = async (): Promise<{
  http: Record<string, number>;
  https: Record<string, number>;
  dns: number;
  tcp: number;
  udp: number;
}> => JSON.parse((await inNs(NS.inet, ["curl", "-s", "http://127.0.0.1:9000/"])).stdout);
const clawguard = (args: string[]) => inNs(NS.shield, [process.execPath, BIN, ...args], 120_000);

function startIn(ns: string, argv: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn("ip", ["netns", "exec", ns, ...argv], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.join(" ")} not ready in 60 s:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(" ")} exited ${code}:\n${out}`));
    });
  });
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([gone, sleep(10_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

async function teardown(): Promise<void> {
  for (const ns of Object.values(NS)) await cmd(["ip", "netns", "del", ns], { check: false });
  rmSync(SHIELD_ETC, { recursive: true, force: true });
  rmSync(AGENT_ETC, { recursive: true, force: true });
}

async function wire(): Promise<void> {
  const ip = (...args: string[]) => cmd(["ip", ...args]);
  for (const ns of Object.values(NS)) {
    await ip("netns", "add", ns);
    await ip("-n", ns, "link", "set", "lo", "up");
  }
  await ip(
    "-n",
    NS.agent,
    "link",
    "add",
    "eth0",
    "type",
    "veth",
    "peer",
    "name",
    "to-agents",
    "netns",
    NS.shield,
  );
  await ip(
    "-n",
    NS.inet,
    "link",
    "add",
    "eth0",
    "type",
    "veth",
    "peer",
    "name",
    "uplink",
    "netns",
    NS.shield,
  );
  await ip("-n", NS.agent, "addr", "add", `${AGENT.v4}/24`, "dev", "eth0");
  await ip("-n", NS.agent, "addr", "add", `${AGENT.v6}/64`, "dev", "eth0", "nodad");
  await ip("-n", NS.shield, "addr", "add", `${SHIELD.v4}/24`, "dev", "to-agents");
  await ip("-n", NS.shield, "addr", "add", `${SHIELD.v6}/64`, "dev", "to-agents", "nodad");
  await ip("-n", NS.shield, "addr", "add", `${SHIELD.up4}/30`, "dev", "uplink");
  await ip("-n", NS.shield, "addr", "add", "fd00:89:2::1/64", "dev", "uplink", "nodad");
  await ip("-n", NS.inet, "addr", "add", `${INET.v4}/30`, "dev", "eth0");
  await ip("-n", NS.inet, "addr", "add", "fd00:89:2::2/64", "dev", "eth0", "nodad");
  for (const a of [HOSTS.allowed, HOSTS.denied, HOSTS.dns, HOSTS.any])
    await ip("-n", NS.inet, "addr", "add", `${a}/32`, "dev", "lo");
  await ip("-n", NS.inet, "addr", "add", `${HOSTS.allowed6}/128`, "dev", "lo");
  for (const [ns, dev] of [
    [NS.agent, "eth0"],
    [NS.shield, "to-agents"],
    [NS.shield, "uplink"],
    [NS.inet, "eth0"],
  ] as const)
    await ip("-n", ns, "link", "set", dev, "up");
  await ip("-n", NS.agent, "route", "add", "default", "via", SHIELD.v4);
  await ip("-n", NS.agent, "-6", "route", "add", "default", "via", SHIELD.v6);
  await ip("-n", NS.shield, "route", "add", "default", "via", INET.v4);
  await ip("-n", NS.shield, "-6", "route", "add", "default", "via", "fd00:89:2::2");
  // The internet knows the way back to the agents: a packet the shield forwarded would be answered.
  await ip("-n", NS.inet, "route", "add", "10.89.1.0/24", "via", SHIELD.up4);
  await ip("-n", NS.inet, "-6", "route", "add", "fd00:89:1::/64", "via", "fd00:89:2::1");
  // Forwarding is on: only the gateway table stands between the agent and the internet.
  await cmd(["ip", "netns", "exec", NS.shield, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await cmd(["ip", "netns", "exec", NS.shield, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
  mkdirSync(SHIELD_ETC, { recursive: true });
  writeFileSync(
    path.join(SHIELD_ETC, "hosts"),
    `127.0.0.1 localhost\n${HOSTS.allowed} allowed.test\n${HOSTS.allowed6} allowed6.test\n${HOSTS.denied} denied.test\n`,
  );
  mkdirSync(AGENT_ETC, { recursive: true });
  writeFileSync(path.join(AGENT_ETC, "resolv.conf"), `nameserver ${SHIELD.v4}\n`);
  writeFileSync(path.join(AGENT_ETC, "hosts"), "127.0.0.1 localhost\n");
}

async function makeCertificates(): Promise<void> {
  const run = (args: string[]) => cmd(["openssl", ...args], { cwd: work });
  await run([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=gateway test ca",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  ]);
  await run([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=allowed.test",
    "-keyout",
    "key.pem",
    "-out",
    "leaf.csr",
  ]);
  // One certificate for every name: a connection that reached the denied server would succeed.
  writeFileSync(
    path.join(work, "leaf.ext"),
    "subjectAltName=DNS:allowed.test,DNS:allowed6.test,DNS:denied.test\n",
  );
  await run([
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "leaf.ext",
    "-out",
    "cert.pem",
  ]);
}

async function startShield(): Promise<ChildProcess> {
  return startIn(NS.shield, shieldRunArgv(BIN, ["--config", path.join(work, "shield.yaml")]), /listening on/);
}

describe.skipIf(!isRoot)(
  "gateway mode: the agent's only way out is the shield, whatever root on it does",
  () => {
    beforeAll(async () => {
      await teardown();
      work = mkdtempSync(path.join(tmpdir(), "clawguard-gateway-e2e-"));
      writeFileSync(path.join(work, "inet.mjs"), INET_SERVER);
      writeFileSync(path.join(work, "probe.mjs"), PROBE);
      writeFileSync(path.join(work, "resolve.mjs"), RESOLVE);
      await makeCertificates();
      // The shield server's files go to a root of their own; an empty one holds no system and is
      // refused, so it starts with the /etc they are written under.
      mkdirSync(path.join(work, "shield-root", "etc"), { recursive: true });
      writeFileSync(
        path.join(work, "shield.yaml"),
        [
          `listen: ${SHIELD.v4}:3128`,
          `log: { path: ${path.join(work, "shield.db")} }`,
          "gateway:",
          `  networks: [10.89.1.0/24, "fd00:89:1::/64"]`,
          `  listen: [${SHIELD.v4}, "${SHIELD.v6}"]`,
          "agents:",
          // The internet's addresses are private or documentation ones here: CIDR rules open them.
          `  - { id: agent, sources: [${AGENT.v4}/32, "${AGENT.v6}/128"], allow: [allowed.test, allowed6.test, ${HOSTS.allowed}/32, "[${HOSTS.allowed6}/128]"] }`,
          "",
        ].join("\n"),
      );
      await wire();
      inet = await startIn(
        NS.inet,
        [
          process.execPath,
          path.join(work, "inet.mjs"),
          path.join(work, "cert.pem"),
          path.join(work, "key.pem"),
        ],
        /ready/,
      );
      shield = await startShield();
      const applied = await clawguard([
        "shield",
        "gateway",
        "--config",
        path.join(work, "shield.yaml"),
        "--root",
        path.join(work, "shield-root"),
        "--load",
        "--apply",
      ]);
      expect(applied.code, applied.stderr + applied.stdout).toBe(0);
    });

    afterAll(async () => {
      await stop(shield);
      await stop(inet);
      await teardown();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it("carries HTTPS and HTTP to an allowed name without any proxy setting, and refuses a denied one", async () => {
      const https = await curl(["https://allowed.test/"]);
      expect(https.stdout, https.stderr).toBe(`reached ${HOSTS.allowed} https allowed.test\n`);
      const http = await curl(["http://allowed.test/"]);
      expect(http.stdout, http.stderr).toBe(`reached ${HOSTS.allowed} http allowed.test\n`);
      const v6 = await curl(["-6", "https://allowed6.test/"]);
      expect(v6.stdout, v6.stderr).toBe(`reached ${HOSTS.allowed6} https allowed6.test\n`);
      // The agent's DNS says denied.test does not exist; asked by address, the shield refuses it.
      expect((await curl(["https://denied.test/"])).code).not.toBe(0);
      expect(
        (await curl(["--resolve", `denied.test:443:${HOSTS.denied}`, "https://denied.test/"])).code,
      ).not.toBe(0);
      expect((await seen()).https[HOSTS.denied]).toBeUndefined();
      const log = await clawguard([
        "shield",
        "log",
        "--db",
        path.join(work, "shield.db"),
        "--json",
        "--limit",
        "100",
      ]);
      const records = JSON.parse(log.stdout).records as Array<{
        agent: string;
        host: string;
        decision: string;
        method: string;
      }>;
      expect(
        records.filter((r) => r.agent === "agent").map((r) => `${r.method} ${r.host} ${r.decision}`),
      ).toEqual(
        expect.arrayContaining([
          "TLS allowed.test allowed",
          "GET allowed.test allowed",
          "TLS denied.test denied",
        ]),
      );
    });

    it("answers DNS for allowed names with the address it dials, NXDOMAIN for denied ones, and no TXT", async () => {
      expect(await resolve("A", "allowed.test")).toBe(JSON.stringify([HOSTS.allowed]));
      expect(await resolve("AAAA", "allowed6.test")).toBe(JSON.stringify([HOSTS.allowed6]));
      expect(await resolve("A", "denied.test")).toBe("ENOTFOUND");
      expect(await resolve("TXT", "allowed.test")).toBe("EREFUSED");
    });

    it("connects a forged server name to the name's own address, never to the one the agent dialled", async () => {
      const before = (await seen()).https[HOSTS.denied] ?? 0;
      const r = await curl(["--resolve", `allowed.test:443:${HOSTS.denied}`, "https://allowed.test/"]);
      expect(r.stdout, r.stderr).toBe(`reached ${HOSTS.allowed} https allowed.test\n`);
      expect((await seen()).https[HOSTS.denied] ?? 0).toBe(before);
    });

    it("refuses a ClientHello without a server name", async () => {
      // curl sends no server name to an address.
      expect((await curl(["-k", `https://${HOSTS.allowed}/`])).code).not.toBe(0);
      const log = await clawguard([
        "shield",
        "log",
        "--db",
        path.join(work, "shield.db"),
        "--json",
        "--limit",
        "20",
      ]);
      expect(log.stdout).toMatch(/TLS without a server name/);
    });

    it("as root on the agent: flushing rules, adding routes and changing addresses reaches nothing", async () => {
      await asAgent(["nft", "flush", "ruleset"]);
      await asAgent(["iptables", "-P", "OUTPUT", "ACCEPT"]);
      await asAgent(["iptables", "-F"]);
      await asAgent(["ip6tables", "-P", "OUTPUT", "ACCEPT"]);
      await asAgent(["ip", "route", "add", "10.200.0.0/16", "via", SHIELD.v4]);
      await asAgent(["ip", "addr", "add", "10.89.1.77/24", "dev", "eth0"]);
      const before = await seen();
      expect(await probe("tcp", HOSTS.any, 9999)).toMatch(/^blocked/);
      expect(await probe("tcp", HOSTS.any, 9999, "10.89.1.77")).toMatch(/^blocked/);
      expect(await probe("udp", HOSTS.any, 9999)).toBe("no answer");
      expect(await probe("tcp", INET.v4, 9000)).toMatch(/^blocked/);
      // Nor anything on the shield itself but its listeners (its SSH, its admin port).
      expect(await probe("tcp", SHIELD.v4, 22)).toMatch(/^blocked/);
      // DNS to an outside resolver is answered by the shield, on its terms; the resolver hears nothing.
      expect(await resolve("TXT", "exfil.example", HOSTS.dns)).toBe("EREFUSED");
      expect(await resolve("A", "denied.test", HOSTS.dns)).toBe("ENOTFOUND");
      // From an address no agent has: nothing, through the transparent ports either.
      expect((await curl(["--interface", "10.89.1.77", "http://allowed.test/"])).stdout).not.toMatch(
        /reached/,
      );
      const after = await seen();
      expect([after.tcp, after.udp, after.dns]).toEqual([before.tcp, before.udp, before.dns]);
      // The legitimate path still works.
      expect((await curl(["https://allowed.test/"])).stdout).toBe(
        `reached ${HOSTS.allowed} https allowed.test\n`,
      );
    });

    it("with the shield process down, the agent has no egress at all", async () => {
      await stop(shield);
      shield = undefined;
      expect((await curl(["https://allowed.test/"])).code).not.toBe(0);
      expect((await curl(["http://allowed.test/"])).code).not.toBe(0);
      expect(await probe("tcp", HOSTS.allowed, 443)).toMatch(/^blocked/);
      expect(await resolve("A", "allowed.test")).not.toBe(JSON.stringify([HOSTS.allowed]));
      const verify = await clawguard([
        "shield",
        "gateway",
        "--config",
        path.join(work, "shield.yaml"),
        "--root",
        path.join(work, "shield-root"),
        "--verify",
      ]);
      expect(verify.code, verify.stdout).toBe(0);
      expect(verify.stdout).toMatch(/WARN listeners +nothing answers/);
      expect(verify.stdout).toMatch(/dropped so far: [1-9]\d* sent to the shield, [1-9]\d* to be routed/);
    });

    it("rolled back, the table is all that held the agent in: its packets are routed out again", async () => {
      const r = await clawguard([
        "shield",
        "gateway",
        "rollback",
        "--root",
        path.join(work, "shield-root"),
        "--load",
      ]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(await probe("tcp", HOSTS.any, 9999)).toBe("open");
    });
  },
);
