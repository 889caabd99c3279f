import { mkdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runAudit } from "../../src/audit/audit.js";
import type { Finding } from "../../src/checks/finding.js";
import { LocalHost } from "../../src/host/host.js";
import { LocalWriter } from "../../src/host/writer.js";
import { applyLockdown, rollbackLockdown } from "../../src/lockdown/apply.js";
import { planLockdown } from "../../src/lockdown/plan.js";
import { makeTree } from "./tree.js";

const IDS = [
  "egress.proxy_configured",
  "egress.unit_ip_filter",
  "egress.lockdown_persisted",
  "egress.lockdown_enabled",
];

async function egress(root: string): Promise<Record<string, Finding["status"]>> {
  const report = await runAudit(new LocalHost(root), { layers: ["egress"] });
  return Object.fromEntries(report.findings.filter((f) => IDS.includes(f.id)).map((f) => [f.id, f.status]));
}

describe("lockdown and the audit's egress layer", () => {
  it("what lockdown writes is what the audit asks for, and rollback undoes it", async () => {
    const root = makeTree();
    mkdirSync(path.join(root, "home/openclaw/.openclaw"), { recursive: true });
    const before = await egress(root);
    expect(Object.keys(before).sort()).toEqual([...IDS].sort());
    expect(Object.values(before)).not.toContain("pass");
    const host = new LocalHost(root);
    const writer = new LocalWriter(host);
    const plan = await planLockdown(host, {
      shield: { host: "10.0.0.2", port: 3128, addresses: ["10.0.0.2"], pinned: false },
      allowOut: [],
      dns: [],
      dhcp: false,
      log: true,
      forward: true,
      backend: "nft",
    });
    await applyLockdown(host, writer, plan, { live: false, systemd: false });
    expect(await egress(root)).toEqual(Object.fromEntries(IDS.map((id) => [id, "pass"])));
    await rollbackLockdown(host, writer, { live: false, systemd: false });
    expect(await egress(root)).toEqual(before);
  }, 60_000);
});
