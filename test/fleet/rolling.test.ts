import { describe, expect, it } from "vitest";
import { ClawguardError } from "../../src/errors.js";
import { auditFleet } from "../../src/fleet/audit.js";
import { hardenStep } from "../../src/fleet/harden.js";
import { rollbackFleet } from "../../src/fleet/rollback.js";
import { rollFleet, type RolloutOptions } from "../../src/fleet/rolling.js";
import { parseSerial } from "../../src/fleet/rollout.js";
import { context, FakeConnector, hardenHost, target } from "./fake-hosts.js";
import { finding, report } from "./reports-fixture.js";

const opts = (o: Partial<RolloutOptions> = {}): RolloutOptions => ({
  apply: true,
  serial: parseSerial("1"),
  maxFail: 0,
  forks: 10,
  applyTimeoutMs: 10_000,
  ...o,
});

const step = hardenStep({ profile: { user: "openclaw" }, healthTimeoutS: 20 });
const unreachable = new ClawguardError(
  "CG_SSH_UNREACHABLE",
  "connect to host c.lab port 22: No route to host",
);

function fleet() {
  return new FakeConnector({
    a: { clawguard: hardenHost("a", 3) },
    b: { clawguard: hardenHost("b", 2) },
    done: { clawguard: hardenHost("done", 0) },
    c: { fails: unreachable },
    d: { clawguard: hardenHost("d", 1) },
  });
}

describe("rolling harden across the fleet", () => {
  it("without --apply every host is planned and none is changed", async () => {
    const f = fleet();
    const r = await rollFleet(["a", "b", "done", "c"].map(target), context(f), step, opts({ apply: false }));
    expect(r.hosts.map((h) => [h.host, h.status, h.result.outcome])).toEqual([
      ["a", "ok", "planned"],
      ["b", "ok", "planned"],
      ["done", "ok", "unchanged"],
      ["c", "unreachable", undefined],
    ]);
    expect(r.hosts[3]!.error).toEqual({ code: "CG_SSH_UNREACHABLE", message: unreachable.reason });
    expect(f.calls.some((c) => c.argv.includes("--apply"))).toBe(false);
    // The profile checked here is what each host reads on its standard input.
    expect(f.calls[0]!.argv).toEqual(expect.arrayContaining(["--profile", "/dev/stdin"]));
  });

  it("plans every host before the first apply, one host per batch", async () => {
    const f = fleet();
    const r = await rollFleet(["a", "b", "done", "d"].map(target), context(f), step, opts());
    const firstApply = f.calls.findIndex((c) => c.argv.includes("--apply"));
    expect(
      f.calls
        .slice(0, firstApply)
        .map((c) => c.host)
        .sort(),
    ).toEqual(["a", "b", "d", "done"]);
    expect(f.calls.filter((c) => c.argv.includes("--apply")).map((c) => c.host)).toEqual(["a", "b", "d"]);
    expect(r.hosts.map((h) => h.result.outcome)).toEqual(["changed", "changed", "unchanged", "changed"]);
    expect(r.stopped).toBe(false);
    expect(f.calls.find((c) => c.argv.includes("--apply"))!.argv).toEqual(
      expect.arrayContaining(["--health-timeout", "20"]),
    );
  });

  it("a canary that fails its verification is rolled back, and the hosts after it are not touched", async () => {
    const f = fleet();
    f.hosts.a = { clawguard: hardenHost("a", 3, false) };
    const r = await rollFleet(["a", "b", "d"].map(target), context(f), step, opts());
    expect(f.commands("a")).toEqual(["harden", "harden --apply", "rollback run-a"]);
    expect(f.commands("b")).toEqual(["harden"]);
    expect(f.commands("d")).toEqual(["harden"]);
    expect(r.hosts.map((h) => h.result.outcome)).toEqual(["failed", "not-touched", "not-touched"]);
    expect(r.hosts[0]!.result.apply).toMatchObject({
      ok: false,
      runId: "run-a",
      why: expect.stringMatching(/did not answer .*healthz/),
      undo: { done: true, problems: [] },
    });
    expect(r.stopped).toBe(true);
  });

  it("--max-fail 1 lets the rollout go on after one failure and stops after the second", async () => {
    const f = fleet();
    f.hosts.a = { clawguard: hardenHost("a", 3, false) };
    f.hosts.b = { clawguard: hardenHost("b", 3, false) };
    const r = await rollFleet(["a", "b", "d"].map(target), context(f), step, opts({ maxFail: 1 }));
    expect(r.hosts.map((h) => h.result.outcome)).toEqual(["failed", "failed", "not-touched"]);
    expect(r.stopped).toBe(true);
  });

  it("a batch runs its hosts side by side and finishes before the next starts", async () => {
    const f = fleet();
    f.hosts.a = { clawguard: hardenHost("a", 3, false) };
    const r = await rollFleet(
      ["a", "b", "d"].map(target),
      context(f),
      step,
      opts({ serial: parseSerial("2") }),
    );
    // a failed in the first batch, with b beside it; d's batch never started.
    expect(r.hosts.map((h) => h.result.outcome)).toEqual(["failed", "changed", "not-touched"]);
  });

  it("fleet rollback undoes each changed host through its own run, and leaves the rest", async () => {
    const f = fleet();
    f.hosts.b = { clawguard: hardenHost("b", 3, false) };
    const r = await rollFleet(["a", "b", "done"].map(target), context(f), step, opts({ maxFail: 5 }));
    const run = { id: "R", kind: "harden" as const, startedAt: "t", params: {} };
    const undone = await rollbackFleet(run, r.hosts, context(f), () => undefined);
    expect(undone.map((h) => [h.host, h.result.outcome])).toEqual([
      ["a", "undone"],
      ["b", "nothing-to-undo"],
      ["done", "nothing-to-undo"],
    ]);
    expect(f.commands("a").at(-1)).toBe("rollback run-a");
  });
});

