import { chmodSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runAudit } from "../../src/audit/audit.js";
import { LAYERS } from "../../src/checks/finding.js";
import { changePaths } from "../../src/change/change.js";
import { gatherPlanFacts } from "../../src/harden/facts.js";
import { harden, planFor } from "../../src/harden/harden.js";
import { planHarden } from "../../src/harden/plan.js";
import { validateProfile } from "../../src/harden/profile.js";
import { rollbackRun } from "../../src/change/rollback.js";
import { FactContext } from "../../src/host/context.js";
import { parseUnitFile } from "../../src/facts/units.js";
import { LocalHost } from "../../src/host/host.js";
import { LocalWriter } from "../../src/host/writer.js";
import { loadFixture, one } from "../helpers/fixture.js";
import { classicGuide } from "./guide.js";
import { snapshot, tempDir } from "./tree.js";

// usermod (a command, not a file) would fix the guide's login shell; it cannot run in a copy.
const profile = validateProfile({ skip: ["user"] });

describe("harden on the classic guide's server (a fixture copy, no root)", () => {
  it("plans SSH's real port first in the firewall and never the gateway port", async () => {
    const host = new LocalHost(classicGuide(), { isRoot: false });
    const { plan } = await planFor(host, profile);
    const ufw = plan.deferred.flatMap((c) =>
      c.kind === "command" && c.argv[0] === "ufw" ? [c.argv.join(" ")] : [],
    );
    expect(ufw[0]).toBe("ufw allow 2222/tcp");
    expect(ufw.join("\n")).not.toContain("18789");
    expect(plan.changes.some((c) => c.kind === "command" && c.live)).toBe(false);
  });

  it("apply fixes what it says it fixes, the audit agrees, and a second plan is empty", async () => {
    const root = classicGuide();
    const host = new LocalHost(root, { isRoot: false });
    const report = await harden(host, new LocalWriter(host), {
      profile,
      apply: true,
      stateDir: tempDir("state"),
    });
    expect(report.error).toBeUndefined();
    expect(report.applied).toBe(true);
    const claimed = new Set(report.changes.flatMap((c) => c.fixes));
    expect(claimed.size).toBeGreaterThan(10);
    for (const id of claimed) expect(report.fixed, id).toContain(id);

    const after = await runAudit(host);
    for (const id of [
      "tmp.persistent_options",
      "tmp.apt_tempdir",
      "updates.enabled",
      "ssh.x11_forwarding",
      "systemd.system_call_filter",
    ])
      expect(one(after.findings, id).status, id).toBe("pass");
    // The new unit keeps the old unit's environment and runs the same launcher.
    const unit = parseUnitFile(
      readFileSync(path.join(root, "etc/systemd/system/openclaw.service"), "utf8"),
    ).Service!;
    expect(unit.Environment).toContain("NODE_ENV=production");
    expect(unit.ExecStart).toEqual(["/usr/bin/openclaw gateway run --bind loopback --port 18789"]);
    expect(unit.Group).toEqual(["openclaw"]);

    const again = await planFor(host, profile);
    expect(again.settled.map((s) => s.change)).toEqual([]);
  });

  it("rollback puts back every byte, mode and owner", async () => {
    const root = classicGuide();
    const state = tempDir("state");
    const before = snapshot(root);
    const host = new LocalHost(root, { isRoot: false });
    const writer = new LocalWriter(host);
    const report = await harden(host, writer, { profile, apply: true, stateDir: state });
    expect(report.changes.length).toBeGreaterThan(5);
    expect(snapshot(root)).not.toEqual(before);
    const res = await rollbackRun(host, writer, state);
    expect(res.problems).toEqual([]);
    expect(snapshot(root)).toEqual(before);
  });
});

