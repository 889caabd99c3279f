import { describe, expect, it } from "vitest";
import { lockdownChanges, lockdownStep } from "../../src/fleet/lockdown.js";
import { rollFleet } from "../../src/fleet/rolling.js";
import { parseSerial } from "../../src/fleet/rollout.js";
import { renderOutcome, renderPlan, renderRolloutSummary, renderRun } from "../../src/fleet/render/text.js";
import { context, FakeConnector, target, type FakeHost } from "./fake-hosts.js";

const plan = (changed: boolean) => ({
  schema: "clawguard.lockdown-plan/v1",
  files: [
    {
      path: "/etc/clawguard/lockdown.nft",
      diff: changed ? "--- a\n+++ b\n+table inet clawguard_egress" : "",
    },
    { path: "/etc/systemd/system/clawguard-lockdown.service", diff: "" },
  ],
  links: [
    {
      path: "/etc/systemd/system/multi-user.target.wants/clawguard-lockdown.service",
      target: "/x",
      before: changed ? null : "/x",
    },
  ],
  warnings: [],
});

/** A host whose lockdown plans, applies, and then holds or leaks when probed. */
function lockdownHost(holds: boolean): FakeHost["clawguard"] {
  return (args) => {
    if (args[0] === "rollback")
      return { code: 0, stdout: { schema: "clawguard.rollback/v1", runId: args[1], problems: [] } };
    if (args.includes("--verify"))
      return {
        code: holds ? 0 : 1,
        stdout: {
          ok: holds,
          probes: [
            { id: "direct", target: "1.1.1.1:443", held: holds, outcome: holds ? "refused" : "connected" },
          ],
        },
      };
    if (args.includes("--apply"))
      return {
        code: 0,
        stdout: {
          schema: "clawguard.lockdown-apply/v1",
          runId: "ld-1",
          steps: [{ ok: true, command: "nft -f" }],
        },
      };
    return { code: 0, stdout: plan(true) };
  };
}

describe("fleet lockdown", () => {
  it("counts the files it would change and the links it would make", () => {
    expect(lockdownChanges(plan(true) as never)).toBe(2);
    expect(lockdownChanges(plan(false) as never)).toBe(0);
  });

  it("verifies each host after applying, and rolls back one that leaks", async () => {
    const f = new FakeConnector({
      a: { clawguard: lockdownHost(true) },
      b: { clawguard: lockdownHost(false) },
    });
    const r = await rollFleet(["a", "b"].map(target), context(f), lockdownStep("10.0.0.1:3128"), {
      apply: true,
      serial: parseSerial("1"),
      maxFail: 0,
      forks: 4,
      applyTimeoutMs: 10_000,
    });
    expect(r.hosts.map((h) => h.result.outcome)).toEqual(["changed", "failed"]);
    expect(f.commands("b")).toEqual([
      "lockdown --shield",
      "lockdown --shield",
      "lockdown --verify",
      "rollback ld-1",
    ]);
    expect(r.hosts[1]!.result.apply).toMatchObject({
      why: "lockdown does not hold: direct 1.1.1.1:443: connected",
      undo: { done: true },
    });
    const text = renderPlan(r, "lockdown", false) + renderRolloutSummary(r, 0, false);
    expect(text).toContain(
      "a (a.lab): 2 changes\n       write /etc/clawguard/lockdown.nft\n       ln -sf /x /etc/systemd/system/multi-user.target.wants/clawguard-lockdown.service",
    );
    expect(text).toMatch(/changed: {10}a\nfailed: {11}b/);
    const stored = { id: "R1", kind: "lockdown" as const, startedAt: "T", finishedAt: "U", params: {} };
    expect(renderRun(stored, r.hosts)).toBe(
      "fleet lockdown R1, started T\n  a     changed\n  b     failed: lockdown does not hold: direct 1.1.1.1:443: connected\n",
    );
    expect(renderOutcome(r.hosts[1]!, false)).toBe(
      "failed  b: lockdown does not hold: direct 1.1.1.1:443: connected; put back as it was\n",
    );
  });
});
