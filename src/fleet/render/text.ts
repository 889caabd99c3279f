/**
 * Fleet output for a terminal: the host x layer matrix and its summary line, the fleet plan of a
 * harden or lockdown, what a rollout did, the list of runs, and a diff. Everything a host sent
 * is stripped of control characters first: a compromised host must not be able to write escape
 * sequences into the operator's terminal.
 */
import pc from "picocolors";
import { SEVERITIES, type Layer, type Severity } from "../../checks/finding.js";
import type { FleetAuditDocument } from "../audit.js";
import type { FleetDiff } from "../diff.js";
import type { HostError } from "../host.js";
import { matrixOf, type Cell, type Row } from "../matrix.js";
import type { HardenReport } from "../reports.js";
import type { Rollout, RolloutHost } from "../rolling.js";
import type { HostRecord, RunRecord } from "../store.js";

type Colors = ReturnType<typeof pc.createColors>;

/** `s` with control characters (escape sequences, carriage returns) shown as `?`. */
export function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, "?");
}

const oneLine = (s: string) => clean(s).replace(/\n/g, " ");

const SEV_LETTER: Record<Severity, string> = { critical: "C", high: "H", medium: "M", low: "L", info: "I" };

const SHORT: Partial<Record<Layer, string>> = { credentials: "creds", openclaw: "openclaw" };

function pad(s: string, visible: number, width: number): string {
  return s + " ".repeat(Math.max(0, width - visible));
}

function cellText(cell: Cell | undefined): string {
  if (!cell) return "·";
  if (cell.fail > 0) return `${cell.fail}✗${SEV_LETTER[cell.worst ?? "info"]}`;
  if (cell.pass > 0) return `${cell.pass}✓${cell.warn ? `${cell.warn}!` : ""}`;
  return cell.warn ? `${cell.warn}!` : "·";
}

function paintCell(c: Colors, cell: Cell | undefined, failOn: Severity, text: string): string {
  if (!cell || cell.fail === 0) return cell?.pass ? c.green(text) : c.dim(text);
  return SEVERITIES.indexOf(cell.worst ?? "info") <= SEVERITIES.indexOf(failOn)
    ? c.red(text)
    : c.yellow(text);
}

export function errorText(e: HostError | undefined): string {
  return e ? `${oneLine(e.message)} (${e.code})` : "no answer";
}

export function renderMatrix(doc: FleetAuditDocument, color: boolean): string {
  const c = pc.createColors(color);
  const failOn = doc.summary.failOn;
  const { rows, layers } = matrixOf(doc.hosts, failOn);
  const hostW = Math.max(4, ...rows.map((r) => clean(r.host).length));
  const heads = layers.map((l) => SHORT[l] ?? l);
  const widths = heads.map((h) => Math.max(h.length, 4));
  const out: string[] = [];
  out.push(
    c.bold([pad("HOST", 4, hostW), ...heads.map((h, i) => pad(h, h.length, widths[i]!)), "TOTAL"].join("  ")),
  );
  for (const r of rows) out.push(rowLine(c, r, layers, widths, hostW, failOn));
  out.push("");
  out.push(
    c.dim(
      "N✓ checks passed; N✗ failed (or could not be read), worst C critical, H high, M medium, L low, I info",
    ),
  );
  out.push(summaryLine(doc, c));
  return out.join("\n") + "\n";
}

function rowLine(
  c: Colors,
  r: Row,
  layers: Layer[],
  widths: number[],
  hostW: number,
  failOn: Severity,
): string {
  const name = pad(clean(r.host), clean(r.host).length, hostW);
  if (r.status !== "ok") return `${c.magenta(name)}  ${c.magenta(`${r.status}: ${errorText(r.error)}`)}`;
  const cells = layers.map((l, i) => {
    const t = cellText(r.cells[l]);
    return paintCell(c, r.cells[l], failOn, pad(t, t.length, widths[i]!));
  });
  const total = `${r.pass}✓ ${r.fail}✗${r.worst ? ` ${r.worst}` : ""}`;
  return [r.failing > 0 ? c.red(name) : name, ...cells, total].join("  ");
}

