/**
 * The shield over WireGuard, in one run, as root: two network namespaces joined by a veth pair,
 * wireguard-go at both ends (this kernel has no WireGuard module), an agent in one and the
 * shield (`shield run`, a real config and SQLite log, listening on its tunnel address) in the
 * other, beside a byte fountain and a tiny HTTP origin. Measures:
 *   - CONNECT throughput through the tunnel and the proxy, against the same transfer over the
 *     tunnel without the proxy (the agent reading the origin straight from the shield's tunnel
 *     address): the proxy's share of what the link can move;
 *   - added latency: a new connection to the first answer byte, through CONNECT and without;
 *     and one request's round trip inside an open tunnel and an open direct connection;
 *   - `shield enroll` against shield.yaml with 1,000 agents and an interface with their 1,000
 *     peers (edit, validation, wg syncconf, join code);
 *   - a reload with 1,000 agents: the running shield's (read, validate, compile, swap) and the
 *     sync daemon's (read, validate, wg syncconf with 1,000 peers), each timed.
 * Each transfer kind alternates with its baseline over ROUNDS rounds; the ratios are medians of
 * the per-round ratios, so a slow stretch of the machine hits both sides of a pair alike.
 *
 *   npm run bench:wireguard [-- --rounds R] [--mib M] [--agents N] [--scale-only]
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startManagedShield } from "../src/shield/daemon.js";
import { loadShieldConfig } from "../src/shield/config.js";
import { parseShieldConfigKept } from "../src/shield/config-cache.js";
import { shieldRunArgv } from "../src/shield/node-flags.js";
import { enrollAgent } from "../src/shield/wireguard/enroll.js";
import { generateKeyPair } from "../src/shield/wireguard/keys.js";
import { syncPeers } from "../src/shield/wireguard/live.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const ROUNDS = arg("--rounds", 5);
const MIB = arg("--mib", 256);
const AGENTS = arg("--agents", 1000);
const CLI_RUNS = 5;
/** Only the measures at scale (enrolment, reload, sync), without the transfers through the tunnel. */
const SCALE_ONLY = process.argv.includes("--scale-only");
const LATENCY_SAMPLES = 200;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin/clawguard.js");
const tag = randomBytes(2).toString("hex");
const NS = { agent: `cgbw-a-${tag}`, shield: `cgbw-s-${tag}` };
// wireguard-go names its control socket after the interface, one directory for the machine.
const IF = { agent: `cgbwa${tag}`, shield: `cgbws${tag}` };
const SHIELD_WG = "10.77.0.1";
const PROXY_PORT = 3128;
const FOUNTAIN_PORT = 9000;
const HTTP_PORT = 9001;
const dir = mkdtempSync(path.join(tmpdir(), "clawguard-bench-wg-"));
const children: ChildProcess[] = [];

function sh(
  cmd: string,
  args: string[],
  input?: string,
): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ stdout, stderr, code: err ? Number((err as { code?: number }).code ?? 1) : 0 }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

async function must(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await sh(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

const inNs = (ns: string, argv: string[]) => ["netns", "exec", ns, ...argv];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function startIn(ns: string, argv: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn("ip", inNs(ns, argv), { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.join(" ")} not ready:\n${out}`)), 30_000);
    const on = (d: Buffer) => {
      out = (out + d.toString()).slice(-8000);
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on("data", on);
    child.stderr!.on("data", on);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(" ")} exited ${code}:\n${out}`));
    });
  });
}

// ---- the lab -------------------------------------------------------------------------------

const shieldKeys = generateKeyPair();
const agentKeys = generateKeyPair();

