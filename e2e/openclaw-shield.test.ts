import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredRecord } from "../src/shield/log/index.js";
import { shieldRunArgv } from "../src/shield/node-flags.js";
import { cmd, PROJECT_DIR, sleep } from "./lib/index.js";
import { ensureOpenClaw, OPENCLAW_VERSION } from "./lib/openclaw.js";

/**
 * The real OpenClaw gateway, pointed at the real shield with OPENCLAW_PROXY_URL: what it fetches
 * at start (model catalog, telemetry, skill hub) must cross the shield as agent "scout", be
 * logged under that name, and leave no trace of the token in the log. This machine has no
 * internet, so allowed tunnels end in a failed lookup; the decision is logged before that.
 */
const ENABLED = process.env.CLAWGUARD_E2E_OPENCLAW === "1";
const BIN = path.join(PROJECT_DIR, "bin/clawguard.js");
const TOKEN =
  "oc-e2e-" +
  createHash("sha256")
    .update(String(process.pid) + Date.now())
    .digest("hex")
    .slice(0, 24);
const ALLOWED = /(^|\.)openclaw\.ai$|^clawhub\.ai$/;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

interface Proc {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

/** In its own process group, so stopping it reaches the helpers the gateway spawns. */
function start(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Proc {
  const [file, ...args] = argv;
  const child = spawn(file!, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => out, exit };
}

/** SIGTERM to the group, SIGKILL after `graceMs`; resolves with the exit code (null if killed). */
async function stop(p: Proc, graceMs: number): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exit;
  const pgid = p.child.pid!;
  process.kill(-pgid, "SIGTERM");
  const timer = setTimeout(() => {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }, graceMs);
  const code = await p.exit;
  clearTimeout(timer);
  return code;
}

async function until<T>(what: () => Promise<T | undefined>, label: string, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${label}`);
    await sleep(1000);
  }
}

async function clawguard(args: string[]): Promise<{ code: number; json: unknown; stdout: string }> {
  const r = await cmd([process.execPath, BIN, ...args], { check: false, timeoutMs: 60_000 });
  let json: unknown = null;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    // Left null: the assertion on the exit code and output says what went wrong.
  }
  return { code: r.code, json, stdout: r.stdout + r.stderr };
}

describe.skipIf(!ENABLED)(
  `real OpenClaw ${OPENCLAW_VERSION} gateway through the shield (runs with CLAWGUARD_E2E_OPENCLAW=1)`,
  () => {
    let dir: string;
    let db: string;
    let shield: Proc | undefined;
    let gateway: Proc | undefined;
    let shieldExit: number | null = null;
    let records: StoredRecord[] = [];

    beforeAll(async () => {
      const oc = await ensureOpenClaw();
      dir = mkdtempSync(path.join(tmpdir(), "clawguard-openclaw-shield-"));
      db = path.join(dir, "shield.db");
      const shieldPort = await freePort();
      const config = path.join(dir, "shield.yaml");
      writeFileSync(
        config,
        [
          `listen: 127.0.0.1:${shieldPort}`,
          `log: { path: ${db} }`,
          "tiers:",
          '  gateways: { allow: ["*.openclaw.ai:443", "clawhub.ai:443"] }',
          "agents:",
          `  - { id: scout, tier: gateways, token_sha256: "${createHash("sha256").update(TOKEN).digest("hex")}" }`,
          "",
        ].join("\n"),
      );
      shield = start(shieldRunArgv(BIN, ["--config", config, "--json"]), process.env, dir);
      await until(
        async () => (shield!.output().includes('"listening"') ? true : undefined),
        `the shield to listen (output so far:\n${shield.output()})`,
        30_000,
      );

      const home = path.join(dir, "home");
      const tmp = path.join(dir, "tmp");
      mkdirSync(home);
      mkdirSync(tmp);
      const gatewayPort = await freePort();
      // A clean environment: nothing from the runner (proxies, OPENCLAW_*) may steer the gateway.
      const env = {
        PATH: `${oc.nodeBinDir}:/usr/local/bin:/usr/bin:/bin`,
        HOME: home,
        TMPDIR: tmp,
        LANG: "C.UTF-8",
        OPENCLAW_PROXY_URL: `http://scout:${TOKEN}@127.0.0.1:${shieldPort}`,
      };
      gateway = start(
        [
          oc.openclaw,
          "gateway",
          "run",
          "--bind",
          "loopback",
          "--port",
          String(gatewayPort),
          "--allow-unconfigured",
        ],
        env,
        home,
      );
      const health = await until(
        async () => {
          if (gateway!.child.exitCode !== null) {
            throw new Error(`openclaw gateway exited ${gateway!.child.exitCode}:\n${gateway!.output()}`);
          }
          const r = await fetch(`http://127.0.0.1:${gatewayPort}/healthz`, {
            signal: AbortSignal.timeout(3000),
          });
          return r.ok ? ((await r.json()) as unknown) : undefined;
        },
        "the gateway's /healthz",
        300_000,
      ).catch((e: Error) => {
        throw new Error(`${e.message}\ngateway output:\n${gateway!.output()}`);
      });
      expect(health).toEqual({ ok: true, status: "live" });