export function summaryLine(doc: FleetAuditDocument, c: Colors = pc.createColors(false)): string {
  const s = doc.summary;
  const parts = [
    `${s.hosts} hosts: ${s.ok} audited`,
    s.failing
      ? c.red(`${s.failing} failing at or above ${s.failOn}`)
      : c.green(`none failing at or above ${s.failOn}`),
    ...(s.unreachable ? [c.magenta(`${s.unreachable} unreachable`)] : []),
    ...(s.error ? [c.magenta(`${s.error} in error`)] : []),
  ];
  const f = s.findings;
  return `${parts.join(", ")}; ${f.pass + f.fail + f.warn + f.skip + f.error} checks, ${f.fail + f.error} failed. Run ${doc.run.id}`;
}

function planLines(c: Colors, h: RolloutHost, command: string): string[] {
  const head = `${c.bold(clean(h.host))} ${c.dim(`(${clean(h.target.address)})`)}`;
  if (h.status !== "ok") return [`${head}: ${c.magenta(`${h.status}: ${errorText(h.error)}`)}`];
  const plan = h.result.plan;
  if (!plan || plan.changes === 0) return [`${head}: ${c.green("nothing to change")}`];
  const out = [`${head}: ${plan.changes} change${plan.changes === 1 ? "" : "s"}`];
  if (command === "harden") {
    const r = plan.report as HardenReport;
    r.changes.forEach((ch, i) =>
      out.push(
        `  ${String(i + 1).padStart(3)}. ${oneLine(ch.action)}${ch.fixes.length ? c.dim(`  [fixes ${ch.fixes.join(", ")}]`) : ""}`,
      ),
    );
    for (const b of r.blocked)
      out.push(`       ${c.yellow("blocked")} ${oneLine(b.layer)}: ${oneLine(b.reason)}`);
  } else {
    const r = plan.report as {
      files: Array<{ path: string; diff: string }>;
      links: Array<{ path: string; target: string; before: string | null }>;
    };
    for (const f of r.files.filter((x) => x.diff !== "")) out.push(`       write ${oneLine(f.path)}`);
    for (const l of r.links.filter((x) => x.before !== x.target))
      out.push(`       ln -sf ${oneLine(l.target)} ${oneLine(l.path)}`);
  }
  return out;
}

export function renderPlan(rollout: Rollout, command: string, color: boolean): string {
  const c = pc.createColors(color);
  const out = rollout.hosts.flatMap((h) => [...planLines(c, h, command), ""]);
  const n = (o: string) => rollout.hosts.filter((h) => h.result.outcome === o).length;
  const toChange = rollout.hosts.filter((h) => (h.result.plan?.changes ?? 0) > 0);
  const bad = rollout.hosts.filter((h) => h.status !== "ok").length;
  out.push(
    c.bold(
      `Plan: ${toChange.reduce((s, h) => s + (h.result.plan?.changes ?? 0), 0)} changes on ${toChange.length} hosts, ` +
        `nothing to change on ${n("unchanged")}${bad ? `, ${bad} not reached` : ""}.`,
    ),
  );
  return out.join("\n") + "\n";
}

export function renderOutcome(h: RolloutHost, color: boolean): string {
  const c = pc.createColors(color);
  const a = h.result.apply;
  if (h.result.outcome === "changed") return `${c.green("changed")} ${clean(h.host)}\n`;
  const undo = a?.undo;
  const back = !undo
    ? ""
    : undo.done
      ? "; put back as it was"
      : `; NOT put back: ${undo.error ? errorText(undo.error) : undo.problems.map(oneLine).join("; ")}`;
  return `${c.red("failed")}  ${clean(h.host)}: ${oneLine(a?.why ?? "no answer")}${back}\n`;
}