async function lab(): Promise<void> {
  const ip = (...a: string[]) => must("ip", a);
  await ip("netns", "add", NS.agent);
  await ip("netns", "add", NS.shield);
  await ip("-n", NS.agent, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", NS.shield);
  await ip("-n", NS.agent, "addr", "add", "192.0.2.2/24", "dev", "eth0");
  await ip("-n", NS.shield, "addr", "add", "192.0.2.1/24", "dev", "eth0");
  for (const ns of [NS.agent, NS.shield]) {
    await ip("-n", ns, "link", "set", "lo", "up");
    await ip("-n", ns, "link", "set", "eth0", "up");
  }
  for (const [ns, iface] of [
    [NS.agent, IF.agent],
    [NS.shield, IF.shield],
  ] as const)
    await must("ip", inNs(ns, ["wireguard-go", iface]));
  const key = (k: string) => {
    const f = path.join(dir, `${randomBytes(4).toString("hex")}.key`);
    writeFileSync(f, k + "\n", { mode: 0o600 });
    return f;
  };
  await must("wg", [
    "set",
    IF.shield,
    "private-key",
    key(shieldKeys.privateKey),
    "listen-port",
    "51820",
    "peer",
    agentKeys.publicKey,
    "allowed-ips",
    "10.77.0.2/32",
  ]);
  await must("wg", [
    "set",
    IF.agent,
    "private-key",
    key(agentKeys.privateKey),
    "peer",
    shieldKeys.publicKey,
    "endpoint",
    "192.0.2.1:51820",
    "allowed-ips",
    `${SHIELD_WG}/32`,
    "persistent-keepalive",
    "25",
  ]);
  await ip("-n", NS.shield, "addr", "add", `${SHIELD_WG}/16`, "dev", IF.shield);
  await ip("-n", NS.agent, "addr", "add", "10.77.0.2/32", "dev", IF.agent);
  await ip("-n", NS.shield, "link", "set", IF.shield, "up");
  await ip("-n", NS.agent, "link", "set", IF.agent, "up");
  await ip("-n", NS.agent, "route", "add", `${SHIELD_WG}/32`, "dev", IF.agent);
}

async function teardown(): Promise<void> {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 300));
  // Deleting an interface ends its wireguard-go; the namespaces take the veth pair with them.
  await sh("ip", ["-n", NS.agent, "link", "del", IF.agent]);
  await sh("ip", ["-n", NS.shield, "link", "del", IF.shield]);
  await sh("ip", ["netns", "del", NS.agent]);
  await sh("ip", ["netns", "del", NS.shield]);
  rmSync(dir, { recursive: true, force: true });
}

// ---- servers and clients (each a small script run inside its namespace) -------------------

const ORIGIN = `
import net from "node:net";
import http from "node:http";
const chunk = Buffer.alloc(1 << 20);
// The fountain sends as many MiB as the first line asks for, then closes.
net.createServer((s) => {
  s.once("data", (d) => {
    let left = Number(d.toString().trim());
    const pump = () => { while (left > 0) { left--; if (!s.write(chunk)) return s.once("drain", pump); } s.end(); };
    pump();
  });
  s.on("error", () => {});
}).listen(${FOUNTAIN_PORT}, "0.0.0.0");
http.createServer((q, r) => r.end("ok")).listen(${HTTP_PORT}, "0.0.0.0", () => console.log("ready"));
`;

/**
 * Client, in the agent's namespace: "throughput MODE MIB" or "latency MODE N", MODE "direct"
 * (the origin on the shield's tunnel address) or "proxy" (CONNECT through the shield). Prints JSON.
 */
const CLIENT = `
import net from "node:net";
const [kind, mode, nArg] = process.argv.slice(2);
const n = Number(nArg);
const SHIELD = "${SHIELD_WG}";
function open(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(mode === "proxy" ? ${PROXY_PORT} : port, SHIELD);
    s.setNoDelay(true);
    s.once("error", reject);
    s.once("connect", () => {
      if (mode !== "proxy") return resolve(s);
      s.write("CONNECT 127.0.0.1:" + port + " HTTP/1.1\\r\\nHost: 127.0.0.1:" + port + "\\r\\n\\r\\n");
      let head = "";
      const on = (d) => {
        head += d.toString("latin1");
        if (!head.includes("\\r\\n\\r\\n")) return;
        s.off("data", on);
        if (!/^HTTP\\/1\\.1 200/.test(head)) return reject(new Error(head));
        resolve(s);
      };
      s.on("data", on);
    });
  });
}
function ask(s) {
  return new Promise((resolve) => {
    let got = "";
    const on = (d) => { got += d.toString("latin1"); if (got.endsWith("ok")) { s.off("data", on); resolve(); } };
    s.on("data", on);
    s.write("GET / HTTP/1.1\\r\\nHost: o\\r\\n\\r\\n");
  });
}
if (kind === "throughput") {
  const s = await open(${FOUNTAIN_PORT});
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  s.on("data", (d) => (bytes += d.length));
  s.write(n + "\\n");
  await new Promise((r) => s.once("end", r));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  s.destroy();
  console.log(JSON.stringify({ mibPerS: bytes / 1048576 / secs, bytes }));
} else {
  const first = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const s = await open(${HTTP_PORT});
    await ask(s);
    first.push(Number(process.hrtime.bigint() - t0) / 1e6);
    s.destroy();
  }
  const s = await open(${HTTP_PORT});
  const rtt = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await ask(s);
    rtt.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  s.destroy();
  const med = (xs) => { const a = xs.sort((x, y) => x - y); return a[Math.floor(a.length / 2)]; };
  console.log(JSON.stringify({ firstMs: med(first), rttMs: med(rtt) }));
}
`;

