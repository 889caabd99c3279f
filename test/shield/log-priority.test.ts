import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { openLogStore } from "../../src/shield/log/index.js";
import { registerLogMetrics } from "../../src/shield/log/metrics.js";
import { BACKGROUND_NICE, mayLowerNiceTo, threadId, WriterPriority } from "../../src/shield/log/priority.js";
import { record, tempDb } from "./log-helpers.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The nice value of thread `tid` of process `pid`, from /proc (field 19 of stat). */
function niceOf(pid: number, tid = pid): number {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
}

/** This process's threads at BACKGROUND_NICE. */
function backgroundThreads(): number[] {
  return readdirSync("/proc/self/task")
    .map(Number)
    .filter((tid) => niceOf(process.pid, tid) === BACKGROUND_NICE);
}

async function until(what: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

/** Whether this process may bring a thread back from the background (root, or RLIMIT_NICE >= 20). */
const permitted = mayLowerNiceTo(0);
/** The store tests below expect the process to run at the default priority. */
const atDefaultNice = niceOf(process.pid) === 0;

describe("may the writer be moved to the background", () => {
  const noCaps = "CapEff:\t0000000000000000\n";
  const limits = (soft: string) =>
    `Limit                     Soft Limit           Hard Limit           Units\nMax nice priority         ${soft}                    ${soft}                    \n`;

  it("yes with CAP_SYS_NICE, whatever the limit", () => {
    expect(mayLowerNiceTo(0, "CapEff:\t0000000000800000\n", limits("0"))).toBe(true);
    expect(mayLowerNiceTo(0, "CapEff:\t000001fffeffffff\n", "")).toBe(true);
  });

  it("yes with an RLIMIT_NICE that reaches back to the thread's own nice value", () => {
    expect(mayLowerNiceTo(0, noCaps, limits("20"))).toBe(true);
    expect(mayLowerNiceTo(0, noCaps, limits("unlimited"))).toBe(true);
    expect(mayLowerNiceTo(5, noCaps, limits("15"))).toBe(true);
  });

  it("no when it could not be brought back, or when nothing says", () => {
    expect(mayLowerNiceTo(0, "CapEff:\t000001fffe7fffff\n", limits("0"))).toBe(false);
    expect(mayLowerNiceTo(0, noCaps, limits("19"))).toBe(false);
    expect(mayLowerNiceTo(0, "", "")).toBe(false);
  });
});

describe("writer priority on a real thread", () => {
  let child: ChildProcess | null = null;
  afterEach(() => {
    child?.kill("SIGKILL");
    child = null;
  });

  it("goes to the background at a small backlog and back above the high mark, only when permitted", () => {
    child = spawn("sleep", ["30"], { stdio: "ignore" });
    const pid = child.pid!;
    const p = new WriterPriority(pid, 10, 100, 0, permitted);
    p.update(5);
    // Without the right to come back, the thread is never moved.
    expect(niceOf(pid)).toBe(permitted ? BACKGROUND_NICE : 0);
    expect(p.inBackground).toBe(permitted);
    p.update(50); // between the marks: stays where it is
    expect(niceOf(pid)).toBe(permitted ? BACKGROUND_NICE : 0);
    p.update(101);
    expect(niceOf(pid)).toBe(0);
    expect(p.inBackground).toBe(false);
  });

  it("leaves a thread alone that it is not allowed to bring back", () => {
    child = spawn("sleep", ["30"], { stdio: "ignore" });
    const p = new WriterPriority(child.pid!, 10, 100, 0, false);
    p.update(0);
    expect(niceOf(child.pid!)).toBe(0);
    expect(p.inBackground).toBe(false);
  });

  it("knows the calling thread's id", () => {
    // The main thread's id is the process id.
    expect(threadId()).toBe(process.pid);
  });
});

describe("the log writer thread's priority", () => {
  it.runIf(permitted && atDefaultNice)(
    "runs in the background while it keeps up, and at full priority while records pile up",
    async () => {
      const store = openLogStore(tempDb());
      try {
        store.append(record(0));
        await store.flush();
        expect(await until(() => backgroundThreads().length === 1)).toBe(true);
        const [writer] = backgroundThreads();
        expect(store.stats().writerInBackground).toBe(true);

        // A burst far beyond what one batch takes: the backlog climbs past the high mark.
        for (let i = 1; i <= 20_000; i++) store.append(record(i));
        expect(await until(() => niceOf(process.pid, writer) === 0 || store.stats().queued === 0)).toBe(true);
        const sawFull = niceOf(process.pid, writer) === 0;
        await store.flush();
        expect(store.stats()).toMatchObject({ appended: 20_001, committed: 20_001, dropped: 0 });
        expect(sawFull).toBe(true);
        // Caught up: back in the background.
        expect(await until(() => niceOf(process.pid, writer) === BACKGROUND_NICE)).toBe(true);
        const registry = new Registry();
        registerLogMetrics(registry, () => store.stats());
        expect(await registry.metrics()).toMatch(/^clawguard_shield_log_writer_background 1$/m);
      } finally {
        await store.close();
      }
    },
  );

  it.runIf(!permitted && atDefaultNice)(
    "stays at the process's priority when it could not be brought back",
    async () => {
      const store = openLogStore(tempDb());
      try {
        store.append(record(0));
        await store.flush();
        await sleep(50);
        expect(backgroundThreads()).toEqual([]);
        expect(store.stats().writerInBackground).toBeNull();
      } finally {
        await store.close();
      }
    },
  );
});