describe("fleet audit", () => {
  it("audits every host and keeps going past the ones it cannot reach", async () => {
    const rep = report([finding("gateway.bind", "fail", "critical")]);
    const f = new FakeConnector({
      a: { clawguard: (args) => ({ code: 1, stdout: args[0] === "audit" ? rep : "" }) },
      b: { fails: new ClawguardError("CG_HOST_TIMEOUT", "no answer within 5 s: cut") },
      c: {
        fails: new ClawguardError("CG_SSH_HOST_KEY_CHANGED", "the host key of c.lab has changed: refused"),
      },
      d: { clawguard: () => ({ code: 1, stdout: { schema: "something/else" } }) },
      e: {
        clawguard: () => ({
          code: 2,
          stdout: "",
          stderr: '{"schema":"clawguard.error/v1","code":"CG_USAGE","message":"unknown option"}',
        }),
      },
    });
    const seen: string[] = [];
    const hosts = await auditFleet(
      ["a", "b", "c", "d", "e"].map(target),
      context(f),
      { skip: ["openclaw"] },
      10,
      (h) => seen.push(h.host),
    );
    expect(seen.sort()).toEqual(["a", "b", "c", "d", "e"]);
    expect(hosts.map((h) => [h.host, h.status, h.error?.code])).toEqual([
      ["a", "ok", undefined],
      ["b", "unreachable", "CG_HOST_TIMEOUT"],
      ["c", "error", "CG_SSH_HOST_KEY_CHANGED"],
      ["d", "error", "CG_REMOTE_FAILED"],
      ["e", "error", "CG_REMOTE_FAILED"],
    ]);
    expect(hosts[0]!.result?.report).toEqual(rep);
    expect(hosts[0]!.result?.clawguard).toMatchObject({ via: "installed", version: "0.1.0" });
    expect(hosts[3]!.error?.message).toMatch(/answered with something else than its report/);
    expect(hosts[4]!.error?.message).toBe("clawguard audit --json: unknown option (CG_USAGE)");
    expect(f.calls.find((c) => c.host === "a")!.argv).toEqual([
      "timeout",
      "-k",
      "5",
      "10",
      "/usr/local/bin/clawguard",
      "audit",
      "--json",
      "--skip",
      "openclaw",
    ]);
  });
});
