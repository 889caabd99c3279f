import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SHIELD_VERSION } from "../../src/shield/version.js";
import { startAdminShield, type AdminShield } from "./admin-harness.js";

interface Family {
  type: string;
  samples: Array<{ name: string; labels: string; value: number }>;
}

/** The text exposition format, by metric family: its TYPE and its samples. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) families.set(type[1]!, { type: type[2]!, samples: [] });
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (!sample || line.startsWith("#")) continue;
    const name = sample[1]!;
    const family = [...families.keys()].find(
      (f) => name === f || ["_bucket", "_sum", "_count"].some((s) => name === f + s),
    );
    if (!family) throw new Error(`sample ${name} has no # TYPE line`);
    families.get(family)!.samples.push({ name, labels: sample[2] ?? "", value: Number(sample[3]) });
  }
  return families;
}

describe("the shield's Prometheus metrics follow the naming conventions", () => {
  let s: AdminShield;
  beforeAll(async () => {
    s = await startAdminShield("tiers:\n  crew: { allow: [example.com] }\n", { watch: false });
  });
  afterAll(() => s.close());

  const scrape = async () => parseExposition((await s.api("GET", "/metrics")).text);

  it("ends only counters in _total, and prefixes process and Node metrics once", async () => {
    const families = await scrape();
    expect(families.size).toBeGreaterThan(20);
    for (const [name, f] of families) {
      expect(name, name).toMatch(/^clawguard_shield_/);
      expect([name, name.endsWith("_total")], f.type).toEqual([name, f.type === "counter"]);
      expect(name).not.toMatch(/process_process_|nodejs_nodejs_/);
    }
    expect(families.get("clawguard_shield_process_cpu_user_seconds_total")?.type).toBe("counter");
    expect(families.get("clawguard_shield_log_dropped_total")?.type).toBe("counter");
  });

  it("carries the version in clawguard_shield_build_info", async () => {
    const info = (await scrape()).get("clawguard_shield_build_info");
    expect(info?.type).toBe("gauge");
    expect(info?.samples).toEqual([
      { name: "clawguard_shield_build_info", labels: `{version="${SHIELD_VERSION}"}`, value: 1 },
    ]);
  });

  it("counts reloads that took and reloads that were refused", async () => {
    const reloads = async () =>
      Object.fromEntries(
        (await scrape())
          .get("clawguard_shield_config_reloads_total")!
          .samples.map((x) => [x.labels, x.value]),
      );
    const before = await reloads();
    const ok = await s.api("POST", "/api/reload");
    expect(ok.status).toBe(200);
    writeFileSync(s.file, "listen: [\n");
    const bad = await s.api("POST", "/api/reload");
    expect(bad.status).toBeGreaterThanOrEqual(400);
    const after = await reloads();
    expect(after['{result="success"}']).toBe(before['{result="success"}']! + 1);
    expect(after['{result="failure"}']).toBe(before['{result="failure"}']! + 1);
  });
});
