/**
 * The fleet audit as one HTML file to hand around: the matrix, what changed since the previous
 * run, and each host's findings with evidence and fix. Self-contained (inline CSS, no script, no
 * font or image to fetch, and a Content-Security-Policy that forbids fetching any), readable on a
 * phone (the matrix scrolls inside its box, the host column stays put), and every value a host
 * sent is escaped: a compromised host's evidence must not run in the reader's browser.
 */
import { SEVERITIES, type Severity } from "../../checks/finding.js";
import type { FleetAuditDocument } from "../audit.js";
import type { FleetDiff } from "../diff.js";
import { isFailure, matrixOf, type Cell, type Row } from "../matrix.js";
import type { Finding } from "../reports.js";
import { errorText } from "./text.js";

export function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!,
  );
}

/** An id for a host's section that any host name maps to safely. */
function anchor(host: string): string {
  return "host-" + Buffer.from(host, "utf8").toString("hex");
}

const rank = (s: Severity | undefined) => (s === undefined ? SEVERITIES.length : SEVERITIES.indexOf(s));

const CSS = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--mut:#5b636d;--line:#d8dde3;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--err:#8250df;--card:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--mut:#9198a1;--line:#30363d;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--err:#a371f7;--card:#161b22}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:72rem;padding:1rem;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg);overflow-wrap:anywhere}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .6rem}
.meta,.legend{color:var(--mut);font-size:.85rem}
.summary{font-weight:600}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:6px;max-width:100%}
table{border-collapse:collapse;font-size:.85rem;white-space:nowrap}
th,td{padding:.35rem .5rem;border-bottom:1px solid var(--line);text-align:center}
th:first-child,td:first-child{position:sticky;left:0;background:var(--bg);text-align:left;max-width:11rem;overflow:hidden;text-overflow:ellipsis}
td.pass{color:var(--ok)}td.bad{color:var(--bad);font-weight:700}td.low{color:var(--warn);font-weight:600}td.none{color:var(--mut)}
td.down{color:var(--err);text-align:left;white-space:normal;min-width:14rem}
a{color:inherit}
details.host{border:1px solid var(--line);border-radius:6px;margin:.6rem 0;background:var(--card)}
details.host>summary{padding:.6rem .8rem;cursor:pointer;font-weight:600}
ul.f{list-style:none;margin:0;padding:0 .8rem .6rem}
ul.f li{padding:.5rem 0;border-top:1px solid var(--line)}
.badge{display:inline-block;font-size:.75rem;font-weight:700;padding:0 .35rem;border-radius:4px;margin-right:.35rem;color:#fff}
.b-fail,.b-error{background:var(--bad)}.b-warn{background:var(--warn)}.b-pass{background:var(--ok)}.b-skip{background:var(--mut)}
code,pre{font:.8rem/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
pre{white-space:pre-wrap;margin:.3rem 0;padding:.4rem;background:var(--bg);border-radius:4px}
.diff li{margin:.2rem 0}.reg{color:var(--bad)}.imp{color:var(--ok)}
`;

function cellHtml(cell: Cell | undefined, failOn: Severity): string {
  if (!cell) return `<td class="none">·</td>`;
  if (cell.fail > 0) {
    const cls = rank(cell.worst) <= rank(failOn) ? "bad" : "low";
    return `<td class="${cls}" title="${cell.pass} passed, ${cell.fail} failed">${cell.fail}✗ ${esc(cell.worst ?? "")}</td>`;
  }
  return `<td class="pass" title="${cell.pass} passed">${cell.pass}✓</td>`;
}

function matrixHtml(doc: FleetAuditDocument): string {
  const failOn = doc.summary.failOn;
  const { rows, layers } = matrixOf(doc.hosts, failOn);
  const head = `<tr><th>host</th>${layers.map((l) => `<th>${esc(l)}</th>`).join("")}<th>total</th></tr>`;
  const body = rows
    .map((r: Row) => {
      const name = `<td><a href="#${anchor(r.host)}">${esc(r.host)}</a></td>`;
      if (r.status !== "ok")
        return `<tr>${name}<td class="down" colspan="${layers.length + 1}">${esc(r.status)}: ${esc(errorText(r.error))}</td></tr>`;
      const total = `<td>${r.pass}✓ ${r.fail}✗${r.worst ? ` ${esc(r.worst)}` : ""}</td>`;
      return `<tr>${name}${layers.map((l) => cellHtml(r.cells[l], failOn)).join("")}${total}</tr>`;
    })
    .join("");
  return `<div class="scroll"><table>${head}${body}</table></div>
<p class="legend">N✓ checks passed, N✗ failed (or could not be read) with the worst severity; red at or above ${esc(failOn)}.</p>`;
}

function diffHtml(d: FleetDiff | undefined): string {
  if (!d) return `<p class="meta">No earlier fleet audit to compare with.</p>`;
  const items: string[] = [];
  for (const h of d.regressed)
    items.push(
      `<li class="reg"><b>${esc(h.host)}</b> regressed: ${h.checks.map((c) => `<code>${esc(c.id)}</code> (${esc(c.severity)})`).join(", ")}</li>`,
    );
  for (const h of d.improved)
    items.push(
      `<li class="imp"><b>${esc(h.host)}</b> improved: ${h.checks.map((c) => `<code>${esc(c.id)}</code>`).join(", ")}</li>`,
    );
  for (const u of d.unreachable)
    items.push(
      `<li class="reg"><b>${esc(u.host)}</b> no longer audited: ${esc(u.status)}: ${esc(errorText(u.error))}</li>`,
    );
  if (d.recovered.length) items.push(`<li>audited again: ${d.recovered.map(esc).join(", ")}</li>`);
  if (d.appeared.length) items.push(`<li>appeared: ${d.appeared.map(esc).join(", ")}</li>`);
  if (d.removed.length) items.push(`<li>not in the later run: ${d.removed.map(esc).join(", ")}</li>`);
  const since = `<p class="meta">Compared with run ${esc(d.from.id)} (${esc(d.from.startedAt)}).</p>`;
  return since + (items.length ? `<ul class="diff">${items.join("")}</ul>` : `<p>No change.</p>`);
}

function findingHtml(f: Finding): string {
  const ev = f.evidence.source ? `${f.evidence.source}: ${f.evidence.excerpt}` : f.evidence.excerpt;
  return `<li><span class="badge b-${esc(f.status)}">${esc(f.status.toUpperCase())} ${esc(f.severity)}</span><b>${esc(f.title)}</b> <code>${esc(f.id)}</code>${f.detail ? `<div>${esc(f.detail)}</div>` : ""}${
    f.status === "pass" || f.status === "skip" ? "" : `<pre>${esc(ev)}</pre>`
  }${f.remediation && f.status !== "pass" ? `<div>Fix: <code>${esc(f.remediation)}</code>${f.fixable ? " (clawguard harden does this)" : ""}</div>` : ""}</li>`;
}

function hostHtml(h: FleetAuditDocument["hosts"][number]): string {
  const id = anchor(h.host);
  if (!h.report)
    return `<details class="host" id="${id}" open><summary>${esc(h.host)}: ${esc(h.status)}</summary><ul class="f"><li>${esc(errorText(h.error))}${h.error?.hint ? `<div>${esc(h.error.hint)}</div>` : ""}</li></ul></details>`;
  const bad = h.report.findings.filter((f) => isFailure(f) || f.status === "warn");
  bad.sort((a, b) => rank(a.severity) - rank(b.severity));
  const rest = h.report.findings.filter((f) => !bad.includes(f));
  const title = bad.length ? `${bad.length} to look at` : "all clear";
  return `<details class="host" id="${id}"${bad.length ? " open" : ""}><summary>${esc(h.host)} <span class="meta">${esc(h.address)}</span>: ${title}</summary>
<ul class="f">${bad.map(findingHtml).join("")}</ul>${
    rest.length
      ? `<details><summary class="meta" style="padding:0 .8rem .6rem">${rest.length} passed or skipped</summary><ul class="f">${rest.map(findingHtml).join("")}</ul></details>`
      : ""
  }</details>`;
}

export function renderHtml(doc: FleetAuditDocument, diff: FleetDiff | undefined, version: string): string {
  const s = doc.summary;
  const summary = `${s.hosts} hosts: ${s.ok} audited, ${s.failing} failing at or above ${esc(s.failOn)}, ${s.unreachable} unreachable, ${s.error} in error`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>clawguard fleet audit ${esc(doc.run.id)}</title>
<style>${CSS}</style></head><body>
<h1>Fleet audit</h1>
<p class="meta">Run ${esc(doc.run.id)}, started ${esc(doc.run.startedAt)}${doc.run.inventory ? `, inventory ${esc(doc.run.inventory)}` : ""}${doc.run.limit ? `, --limit ${esc(doc.run.limit)}` : ""}</p>
<p class="summary">${summary}</p>
<h2>Hosts and layers</h2>
${matrixHtml(doc)}
<h2>Since the previous run</h2>
${diffHtml(diff)}
<h2>Findings by host</h2>
${doc.hosts.map(hostHtml).join("\n")}
<p class="meta">clawguard ${esc(version)}</p>
</body></html>
`;
}
