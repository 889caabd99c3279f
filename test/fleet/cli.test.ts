/**
 * `clawguard fleet` through its real entry point, with an `ssh` on PATH that plays the hosts: it
 * runs each command with sh on this machine, where a `clawguard` stand-in answers with the report
 * the test wrote for that host. Hosts named hang, changed and down behave as a server that never
 * answers, one whose key changed, and one that is off.
 */
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { finding, report } from "./reports-fixture.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/clawguard.js");
const SLOW = 120_000;

const dir = mkdtempSync(path.join(tmpdir(), "clawguard-fleet-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bin = path.join(dir, "bin");
mkdirSync(bin);
const script = (name: string, body: string) => {
  writeFileSync(path.join(bin, name), body);
  chmodSync(path.join(bin, name), 0o755);
};
script(
  "ssh",
  `#!${process.execPath}
const { spawnSync } = require("node:child_process");
const args = process.argv.slice(2);
const at = args.indexOf("--");
const host = args[at + 1];
if (args.includes("-O")) process.exit(0);
if (host === "hang.lab") setInterval(() => {}, 1000);
else if (host === "changed.lab") {
  process.stderr.write("@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\\nHost key for changed.lab has changed and you have requested strict checking.\\nHost key verification failed.\\n");
  process.exit(255);
} else if (host === "down.lab") {
  process.stderr.write("ssh: connect to host down.lab port 22: No route to host\\n");
  process.exit(255);
} else {
  const r = spawnSync("sh", ["-c", args[at + 2]], { stdio: "inherit", env: { ...process.env, FAKE_HOST: host } });
  process.exit(r.status ?? 1);
}
`,
);
script("id", "#!/bin/sh\necho 0\n");
script(
  "clawguard",
  `#!${process.execPath}
const fs = require("node:fs");
const args = process.argv.slice(2);
if (args[0] === "--version") { console.log("0.1.0"); process.exit(0); }
const file = ${JSON.stringify(dir)} + "/" + process.env.FAKE_HOST + ".json";
process.stdout.write(fs.readFileSync(file, "utf8"));
process.exit(1);
`,
);

const inventory = path.join(dir, "hosts.ini");
writeFileSync(
  inventory,
  "[web]\ngood ansible_host=good.lab\nbad ansible_host=bad.lab\n[trouble]\nhang ansible_host=hang.lab\nchanged ansible_host=changed.lab\ndown ansible_host=down.lab\n",
);
const state = path.join(dir, "fleet.db");
const setReport = (host: string, findings: ReturnType<typeof finding>[]) =>
  writeFileSync(path.join(dir, `${host}.lab.json`), JSON.stringify(report(findings)));

/** `clawguard fleet ARGS` on a terminal: util-linux's script gives it a pty for stdout and stderr. */
function fleetOnTerminal(...args: string[]): Promise<string> {
  const quoted = [process.execPath, BIN, "fleet", ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`);
  return new Promise((resolve, reject) =>
    execFile(
      "script",
      ["-qec", quoted.join(" "), "/dev/null"],
      { timeout: SLOW, env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, NO_COLOR: "1" } },
      (err, stdout) =>
        err && (err as { code?: unknown }).code !== 1 ? reject(err) : resolve(stdout.replace(/\r\n/g, "\n")),
    ),
  );
}

function fleet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [BIN, "fleet", ...args],
      { timeout: SLOW, env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, NO_COLOR: "1" } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr }),
    ),
  );
}

describe("clawguard fleet", () => {
  it(
    "audits every host at once, cuts the one that hangs, and reports each as it is",
    async () => {
      setReport("good", [finding("gateway.bind", "pass"), finding("firewall.enabled", "pass")]);
      setReport("bad", [finding("gateway.bind", "fail", "critical"), finding("firewall.enabled", "pass")]);
      const r = await fleet(
        "audit",
        "-i",
        inventory,
        "--state",
        state,
        "--timeout",
        "3",
        "--json",
        "--html",
        path.join(dir, "r.html"),
      );
      expect(r.code, r.stderr).toBe(1);
      const doc = JSON.parse(r.stdout) as {
        schema: string;
        hosts: Array<{ host: string; status: string; error?: { code: string }; report?: unknown }>;
        summary: Record<string, unknown>;
      };
      expect(doc.schema).toBe("clawguard.fleet-audit/v1");
      expect(doc.hosts.map((h) => [h.host, h.status, h.error?.code, Boolean(h.report)])).toEqual([
        ["good", "ok", undefined, true],
        ["bad", "ok", undefined, true],
        ["hang", "unreachable", "CG_HOST_TIMEOUT", false],
        ["changed", "error", "CG_SSH_HOST_KEY_CHANGED", false],
        ["down", "unreachable", "CG_SSH_UNREACHABLE", false],
      ]);
      expect(doc.summary).toMatchObject({ hosts: 5, ok: 2, unreachable: 2, error: 1, failing: 1 });
      expect(readFileSync(path.join(dir, "r.html"), "utf8")).toContain("<!doctype html>");
    },
    SLOW,
  );

  it(
    "prints the matrix worst first, and diff names the host that regressed",
    async () => {
      setReport("good", [finding("gateway.bind", "fail", "high"), finding("firewall.enabled", "pass")]);
      const r = await fleet("audit", "-i", inventory, "--state", state, "--limit", "web");
      expect(r.code).toBe(1);
      const lines = r.stdout.split("\n");
      expect(lines[0]).toMatch(/^HOST\s+gateway\s+firewall\s+TOTAL$/);
      expect(lines[1]).toMatch(/^bad\s+1✗C\s+1✓\s+1✓ 1✗ critical$/);
      expect(lines[2]).toMatch(/^good\s+1✗H\s+1✓\s+1✓ 1✗ high$/);
      expect(r.stdout).toMatch(
        /2 hosts: 2 audited, 2 failing at or above high; 4 checks, 2 failed\. Run \S+/,
      );

      const d = await fleet("diff", "--state", state);
      expect(d.code).toBe(1);
      expect(d.stdout).toMatch(
        /regressed \(passed, now fails\):\n {2}good\n {4}gateway\.bind \(high, pass -> fail\)/,
      );
      expect(d.stdout).toMatch(/not in the later run: hang, changed, down/);

      const h = await fleet("history", "--state", state);
      expect(h.stdout.trim().split("\n")).toHaveLength(3);
    },
    SLOW,
  );

  it(
    "an unknown group in --limit and a broken inventory are errors that say where",
    async () => {
      const limit = await fleet("audit", "-i", inventory, "--state", state, "--limit", "web:!nosuch");
      expect(limit.code).toBe(2);
      expect(limit.stderr).toBe(
        'clawguard: --limit: no host or group matches "nosuch"\nhint: the inventory\'s groups: web, trouble\n',
      );
      const broken = path.join(dir, "broken.ini");
      writeFileSync(broken, "[web]\ngood\n[web:children\n");
      // The inventory is read before anything else: no run is recorded for it.
      const bad = await fleet("audit", "-i", broken, "--state", path.join(dir, "never.db"));
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(
        new RegExp(`^clawguard: ${broken}:3: "\\[web:children": a host range opens with \\[`),
      );
      expect(existsSync(path.join(dir, "never.db"))).toBe(false);
    },
    SLOW,
  );

  it(
    "counts hosts done and failed on a terminal while they run, and prints none of it with --json",
    async () => {
      setReport("good", [finding("gateway.bind", "pass")]);
      setReport("bad", [finding("gateway.bind", "fail", "critical")]);
      const args = ["audit", "-i", inventory, "--state", path.join(dir, "tty.db"), "--limit", "web,down"];
      const shown = await fleetOnTerminal(...args);
      expect(shown).toContain("fleet audit: 0/3 done");
      // The line is cleared (CR, erase to end of line) before the matrix is printed.
      expect(shown).toContain("fleet audit: 3/3 done, 1 failed\r\u001b[KHOST ");
      const json = await fleetOnTerminal(...args, "--json");
      expect(json).not.toMatch(/done/);
      expect((JSON.parse(json) as { schema: string }).schema).toBe("clawguard.fleet-audit/v1");
    },
    SLOW,
  );
});
