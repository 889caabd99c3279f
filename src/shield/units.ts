/** Durations and sizes as operators write them in shield.yaml and on the command line. */

const DURATION_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** "90s", "15m", "1h", "7d", "1.5h" in milliseconds, or null when `text` is not one. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  return m ? Number(m[1]) * DURATION_MS[m[2]!]! : null;
}

const SIZE_BYTES: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * A byte count: a whole number, or a number with a unit, "500KB", "50 MB", "1.5GiB" (KB, MB,
 * GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024). Null when it is neither, or
 * not a whole number of bytes above zero.
 */
export function parseSize(value: number | string): number | null {
  if (typeof value === "number") return Number.isSafeInteger(value) && value > 0 ? value : null;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? SIZE_BYTES[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return null;
  const n = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}
