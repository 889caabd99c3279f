/**
 * Gateway mode's transparent TLS against the explicit proxy's CONNECT and against going direct,
 * on loopback in one run: curl fetches from a TLS origin (1) directly, (2) through the shield's
 * CONNECT, (3) through the transparent TLS listener (curl's --connect-to stands in for the
 * gateway's redirect). Measures bulk throughput (one stream) and the time to a finished TLS
 * handshake of fresh connections (curl's time_appconnect), in rounds whose order rotates; the
 * ratios are paired within a round, then the median is taken.
 *
 *   npm run bench:gateway [-- --rounds R --mb M --connects N]
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { shieldRunArgv } from "../src/shield/node-flags.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const ROUNDS = arg("--rounds", 5);
const MB = arg("--mb", 256);
const CONNECTS = arg("--connects", 40);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(path.join(tmpdir(), "clawguard-bench-gateway-"));
const children: ChildProcess[] = [];

function sh(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ stdout: string; code: number }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, cwd: dir, maxBuffer: 4 << 20 }, (err, stdout) =>
      resolve({ stdout, code: err ? Number((err as { code?: number }).code ?? 1) : 0 }),
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 150; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, "127.0.0.1", () => (c.destroy(), r(true)));
      c.on("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function main(): Promise<void> {
  await sh("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=bulk.test",
    "-addext",
    "subjectAltName=DNS:bulk.test",
    "-keyout",
    "key.pem",
    "-out",
    "cert.pem",
  ]);
  const [originPort, proxyPort, tlsPort, httpPort, dnsPort] = await Promise.all(
    Array.from({ length: 5 }, freePort),
  );
  const chunk = Buffer.alloc(1 << 20, 0x61);
  const origin = https.createServer(
    { key: await readText("key.pem"), cert: await readText("cert.pem") },
    (req, res) => {
      const n = Number(new URL(req.url ?? "/", "https://x").searchParams.get("mb") ?? "0");
      res.writeHead(200, { "content-length": String(n * chunk.length) });
      let left = n;
      const pump = () => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    },
  );
  await new Promise<void>((r) => origin.listen(originPort, "127.0.0.3", r));
  writeFileSync(
    path.join(dir, "shield.yaml"),
    [
      `listen: 127.0.0.1:${proxyPort}`,
      `log: { path: ${path.join(dir, "shield.db")} }`,
      "gateway:",
      "  networks: [127.0.0.0/8]",
      "  listen: [127.0.0.1]",
      `  transparent: { http: 80, https: ${originPort} }`,
      `  ports: { http: ${httpPort}, https: ${tlsPort}, dns: ${dnsPort} }`,
      "agents:",
      "  - { id: bench, sources: [127.0.0.1/32], allow: [bulk.test, 127.0.0.3/32] }",
      "",
    ].join("\n"),
  );
  // The shield resolves bulk.test itself: through a hosts file of its own, in a mount namespace.
  const [node, ...argv] = shieldRunArgv(path.join(ROOT, "bin/clawguard.js"), [
    "--config",
    path.join(dir, "shield.yaml"),
  ]);
  writeFileSync(path.join(dir, "hosts"), "127.0.0.1 localhost\n127.0.0.3 bulk.test\n");
  const child = spawn(
    "unshare",
    [
      "-m",
      "sh",
      "-c",
      `mount --bind ${path.join(dir, "hosts")} /etc/hosts && exec "$0" "$@"`,
      node!,
      ...argv,
    ],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  children.push(child);
  await waitPort(proxyPort!);
  await waitPort(tlsPort!);

  const url = (mb: number) => `https://bulk.test:${originPort}/?mb=${mb}`;
  const base = ["-s", "-o", "/dev/null", "--cacert", path.join(dir, "cert.pem")];
  const ways: Record<string, string[]> = {
    direct: ["--resolve", `bulk.test:${originPort}:127.0.0.3`],
    "explicit proxy (CONNECT)": ["-x", `http://127.0.0.1:${proxyPort}`],
    "transparent TLS": ["--connect-to", `bulk.test:${originPort}:127.0.0.1:${tlsPort}`],
  };
  const names = Object.keys(ways);
  const mbps = new Map<string, number[]>(names.map((n) => [n, []]));
  const connect = new Map<string, number[]>(names.map((n) => [n, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length]!);
    process.stderr.write(`round ${round + 1}/${ROUNDS}\n`);
    for (const n of order) {
      const r = await sh("curl", [...base, ...ways[n]!, "-w", "%{speed_download}", url(MB)]);
      if (r.code !== 0) throw new Error(`${n}: curl exited ${r.code}`);
      mbps.get(n)!.push(Number(r.stdout) / 1e6);
    }
    for (const n of order) {
      for (let i = 0; i < CONNECTS; i++) {
        const r = await sh("curl", [...base, ...ways[n]!, "-w", "%{time_appconnect}", url(0)]);
        if (r.code !== 0) throw new Error(`${n}: curl exited ${r.code}`);
        connect.get(n)!.push(Number(r.stdout) * 1000);
      }
    }
  }
  const f = (x: number, d = 1) => x.toFixed(d);
  let out = `\n### Gateway benchmark (loopback, ${MB} MB per transfer, ${CONNECTS} fresh connections per way and round, ${ROUNDS} rounds)\n\n`;
  out += "| way | MB/s (median) | TLS connected p50 ms | p99 ms |\n|---|---:|---:|---:|\n";
  for (const n of names) {
    const c = connect.get(n)!;
    out += `| ${n} | ${f(median(mbps.get(n)!))} | ${f(percentile(c, 0.5), 3)} | ${f(percentile(c, 0.99), 3)} |\n`;
  }
  const paired = (a: string, b: string) => median(mbps.get(a)!.map((x, i) => x / mbps.get(b)![i]!));
  const added = (n: string) => percentile(connect.get(n)!, 0.5) - percentile(connect.get("direct")!, 0.5);
  out += `\n| ratio | value |\n|---|---:|\n`;
  out += `| transparent / explicit proxy throughput | ${f(paired("transparent TLS", "explicit proxy (CONNECT)"), 2)} |\n`;
  out += `| transparent / direct throughput | ${f(paired("transparent TLS", "direct"), 2)} |\n`;
  out += `| explicit proxy / direct throughput | ${f(paired("explicit proxy (CONNECT)", "direct"), 2)} |\n`;
  out += `| added connect p50 ms, transparent | ${f(added("transparent TLS"), 3)} |\n`;
  out += `| added connect p50 ms, explicit proxy | ${f(added("explicit proxy (CONNECT)"), 3)} |\n`;
  process.stdout.write(out);
  origin.close();
}

async function readText(f: string): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  return readFile(path.join(dir, f), "utf8");
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  for (const c of children) c.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 500));
  rmSync(dir, { recursive: true, force: true });
}
