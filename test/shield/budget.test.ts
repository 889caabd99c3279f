import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { parseShieldConfig } from "../../src/shield/config.js";
import { Policy } from "../../src/shield/policy/index.js";
import { budgetAction, BudgetMeter, overrunReason, overrunRule } from "../../src/shield/admission/budget.js";
import type { Agent, BudgetLimit } from "../../src/shield/types.js";
import { parseDuration, parseSize } from "../../src/shield/units.js";

const HOUR = 3_600_000;

const limit = (l: Partial<BudgetLimit>): BudgetLimit => ({
  scope: "agent:a",
  windowMs: HOUR,
  text: "test",
  ...l,
});

/** A meter on a clock the test moves. */
function meter(start = 1_000_000) {
  const clock = { now: start };
  return { m: new BudgetMeter(() => clock.now), clock };
}

describe("sizes and durations", () => {
  it("reads sizes with decimal and binary units, and refuses the rest", () => {
    expect(parseSize(65536)).toBe(65536);
    expect(parseSize("500KB")).toBe(500_000);
    expect(parseSize("50 MB")).toBe(50_000_000);
    expect(parseSize("1.5GiB")).toBe(1.5 * 1024 ** 3);
    expect(parseSize("2kib")).toBe(2048);
    for (const bad of [0, -1, 1.5, "", "MB", "10XB", "1e6", "-5MB", "0.0001B", Number.MAX_VALUE]) {
      expect(parseSize(bad), String(bad)).toBeNull();
    }
  });

  it("reads durations", () => {
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration(" 1.5h ")).toBe(1.5 * HOUR);
    expect(parseDuration("7d")).toBe(7 * 86_400_000);
    for (const bad of ["", "1", "h", "1y", "-1h"]) expect(parseDuration(bad), bad).toBeNull();
  });
});

