import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Layer } from "../src/checks/finding.js";
import { auditIn, cmd, isRoot, sleep, type Container } from "./lib/index.js";
import { ensureOpenClaw, NODE_VERSION, OPENCLAW_VERSION } from "./lib/openclaw.js";
import { hardenIn, startCarelessGateway } from "./lib/careless.js";
import { useContainer } from "./lib/suite.js";

/**
 * `clawguard harden --apply` against the real OpenClaw gateway (not a stand-in) on a booted
 * Debian 12: the hardened unit's sandbox must leave the real gateway able to start, serve and
 * write its state, and still score as well as the stand-in does.
 */
const ENABLED = process.env.CLAWGUARD_E2E_OPENCLAW === "1" && isRoot;

/** The layers that are about the gateway itself (the host's are proven with the stand-in). */
const GATEWAY_LAYERS: Layer[] = ["gateway", "user", "systemd", "credentials", "openclaw"];

// Node 24 beside the distribution's tree, and openclaw's package under /opt, launched by a
// wrapper on PATH: the machine's own `node` (clawguard's) is too old for OpenClaw.
const NODE_DIR = "/opt/node-v24";
const OPENCLAW_DIR = "/opt/openclaw";
const WRAPPER = `#!/bin/sh
exec ${NODE_DIR}/bin/node ${OPENCLAW_DIR}/node_modules/openclaw/openclaw.mjs "$@"
`;

// gateway.mode=local is what `openclaw gateway run` needs to start without --allow-unconfigured.
// OpenClaw refuses to bind lan without auth ("Refusing to bind gateway to lan without auth",
// exit 78), so the careless setup has the guessable token a guide's example would give.
const CONFIG = `{
  gateway: { mode: "local", bind: "lan", port: 18789, auth: { mode: "token", token: "openclaw" } },
}
`;

async function install(c: Container): Promise<void> {
  const oc = await ensureOpenClaw();
  await cmd(["mkdir", "-p", path.join(c.root, OPENCLAW_DIR.slice(1))]);
  await cmd(["cp", "-a", path.dirname(oc.nodeBinDir), path.join(c.root, NODE_DIR.slice(1))]);
  await cmd(["cp", "-a", oc.modules, path.join(c.root, OPENCLAW_DIR.slice(1))]);
  await c.exec(["sh", "-c", "cat > /usr/local/bin/openclaw && chmod 755 /usr/local/bin/openclaw"], {
    input: WRAPPER,
  });
  expect((await c.exec([`${NODE_DIR}/bin/node`, "--version"])).stdout.trim()).toBe(`v${NODE_VERSION}`);
}

async function healthz(c: Container, host: string): Promise<string> {
  const r = await c.exec(
    [
      `${NODE_DIR}/bin/node`,
      "-e",
      `fetch("http://${host}:18789/healthz").then(r => r.text()).then(console.log)`,
    ],
    { check: false, timeoutMs: 20_000 },
  );
  return r.code === 0 ? r.stdout.trim() : "";
}

/** The gateway takes from seconds to a minute to answer, depending on the machine's load. */
async function waitHealthy(c: Container, host: string, ms = 300_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await healthz(c, host)) === '{"ok":true,"status":"live"}') return;
    await sleep(2000);
  }
  const why = await c.exec(
    "ss -ltnp; systemctl status openclaw --no-pager; journalctl -u openclaw -n 60 --no-pager",
    {
      check: false,
    },
  );
  throw new Error(`the gateway never answered http://${host}:18789/healthz:\n${why.stdout}`);
}

/** The quick-start install: root, every address, a guessable token; up and answering. */
async function setUpCareless(c: Container): Promise<void> {
  await install(c);
  await startCarelessGateway(c, CONFIG);
  await waitHealthy(c, c.address);
}

/** From the system, not a report: the unit that runs now, who runs it, where it listens, its score. */
async function expectSandboxedGateway(c: Container): Promise<void> {
  await waitHealthy(c, "127.0.0.1");
  expect((await c.exec("systemctl is-active openclaw.service", { check: false })).stdout.trim()).toBe(
    "active",
  );
  const unit = (await c.exec("systemctl cat openclaw.service")).stdout;
  expect(unit).toContain("Written by clawguard harden");
  expect(unit).toMatch(/ExecStart=\/usr\/local\/bin\/openclaw gateway run --bind loopback --port 18789/);
  expect(await healthz(c, c.address)).toBe("");
  const listening = (await c.exec(["ss", "-Hltn"])).stdout;
  expect(listening).toContain("127.0.0.1:18789");
  expect(listening).not.toMatch(/(0\.0\.0\.0|\*|\[::\]):18789/);
  const owner = await c.exec("ps -o user= -p $(systemctl show -p MainPID --value openclaw.service)");
  expect(owner.stdout.trim()).toBe("openclaw");
  const score = await c.exec("systemd-analyze security openclaw.service --no-pager | tail -1");
  expect(Number(/: (\d+\.\d+)/.exec(score.stdout)?.[1]), score.stdout).toBeLessThanOrEqual(1.5);
}

