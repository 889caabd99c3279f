/**
 * The careless OpenClaw install the harden tests start from, as the quick-start guide leaves it:
 * a system unit without User= (root) bound to every address, and a world-readable config in
 * /root/.openclaw. Behind /usr/local/bin/openclaw runs either the stand-in below or the real
 * gateway (harden-openclaw.test.ts installs that one itself).
 */
import type { HardenReport } from "../../src/harden/harden.js";
import type { Container } from "./container.js";
import { sleep } from "./run.js";

export const GATEWAY_PORT = 18789;

/**
 * A stand-in for `openclaw gateway run`: the same command line, the same /healthz answer, and it
 * writes into its state dir at start, as the real gateway does, so a sandbox that takes the
 * state dir away makes it fail the way OpenClaw would.
 */
const GATEWAY_STANDIN = `#!/usr/local/bin/node
const http = require("node:http");
const fs = require("node:fs");
const path = require("node:path");
const a = process.argv.slice(2);
const flag = (n, d) => (a.indexOf(n) >= 0 ? a[a.indexOf(n) + 1] : d);
const state = process.env.OPENCLAW_STATE_DIR || path.join(process.env.HOME || "/root", ".openclaw");
fs.writeFileSync(path.join(state, "gateway.pid"), String(process.pid));
const host = { loopback: "127.0.0.1", lan: "0.0.0.0" }[flag("--bind", "loopback")];
http
  .createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(req.url === "/healthz" ? '{"ok":true,"status":"live"}' : "{}");
  })
  .listen(Number(flag("--port", "18789")), host);
`;

const CARELESS_UNIT = `[Unit]
Description=OpenClaw gateway
After=network-online.target

[Service]
ExecStart=/usr/local/bin/openclaw gateway run --bind lan --port ${GATEWAY_PORT}
Restart=always

[Install]
WantedBy=multi-user.target
`;

/** Put the stand-in gateway at /usr/local/bin/openclaw. */
export async function installGatewayStandIn(c: Container): Promise<void> {
  await c.exec(["sh", "-c", "cat > /usr/local/bin/openclaw && chmod 755 /usr/local/bin/openclaw"], {
    input: GATEWAY_STANDIN,
  });
}

/**
 * Write `config` to /root/.openclaw/openclaw.json (the dir 755) and the careless unit, then
 * enable and start it. Waiting until it answers is the caller's: the stand-in and the real
 * gateway take very different times.
 */
export async function startCarelessGateway(c: Container, config: string): Promise<void> {
  await c.exec("mkdir -p /root/.openclaw && chmod 755 /root/.openclaw");
  await c.exec(["sh", "-c", "cat > /root/.openclaw/openclaw.json"], { input: config });
  await c.exec(["sh", "-c", "cat > /etc/systemd/system/openclaw.service"], { input: CARELESS_UNIT });
  await c.exec("systemctl daemon-reload && systemctl enable --now openclaw.service");
}

/** Wait up to 10 s for a TCP listener on `addr` (as `ss` prints it, e.g. 0.0.0.0:18789). */
export async function waitListening(c: Container, addr: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if ((await c.exec(["ss", "-Hltn"], { check: false })).stdout.includes(addr)) return;
    await sleep(200);
  }
  const seen = await c.exec("ss -ltnp; journalctl -u openclaw -n 30 --no-pager", { check: false });
  throw new Error(`nothing listens on ${addr}:\n${seen.stdout}`);
}

/** `clawguard harden --json ARGS` in the container, its report parsed (an error if there is none). */
export async function hardenIn(
  c: Container,
  args: string[],
): Promise<{ code: number; report: HardenReport; stderr: string }> {
  const r = await c.exec(["clawguard", "harden", "--json", ...args], { check: false, timeoutMs: 900_000 });
  try {
    return { code: r.code, report: JSON.parse(r.stdout) as HardenReport, stderr: r.stderr };
  } catch {
    throw new Error(
      `clawguard harden exited ${r.code} without JSON:\n${r.stdout.slice(0, 3000)}\n${r.stderr.slice(0, 3000)}`,
    );
  }
}