async function client(
  kind: "throughput" | "latency",
  mode: "direct" | "proxy",
  n: number,
): Promise<Record<string, number>> {
  const out = await must(
    "ip",
    inNs(NS.agent, [process.execPath, path.join(dir, "client.mjs"), kind, mode, String(n)]),
  );
  return JSON.parse(out.trim().split("\n").at(-1)!) as Record<string, number>;
}

// ---- enrolment and reload at scale ---------------------------------------------------------

interface Scale {
  enrollMs: number;
  enrollCliMs: number;
  enrollColdMs: number;
  reloadMs: number;
  syncMs: number;
  peers: number;
}

async function atScale(): Promise<Scale> {
  const keyFile = path.join(dir, "wireguard.key");
  writeFileSync(keyFile, shieldKeys.privateKey + "\n", { mode: 0o600 });
  const lines = [
    `listen: ${SHIELD_WG}:${PROXY_PORT}`,
    "log: { path: scale.db }",
    `wireguard: { interface: ${IF.shield}, listen_port: 51820, address: [10.77.0.1/16, "fd77:77::1/64"], private_key_file: wireguard.key, endpoint: "192.0.2.1:51820", status_file: wg.json }`,
    "agents:",
  ];
  for (let i = 0; i < AGENTS; i++) {
    const host = 3 + i;
    lines.push(
      `  - id: a${i}`,
      `    sources: [10.77.${host >> 8}.${host & 255}/32, "fd77:77::${host.toString(16)}/128"]`,
      `    wireguard: { public_key: "${generateKeyPair().publicKey}" }`,
    );
  }
  const file = path.join(dir, "scale.yaml");
  writeFileSync(file, lines.join("\n") + "\n", { mode: 0o600 });
  // The interface gets the thousand peers first, as a running shield would have them.
  await syncPeers(await loadShieldConfig(file));
  let t0 = performance.now();
  const e = await enrollAgent({ configFile: file, id: "newcomer", expiresInMs: 3_600_000 });
  const enrollMs = performance.now() - t0;
  if (!e.live?.applied) throw new Error(`enroll did not reach the interface: ${e.live?.detail}`);
  // The command as an operator types it: a new process, nothing compiled yet. The file as the
  // root sync daemon leaves it after each change (it keeps the parsed file for the next
  // enrolment), and, apart, as a hand edit leaves it before the daemon read it (nothing kept).
  const cli = async (id: string, kept: boolean) => {
    const t = performance.now();
    // Not kept: an empty directory of its own, as root's is before the daemon read this text.
    await must("env", [
      ...(kept ? [] : [`CLAWGUARD_CONFIG_CACHE=${mkdtempSync(path.join(dir, "unkept-"))}`]),
      process.execPath,
      ...[BIN, "shield", "enroll", id, "--config", file, "--json"],
    ]);
    return performance.now() - t;
  };
  // What the sync daemon does on each change of the file (untimed: it is not the command's).
  const daemonRead = () => parseShieldConfigKept(readFileSync(file, "utf8"), file);
  const keptMs: number[] = [];
  const coldMs: number[] = [];
  for (let i = 0; i < CLI_RUNS; i++) {
    keptMs.push(await cli(`kept${i}`, true));
    daemonRead();
    coldMs.push(await cli(`cold${i}`, false));
    daemonRead();
  }
  const enrollCliMs = median(keptMs);
  const enrollColdMs = median(coldMs);
  const peers = (await must("wg", ["show", IF.shield, "peers"])).trim().split("\n").length;

  // The shield's reload, in this process: the listener on loopback, the policy the real one.
  const cfg = await loadShieldConfig(file);
  const managed = await startManagedShield(
    { ...cfg, listen: { host: "127.0.0.1", port: 0 } },
    { watch: false, warn: () => undefined },
  );
  const reloads: number[] = [];
  for (let i = 0; i < 5; i++) {
    t0 = performance.now();
    const r = await managed.reload("bench", true);
    reloads.push(performance.now() - t0);
    if (!r.ok) throw new Error(r.error);
  }
  await managed.close();
  const syncs: number[] = [];
  for (let i = 0; i < 5; i++) {
    t0 = performance.now();
    await syncPeers(await loadShieldConfig(file));
    syncs.push(performance.now() - t0);
  }
  return { enrollMs, enrollCliMs, enrollColdMs, reloadMs: median(reloads), syncMs: median(syncs), peers };
}

