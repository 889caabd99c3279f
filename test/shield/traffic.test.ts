import { describe, expect, it } from "vitest";
import { HISTORY_MINUTES, TrafficHistory } from "../../src/shield/admin/traffic.js";
import { record } from "./log-records.js";

const MINUTE = 60_000;

describe("the last hour of traffic the dashboard charts", () => {
  it("counts requests and bytes per agent and minute, the current minute last", () => {
    let now = 1000 * MINUTE + 5_000;
    const h = new TrafficHistory(() => now);
    h.record(record(0, { agent: "scout", decision: "allowed", bytesUp: 10, bytesDown: 100 }));
    now += MINUTE;
    h.record(record(1, { agent: "scout", decision: "allowed", bytesUp: 1, bytesDown: 2 }));
    h.record(record(2, { agent: "scout", decision: "allowed", bytesUp: 1, bytesDown: 2 }));
    h.record(record(3, { agent: "rover", decision: "allowed", bytesUp: 7, bytesDown: 0 }));
    const v = h.view();
    expect(v.minutes).toBe(HISTORY_MINUTES);
    expect(v.since).toBe((1001 - HISTORY_MINUTES + 1) * MINUTE);
    expect(v.agents.map((a) => a.id)).toEqual(["rover", "scout"]);
    const scout = v.agents[1]!;
    expect(scout.requests.slice(-2)).toEqual([1, 2]);
    expect(scout.bytesUp.slice(-2)).toEqual([10, 2]);
    expect(scout.bytesDown.slice(-2)).toEqual([100, 4]);
    expect(scout.requests.reduce((a, b) => a + b)).toBe(3);
  });

  it("forgets what is older than an hour", () => {
    let now = 5000 * MINUTE;
    const h = new TrafficHistory(() => now);
    h.record(record(0, { agent: "scout", decision: "denied", host: "old.test", port: 443 }));
    now += (HISTORY_MINUTES - 1) * MINUTE;
    expect(h.view().agents[0]!.requests[0]).toBe(1);
    expect(h.view().refused.map((r) => r.destination)).toEqual(["old.test:443"]);
    now += MINUTE;
    h.record(record(1, { agent: "rover", decision: "allowed" }));
    expect(h.view().agents.map((a) => a.id)).toEqual(["rover"]);
    expect(h.view().refused).toEqual([]);
  });

  it("ranks refused destinations by count, with the agents refused", () => {
    const h = new TrafficHistory(() => 77 * MINUTE);
    const deny = (agent: string, host: string, port = 443) =>
      h.record(record(0, { agent, decision: "denied", host, port }));
    for (let i = 0; i < 3; i++) deny("scout", "pastebin.com");
    deny("rover", "pastebin.com");
    deny("rover", "2001:db8::1", 22);
    for (let i = 0; i < 2; i++) deny("scout", "evil.test", 80);
    // Allowed and audited requests are no refusals; a 407 without a target names nothing.
    h.record(record(0, { agent: "scout", decision: "allowed", host: "ok.test" }));
    h.record(record(0, { agent: "scout", decision: "audited", host: "audit.test" }));
    h.record(record(0, { agent: null, decision: "denied", host: "" }));
    expect(h.view().refused).toEqual([
      { destination: "pastebin.com:443", count: 4, agents: ["rover", "scout"] },
      { destination: "evil.test:80", count: 2, agents: ["scout"] },
      { destination: "[2001:db8::1]:22", count: 1, agents: ["rover"] },
    ]);
    expect(h.view(1).refused).toHaveLength(1);
    expect(h.view().agents.map((a) => a.id)).toEqual(["(unknown)", "rover", "scout"]);
  });
});
