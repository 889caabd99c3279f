import { writeFile } from "node:fs/promises";
import { Option, type Command } from "commander";
import { failingAtOrAbove, LAYERS, SEVERITIES, type Layer, type Severity } from "../checks/finding.js";
import { UsageError } from "../errors.js";
import { auditFleet, fleetAuditDocument, type FleetAuditDocument, type HostAudit } from "../fleet/audit.js";
import { diffRuns, type FleetDiff } from "../fleet/diff.js";
import { exitCodeOf } from "../fleet/matrix.js";
import { Progress } from "../fleet/progress.js";
import { renderHtml } from "../fleet/render/html.js";
import {
  clean,
  errorText,
  renderDiff,
  renderHistory,
  renderMatrix,
  renderRun,
} from "../fleet/render/text.js";
import { openStore, selectTargets } from "../fleet/setup.js";
import type { RunRecord, RunStore } from "../fleet/store.js";
import { addConnectOptions, printWarnings, VERSION, withFleet, type ConnectFlags } from "./fleet-options.js";
import { parseChoice } from "./main.js";
import { makeStyle, renderAuditText } from "../render/audit-text.js";
import { wantColor } from "./report.js";

interface AuditFlags extends ConnectFlags {
  layer?: Layer[];
  skip?: Layer[];
  failOn: Severity;
  html?: string;
  host?: string;
}

const layerList = (flag: string) => (v: string, prev: Layer[] | undefined) => [
  ...(prev ?? []),
  parseChoice(flag, LAYERS)(v),
];

/** The audit run stored before `run` (the one a report compares against), when there is one. */
function previousAudit(store: RunStore, run: RunRecord): RunRecord | undefined {
  const audits = store.runs(["audit"]);
  return audits[audits.findIndex((r) => r.id === run.id) + 1];
}

function storedDocument(store: RunStore, run: RunRecord, failOn: Severity): FleetAuditDocument {
  return fleetAuditDocument(run, store.hosts(run.id) as HostAudit[], failOn);
}

function diffOf(store: RunStore, a: RunRecord, b: RunRecord): FleetDiff {
  const hostsOf = (r: RunRecord) => storedDocument(store, r, "high").hosts;
  return diffRuns(a, hostsOf(a), b, hostsOf(b));
}

async function fleetAudit(flags: AuditFlags, setCode: (c: number) => void): Promise<void> {
  const { inventory, targets } = await selectTargets(flags.inventory, flags.limit, flags.host);
  printWarnings(inventory.warnings);
  const skip = new Set(flags.skip ?? []);
  const sel = { layers: flags.layer?.filter((l) => !skip.has(l)), skip: flags.skip };
  await withFleet(flags, async (store, conn) => {
    const run = store.beginRun("audit", inventory.file, {
      limit: flags.limit,
      layers: flags.layer,
      skip: flags.skip,
    });
    const progress = Progress.for(process.stderr, targets.length, "fleet audit", flags.json);
    const hosts = await auditFleet(targets, conn.ctx, sel, flags.forks, (h, i) => {
      store.saveHost(run.id, i, h);
      progress.tick(h.status === "ok");
    });
    progress.end();
    const { summary } = fleetAuditDocument(run, hosts, flags.failOn);
    store.finishRun(run.id, { ...summary, failOn: undefined, findings: undefined });
    const finished = store.run(run.id);
    const doc = fleetAuditDocument(finished, hosts, flags.failOn);
    if (flags.html) {
      const before = previousAudit(store, finished);
      await writeFile(
        flags.html,
        renderHtml(doc, before ? diffOf(store, before, finished) : undefined, VERSION),
      );
    }
    if (flags.json) process.stdout.write(JSON.stringify(doc, null, 2) + "\n");
    else if (flags.host !== undefined) process.stdout.write(hostText(doc, flags.failOn));
    else process.stdout.write(renderMatrix(doc, wantColor(process.stdout)));
    setCode(exitCodeOf(doc.summary));
  });
}

function hostText(doc: FleetAuditDocument, failOn: Severity): string {
  const h = doc.hosts[0]!;
  if (!h.report)
    return `${clean(h.host)}: ${h.status}: ${errorText(h.error)}\n${h.error?.hint ? `hint: ${h.error.hint}\n` : ""}`;
  const via = h.clawguard ? ` (clawguard ${h.clawguard.version}, ${h.clawguard.via})` : "";
  return `${clean(h.host)} ${clean(h.address)}${via}\n\n${renderAuditText(h.report, {
    style: makeStyle(wantColor(process.stdout)),
    failOn,
    exitCode: failingAtOrAbove(h.report.findings, failOn).length > 0 ? 1 : 0,
  })}`;
}