      // Its start-up fetches follow readiness by a few seconds; wait for both sites, then a
      // little more so whatever else it sends in that burst is logged too.
      await until(
        async () => {
          const r = await clawguard(["shield", "log", "--db", db, "--json", "--limit", "1000"]);
          const hosts = ((r.json as { records?: StoredRecord[] } | null)?.records ?? []).map((x) => x.host);
          return hosts.some((h) => h.endsWith(".openclaw.ai")) && hosts.includes("clawhub.ai")
            ? true
            : undefined;
        },
        "CONNECTs to openclaw.ai and clawhub.ai in the shield's log",
        180_000,
      ).catch((e: Error) => {
        throw new Error(`${e.message}\ngateway output:\n${gateway!.output()}`);
      });
      await sleep(5000);
      await stop(gateway, 60_000);
      shieldExit = await stop(shield, 30_000);

      const log = await clawguard(["shield", "log", "--db", db, "--json", "--limit", "100000"]);
      expect(log.code, log.stdout).toBe(0);
      records = (log.json as { records: StoredRecord[] }).records;
      // A first run on a machine also installs Node 24 and openclaw from npm (minutes).
    }, 1_800_000);

    afterAll(async () => {
      if (gateway) await stop(gateway, 10_000);
      if (shield) await stop(shield, 10_000);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("logs the gateway's start-up calls as CONNECTs by agent scout, allowed by the tier's rules", () => {
      expect(records.length).toBeGreaterThan(0);
      for (const r of records) {
        expect(r).toMatchObject({ agent: "scout", tier: "gateways", method: "CONNECT", port: 443 });
        expect(r.sourceAddress).toBe("127.0.0.1");
      }
      const hosts = new Set(records.map((r) => r.host));
      expect([...hosts].some((h) => h.endsWith(".openclaw.ai"))).toBe(true);
      expect(hosts.has("clawhub.ai")).toBe(true);
      // Whatever else it tried was refused: only the two sites are on the tier's list.
      for (const r of records) {
        expect(r.decision, `${r.host}: ${r.reason}`).toBe(ALLOWED.test(r.host) ? "allowed" : "denied");
        if (r.decision === "allowed") expect(r.rule).toMatch(/openclaw\.ai|clawhub\.ai/);
      }
    });

    it("stops cleanly and its hash chain verifies", async () => {
      expect(shieldExit).toBe(0);
      const v = await clawguard(["shield", "verify-log", "--db", db, "--json"]);
      expect(v.code, v.stdout).toBe(0);
      expect(v.json).toMatchObject({
        schema: "clawguard.shield-verify-log/v1",
        ok: true,
        count: records.length,
      });
    });

    it("keeps the proxy token out of the log, its files and the shield's output", () => {
      const basic = Buffer.from(`scout:${TOKEN}`).toString("base64");
      expect(JSON.stringify(records)).not.toContain(TOKEN);
      for (const f of readdirSync(dir).filter((n) => n.startsWith("shield.db"))) {
        const bytes = readFileSync(path.join(dir, f));
        expect(bytes.includes(TOKEN), f).toBe(false);
        expect(bytes.includes(basic), f).toBe(false);
      }
      expect(shield!.output()).not.toContain(TOKEN);
    });
  },
);