describe("budget meter", () => {
  it("counts requests against a request budget and refuses the one past it, counting nothing", () => {
    const { m } = meter();
    const limits = [limit({ requests: 3 })];
    for (let i = 0; i < 3; i++) expect(m.admit("a", limits, 0, true)).toBeNull();
    const over = m.admit("a", limits, 0, true);
    expect(over).toMatchObject({ kind: "requests", limit: { requests: 3 } });
    expect(m.usage("a", limits)[0]?.requests).toEqual({ used: 3, limit: 3 });
    // Another agent has its own count.
    expect(m.admit("b", limits, 0, true)).toBeNull();
  });

  it("lets bytes through up to an upload budget, cuts the piece that would pass it, and then refuses new tunnels", () => {
    const { m } = meter();
    const limits = [limit({ uploadBytes: 1000 })];
    expect(m.admit("a", limits, 100, true)).toBeNull();
    expect(m.spend("a", limits, 800, true)).toBeNull();
    expect(m.spend("a", limits, 101, true)).toMatchObject({ kind: "upload" });
    // The cut spent the rest: even a CONNECT, whose head sends nothing, is refused now.
    expect(m.usage("a", limits)[0]?.upload).toEqual({ used: 1000, limit: 1000 });
    expect(m.admit("a", limits, 0, true)).toMatchObject({ kind: "upload" });
    expect(m.spend("a", limits, 1, true)).toMatchObject({ kind: "upload" });
  });

  it("refuses a request whose head alone would pass the upload budget", () => {
    const { m } = meter();
    const limits = [limit({ uploadBytes: 1000, requests: 10 })];
    expect(m.admit("a", limits, 1001, true)).toMatchObject({ kind: "upload" });
    expect(m.usage("a", limits)[0]).toMatchObject({ upload: { used: 0 }, requests: { used: 0 } });
  });

  it("counts everything in audit mode and still says which budget is overrun", () => {
    const { m } = meter();
    const limits = [limit({ uploadBytes: 10, requests: 1 })];
    expect(m.admit("a", limits, 0, false)).toBeNull();
    expect(m.admit("a", limits, 0, false)).toMatchObject({ kind: "requests" });
    expect(m.spend("a", limits, 50, false)).toMatchObject({ kind: "upload" });
    expect(m.usage("a", limits)[0]).toMatchObject({ upload: { used: 50 }, requests: { used: 2 } });
  });

  it("holds every budget of every level, the tightest first to run out", () => {
    const { m } = meter();
    const limits = [
      limit({ scope: "global", uploadBytes: 10_000 }),
      limit({ scope: "tier:crew", uploadBytes: 500, windowMs: 60_000 }),
    ];
    expect(m.spend("a", limits, 500, true)).toBeNull();
    const over = m.spend("a", limits, 1, true);
    expect(over?.limit.scope).toBe("tier:crew");
    expect(overrunRule(over!)).toBe("tier:crew budget");
    expect(overrunReason(over!)).toBe("upload budget spent (test, tier:crew)");
  });

  it("holds a shared budget against all its agents together, beside each one's own", () => {
    const { m } = meter();
    const pool = limit({ scope: "fleet:acme", shared: true, uploadBytes: 1000, requests: 3 });
    const own = limit({ scope: "agent:a", uploadBytes: 600 });
    const a = [pool, own];
    const b = [pool];
    expect(m.spend("a", a, 500, true)).toBeNull();
    expect(m.spend("b", b, 400, true)).toBeNull();
    // a has room of its own (100) but the pool has 100 left for both.
    expect(m.spend("b", b, 101, true)?.limit.scope).toBe("fleet:acme");
    expect(m.usage("a", a)).toMatchObject([
      { scope: "fleet:acme", shared: true, upload: { used: 1000, limit: 1000 } },
      { scope: "agent:a", shared: false, upload: { used: 500, limit: 600 } },
    ]);
    // The cut spent the pool: a's next tunnel is refused by it, not by its own budget.
    expect(m.admit("a", a, 0, true)?.limit.scope).toBe("fleet:acme");
    // Requests are pooled too.
    const { m: m2 } = meter();
    expect(m2.admit("a", a, 0, true)).toBeNull();
    expect(m2.admit("b", b, 0, true)).toBeNull();
    expect(m2.admit("c", b, 0, true)).toBeNull();
    expect(m2.admit("a", a, 0, true)).toMatchObject({ kind: "requests", limit: { scope: "fleet:acme" } });
    expect(m2.usage("c", b)[0]?.requests).toEqual({ used: 3, limit: 3 });
  });

  it("frees what was sent once the window has moved past it", () => {
    const { m, clock } = meter();
    const limits = [limit({ requests: 2, windowMs: 60_000 })];
    expect(m.admit("a", limits, 0, true)).toBeNull();
    clock.now += 30_000;
    expect(m.admit("a", limits, 0, true)).toBeNull();
    expect(m.admit("a", limits, 0, true)).not.toBeNull();
    // The first request leaves the window a minute (and at most a slot) after it was made.
    clock.now += 31_000;
    expect(m.admit("a", limits, 0, true)).toBeNull();
    expect(m.admit("a", limits, 0, true)).not.toBeNull();
    clock.now += 10 * 60_000;
    expect(m.usage("a", limits)[0]?.requests?.used).toBe(0);
  });

  it("never lets more than the budget through in any window, whatever the timing", () => {
    // Random sends at random times; every span of one window is then summed from what went through.
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const windowMs = 60_000;
    const budget = 10_000;
    const { m, clock } = meter(0);
    const limits = [limit({ uploadBytes: budget, windowMs })];
    const through: Array<{ t: number; n: number }> = [];
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      clock.now += Math.floor(random() * 400);
      const n = 1 + Math.floor(random() * 300);
      if (m.spend("a", limits, n, true) === null) through.push({ t: clock.now, n });
      else refused += 1;
    }
    expect(refused).toBeGreaterThan(0);
    expect(through.length).toBeGreaterThan(1000);
    let worst = 0;
    let from = 0;
    let sum = 0;
    for (const s of through) {
      sum += s.n;
      while (through[from]!.t <= s.t - windowMs) sum -= through[from++]!.n;
      worst = Math.max(worst, sum);
    }
    expect(worst).toBeLessThanOrEqual(budget);
    // And it is a budget, not a trickle: most of it is usable.
    expect(worst).toBeGreaterThan(budget * 0.9);
  });
});

