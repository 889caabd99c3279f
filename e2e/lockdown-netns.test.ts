import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shieldRunArgv } from "../src/shield/node-flags.js";
import { cmd, isRoot, PROJECT_DIR, sleep, type CmdResult } from "./lib/index.js";

/**
 * Three network namespaces: the agent, the shield (also the agent's router, so that before
 * lockdown the agent CAN reach the internet host directly and the tests below can fail), and
 * the internet host with HTTP, HTTPS and a DNS responder; and a container on the agent (cg-guest
 * 10.88.3.2 fd00:88:3::2 behind the agent's `docker0`), whose traffic the agent routes through
 * the forward hook, which the output chain never sees. Only the agent's own table decides
 * what leaves it.
 *
 *   cg-agent 10.88.1.2 fd00:88:1::2 -- 10.88.1.1 fd00:88:1::1 cg-shield 10.88.2.1 fd00:88:2::1 -- 10.88.2.2 fd00:88:2::2 cg-inet
 */
const NS = { agent: "cg-agent", shield: "cg-shield", inet: "cg-inet", guest: "cg-guest" } as const;
const AGENT = { v4: "10.88.1.2", v6: "fd00:88:1::2" };
const SHIELD = { v4: "10.88.1.1", v6: "fd00:88:1::1", up4: "10.88.2.1", up6: "fd00:88:2::1" };
const INET = { v4: "10.88.2.2", v6: "fd00:88:2::2" };
const GUEST = { v4: "10.88.3.2", v6: "fd00:88:3::2", gw4: "10.88.3.1", gw6: "fd00:88:3::1" };
const PROXY = `http://${SHIELD.v4}:3128`;
const BIN = path.join(PROJECT_DIR, "bin/clawguard.js");
const HOSTS_DIR = `/etc/netns/${NS.shield}`;

const INET_SERVER = `
import http from "node:http";
import https from "node:https";
import dgram from "node:dgram";
import fs from "node:fs";
const [cert, key] = process.argv.slice(2);
const answer = (req, res) => res.end("inet " + (req.socket.encrypted ? "https" : "http") + " " + req.headers.host + "\\n");
const listening = (srv) => new Promise((r) => srv.once("listening", r));
const h = http.createServer(answer).listen(80, "::");
const s = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, answer).listen(443, "::");
// Answers every query with one A record: whoever gets an answer, reached this host.
const u = dgram.createSocket({ type: "udp6", ipv6Only: false });
u.on("message", (q, from) => {
  const head = Buffer.from(q.subarray(0, 12));
  head.writeUInt16BE(0x8180, 2);
  head.writeUInt16BE(1, 6);
  const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 88, 2, 2]);
  u.send(Buffer.concat([head, q.subarray(12), rr]), from.port, from.address);
});
u.bind(53, "::");
await Promise.all([listening(h), listening(s), listening(u)]);
console.log("ready");
`;

// Independent of clawguard's own probes: says what a plain socket gets.
const PROBE = `
import net from "node:net";
import dgram from "node:dgram";
const [kind, host, port] = process.argv.slice(2);
const say = (s) => { console.log(s); process.exit(0); };
setTimeout(() => say("blocked timeout"), 2500);
if (kind === "tcp") {
  const c = net.connect({ host, port: Number(port) });
  c.on("connect", () => say("open"));
  c.on("error", (e) => say(e.code === "ECONNREFUSED" ? "open refused" : "blocked " + e.code));
} else {
  const u = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  const q = Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 119, 101, 98, 4, 116, 101, 115, 116, 0, 0, 1, 0, 1]);
  u.on("message", () => say("open"));
  u.on("error", (e) => say("blocked " + e.code));
  u.send(q, Number(port), host, (e) => e && say("blocked " + e.code));
}
`;

let work = "";
let agentRoot = "";
let inet: ChildProcess | undefined;
let shield: ChildProcess | undefined;
let guest: ChildProcess | undefined;

const inNs = (ns: string, argv: string[], timeoutMs = 60_000): Promise<CmdResult> =>
  cmd(["ip", "netns", "exec", ns, ...argv], { check: false, timeoutMs });
