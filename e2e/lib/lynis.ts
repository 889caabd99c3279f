import type { Container } from "./container.js";

export interface LynisRun {
  /** `hardening_index=` of /var/log/lynis-report.dat. */
  index: number;
  /** The points behind it, `earned/possible`, from the last tally in /var/log/lynis.log. */
  points: string;
  seconds: number;
  /** The tests that lost points, as the report lists them: `TEST-ID|text|details`. */
  warnings: string[];
  suggestions: string[];
}

/**
 * Debian's `lynis audit system --quick` inside the container, and its hardening index. The test
 * network leads nowhere, so the default route is taken away while it runs: its update and
 * package checks then fail at once instead of waiting out connect timeouts, as they would not
 * on a VPS with a mirror. Nothing of Lynis' own is changed or skipped.
 */
export async function runLynis(c: Container): Promise<LynisRun> {
  const route = (await c.exec("ip route show default", { check: false })).stdout.trim();
  if (route) await c.exec(["ip", "route", "del", "default"]);
  const started = Date.now();
  try {
    await c.exec("lynis audit system --quick --no-colors >/var/log/lynis-run.out 2>&1", {
      timeoutMs: 1_500_000,
    });
  } finally {
    if (route) await c.exec(["sh", "-c", `ip route add ${route}`], { check: false });
  }
  const seconds = Math.round((Date.now() - started) / 1000);
  const dat = (await c.exec("cat /var/log/lynis-report.dat")).stdout;
  const m = /^hardening_index=(\d+)$/m.exec(dat);
  if (!m) throw new Error(`no hardening_index= in /var/log/lynis-report.dat:\n${dat.slice(-2000)}`);
  const list = (kind: string) =>
    [...dat.matchAll(new RegExp(`^${kind}\\[\\]=([^|]+\\|[^|]*\\|[^|]*)`, "gm"))].map((x) => x[1]!);
  const log = (
    await c.exec("grep -o 'having [0-9]* points (out of [0-9]*)' /var/log/lynis.log | tail -1", {
      check: false,
    })
  ).stdout;
  const tally = /having (\d+) points \(out of (\d+)\)/.exec(log);
  return {
    index: Number(m[1]),
    points: tally ? `${tally[1]}/${tally[2]}` : "?",
    seconds,
    warnings: list("warning"),
    suggestions: list("suggestion"),
  };
}