// ---- run -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error("run as root: the bench makes network namespaces and WireGuard interfaces");
  const load = loadavg()[0]!.toFixed(1);
  await lab();
  if (SCALE_ONLY) {
    printScale(await atScale(), `at scale only, load average ${load} at start`);
    return;
  }
  writeFileSync(path.join(dir, "origin.mjs"), ORIGIN);
  writeFileSync(path.join(dir, "client.mjs"), CLIENT);
  await startIn(NS.shield, [process.execPath, path.join(dir, "origin.mjs")], /ready/);
  writeFileSync(
    path.join(dir, "shield.yaml"),
    `listen: ${SHIELD_WG}:${PROXY_PORT}\nlog: { path: shield.db }\nagents:\n  - { id: bench, sources: [10.77.0.2/32], allow: ["127.0.0.1/32"] }\n`,
  );
  await startIn(NS.shield, shieldRunArgv(BIN, ["--config", path.join(dir, "shield.yaml")]), /listening on/);

  const tput: Array<{ direct: number; proxy: number }> = [];
  const lat: Array<{ direct: Record<string, number>; proxy: Record<string, number> }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? (["direct", "proxy"] as const) : (["proxy", "direct"] as const);
    const t: Record<string, number> = {};
    const l: Record<string, Record<string, number>> = {};
    for (const m of order) t[m] = (await client("throughput", m, MIB)).mibPerS!;
    for (const m of order) l[m] = await client("latency", m, LATENCY_SAMPLES);
    tput.push({ direct: t.direct!, proxy: t.proxy! });
    lat.push({ direct: l.direct!, proxy: l.proxy! });
    process.stderr.write(`round ${r + 1}/${ROUNDS}: ${JSON.stringify({ t, l })}\n`);
  }
  const scale = await atScale();

  const f = (x: number, d = 1) => x.toFixed(d);
  const rows = [
    [
      "CONNECT throughput over the tunnel (MiB/s)",
      f(median(tput.map((x) => x.proxy))),
      f(median(tput.map((x) => x.direct))),
      `${f(median(tput.map((x) => x.proxy / x.direct)), 2)}x`,
    ],
    [
      "new connection to first answer byte (ms, p50)",
      f(median(lat.map((x) => x.proxy.firstMs!)), 2),
      f(median(lat.map((x) => x.direct.firstMs!)), 2),
      `+${f(median(lat.map((x) => x.proxy.firstMs! - x.direct.firstMs!)), 2)} ms`,
    ],
    [
      "request round trip in an open connection (ms, p50)",
      f(median(lat.map((x) => x.proxy.rttMs!)), 3),
      f(median(lat.map((x) => x.direct.rttMs!)), 3),
      `+${f(median(lat.map((x) => x.proxy.rttMs! - x.direct.rttMs!)), 3)} ms`,
    ],
  ];
  const out = [
    `clawguard shield over WireGuard (wireguard-go both ends, namespaces), ${ROUNDS} rounds, ${MIB} MiB per transfer, load average ${load} at start`,
    "",
    "| measure | through the shield | tunnel without the proxy | shield vs tunnel alone |",
    "|---|---|---|---|",
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ];
  process.stdout.write(out.join("\n") + "\n\n");
  printScale(scale, "at scale");
}

function printScale(scale: Scale, title: string): void {
  const f = (x: number) => x.toFixed(0);
  const out = [
    title,
    "",
    "| at scale | time | target |",
    "|---|---|---|",
    `| enrolment with ${AGENTS} agents enrolled (file, validation, wg set, join code), in a process that read the config before | ${f(scale.enrollMs)} ms | under 1 s |`,
    `| \`clawguard shield enroll\` with ${AGENTS + 1} agents or more enrolled, a new process, the file as the sync daemon leaves it (median of ${CLI_RUNS}; ${scale.peers} peers after) | ${f(scale.enrollCliMs)} ms | under 1 s |`,
    `| the same, the file edited by hand and not yet read by the sync daemon (median of ${CLI_RUNS}) | ${f(scale.enrollColdMs)} ms | - |`,
    `| shield reload with ${AGENTS + 1} agents (read, validate, compile, swap; median of 5) | ${f(scale.reloadMs)} ms | under 1 s |`,
    `| sync daemon apply with ${AGENTS + 1} peers (read, validate, wg syncconf; median of 5) | ${f(scale.syncMs)} ms | under 1 s |`,
  ];
  process.stdout.write(out.join("\n") + "\n");
  const over = [scale.enrollMs, scale.enrollCliMs, scale.reloadMs, scale.syncMs].filter(
    (ms) => ms >= 1000,
  ).length;
  if (over > 0) process.exitCode = 1;
}

// Whatever ends the run, the namespaces and wireguard-go processes go with it.
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.once(sig, () => void teardown().then(() => process.exit(130)));
process.once("uncaughtException", (e) => {
  process.stderr.write(`${e.stack ?? String(e)}\n`);
  void teardown().then(() => process.exit(1));
});
try {
  await main();
} finally {
  await teardown();
}
