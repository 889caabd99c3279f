import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { AuditReport } from "../../src/audit/audit.js";
import { runCommand } from "../../src/host/host.js";
import { loadFixture } from "../helpers/fixture.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CLI = path.join(REPO, "bin/clawguard.js");

async function audit(args: string[]): Promise<{ code: number; report?: AuditReport; stderr: string }> {
  const r = await runCommand([process.execPath, CLI, "audit", "--json", ...args], { timeoutMs: 30_000 });
  return {
    code: r.code,
    report: r.stdout ? (JSON.parse(r.stdout) as AuditReport) : undefined,
    stderr: r.stderr,
  };
}

describe("clawguard audit --layer and --skip", () => {
  it("leaves skipped layers out, also from the layers asked for", async () => {
    const root = loadFixture("classic-guide");
    const all = await audit(["--root", root]);
    const skipped = await audit(["--root", root, "--skip", "openclaw", "tmp"]);
    const layersOf = (r?: AuditReport) => new Set(r?.findings.map((f) => f.layer));
    expect(layersOf(all.report)).toContain("tmp");
    expect(layersOf(skipped.report)).not.toContain("tmp");
    expect(layersOf(skipped.report)).not.toContain("openclaw");
    expect([...layersOf(all.report)].filter((l) => l !== "tmp" && l !== "openclaw").sort()).toEqual(
      [...layersOf(skipped.report)].sort(),
    );
    const both = await audit(["--root", root, "--layer", "ssh", "tmp", "--skip", "tmp.apt_tempdir"]);
    expect([...layersOf(both.report)].sort()).toEqual(["ssh", "tmp"]);
    expect(both.report?.findings.map((f) => f.id)).not.toContain("tmp.apt_tempdir");
  });

  it("refuses a layer it does not know, naming the choices", async () => {
    const r = await audit(["--skip", "firewal"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--skip.*firewal/);
    expect(r.stderr).toContain("firewall");
  });
});
