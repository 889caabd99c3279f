import type { Host } from "../host/host.js";
import type { Writer } from "../host/writer.js";
import { readRun } from "./journal.js";
import { rollbackRecords } from "./rollback.js";

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
 * The gateway did not come up under the new unit: put back the unit files (and the user unit
 * that was set aside), reload systemd and start what ran before. The rest of the run stays.
 */
export async function restoreUnits(
  host: Host,
  writer: Writer,
  stateDir: string,
  runId: string,
  unitName: string,
): Promise<string[]> {
  const { summary, records } = await readRun(stateDir, runId);
  const isUnit = (p: string) => /\/systemd\/(system|user)\//.test(p);
  const wanted = new Set(
    records
      .filter((r) => r.t === "begin")
      .filter((r) => {
        const c = r.change;
        if (c.kind === "move") return isUnit(c.from);
        if (c.kind === "file" || c.kind === "remove") return isUnit(c.path);
        return c.kind === "command" && c.argv[0] === "systemctl" && c.argv[1] !== "restart";
      })
      .map((r) => (r as { n: number }).n),
  );
  const picked = records.filter((r) => (r.t === "begin" || r.t === "done") && wanted.has(r.n));
  const res = await rollbackRecords(host, writer, summary.dir, picked);
  const problems = [...res.problems];
  for (const argv of [
    ["systemctl", "daemon-reload"],
    ["systemctl", "restart", unitName],
  ]) {
    const r = await host
      .run(argv[0]!, argv.slice(1), { timeoutMs: 60_000 })
      .catch((e: Error) => ({ code: -1, stdout: "", stderr: e.message }));
    if (r.code !== 0)
      problems.push(`${argv.join(" ")} exited ${r.code}: ${r.stderr.trim().split("\n").pop() ?? ""}`);
  }
  return problems;
}
