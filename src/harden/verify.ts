import type { Host } from "../host/host.js";
import type { Writer } from "../host/writer.js";
import { Journal, readRun } from "../change/journal.js";
import { rollbackRecords } from "../change/rollback.js";

export interface Health {
  port: number;
  ok: boolean;
  detail: string;
}

/** Poll the gateway's /healthz on loopback until it answers ok or the time is up. */
export async function waitHealthy(port: number, timeoutMs: number): Promise<Health> {
  const url = `http://127.0.0.1:${port}/healthz`;
  const until = Date.now() + timeoutMs;
  let detail = "no answer";
  while (Date.now() < until) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
      const body = await res.text();
      if (res.ok) return { port, ok: true, detail: `${res.status} ${body.trim().slice(0, 200)}` };
      detail = `HTTP ${res.status} ${body.trim().slice(0, 200)}`;
    } catch (err) {
      detail =
        err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
  return { port, ok: false, detail: `after ${Math.round(timeoutMs / 1000)} s: ${detail}` };
}

/**
 * The gateway did not come up under the new unit: undo what moved it (its user, state dir, unit
 * and config, marked `gateway` in the plan), which restarts it as it ran before. The rest of the
 * run (firewall, jail, upgrades) stays.
 */
export async function restoreGateway(
  host: Host,
  writer: Writer,
  stateDir: string,
  runId: string,
): Promise<string[]> {
  const { summary, records } = await readRun(stateDir, runId);
  const wanted = new Set(
    records.filter((r) => r.t === "begin" && r.change.gateway).map((r) => (r as { n: number }).n),
  );
  const picked = records.filter((r) => (r.t === "begin" || r.t === "done") && wanted.has(r.n));
  const res = await rollbackRecords(host, writer, summary.dir, picked);
  // Recorded, so that rolling back the whole run later does not undo these a second time.
  const journal = await Journal.reopen(summary.dir);
  await journal.append({ t: "undone", n: [...wanted], at: new Date().toISOString(), problems: res.problems });
  await journal.close();
  return res.problems;
}
