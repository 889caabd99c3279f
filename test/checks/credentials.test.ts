import { describe, expect, it } from "vitest";
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { LocalHost, runCommand } from "../../src/host/host.js";
import { runAudit } from "../../src/audit/audit.js";
import type { AuditReport } from "../../src/audit/audit.js";
import { shellQuote } from "../../src/checks/credentials.js";
import { isSecretInStateDir } from "../../src/facts/credentials.js";
import { loadFixture, one } from "../helpers/fixture.js";
import { auditServiceFixture, loadServiceFixture, SERVICE_UID_AS_ROOT } from "../host/openclaw-fixtures.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CLI = path.join(REPO, "bin/clawguard.js");

/**
 * Let other users search `dir` and every directory above it (a checkout under a 0700 temp dir
 * is out of the service user's reach otherwise); returns what puts the old modes back.
 */
function searchableByOthers(dir: string): () => void {
  const changed: Array<[string, number]> = [];
  for (let d = dir; ; d = path.dirname(d)) {
    const mode = statSync(d).mode & 0o7777;
    if ((mode & 0o001) === 0) {
      chmodSync(d, mode | 0o001);
      changed.push([d, mode]);
    }
    if (d === path.dirname(d)) break;
  }
  return () => {
    for (const [d, mode] of changed) chmodSync(d, mode);
  };
}

describe("credentials layer", () => {
  it("fails the careless install: world-readable secrets, including a name with a space", async () => {
    const root = loadFixture("openclaw-careless");
    mkdirSync(path.join(root, "root/.config/openclaw"));
    writeFileSync(path.join(root, "root/.config/openclaw/gateway.env"), "OPENCLAW_GATEWAY_TOKEN=x\n", {
      mode: 0o644,
    });
    chmodSync(path.join(root, "root/.config/openclaw/gateway.env"), 0o644);
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["credentials"] });
    const world = one(report.findings, "credentials.world_readable");
    expect(world.detail).toBe("9 secret paths are open to every user");
    expect(world.evidence.excerpt).toContain("0644 file /root/.config/openclaw/gateway.env");
    expect(world.status).toBe("fail");
    expect(world.severity).toBe("critical");
    for (const p of [
      "0755 dir /root/.openclaw\n",
      "0644 file /root/.openclaw/openclaw.json",
      "0644 file /root/.openclaw/.env",
      "0644 file /root/.openclaw/credentials/my key.json",
      "0644 file /root/.openclaw/agents/main/sessions/s1.jsonl",
    ])
      expect(world.evidence.excerpt).toContain(p);
    // Names with spaces are quoted in the command a person would paste.
    expect(world.remediation).toContain("'/root/.openclaw/credentials/my key.json'");
    expect(world.remediation).toMatch(/^chmod 600 .* && chmod 700 /);
    // The workspace's notes are not secrets.
    expect(world.evidence.excerpt).not.toContain("AGENTS.md");
    const group = one(report.findings, "credentials.group_readable");
    expect(group.status).toBe("fail");
    expect(group.severity).toBe("high");
    expect(group.evidence.excerpt).toBe("0640 file /root/.openclaw/agents/main/agent/auth-profiles.json");
    expect(one(report.findings, "credentials.walk").status).toBe("pass");
  });

  it("passes the good install: 600 files, 700 dirs, owned by the service user, env file owned by root", async () => {
    const { report } = await auditServiceFixture("openclaw-good", ["credentials"]);
    for (const id of ["walk", "world_readable", "group_readable", "owner"])
      expect(one(report.findings, `credentials.${id}`).status, id).toBe("pass");
    expect(one(report.findings, "credentials.walk").evidence.source).toContain("/etc/openclaw/gateway.env");
  });

  it("reports an unreadable secret dir as an error naming it and keeps walking (EACCES for real)", async () => {
    if (!existsSync(path.join(REPO, "dist/cli/main.js")))
      throw new Error("run npm run build first: this test runs dist/");
    const { root } = loadServiceFixture("openclaw-good");
    chmodSync(root, 0o755);
    chmodSync(path.join(root, "home/openclaw/.openclaw/credentials"), 0o000);
    // Root reads through mode 000, so drop to the service user to meet the kernel's refusal.
    const argv =
      process.getuid?.() === 0
        ? [
            "setpriv",
            `--reuid=${SERVICE_UID_AS_ROOT}`,
            `--regid=${SERVICE_UID_AS_ROOT}`,
            "--clear-groups",
            process.execPath,
          ]
        : [process.execPath];
    // The service user must reach the CLI to run it, wherever this checkout lives.
    const restore = process.getuid?.() === 0 ? searchableByOthers(REPO) : () => {};
    let r: Awaited<ReturnType<typeof runCommand>>;
    try {
      r = await runCommand([...argv, CLI, "audit", "--root", root, "--layer", "credentials", "--json"], {
        timeoutMs: 15_000,
      });
    } finally {
      restore();
    }
    chmodSync(path.join(root, "home/openclaw/.openclaw/credentials"), 0o700);
    expect(r.stderr).toBe("");
    const report = JSON.parse(r.stdout) as AuditReport;
    const err = one(report.findings, "credentials.walk");
    expect(err.status).toBe("error");
    expect(err.evidence.source).toBe("/home/openclaw/.openclaw/credentials");
    expect(err.evidence.excerpt).toContain("permission denied");
    // The rest of the tree was still checked: the 0000 dir itself is no finding, the others pass.
    expect(one(report.findings, "credentials.world_readable").status).toBe("pass");
    expect(one(report.findings, "credentials.owner").status).toBe("pass");
  });

  it("classifies OpenClaw's secret paths", () => {
    const yes: Array<[string, "file" | "dir"]> = [
      ["", "dir"],
      ["credentials", "dir"],
      ["credentials/sub", "dir"],
      ["agents/main/agent", "dir"],
      ["agents/main/sessions", "dir"],
      ["state", "dir"],
      ["openclaw.json", "file"],
      ["secrets.json", "file"],
      ["credentials/whatsapp/creds", "file"],
      ["agents/a/agent/auth-profiles.json", "file"],
      ["agents/a/agent/memory.sqlite", "file"],
      ["agents/a/sessions/2026/s.jsonl", "file"],
      ["state/gateway.sqlite-wal", "file"],
      ["state/openclaw.sqlite", "file"],
      ["workspace/.env.local", "file"],
      ["workspace/x/.credentials.json", "file"],
      ["extensions/prod.env", "file"],
    ];
    const no: Array<[string, "file" | "dir"]> = [
      ["workspace", "dir"],
      ["agents", "dir"],
      ["agents/main/agent/cache", "dir"],
      ["workspace/AGENTS.md", "file"],
      ["logs/gateway.log", "file"],
    ];
    for (const [p, t] of yes) expect(isSecretInStateDir(p, t), p).toBe(true);
    for (const [p, t] of no) expect(isSecretInStateDir(p, t), p).toBe(false);
    expect(shellQuote("/a/my key's.json")).toBe("'/a/my key'\\''s.json'");
    expect(shellQuote("/a/plain.json")).toBe("/a/plain.json");
  });
});
