/**
 * OpenClaw's own audit is slow, so its result is kept by binary version and config: a second
 * audit of an unchanged install reads it back in well under a second, and any change to the
 * binary or the config runs it again. Its limit is the caller's, and a terminal is told it runs.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { terminalProgress } from "../../src/cli/progress.js";
import { FactContext, type ContextOptions } from "../../src/host/context.js";
import { openClawAuditGatherer } from "../../src/host/gather/openclaw-audit.js";
import { LocalHost } from "../../src/host/host.js";
import { runCli } from "../helpers/run-cli.js";

const REPORT = JSON.stringify({ findings: [{ checkId: "x.y", severity: "warn", title: "t" }] });

let dir: string;
let cache: string;
let counter: string;
let savedPath: string | undefined;

function fakeOpenClaw(extra = ""): void {
  const p = path.join(dir, "openclaw");
  writeFileSync(p, `#!/bin/sh\n${extra}\necho run >> '${counter}'\ncat <<'JSON'\n${REPORT}\nJSON\n`);
  chmodSync(p, 0o755);
}

const runs = () => readFileSync(counter, "utf8").split("\n").filter(Boolean).length;
const gather = (o: ContextOptions) => openClawAuditGatherer(10_000)(new FactContext(new LocalHost("/"), o));

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "clawguard-oc-cache-"));
  chmodSync(dir, 0o755);
  cache = path.join(dir, "cache");
  counter = path.join(dir, "count");
  writeFileSync(counter, "");
  savedPath = process.env.PATH;
  process.env.PATH = `${dir}:${savedPath ?? ""}`;
});

afterEach(() => {
  process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});

describe("OpenClaw's audit cache", () => {
  it("runs once, then answers from the cache with the same runs", async () => {
    fakeOpenClaw("sleep 1");
    const first = await gather({ cacheDir: cache });
    expect(first.status).toBe("ok");
    const started = Date.now();
    const second = await gather({ cacheDir: cache });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(runs()).toBe(1);
    expect(second).toEqual(first);
  });

  it("runs again when the binary changes", async () => {
    fakeOpenClaw();
    await gather({ cacheDir: cache });
    fakeOpenClaw("# upgraded");
    await gather({ cacheDir: cache });
    expect(runs()).toBe(2);
  });

  it("keeps nothing without a cache dir, and nothing that failed", async () => {
    fakeOpenClaw();
    await gather({});
    await gather({});
    expect(runs()).toBe(2);
    const p = path.join(dir, "openclaw");
    writeFileSync(p, `#!/bin/sh\necho run >> '${counter}'\necho 'not JSON'\n`);
    await gather({ cacheDir: cache });
    await gather({ cacheDir: cache });
    expect(runs()).toBe(4);
  });
});

describe("its limit and its progress", () => {
  it("uses the caller's limit, and says when it starts and ends", async () => {
    fakeOpenClaw("exec sleep 30");
    const events: string[] = [];
    const started = Date.now();
    const fact = await gather({
      openclawAuditTimeoutMs: 300,
      progress: (e, what, limit) => events.push(`${e} ${what} ${limit}`),
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(fact.status).toBe("error");
    expect(events).toEqual(["start openclaw security audit 300", "end openclaw security audit 0"]);
  });

  it("draws on a terminal and wipes its line at the end; writes nothing elsewhere", () => {
    let written = "";
    const tty = {
      isTTY: true,
      write: (s: string) => ((written += s), true),
    } as unknown as NodeJS.WriteStream;
    const p = terminalProgress(tty)!;
    p("start", "openclaw security audit", 60_000);
    p("end", "openclaw security audit", 0);
    expect(written).toContain("openclaw security audit: running, 0 s (limit 60 s)");
    expect(written.endsWith("\r\x1b[2K")).toBe(true);
    expect(terminalProgress({ isTTY: false } as NodeJS.WriteStream)).toBeUndefined();
  });

  it("--openclaw-timeout takes seconds above 0", async () => {
    const r = await runCli(["audit", "--layer", "user", "--openclaw-timeout", "0"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("--openclaw-timeout");
  });
});
