/**
 * How a change rolls across the fleet, decided before anything runs: batches of `--serial`
 * hosts (a number, a percentage of the hosts to change, or a list such as `1,25%` whose last
 * size repeats, as Ansible's `serial` reads), and when to stop: once more hosts have failed than
 * `--max-fail` allows, no further batch starts.
 */
import { UsageError } from "../errors.js";

export type BatchSize = { count: number } | { percent: number };

export function parseSerial(text: string): BatchSize[] {
  const sizes = text.split(",").map((part) => {
    const p = part.trim();
    const m = /^([0-9]+)(%?)$/.exec(p);
    const n = m ? Number(m[1]) : NaN;
    if (!m || n < 1 || (m[2] && n > 100))
      throw new UsageError(`"${p}" is not a batch size: give N (hosts) or N% (of the hosts to change)`, {
        where: "--serial",
        hint: "for example --serial 1 (one at a time), --serial 25%, or --serial 1,50% (a canary, then halves)",
      });
    return m[2] ? { percent: n } : { count: n };
  });
  return sizes;
}

function sizeOf(s: BatchSize, total: number): number {
  return "count" in s ? s.count : Math.max(1, Math.floor((s.percent / 100) * total));
}

/** `items` cut into batches of the given sizes, the last size repeating until none are left. */
export function batchesOf<T>(items: readonly T[], sizes: readonly BatchSize[]): T[][] {
  const out: T[][] = [];
  let i = 0;
  for (let b = 0; i < items.length; b++) {
    const n = sizeOf(sizes[Math.min(b, sizes.length - 1)]!, items.length);
    out.push(items.slice(i, i + n));
    i += n;
  }
  return out;
}

/** Whether the rollout stops before its next batch. */
export function stopsAfter(failed: number, maxFail: number): boolean {
  return failed > maxFail;
}
