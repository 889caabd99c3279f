import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { configuredPorts, parseSshdT, sshdValue } from "../../src/facts/sshd.js";
import { parseSshdConfig } from "../../src/host/gather/sshd.js";
import { LocalHost } from "../../src/host/host.js";

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function tree(files: Record<string, string>): LocalHost {
  const root = mkdtempSync(path.join(tmpdir(), "clawguard-sshd-"));
  roots.push(root);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    writeFileSync(path.join(root, p), text);
  }
  return new LocalHost(root, { isRoot: false });
}

describe("sshd_config parsing", () => {
  it("expands relative Include globs in sorted order and ends an included Match block at its file's end", async () => {
    const host = tree({
      "etc/ssh/sshd_config": "Include conf.d/*.conf /etc/ssh/absent.conf\nX11Forwarding yes\nPort 22\n",
      "etc/ssh/conf.d/20-b.conf": "Match User git\n  X11Forwarding yes\n",
      "etc/ssh/conf.d/10-a.conf": "port 2222\nX11Forwarding no\n",
      "etc/ssh/conf.d/notes.txt": "PermitRootLogin yes\n",
    });
    const parsed = await parseSshdConfig(host);
    expect(parsed.files).toEqual([
      "/etc/ssh/sshd_config",
      "/etc/ssh/conf.d/10-a.conf",
      "/etc/ssh/conf.d/20-b.conf",
    ]);
    expect(sshdValue(parsed, "x11forwarding")).toEqual({
      value: "no",
      source: "/etc/ssh/conf.d/10-a.conf",
      line: 2,
    });
    expect(parsed.matches).toEqual([
      {
        criteria: "User git",
        key: "x11forwarding",
        value: "yes",
        source: "/etc/ssh/conf.d/20-b.conf",
        line: 2,
      },
    ]);
    // Port accumulates across files; the main file's "Port 22" is global again after the include.
    expect(configuredPorts(parsed.settings).map((p) => p.port)).toEqual([2222, 22]);
    expect(sshdValue(parsed, "permitrootlogin")?.source).toBe("default");
    expect(parsed.problems).toEqual([]);
  });

  it("takes a ListenAddress's own port over Port", () => {
    const s = parseSshdT(
      "port 22\nlistenaddress 0.0.0.0:2222\nlistenaddress [::]:22\npermitrootlogin without-password\n",
    );
    expect(configuredPorts(s).map((p) => p.port)).toEqual([2222, 22]);
    expect(sshdValue({ settings: s }, "permitrootlogin")?.value).toBe("without-password");
  });
});