describe("budget records", () => {
  it("tells refusals, cuts and audits by a budget from every other record", () => {
    const rec = (decision: string, rule: string | null, reason: string) =>
      budgetAction({ decision, rule, reason });
    expect(rec("denied", "tier:crew budget", "refused: upload budget spent (x)")).toEqual({
      scope: "tier:crew",
      action: "refused",
    });
    expect(rec("denied", "agent:a budget", "cut: upload budget spent (x)")).toEqual({
      scope: "agent:a",
      action: "cut",
    });
    expect(rec("audited", "global budget", "audit: request budget spent (x)")).toEqual({
      scope: "global",
      action: "audited",
    });
    expect(rec("denied", "tier:crew allow x.test", "cut: not a budget")).toBeNull();
    expect(rec("denied", null, "no rule allows this destination")).toBeNull();
  });
});

describe("budgets in shield.yaml", () => {
  const base = (extra: string) => `
listen: 127.0.0.1:3128
log: { path: ./shield.db }
${extra}`;

  it("gives each agent the budgets of its levels, global first", () => {
    const cfg = parseShieldConfig(
      base(`
budget: { upload: 1GB, window: 1d }
tiers:
  crew: { allow: [a.test], budget: { upload: 50MB, requests: 1000 } }
fleets:
  acme: { budget: { requests: 100, window: 10m, shared: true } }
agents:
  - { id: scout, tier: crew, fleet: acme, sources: [10.0.0.1/32], budget: { upload: 64KiB, window: 30s } }
  - { id: plain, sources: [10.0.0.2/32] }
`),
      "shield.yaml",
    );
    const policy = Policy.compile(cfg, { endpoints: [] });
    const scout = policy.agent("scout") as Agent;
    expect(policy.budgets(scout)).toEqual([
      { scope: "global", uploadBytes: 1e9, windowMs: 86_400_000, text: "upload 1GB per 1d" },
      {
        scope: "tier:crew",
        uploadBytes: 50e6,
        requests: 1000,
        windowMs: HOUR,
        text: "upload 50MB, 1000 requests per 1h",
      },
      {
        scope: "fleet:acme",
        requests: 100,
        windowMs: 600_000,
        shared: true,
        text: "100 requests per 10m, shared",
      },
      { scope: "agent:scout", uploadBytes: 65536, windowMs: 30_000, text: "upload 64KiB per 30s" },
    ]);
    expect(policy.budgets(policy.agent("plain") as Agent)).toEqual([
      { scope: "global", uploadBytes: 1e9, windowMs: 86_400_000, text: "upload 1GB per 1d" },
    ]);
  });

  it.each([
    ["budget: { upload: 10XB }", 4, "budget.upload", /"10XB" is not a size/],
    ["budget: { upload: 0 }", 4, "budget.upload", /not a size in bytes above zero/],
    ["budget: { requests: 10, window: 0s }", 4, "budget.window", /not a window from 1s to 7d/],
    ["budget: { requests: 10, window: 8d }", 4, "budget.window", /not a window/],
    ["budget: { window: 1h }", 4, "budget", /needs upload, requests or both/],
    ["budget: { requests: -1 }", 4, "budget.requests", /./],
    ["budget: { uploads: 1MB }", 4, "budget.uploads", /unknown key "uploads"/],
    [
      "agents:\n  - { id: a, sources: [10.0.0.1/32], budget: { requests: 1, shared: true } }",
      5,
      "agents[0].budget.shared",
      /shared is for global, tier and fleet budgets/,
    ],
    ["tiers:\n  crew: { budget: { upload: lots } }", 5, "tiers.crew.budget.upload", /"lots" is not a size/],
    [
      "agents:\n  - { id: a, sources: [10.0.0.1/32], budget: { requests: 1, window: soon } }",
      5,
      "agents[0].budget.window",
      /"soon" is not a window/,
    ],
  ])("refuses %s with its line and key", (extra, line, key, reason) => {
    let err: unknown;
    try {
      parseShieldConfig(base(extra), "shield.yaml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problem = (err as ConfigError).problems[0]!;
    expect(problem.keyPath).toBe(key);
    expect(problem.line).toBe(line);
    expect(problem.reason).toMatch(reason);
  });
});
