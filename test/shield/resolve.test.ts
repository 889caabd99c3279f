import { describe, expect, it } from "vitest";
import {
  resolveChecked,
  reusingResolver,
  systemResolver,
  type ResolvedAddress,
} from "../../src/shield/net/resolve.js";
import type { Decision } from "../../src/shield/types.js";

/** A resolver that answers from a table the test changes, and counts the lookups it served. */
function table(initial: Record<string, string>) {
  const answers = { ...initial };
  let lookups = 0;
  return {
    answers,
    get lookups() {
      return lookups;
    },
    resolve: async (host: string): Promise<ResolvedAddress[]> => {
      lookups += 1;
      await new Promise((r) => setTimeout(r, 5));
      const address = answers[host];
      if (!address) throw Object.assign(new Error(`no such name ${host}`), { code: "ENOTFOUND" });
      return [{ address, family: 4 }];
    },
  };
}

const denyUnder10 = (a: string): Decision =>
  a.startsWith("10.")
    ? { verdict: "deny", rule: "deny 10/8", reason: "private", audited: false, mode: "enforce" }
    : { verdict: "allow", rule: "allow", reason: "allowed", audited: false, mode: "enforce" };

describe("reusing resolver", () => {
  it("serves concurrent and repeated requests for a name with one lookup, and looks again after the window", async () => {
    const t = table({ "api.example": "203.0.113.7" });
    const r = reusingResolver(t.resolve, 200);
    const first = await Promise.all(Array.from({ length: 20 }, () => r("api.example")));
    expect(first.every((a) => a[0]!.address === "203.0.113.7")).toBe(true);
    expect(await r("api.example")).toEqual([{ address: "203.0.113.7", family: 4 }]);
    expect(t.lookups).toBe(1);
    await new Promise((res) => setTimeout(res, 250));
    t.answers["api.example"] = "203.0.113.8";
    expect((await r("api.example"))[0]!.address).toBe("203.0.113.8");
    expect(t.lookups).toBe(2);
  });

  it("does not reuse a failed lookup", async () => {
    const t = table({});
    const r = reusingResolver(t.resolve, 10_000);
    await expect(r("later.example")).rejects.toThrow(/no such name/);
    t.answers["later.example"] = "203.0.113.9";
    expect((await r("later.example"))[0]!.address).toBe("203.0.113.9");
    expect(t.lookups).toBe(2);
  });

  it("still judges reused answers on every use: a name rebound to a denied address is refused once looked up again", async () => {
    const t = table({ "rebind.example": "203.0.113.10" });
    const r = reusingResolver(t.resolve, 50);
    const target = { host: "rebind.example", port: 443 };
    expect(await resolveChecked(target, denyUnder10, r)).toMatchObject({
      ok: true,
      address: "203.0.113.10",
    });
    t.answers["rebind.example"] = "10.0.0.5";
    await new Promise((res) => setTimeout(res, 80));
    expect(await resolveChecked(target, denyUnder10, r)).toMatchObject({
      ok: false,
      refused: true,
      address: "10.0.0.5",
    });
  });

  it("resolves localhost through the system resolver to a loopback address", async () => {
    const answers = await systemResolver("localhost");
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.every((a) => a.address === "127.0.0.1" || a.address === "::1")).toBe(true);
  });
});
