import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseAptConf } from "../../src/facts/aptconf.js";
import { parseMountTable } from "../../src/facts/mounts.js";
import { parseUnitFile } from "../../src/facts/units.js";
import { renderAutoUpgrades, renderSecurityOrigins } from "../../src/render/apt.js";
import { unifiedDiff } from "../../src/render/diff.js";
import { renderSshdDropIn } from "../../src/render/sshd.js";
import { SSHD_LIMITS } from "../../src/checks/ssh-session.js";
import { fstabWithTmp, renderAptTempDir, renderTmpMountDropIn } from "../../src/render/tmp.js";
import { tempDir } from "../harden/tree.js";
import { haveTool } from "./tool.js";

describe("tmp", () => {
  it("appends a noexec tmpfs line to an fstab without /tmp", () => {
    const out = fstabWithTmp("UUID=0b3c / ext4 errors=remount-ro 0 1");
    const tmp = parseMountTable(out, "fstab").find((m) => m.mountpoint === "/tmp")!;
    expect(tmp.fstype).toBe("tmpfs");
    expect(tmp.options).toEqual(expect.arrayContaining(["noexec", "nosuid", "nodev"]));
    expect(out.split("\n")[0]).toBe("UUID=0b3c / ext4 errors=remount-ro 0 1");
  });

  it("keeps an existing /tmp device and only fixes its options", () => {
    const out = fstabWithTmp("# c\n/dev/vdb1 /tmp ext4 defaults,exec 0 2\n");
    expect(out).toBe("# c\n/dev/vdb1 /tmp ext4 noexec,nosuid,nodev 0 2\n");
  });

  it("writes a tmp.mount drop-in that keeps a literal % for systemd", () => {
    const text = renderTmpMountDropIn([
      "mode=1777",
      "strictatime",
      "nosuid",
      "nodev",
      "size=50%",
      "nr_inodes=1m",
    ]);
    expect(parseUnitFile(text).Mount!.Options).toEqual([
      "mode=1777,strictatime,nosuid,nodev,size=50%%,nr_inodes=1m,noexec",
    ]);
  });

  it("moves apt's template dir out of /tmp in syntax apt reads", () => {
    expect(parseAptConf(renderAptTempDir(), "x")["apt::extracttemplates::tempdir"]?.value).toBe(
      "/var/cache/apt/tmp",
    );
  });
});

describe("apt", () => {
  it("enables both periodic settings and security origins", () => {
    const c = parseAptConf(renderAutoUpgrades() + renderSecurityOrigins(), "x");
    expect(c["apt::periodic::update-package-lists"]?.value).toBe("1");
    expect(c["apt::periodic::unattended-upgrade"]?.value).toBe("1");
    expect(c["unattended-upgrade::origins-pattern"]?.value).toContain("label=Debian-Security");
  });
});

describe("sshd drop-in", () => {
  const base = { ...SSHD_LIMITS, banner: "/etc/issue.net" };
  it("turns passwords off only when some account has a key", () => {
    expect(renderSshdDropIn({ keysPresent: true, ...base })).toMatch(/^PasswordAuthentication no$/m);
    const without = renderSshdDropIn({ keysPresent: false, ...base });
    expect(without).not.toMatch(/^PasswordAuthentication/m);
    expect(without).toMatch(/^PermitRootLogin prohibit-password$/m);
    expect(without).toMatch(/^PermitEmptyPasswords no$/m);
    // ssh -L to the loopback gateway keeps working.
    expect(without).toMatch(/^AllowTcpForwarding local$/m);
    expect(without).toMatch(/^X11Forwarding no$/m);
    expect(without).toMatch(/^MaxAuthTries 3$/m);
    expect(without).toMatch(/^LogLevel VERBOSE$/m);
    expect(without).toMatch(/^ClientAliveInterval 300\nClientAliveCountMax 2$/m);
    expect(without).toMatch(/^Banner \/etc\/issue\.net$/m);
  });

  it("writes AllowUsers only for the accounts it is given", () => {
    expect(renderSshdDropIn({ keysPresent: true, ...base })).not.toMatch(/AllowUsers/);
    expect(renderSshdDropIn({ keysPresent: true, allowUsers: ["root", "ops"], ...base })).toMatch(
      /^AllowUsers root ops$/m,
    );
  });
});

describe("unified diff", () => {
  const a = Array.from({ length: 20 }, (_, i) => `line ${i}`).join("\n") + "\n";
  const b = a.replace("line 3\n", "line 3 changed\n").replace("line 15\n", "").replace(/$/, "added\n");

  it.runIf(haveTool("diff"))("prints the same hunks as diff -u", () => {
    const dir = tempDir("diff");
    writeFileSync(path.join(dir, "a"), a);
    writeFileSync(path.join(dir, "b"), b);
    const r = spawnSync("diff", ["-u", "a", "b"], { cwd: dir, encoding: "utf8" });
    const strip = (s: string) =>
      s
        .split("\n")
        .filter((l) => !l.startsWith("---") && !l.startsWith("+++"))
        .join("\n");
    expect(strip(unifiedDiff(a, b, "a", "b"))).toBe(strip(r.stdout));
    expect(unifiedDiff(a, a, "a", "b")).toBe("");
  });

  it("shows a new file as all additions", () => {
    expect(unifiedDiff("", "x\ny\n", "/dev/null", "f")).toBe(
      "--- /dev/null\n+++ f\n@@ -0,0 +1,2 @@\n+x\n+y\n",
    );
  });
});
