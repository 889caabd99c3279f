import { monitorEventLoopDelay } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { openLogStore, type LogStore } from "../../src/shield/log/index.js";
import { record, tempDb } from "./log-helpers.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Wait until the writer has nothing queued, waking every millisecond; each wake-up later than
 * 2 ms is a stall of the event loop (a batch being written, or a garbage collection).
 */
async function drainStalls(
  store: LogStore,
): Promise<{ stalls: number[]; totalMs: number; maxDelayMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const stalls: number[] = [];
  const start = performance.now();
  let last = start;
  while (store.stats().queued > 0) {
    await sleep(1);
    const now = performance.now();
    if (now - last > 2) stalls.push(now - last);
    last = now;
  }
  h.disable();
  return { stalls, totalMs: performance.now() - start, maxDelayMs: h.max / 1e6 };
}

const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * q)] ?? 0;

describe("shield log under load", () => {
  it("drains 100,000 appends in batches that each hold the event loop about as long as one batch", async () => {
    const store = openLogStore(tempDb());
    const batch = 512;

    // Baseline, same store, process and machine load: the worst stall of writing one batch,
    // over `rounds` rounds after `warm` that only warm up the statements and the JIT.
    let written = 0;
    const oneBatchStall = async (rounds: number, warm: number) => {
      let worst = 0;
      for (let round = 0; round < warm + rounds; round++) {
        for (let i = 0; i < batch; i++) store.append(record(written++));
        const { stalls } = await drainStalls(store);
        if (round >= warm) worst = Math.max(worst, ...stalls);
      }
      return worst;
    };
    let baselineMs = await oneBatchStall(7, 2);
    const offset = written;

    const t0 = performance.now();
    for (let i = 0; i < 100_000; i++) store.append(record(offset + i));
    written += 100_000;
    const appendMs = performance.now() - t0;
    // Only the drain is measured: the loop above holds the event loop by itself, not the log.
    const drain = await drainStalls(store);

    // Written in one go, 100,000 records would stall for the whole drain (about 195 batches):
    // no single hold of the event loop may be a tenth of it. (How many wake-ups count as
    // stalls says nothing: on a quiet machine most batches hold it for less than 2 ms.)
    expect(drain.maxDelayMs).toBeLessThan(drain.totalMs / 10);
    // Batch by batch the drain stalls like the baseline; the top 5% leave room for the
    // collections of the 100,000 queued records, which the baseline never holds. Where the
    // machine got busier during the drain (its stalls are wall-clock time), the baseline is
    // taken again afterwards, under that load, and the larger one counts.
    const p95 = quantile(drain.stalls, 0.95);
    if (p95 >= 3 * baselineMs + 5) baselineMs = Math.max(baselineMs, await oneBatchStall(7, 0));
    expect(p95).toBeLessThan(3 * baselineMs + 5);

    const total = written;
    expect(store.stats()).toMatchObject({ committed: total, dropped: 0, commitFailures: 0 });
    expect(store.verify()).toMatchObject({ ok: true, count: total, fromId: 0, headId: total });
    process.stdout.write(
      `shield log load: ${Math.round((100_000 / appendMs) * 1000)} appends/s on the caller; ` +
        `one batch stalls ${baselineMs.toFixed(1)} ms; draining 100,000 took ${drain.totalMs.toFixed(0)} ms ` +
        `in ${drain.stalls.length} stalls, median ${quantile(drain.stalls, 0.5).toFixed(1)} ms, ` +
        `p95 ${quantile(drain.stalls, 0.95).toFixed(1)} ms, worst ${drain.maxDelayMs.toFixed(1)} ms\n`,
    );
    await store.close();
  }, 120_000);
});