/** `fleet audit`. */
export function registerFleetAudit(fleet: Command, setCode: (c: number) => void): void {
  addConnectOptions(
    fleet
      .command("audit")
      .description("audit every host at once; print the host x layer matrix (or --json, --html)"),
    300,
  )
    .addOption(
      new Option("--layer <layer...>", `only these layers (${LAYERS.join(", ")})`).argParser(
        layerList("--layer"),
      ),
    )
    .addOption(new Option("--skip <layer...>", "leave these layers out").argParser(layerList("--skip")))
    .addOption(
      new Option("--fail-on <severity>", "exit 1 when a host fails a check at or above this severity")
        .choices(SEVERITIES)
        .default("high"),
    )
    .option("--json", "print the fleet's report as JSON (schema clawguard.fleet-audit/v1)")
    .option("--html <file>", "also write the report as one HTML file, with the diff against the previous run")
    .option("--host <name>", "audit only this host and print its full audit")
    .action((flags: AuditFlags) => fleetAudit(flags, setCode));
}

/** `fleet history` and `fleet diff`: the runs kept here. */
export function registerFleetRuns(fleet: Command, setCode: (c: number) => void): void {
  fleet
    .command("history [run]")
    .description("list the fleet runs kept here, or show one (its matrix, or --host NAME's audit)")
    .option("--state <file>", "where fleet runs are kept (default $XDG_STATE_HOME/clawguard/fleet.db)")
    .option("--host <name>", "with a run: that host's full audit")
    .option("--json", "print JSON (a run of audits as clawguard.fleet-audit/v1)")
    .action((id: string | undefined, flags: { state?: string; host?: string; json?: boolean }) => {
      const store = openStore(flags.state);
      try {
        if (id === undefined) {
          const runs = store.runs();
          process.stdout.write(
            flags.json
              ? JSON.stringify({ schema: "clawguard.fleet-history/v1", runs }, null, 2) + "\n"
              : renderHistory(runs),
          );
          return;
        }
        const run = store.run(id);
        const hosts = store.hosts(run.id);
        if (run.kind !== "audit") {
          process.stdout.write(
            flags.json
              ? JSON.stringify({ schema: "clawguard.fleet-run/v1", run, hosts }, null, 2) + "\n"
              : renderRun(run, hosts),
          );
          return;
        }
        let doc = storedDocument(store, run, "high");
        if (flags.host !== undefined) {
          doc = { ...doc, hosts: doc.hosts.filter((h) => h.host === flags.host) };
          if (doc.hosts.length === 0)
            throw new UsageError(`run ${run.id} has no host ${flags.host}`, { where: "--host" });
        }
        if (flags.json) process.stdout.write(JSON.stringify(doc, null, 2) + "\n");
        else
          process.stdout.write(
            flags.host !== undefined ? hostText(doc, "high") : renderMatrix(doc, wantColor(process.stdout)),
          );
      } finally {
        store.close();
      }
    });

  fleet
    .command("diff [runA] [runB]")
    .description(
      "what changed between two fleet audits (default: the last two): regressions, improvements, hosts gone",
    )
    .option("--state <file>", "where fleet runs are kept (default $XDG_STATE_HOME/clawguard/fleet.db)")
    .option("--json", "print the diff as JSON (schema clawguard.fleet-diff/v1)")
    .action((a: string | undefined, b: string | undefined, flags: { state?: string; json?: boolean }) => {
      const store = openStore(flags.state);
      try {
        const audits = store.runs(["audit"]);
        const from = a !== undefined ? store.run(a) : audits[1];
        const to = b !== undefined ? store.run(b) : audits[0];
        if (!from || !to || from.id === to.id)
          throw new UsageError("there are not two fleet audits to compare", {
            hint: "run clawguard fleet audit twice, or name two runs (clawguard fleet history lists them)",
          });
        for (const r of [from, to])
          if (r.kind !== "audit") throw new UsageError(`run ${r.id} is a fleet ${r.kind}, not an audit`);
        const d = diffOf(store, from, to);
        process.stdout.write(
          flags.json ? JSON.stringify(d, null, 2) + "\n" : renderDiff(d, wantColor(process.stdout)),
        );
        setCode(d.regressed.length || d.unreachable.length ? 1 : 0);
      } finally {
        store.close();
      }
    });
}