describe("harden where the agent runs as root (the quick-start way)", () => {
  it("plans a system user, moves the state dir to it, and points a sandboxed unit there", async () => {
    const root = loadFixture("openclaw-careless");
    const host = new LocalHost(root, { isRoot: false });
    const { plan, audit } = await planFor(host, validateProfile({}));
    const actions = plan.changes.map((c) =>
      c.kind === "command"
        ? c.argv.join(" ")
        : c.kind === "move"
          ? `mv ${c.from} ${c.to}`
          : `${c.kind} ${"path" in c ? c.path : ""}`,
    );
    const useradd = actions.findIndex((a) =>
      a.startsWith("useradd --system --user-group --create-home --home-dir /home/openclaw"),
    );
    const move = actions.indexOf("mv /root/.openclaw /home/openclaw/.openclaw");
    expect(useradd).toBeGreaterThanOrEqual(0);
    expect(move).toBeGreaterThan(useradd);
    // Names with spaces are one path, not two.
    expect(actions).toContain("chmod /root/.openclaw/credentials/my key.json");
    // The owner changes in one walk when the change runs, not per entry seen at plan time.
    expect(actions).toContain("chown-tree /home/openclaw/.openclaw");
    expect(actions.filter((a) => a.startsWith("chown "))).toEqual([]);
    // On the running system, the gateway is stopped before anything in its state dir is touched,
    // and started last when the run is undone.
    const live = planHarden({
      profile: validateProfile({}),
      findings: audit.findings,
      facts: { ...(await gatherPlanFacts(new FactContext(host))), live: true },
    }).changes;
    const stop = live.findIndex(
      (c) => c.kind === "command" && c.argv.join(" ") === "systemctl stop openclaw.service",
    );
    const firstTouch = live.findIndex((c) => changePaths(c).some((p) => p.startsWith("/root/.openclaw")));
    expect(stop).toBeGreaterThanOrEqual(0);
    expect(stop).toBeLessThan(firstTouch);
    const stopChange = live[stop];
    expect(stopChange?.kind === "command" && stopChange.undoLast && stopChange.undo).toEqual([
      "systemctl",
      "start",
      "openclaw.service",
    ]);
    expect(plan.deferred).toContainEqual(stopChange);
    const unitChange = plan.changes.find(
      (c) => c.kind === "file" && c.path === "/etc/systemd/system/openclaw.service",
    );
    const unit = parseUnitFile(unitChange?.kind === "file" ? unitChange.content : "").Service!;
    expect(unit.User).toEqual(["openclaw"]);
    expect(unit.Environment).toContain("OPENCLAW_STATE_DIR=/home/openclaw/.openclaw");
    expect(unit.Environment).toContain("HTTP_PROXY=http://10.0.0.1:3128");
    expect(unit.ExecStart).toEqual(["/usr/bin/openclaw gateway run --bind loopback --port 18789"]);
    // The leftover user unit is set aside, so two gateways do not fight over the port.
    expect(actions).toContain(
      "mv /root/.config/systemd/user/openclaw-gateway.service /root/.config/systemd/user/openclaw-gateway.service.disabled-by-clawguard",
    );
    const config = plan.changes.find(
      (c) => c.kind === "file" && c.path === "/home/openclaw/.openclaw/openclaw.json",
    );
    expect(config?.kind === "file" && config.owner).toBe("openclaw");
    expect(config?.kind === "file" && config.content).toContain("// written by the quick-start guide");
    expect(config?.kind === "file" && config.content).toMatch(/"token": "[0-9a-f]{64}"/);
    expect(config?.fixes).toEqual(expect.arrayContaining(["gateway.bind_loopback", "gateway.auth_enabled"]));
  });

  it("never shows the new token or the old secrets in its report", async () => {
    const root = loadFixture("openclaw-careless");
    const host = new LocalHost(root, { isRoot: false });
    const report = await harden(host, new LocalWriter(host), {
      profile: validateProfile({}),
      apply: false,
    });
    const config = report.changes.find(
      (c) => c.change.kind === "file" && c.change.path.endsWith("openclaw.json"),
    );
    expect(config?.diff).toContain('"token": "<redacted>"');
    const json = JSON.stringify(report);
    expect(json).not.toMatch(/[0-9a-f]{64}/);
    expect(json).toContain("bytes, not shown");
  });

  it("refuses to apply that plan in a copy without root, and changes nothing", async () => {
    const root = loadFixture("openclaw-careless");
    const before = snapshot(root);
    const host = new LocalHost(root, { isRoot: false });
    const report = await harden(host, new LocalWriter(host), {
      profile: validateProfile({}),
      apply: true,
      stateDir: tempDir("state"),
    });
    expect(report.applied).toBe(false);
    expect(report.error).toMatch(/useradd .* cannot run in .* without root\. Nothing was changed/);
    expect(snapshot(root)).toEqual(before);
    expect(statSync(path.join(root, "root/.openclaw/credentials/my key.json")).mode & 0o777).toBe(0o644);
  });
});

describe("harden of credentials alone", () => {
  it("makes every secret dir 700 and file 600, names with spaces included, and only once", async () => {
    const root = loadFixture("openclaw-good");
    const state = path.join(root, "home/openclaw/.openclaw");
    chmodSync(path.join(state, "credentials"), 0o755);
    chmodSync(path.join(state, "credentials/my key.json"), 0o644);
    chmodSync(path.join(state, "openclaw.json"), 0o664);
    const before = snapshot(root);
    const host = new LocalHost(root, { isRoot: false });
    const writer = new LocalWriter(host);
    const only = validateProfile({ skip: LAYERS.filter((l) => l !== "credentials") });
    const first = await runAudit(host, { layers: ["credentials"] });
    expect(one(first.findings, "credentials.world_readable").status).toBe("fail");

    const stateDir = tempDir("state");
    const report = await harden(host, writer, { profile: only, apply: true, stateDir });
    expect(report.error).toBeUndefined();
    expect(report.changes.map((c) => c.action)).toEqual([
      `chmod 0700 ${"/home/openclaw/.openclaw/credentials"}`,
      `chmod 0600 '/home/openclaw/.openclaw/credentials/my key.json'`,
      `chmod 0600 /home/openclaw/.openclaw/openclaw.json`,
    ]);
    const after = await runAudit(host, { layers: ["credentials"] });
    expect(one(after.findings, "credentials.world_readable").status).toBe("pass");
    expect(one(after.findings, "credentials.group_readable").status).toBe("pass");
    expect((await planFor(host, only)).settled).toEqual([]);

    await rollbackRun(host, writer, stateDir);
    expect(snapshot(root)).toEqual(before);
  });
});
