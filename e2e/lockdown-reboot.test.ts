import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isRoot, PEER_ADDR, PROJECT_DIR, sleep, sshFrom, type Container } from "./lib/index.js";
import { useContainer } from "./lib/suite.js";

const SHIELD = `${PEER_ADDR}:3128`;
const DIRECT = { host: PEER_ADDR, port: 8080 };
const BIN = path.join(PROJECT_DIR, "bin/clawguard.js");

// A direct connection from inside the container, with the container's own Node.
const directProbe = `const s = require("net").connect(${DIRECT.port}, "${DIRECT.host}");
const say = (m) => { console.log(m); process.exit(0); };
s.on("connect", () => say("open"));
s.on("error", (e) => say(e.code === "ECONNREFUSED" ? "open refused" : "blocked " + e.code));
setTimeout(() => say("blocked timeout"), 2500);`;

let work = "";
const peers: ChildProcess[] = [];

/** A process in the container's peer namespace, ready when `ready` shows on its stdout. */
function startInPeer(ns: string, argv: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn("ip", ["netns", "exec", ns, ...argv], { stdio: ["ignore", "pipe", "pipe"] });
  peers.push(child);
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.join(" ")} not ready:\n${out}`)), 60_000);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(" ")} exited ${code}:\n${out}`));
    });
  });
}

describe.skipIf(!isRoot)("lockdown on a booted Debian 12: the table comes back after a reboot", () => {
  const ct = useContainer({ tag: "lockdown" });
  const direct = async (c: Container) => (await c.exec(["node", "-e", directProbe])).stdout.trim();
  const verify = (c: Container) =>
    c.exec(
      [
        "clawguard",
        "lockdown",
        "--verify",
        "--shield",
        SHIELD,
        "--probe",
        `${DIRECT.host}:${DIRECT.port}`,
        "--dns",
        PEER_ADDR,
        "--timeout",
        "2000",
        "--json",
      ],
      { check: false, timeoutMs: 120_000 },
    );

  beforeAll(async () => {
    const c = ct();
    work = mkdtempSync(path.join(tmpdir(), "clawguard-lockdown-reboot-"));
    writeFileSync(
      path.join(work, "shield.yaml"),
      `listen: ${SHIELD}\nlog: { path: ${path.join(work, "shield.db")} }\nagents:\n  - { id: vps, sources: [${c.address}/32] }\n`,
    );
    await startInPeer(
      c.net.peerNs,
      [process.execPath, BIN, "shield", "run", "--config", path.join(work, "shield.yaml")],
      /listening on/,
    );
    await startInPeer(
      c.net.peerNs,
      [
        process.execPath,
        "-e",
        `require("net").createServer((s) => s.on("error", () => {}).end("hi")).listen(${DIRECT.port}, "${DIRECT.host}", () => console.log("ready"))`,
      ],
      /ready/,
    );
    const inst = await c.aptInstall("nftables");
    expect(inst.code).toBe(0);
  });

  afterAll(async () => {
    for (const p of peers) if (p.exitCode === null) p.kill("SIGTERM");
    await sleep(500);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("before lockdown the container reaches the peer directly", async () => {
    expect(await direct(ct())).toBe("open");
    expect((await verify(ct())).code).toBe(1);
  });

  it("applies with systemd: the unit is enabled and active, direct egress fails, new SSH still works", async () => {
    const c = ct();
    const r = await c.exec(["clawguard", "lockdown", "--shield", SHIELD, "--apply", "--json"], {
      check: false,
      timeoutMs: 120_000,
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      steps: Array<{ command: string; ok: boolean }>;
      plan: { sshPorts: { ports: number[] } };
    };
    expect(report.steps.map((s) => s.command)).toContain("systemctl restart clawguard-lockdown.service");
    expect(report.plan.sshPorts.ports).toEqual([22]);
    expect((await c.exec("systemctl is-enabled clawguard-lockdown.service")).stdout.trim()).toBe("enabled");
    expect((await c.exec("systemctl is-active clawguard-lockdown.service")).stdout.trim()).toBe("active");
    expect(await direct(c)).toMatch(/^blocked/);
    const ssh = await sshFrom(c.net.peerNs, c, "echo in");
    expect(ssh.stdout.trim()).toBe("in");
  });

  it("after a reboot the table is back, direct egress still fails and verify holds", async () => {
    const c = ct();
    await c.reboot(120_000);
    const listed = await c.exec(["nft", "list", "table", "inet", "clawguard_egress"], { check: false });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain("policy drop;");
    expect((await c.exec("systemctl is-active clawguard-lockdown.service")).stdout.trim()).toBe("active");
    expect(await direct(c)).toMatch(/^blocked/);
    const v = await verify(c);
    const report = JSON.parse(v.stdout) as { probes: Array<{ id: string; held: boolean; outcome: string }> };
    expect(report.probes.filter((p) => !p.held)).toEqual([]);
    expect(v.code).toBe(0);
    expect((await sshFrom(c.net.peerNs, c, "echo in")).stdout.trim()).toBe("in");
  });

  it("rollback stops and disables the unit, removes the table and the files", async () => {
    const c = ct();
    const r = await c.exec(["clawguard", "lockdown", "rollback", "--json"], {
      check: false,
      timeoutMs: 120_000,
    });
    expect(r.code).toBe(0);
    expect((await c.exec(["nft", "list", "tables"])).stdout).not.toContain("clawguard_egress");
    const enabled = await c.exec("systemctl is-enabled clawguard-lockdown.service", { check: false });
    expect(enabled.code).not.toBe(0);
    expect((await c.exec("ls /etc/clawguard 2>&1", { check: false })).stdout).toMatch(/No such file/);
    expect(await direct(c)).toBe("open");
  });
});