const journal = async (c: Container) =>
  (await c.exec("journalctl -u openclaw -n 80 --no-pager; systemctl cat openclaw.service", { check: false }))
    .stdout;

describe.skipIf(!ENABLED)(
  `clawguard harden --apply with the real OpenClaw ${OPENCLAW_VERSION} gateway running on a booted Debian 12 (runs as root with CLAWGUARD_E2E_OPENCLAW=1)`,
  () => {
    const ct = useContainer({ tag: "hardenoc" });

    it("moves the running gateway to its own user, on loopback, under the sandboxed unit", async () => {
      const c = ct();
      await setUpCareless(c);
      // The running gateway keeps writing its state dir (temp files, SQLite journals): the run
      // must not depend on the list of files it saw when it planned.
      const run = await hardenIn(c, ["--apply"]);
      expect(run.report.error, `${run.report.error}\n${await journal(c)}`).toBeUndefined();
      expect(run.code, run.stderr).toBe(0);
      expect(run.report.health?.ok, JSON.stringify(run.report.health)).toBe(true);
      await expectSandboxedGateway(c);
      // Nothing under the moved state dir is left to root, and no secret is readable by others.
      const strays = await c.exec(
        "find /home/openclaw/.openclaw \\( ! -user openclaw -o ! -group openclaw \\) -printf '%u:%g %p\\n'",
      );
      expect(strays.stdout).toBe("");
      expect((await c.exec("test -e /root/.openclaw", { check: false })).code).not.toBe(0);
    });

    it("afterwards the audit passes the gateway's layers, OpenClaw's own audit included", async () => {
      const c = ct();
      const { report } = await auditIn(c, ["--layer", ...GATEWAY_LAYERS]);
      const offenders = report.findings
        .filter((f) => f.status === "fail" || f.status === "error")
        .map((f) => `${f.id}: ${f.status} (${f.evidence.source}: ${f.evidence.excerpt})`);
      expect(offenders, `failing after harden:\n${offenders.join("\n")}`).toEqual([]);
      expect(new Set(report.findings.map((f) => f.layer))).toEqual(new Set(GATEWAY_LAYERS));
    });

    it("a second run changes nothing, and rollback brings the gateway back as root on its old port", async () => {
      const c = ct();
      const again = await hardenIn(c, []);
      expect(again.report.changes.map((x) => x.action)).toEqual([]);
      const r = await c.exec(["clawguard", "rollback", "--json"], { check: false, timeoutMs: 600_000 });
      expect((JSON.parse(r.stdout) as { problems: string[] }).problems).toEqual([]);
      expect(r.code).toBe(0);
      await waitHealthy(c, c.address);
      const owner = await c.exec("ps -o user= -p $(systemctl show -p MainPID --value openclaw.service)");
      expect(owner.stdout.trim()).toBe("root");
      expect((await c.exec("find /root/.openclaw ! -user root", { check: false })).stdout).toBe("");
    });
  },
);

describe.skipIf(!ENABLED)(
  `the unit clawguard harden renders runs the real OpenClaw ${OPENCLAW_VERSION} gateway (runs as root with CLAWGUARD_E2E_OPENCLAW=1)`,
  () => {
    const ct = useContainer({ tag: "unitoc" });

    // The planned unit installed by hand with the gateway stopped: what the sandbox allows the
    // real gateway, apart from how harden gets there and how long its health check waits.
    it("starts, serves /healthz on loopback as user openclaw and scores at most 1.5", async () => {
      const c = ct();
      await setUpCareless(c);
      const plan = await hardenIn(c, []);
      const unit = plan.report.changes.find(
        (x) => x.change.kind === "file" && x.change.path === "/etc/systemd/system/openclaw.service",
      )?.change;
      expect(unit?.kind, JSON.stringify(plan.report.changes.map((x) => x.action))).toBe("file");
      if (unit?.kind !== "file") return;
      await c.exec("systemctl stop openclaw.service");
      await c.exec(
        "useradd --system --user-group --create-home --home-dir /home/openclaw --shell /usr/sbin/nologin openclaw" +
          " && mv /root/.openclaw /home/openclaw/.openclaw && chown -R openclaw:openclaw /home/openclaw/.openclaw" +
          " && chmod -R go-rwx /home/openclaw/.openclaw",
      );
      await c.exec(["sh", "-c", "cat > /etc/systemd/system/openclaw.service"], { input: unit.content });
      await c.exec("systemctl daemon-reload && systemctl restart openclaw.service");
      try {
        await expectSandboxedGateway(c);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${await journal(c)}`);
      }
    });
  },
);
