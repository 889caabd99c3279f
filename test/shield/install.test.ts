import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readAdminToken } from "../../src/shield/admin/token.js";
import { parseShieldConfig } from "../../src/shield/config.js";
import { installShield } from "../../src/shield/install.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/clawguard.js");
const UNIT = "etc/systemd/system/clawguard-shield.service";

let root: string;

beforeEach(() => {
  // A system's tree has an /etc at least; an empty --root is refused as no system at all.
  root = mkdtempSync(path.join(tmpdir(), "clawguard-install-"));
  mkdirSync(path.join(root, "etc"));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function exposure(unitFile: string): { score: number; failing: string[] } {
  // systemd-analyze exits non-zero only above --threshold (100 by default); the score is on stdout.
  const out = execFileSync("systemd-analyze", ["security", "--offline=yes", "--no-pager", unitFile], {
    encoding: "utf8",
    env: { ...process.env, SYSTEMD_COLORS: "0", SYSTEMD_UTF8: "0" },
  });
  const m = /Overall exposure level for .*: (\d+\.\d)/.exec(out);
  if (!m) throw new Error(`no score in systemd-analyze output:\n${out}`);
  return { score: Number(m[1]), failing: out.split("\n").filter((l) => /^(✗|x) /.test(l)) };
}

describe("clawguard shield install", () => {
  it("writes a unit that systemd-analyze scores at 1.1 or better, with no shell and no capabilities", async () => {
    const r = await installShield({ root, configDir: "/etc/clawguard", user: "clawguard-shield" });
    expect(r.files.map((f) => [f.path, f.action])).toEqual([
      ["/etc/systemd/system/clawguard-shield.service", "created"],
      ["/etc/clawguard/shield.yaml", "created"],
      ["/etc/clawguard/admin.token", "created"],
    ]);
    const file = path.join(root, UNIT);
    const unit = readFileSync(file, "utf8");
    expect(unit).toMatch(
      /^ExecStart=\/\S+ --no-memory-reducer \/\S+\/bin\/clawguard\.js shield run --config \/etc\/clawguard\/shield\.yaml$/m,
    );
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(unit).toMatch(/^CapabilityBoundingSet=$/m);
    expect(unit).toMatch(/^SystemCallFilter=@system-service$/m);
    // The log writer's priority (log/priority.ts): setpriority back, and nice 0 the floor.
    expect(unit).toMatch(/^SystemCallFilter=setpriority$/m);
    expect(unit).toMatch(/^LimitNICE=\+0$/m);
    expect(unit).toMatch(/^SystemCallErrorNumber=EPERM$/m);
    expect(unit).toMatch(/^StateDirectory=clawguard-shield$/m);
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
    expect(unit).toMatch(/^User=clawguard-shield$/m);
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=/m);
    expect(unit).not.toMatch(/\/bin\/(ba)?sh/);
    const { score, failing } = exposure(file);
    // 0.9 without setpriority: systemd-analyze counts the one call as all of @resources (0.2).
    expect(score, failing.join("\n")).toBeLessThanOrEqual(1.1);
    expect(failing.join("\n")).toMatch(/@resources is included \(e\.g\. setpriority is allowed\)/);
    // What is left is what a proxy is: it must use the network.
    expect(failing.join("\n")).toMatch(/PrivateNetwork/);
  });

  it("writes a config skeleton that loads, and a 600 token the shield accepts", async () => {
    await installShield({ root, configDir: "/etc/clawguard", user: "clawguard-shield" });
    const cfgFile = path.join(root, "etc/clawguard/shield.yaml");
    const text = readFileSync(cfgFile, "utf8");
    expect(text).toMatch(/^# /m);
    const cfg = parseShieldConfig(text, cfgFile);
    expect(cfg.admin).toEqual({
      listen: { host: "127.0.0.1", port: 9090 },
      tokenFile: path.join(root, "etc/clawguard/admin.token"),
      // Beside the log: the one directory the shield's unit may write.
      stateFile: "/var/lib/clawguard-shield/shield-modes.json",
    });
    expect(cfg.log.path).toBe("/var/lib/clawguard-shield/shield.db");
    expect(cfg.mode).toBe("enforce");
    // The commented budget example means what it says once uncommented.
    const budgeted = parseShieldConfig(text.replace(/^#budget:/m, "budget:"), cfgFile);
    expect(budgeted.budget).toEqual({
      uploadBytes: 200e6,
      requests: 20000,
      windowMs: 3_600_000,
      text: "upload 200MB, 20000 requests per 1h",
    });
    const tokenFile = path.join(root, "etc/clawguard/admin.token");
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(root, "etc/clawguard")).mode & 0o777).toBe(0o700);
    expect(readFileSync(tokenFile, "utf8")).toMatch(/^[0-9a-f]{64}\n$/);
    await expect(readAdminToken(tokenFile)).resolves.toHaveLength(32);
  });

  it("never overwrites an existing config or token, and rewrites only a changed unit", async () => {
    await installShield({ root, configDir: "/etc/clawguard", user: "clawguard-shield" });
    const tokenFile = path.join(root, "etc/clawguard/admin.token");
    const cfgFile = path.join(root, "etc/clawguard/shield.yaml");
    const token = readFileSync(tokenFile, "utf8");
    writeFileSync(cfgFile, "# mine\nlisten: 127.0.0.1:3128\nlog: { path: x.db }\n");
    const again = await installShield({ root, configDir: "/etc/clawguard", user: "clawguard-shield" });
    expect(again.files.map((f) => f.action)).toEqual(["unchanged", "kept", "kept"]);
    expect(readFileSync(tokenFile, "utf8")).toBe(token);
    expect(readFileSync(cfgFile, "utf8")).toContain("# mine");
    const other = await installShield({ root, configDir: "/etc/clawguard", user: "shieldrunner" });
    expect(other.files[0]?.action).toBe("updated");
    expect(readFileSync(path.join(root, UNIT), "utf8")).toMatch(/^User=shieldrunner$/m);
  });

  it("uses the service user of the root tree when it exists, and says how to create it otherwise", async () => {
    const none = await installShield({ root, configDir: "/etc/clawguard", user: "clawguard-shield" });
    expect(none.next[0]).toMatch(/useradd --system .* clawguard-shield/);
    rmSync(path.join(root, "etc/clawguard"), { recursive: true });
    const uid = process.getuid!();
    const gid = process.getgid!();
    writeFileSync(
      path.join(root, "etc/passwd"),
      `clawguard-shield:x:${uid}:${gid}::/nonexistent:/usr/sbin/nologin\n`,
    );
    const found = await installShield({ root, configDir: "/etc/clawguard", user: "clawguard-shield" });
    expect(found.next.some((n) => /useradd/.test(n))).toBe(false);
    expect(statSync(path.join(root, "etc/clawguard/admin.token")).uid).toBe(uid);
  });

  it("refuses a bad user name or a relative config dir, and has a JSON twin on the command line", async () => {
    await expect(installShield({ root, configDir: "/etc/clawguard", user: "Bad User" })).rejects.toThrow(
      /not a valid/,
    );
    await expect(installShield({ root, configDir: "etc", user: "x" })).rejects.toThrow(/must be absolute/);
    const out = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(process.execPath, [BIN, "shield", "install", "--root", root, "--json"], (err, stdout) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout }),
      ),
    );
    expect(out.code).toBe(0);
    const j = JSON.parse(out.stdout);
    expect(j.schema).toBe("clawguard.shield-install/v1");
    expect(j.files).toHaveLength(3);
  });
});