const clawguard = (args: string[]) => inNs(NS.agent, [process.execPath, BIN, ...args], 120_000);
const probeFrom = async (ns: string, kind: "tcp" | "udp", host: string, port: number) =>
  (await inNs(ns, [process.execPath, path.join(work, "probe.mjs"), kind, host, String(port)])).stdout.trim();
const probe = (kind: "tcp" | "udp", host: string, port: number) => probeFrom(NS.agent, kind, host, port);
const curl = (args: string[]) => inNs(NS.agent, ["curl", "-sS", "--max-time", "6", ...args]);

/** Start a long-running process in a namespace and wait for `ready` on its stdout. */
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
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
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
  rmSync(HOSTS_DIR, { recursive: true, force: true });
  try {
    rmdirSync(path.dirname(HOSTS_DIR));
  } catch {
    // Not empty: other namespaces keep their files there.
  }
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
    "to-agent",
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
    "to-inet",
    "netns",
    NS.shield,
  );
  await ip(
    "-n",
    NS.guest,
    "link",
    "add",
    "eth0",
    "type",
    "veth",
    "peer",
    "name",
    "docker0",
    "netns",
    NS.agent,
  );
  const addr = (ns: string, dev: string, a4: string, a6: string) =>
    Promise.all([
      ip("-n", ns, "addr", "add", `${a4}/24`, "dev", dev),
      ip("-n", ns, "addr", "add", `${a6}/64`, "dev", dev, "nodad"),
    ]);
  await addr(NS.agent, "eth0", AGENT.v4, AGENT.v6);
  await addr(NS.shield, "to-agent", SHIELD.v4, SHIELD.v6);
  await addr(NS.shield, "to-inet", SHIELD.up4, SHIELD.up6);
  await addr(NS.inet, "eth0", INET.v4, INET.v6);
  await addr(NS.guest, "eth0", GUEST.v4, GUEST.v6);
  await addr(NS.agent, "docker0", GUEST.gw4, GUEST.gw6);
  for (const [ns, dev] of [
    [NS.agent, "eth0"],
    [NS.shield, "to-agent"],
    [NS.shield, "to-inet"],
    [NS.inet, "eth0"],
    [NS.guest, "eth0"],
    [NS.agent, "docker0"],
  ] as const)
    await ip("-n", ns, "link", "set", dev, "up");
  await ip("-n", NS.agent, "route", "add", "default", "via", SHIELD.v4);
  await ip("-n", NS.agent, "-6", "route", "add", "default", "via", SHIELD.v6);
  await ip("-n", NS.inet, "route", "add", "default", "via", SHIELD.up4);
  await ip("-n", NS.inet, "-6", "route", "add", "default", "via", SHIELD.up6);
  await ip("-n", NS.guest, "route", "add", "default", "via", GUEST.gw4);
  await ip("-n", NS.guest, "-6", "route", "add", "default", "via", GUEST.gw6);
  await ip("-n", NS.shield, "route", "add", "10.88.3.0/24", "via", AGENT.v4);
  await ip("-n", NS.shield, "-6", "route", "add", "fd00:88:3::/64", "via", AGENT.v6);
  for (const ns of [NS.shield, NS.agent]) {
    await cmd(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await cmd(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
  }
  // `ip netns exec` mounts /etc/netns/NAME/hosts over /etc/hosts: the shield's names.
  mkdirSync(HOSTS_DIR, { recursive: true });
  writeFileSync(
    path.join(HOSTS_DIR, "hosts"),
    `127.0.0.1 localhost\n${INET.v4} web.test denied.test\n${INET.v6} web6.test\n`,
  );
}

async function startShield(): Promise<ChildProcess> {
  return startIn(NS.shield, shieldRunArgv(BIN, ["--config", path.join(work, "shield.yaml")]), /listening on/);
}

describe.skipIf(!isRoot)(
  "lockdown in network namespaces: nothing leaves the agent except through the shield",
  () => {
    beforeAll(async () => {
      await teardown();
      work = mkdtempSync(path.join(tmpdir(), "clawguard-lockdown-e2e-"));
      agentRoot = path.join(work, "agent-root");
      mkdirSync(path.join(agentRoot, "etc"), { recursive: true });
      writeFileSync(
        path.join(agentRoot, "etc/resolv.conf"),
        `nameserver ${INET.v4}\nnameserver ${INET.v6}\n`,
      );
      writeFileSync(path.join(work, "inet.mjs"), INET_SERVER);
      writeFileSync(path.join(work, "probe.mjs"), PROBE);
      await cmd([
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=web.test",
        "-keyout",
        path.join(work, "key.pem"),
        "-out",
        path.join(work, "cert.pem"),
      ]);
      writeFileSync(
        path.join(work, "shield.yaml"),
        [
          `listen: ${SHIELD.v4}:3128`,
          `log: { path: ${path.join(work, "shield.db")} }`,
          "agents:",
          // The internet host has a private address here; the shield refuses those unless a CIDR rule allows them.
          `  - { id: agent, sources: [${AGENT.v4}/32], allow: [web.test, web6.test, denied.test, ${INET.v4}/32, "${INET.v6}/128"], deny: [denied.test] }`,
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
      guest = await startIn(
        NS.guest,
        [
          process.execPath,
          "-e",
          `require("net").createServer((s) => s.on("error", () => {}).end("guest")).listen(8080, "::", () => console.log("ready"))`,
        ],
        /ready/,
      );
    });

    afterAll(async () => {
      await stop(shield);
      await stop(inet);
      await stop(guest);
      await teardown();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    const verifyArgs = () => [
      "lockdown",
      "--verify",
      "--root",
      agentRoot,
      "--shield",
      `${SHIELD.v4}:3128`,
      "--probe",
      `${INET.v4}:443`,
      "--probe",
      `[${INET.v6}]:443`,
      "--probe-via-shield",
      "https://web.test/",
      "--timeout",
      "2000",
      "--json",
    ];

    it("before lockdown the agent reaches the internet host directly (so the checks below can fail)", async () => {
      expect(await probe("tcp", INET.v4, 80)).toBe("open");
      expect(await probe("tcp", INET.v6, 443)).toBe("open");
      expect(await probe("udp", INET.v4, 53)).toBe("open");
      expect(await probe("udp", INET.v6, 53)).toBe("open");
      expect(await probeFrom(NS.guest, "tcp", INET.v4, 443)).toBe("open");
      expect(await probeFrom(NS.guest, "tcp", INET.v6, 443)).toBe("open");
      const direct = await curl([
        "--noproxy",
        "*",
        "--resolve",
        `web.test:80:${INET.v4}`,
        "http://web.test/",
      ]);
      expect(direct.stdout).toBe("inet http web.test\n");
      const v = await clawguard(verifyArgs());
      expect(v.code).toBe(1);
      const report = JSON.parse(v.stdout) as { ok: boolean; probes: Array<{ id: string; held: boolean }> };
      expect(report.ok).toBe(false);
      expect(report.probes.filter((p) => p.id === "direct_tcp").map((p) => p.held)).toEqual([false, false]);
      expect(report.probes.filter((p) => p.id === "dns").map((p) => p.held)).toEqual([false, false]);
    });

    it("applies the table in the agent's namespace", async () => {
      const r = await clawguard([
        "lockdown",
        "--shield",
        `${SHIELD.v4}:3128`,
        "--apply",
        "--root",
        agentRoot,
        // The agent's namespace stands in for the system at --root: load the table there.
        "--load",
        "--ssh-port",
        "22",
        "--json",
      ]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const listed = await inNs(NS.agent, ["nft", "list", "table", "inet", "clawguard_egress"]);
      expect(listed.stdout).toContain("policy drop;");
      expect(listed.stdout).toContain(`ip daddr ${SHIELD.v4} tcp dport 3128 accept`);
    });

    it("direct TCP and DNS to the internet host fail over IPv4 and IPv6", async () => {
      for (const [host, port] of [
        [INET.v4, 80],
        [INET.v4, 443],
        [INET.v6, 80],
        [INET.v6, 443],
      ] as const)
        expect(await probe("tcp", host, port), `${host}:${port}`).toMatch(/^blocked/);
      expect(await probe("udp", INET.v4, 53)).toMatch(/^blocked/);
      expect(await probe("udp", INET.v6, 53)).toMatch(/^blocked/);
    });

    it("a container on the agent cannot get out directly either, and can still be reached from outside", async () => {
      expect(await probeFrom(NS.guest, "tcp", INET.v4, 443)).toMatch(/^blocked/);
      expect(await probeFrom(NS.guest, "tcp", INET.v6, 80)).toMatch(/^blocked/);
      expect(await probeFrom(NS.guest, "udp", INET.v4, 53)).toMatch(/^blocked/);
      expect(await probeFrom(NS.inet, "tcp", GUEST.v4, 8080)).toBe("open");
      expect(await probeFrom(NS.inet, "tcp", GUEST.v6, 8080)).toBe("open");
    });

    it("HTTP and HTTPS through the shield reach an allowed name; a denied name and a proxy-ignoring client do not", async () => {
      const http = await curl(["--proxy", PROXY, "http://web.test/"]);
      expect(http.stdout).toBe("inet http web.test\n");
      const https = await curl(["--proxy", PROXY, "-k", "https://web.test/"]);
      expect(https.stdout).toBe("inet https web.test\n");
      const v6 = await curl(["--proxy", PROXY, "-k", "https://web6.test/"]);
      expect(v6.stdout).toBe("inet https web6.test\n");
      const denied = await curl([
        "--proxy",
        PROXY,
        "-k",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "https://denied.test/",
      ]);
      expect(denied.stdout).not.toMatch(/^2/);
      expect(denied.code).not.toBe(0);
      const ignoring = await curl([
        "--noproxy",
        "*",
        "--resolve",
        `web.test:80:${INET.v4}`,
        "http://web.test/",
      ]);
      expect(ignoring.code).not.toBe(0);
      expect(ignoring.stdout).toBe("");
    });

    it("lockdown --verify holds from the agent's side", async () => {
      const v = await clawguard(verifyArgs());
      const report = JSON.parse(v.stdout) as {
        ok: boolean;
        probes: Array<{ id: string; held: boolean; outcome: string }>;
      };
      expect(report.probes.filter((p) => !p.held)).toEqual([]);
      expect(report.probes.map((p) => p.id).sort()).toEqual([
        "direct_tcp",
        "direct_tcp",
        "dns",
        "dns",
        "rules",
        "via_shield",
      ]);
      expect(v.code).toBe(0);
    });

    it("with the shield stopped the agent has no way out at all", async () => {
      await stop(shield);
      shield = undefined;
      const via = await curl(["--proxy", PROXY, "http://web.test/"]);
      expect(via.code).not.toBe(0);
      expect(await probe("tcp", INET.v4, 80)).toMatch(/^blocked/);
      expect(await probe("tcp", INET.v6, 80)).toMatch(/^blocked/);
      const v = await clawguard(verifyArgs());
      expect(v.code).toBe(1);
      const report = JSON.parse(v.stdout) as { probes: Array<{ id: string; held: boolean }> };
      expect(report.probes.find((p) => p.id === "via_shield")?.held).toBe(false);
    });

    it("rollback removes the table and the agent reaches the host directly again", async () => {
      const r = await clawguard(["lockdown", "rollback", "--root", agentRoot, "--load", "--json"]);
      expect(r.code).toBe(0);
      const tables = await inNs(NS.agent, ["nft", "list", "tables"]);
      expect(tables.stdout).not.toContain("clawguard_egress");
      expect(await probe("tcp", INET.v4, 80)).toBe("open");
      expect(await probe("tcp", INET.v6, 80)).toBe("open");
      expect(await probeFrom(NS.guest, "tcp", INET.v4, 443)).toBe("open");
    });
  },
);
