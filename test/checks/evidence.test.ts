/**
 * Evidence names its path once: the source says where, and the excerpt does not say it again,
 * on its own examples and on every finding of the whole-system fixtures.
 */
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { gatherFacts } from "../../src/audit/audit.js";
import { pathOnce } from "../../src/checks/evidence.js";
import { LAYERS, type Finding } from "../../src/checks/finding.js";
import { judge } from "../../src/checks/judge.js";
import { FactContext } from "../../src/host/context.js";
import { LocalHost } from "../../src/host/host.js";
import { loadFixture } from "../helpers/fixture.js";

describe("pathOnce", () => {
  it("drops the source's path from the excerpt, keeping the line", () => {
    const at = (source: string, excerpt: string) => pathOnce({ source, excerpt }).excerpt;
    expect(at("/etc/x line 4", "backend = auto (/etc/x line 5); logpath = /var/log/auth.log")).toBe(
      "backend = auto (line 5); logpath = /var/log/auth.log",
    );
    expect(at("/etc/x", "HTTP_PROXY=h (/etc/x:8)")).toBe("HTTP_PROXY=h (line 8)");
    expect(at("/etc/x", "enabled (/etc/x)")).toBe("enabled");
    expect(at("/etc/x", "no security suite in /etc/x")).toBe("no security suite");
    expect(at("/etc/x:3", "/etc/x: mode 0644")).toBe("mode 0644");
  });

  it("leaves other files, longer paths and sources naming several files alone", () => {
    const same = (source: string, excerpt: string) =>
      expect(pathOnce({ source, excerpt }).excerpt).toBe(excerpt);
    same("/etc/x", "see (/etc/x.d/a line 2) and /etc/xy");
    same("/etc/x", "in /etc/x/sub");
    same("/etc/x", "no entry in /etc/x, /etc/y");
    same("/etc/a, /etc/b", "k = 1 (/etc/a line 1)");
    same("sshd -T", "PermitRootLogin yes (sshd -T)");
    same("/etc/x", "/etc/x");
  });
});

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures");
const ROOT_TREES = readdirSync(FIXTURES).filter((n) =>
  statSync(path.join(FIXTURES, n, "etc"), { throwIfNoEntry: false })?.isDirectory(),
);

describe("findings of the whole-system fixtures", () => {
  const produced: Finding[] = [];

  beforeAll(async () => {
    for (const name of ROOT_TREES)
      for (const isRoot of [false, true]) {
        const set = await gatherFacts(new FactContext(new LocalHost(loadFixture(name), { isRoot })), LAYERS);
        produced.push(...judge(set.facts, LAYERS).filter((f) => f.status !== "skip"));
      }
  }, 120_000);

  it("do not name their source's file again in their excerpt", () => {
    const single = produced.filter((f) => /^\/[^\s:,]+(?::\d+| line \d+)?$/.test(f.evidence.source));
    expect(single.length).toBeGreaterThan(20);
    const again = single.filter((f) => {
      const p = /^[^\s:]+/.exec(f.evidence.source)![0];
      const ex = f.evidence.excerpt;
      return (
        ex.startsWith(`${p}: `) || ex.includes(`(${p})`) || ex.includes(`(${p}:`) || ex.includes(`(${p} line`)
      );
    });
    expect(again.map((f) => `${f.id}: ${f.evidence.source}: ${f.evidence.excerpt}`)).toEqual([]);
  });

  it("do not name the unit their source already names as the one that runs the gateway", () => {
    const units = produced.filter((f) => /^\/\S+\.service\b/.test(f.evidence.source));
    expect(units.length).toBeGreaterThan(0);
    const again = units.filter((f) =>
      f.evidence.excerpt.includes(`run by ${/^\S+/.exec(f.evidence.source)![0]}`),
    );
    expect(again.map((f) => `${f.id}: ${f.evidence.source}: ${f.evidence.excerpt}`)).toEqual([]);
  });
});