export function renderRolloutSummary(rollout: Rollout, maxFail: number, color: boolean): string {
  const c = pc.createColors(color);
  const names = (pred: (h: RolloutHost) => boolean) => rollout.hosts.filter(pred).map((h) => clean(h.host));
  const line = (label: string, hosts: string[], paint: (s: string) => string) =>
    hosts.length ? [`${paint(label.padEnd(18))}${hosts.join(", ")}`] : [];
  const out = [
    ...line(
      "changed:",
      names((h) => h.result.outcome === "changed"),
      c.green,
    ),
    ...line(
      "failed:",
      names((h) => h.result.outcome === "failed"),
      c.red,
    ),
    ...line(
      "not touched:",
      names((h) => h.result.outcome === "not-touched"),
      c.yellow,
    ),
    ...line(
      "nothing to change:",
      names((h) => h.result.outcome === "unchanged"),
      c.dim,
    ),
    ...line(
      "not reached:",
      names((h) => h.status !== "ok" && h.result.outcome === undefined),
      c.magenta,
    ),
  ];
  if (rollout.stopped)
    out.push(c.yellow(`The rollout stopped: more hosts failed than --max-fail ${maxFail} allows.`));
  return out.join("\n") + "\n";
}

export function renderHistory(runs: readonly RunRecord[]): string {
  if (runs.length === 0) return "no fleet runs yet\n";
  const out = [`${"RUN".padEnd(24)}  ${"KIND".padEnd(8)}  ${"STARTED".padEnd(20)}  RESULT`];
  for (const r of runs) {
    const s = r.summary ?? {};
    const result =
      r.finishedAt === undefined
        ? "interrupted"
        : Object.entries(s)
            .filter(([, v]) => typeof v === "number")
            .map(([k, v]) => `${k} ${String(v)}`)
            .join(", ");
    out.push(
      `${r.id.padEnd(24)}  ${r.kind.padEnd(8)}  ${r.startedAt.slice(0, 19).replace("T", " ").padEnd(20)}  ${result}`,
    );
  }
  return out.join("\n") + "\n";
}

/** A stored harden, lockdown or rollback run: each host's status and what happened to it. */
export function renderRun(run: RunRecord, hosts: readonly HostRecord[]): string {
  const w = Math.max(4, ...hosts.map((h) => clean(h.host).length));
  const out = [
    `fleet ${run.kind} ${run.id}, started ${run.startedAt}${run.finishedAt ? "" : " (interrupted)"}`,
  ];
  for (const h of hosts) {
    const r = (h.result ?? {}) as { outcome?: string; apply?: { why?: string } };
    const what = h.status !== "ok" ? `${h.status}: ${errorText(h.error)}` : (r.outcome ?? "ok");
    const why = r.outcome === "failed" && r.apply?.why ? `: ${oneLine(r.apply.why)}` : "";
    out.push(`  ${clean(h.host).padEnd(w)}  ${what}${why}`);
  }
  return out.join("\n") + "\n";
}

export function renderDiff(d: FleetDiff, color: boolean): string {
  const c = pc.createColors(color);
  const out = [c.bold(`From run ${d.from.id} (${d.from.startedAt}) to ${d.to.id} (${d.to.startedAt})`)];
  const checks = (list: FleetDiff["regressed"], paint: (s: string) => string, label: string) => {
    if (!list.length) return;
    out.push("", paint(label));
    for (const h of list) {
      out.push(`  ${c.bold(clean(h.host))}`);
      for (const x of h.checks)
        out.push(`    ${x.id} ${c.dim(`(${x.severity}, ${x.from} -> ${x.to})`)} ${oneLine(x.title)}`);
    }
  };
  checks(d.regressed, c.red, "regressed (passed, now fails):");
  checks(d.improved, c.green, "improved (failed, now passes):");
  if (d.unreachable.length) {
    out.push("", c.magenta("no longer audited:"));
    for (const u of d.unreachable) out.push(`  ${clean(u.host)}: ${u.status}: ${errorText(u.error)}`);
  }
  if (d.recovered.length) out.push("", `audited again: ${d.recovered.map(clean).join(", ")}`);
  if (d.appeared.length) out.push("", `appeared: ${d.appeared.map(clean).join(", ")}`);
  if (d.removed.length) out.push("", `not in the later run: ${d.removed.map(clean).join(", ")}`);
  if (out.length === 1) out.push("", "no change");
  return out.join("\n") + "\n";
}
