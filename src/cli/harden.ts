import { InvalidArgumentError, type Command } from "commander";
import pc from "picocolors";
import { describeChange } from "../change/change.js";
import { DEFAULT_HEALTH_TIMEOUT_S, harden, type HardenReport, type PlannedView } from "../harden/harden.js";
import { LocalWriter } from "../host/writer.js";
import { addProfileOptions, profileFrom, type ProfileFlags } from "./profile-flags.js";
import { wantColor } from "./report.js";
import { hostAt } from "./root.js";

interface HardenFlags extends ProfileFlags {
  healthTimeout: number;
  root: string;
  apply?: boolean;
  json?: boolean;
  stateDir?: string;
}

function changeLines(v: PlannedView, c: ReturnType<typeof pc.createColors>): string[] {
  const out = [`${c.bold(v.action)}${v.fixes.length ? c.dim(`  [fixes ${v.fixes.join(", ")}]`) : ""}`];
  if (v.note) out.push(`  ${c.yellow("note:")} ${v.note}`);
  if (v.diff)
    for (const l of v.diff.trimEnd().split("\n"))
      out.push(
        "  " +
          (l.startsWith("+") && !l.startsWith("+++")
            ? c.green(l)
            : l.startsWith("-") && !l.startsWith("---")
              ? c.red(l)
              : c.dim(l)),
      );
  return out;
}

export function renderHardenText(r: HardenReport, color: boolean): string {
  const c = pc.createColors(color);
  const out: string[] = [];
  if (r.changes.length === 0 && !r.error)
    out.push("Nothing to change: every fix harden knows already holds.");
  else if (!r.applied && !r.error)
    out.push(c.bold(`Plan: ${r.changes.length} changes (run again with --apply to make them)`), "");
  else if (r.applied)
    out.push(
      c.bold(
        `Applied ${r.changes.length} changes (run ${r.runId}; undo with: clawguard rollback ${r.runId})`,
      ),
      "",
    );
  r.changes.forEach((v, i) =>
    out.push(
      ...changeLines(v, c).map((l, j) => (j === 0 ? `${String(i + 1).padStart(3)}. ${l}` : `     ${l}`)),
    ),
  );
  if (r.deferred.length) {
    out.push("", c.yellow(`Not run on ${r.root} (not the running system); run them there:`));
    for (const d of r.deferred) out.push(`     ${describeChange(d.change)}`);
  }
  for (const b of r.blocked) out.push("", `${c.red("blocked")} ${b.layer}: ${b.reason}`);
  if (r.health)
    out.push(
      "",
      `gateway /healthz on 127.0.0.1:${r.health.port}: ${r.health.ok ? c.green("ok") : c.red("failed")} (${r.health.detail})`,
    );
  if (r.egress) {
    const e = r.egress;
    const state = e.applied ? c.green("applied") : e.error ? c.red("failed") : "planned";
    out.push("", `egress lockdown through ${e.shield}: ${state} (undo with: clawguard lockdown rollback)`);
    for (const p of e.paths) out.push(`     ${p}`);
    for (const w of e.warnings) out.push(`     ${c.yellow("warning:")} ${w}`);
    if (e.error) out.push(`     ${c.red("error:")} ${e.error}`);
  }
  if (r.after) {
    out.push("", `before: ${r.before.pass} pass, ${r.before.fail} fail, ${r.before.warn} warn`);
    out.push(`after:  ${r.after.pass} pass, ${r.after.fail} fail, ${r.after.warn} warn`);
    if (r.fixed?.length) out.push(`fixed:  ${r.fixed.join(", ")}`);
    if (r.stillFailing?.length) out.push(`still failing: ${r.stillFailing.map((f) => f.id).join(", ")}`);
  }
  if (r.error) out.push("", `${c.red("error:")} ${r.error}`);
  for (const p of r.rollbackProblems ?? []) out.push(`${c.red("not restored:")} ${p}`);
  return out.join("\n") + "\n";
}

export function registerHarden(program: Command, setCode: (c: number) => void): void {
  addProfileOptions(
    program
      .command("harden")
      .description(
        "print the changes that fix what audit finds; --apply makes them (journaled, undo with rollback)",
      ),
  )
    .option("--root <dir>", "harden the system mounted at DIR instead of this one", "/")
    .option("--apply", "make the changes (after a backup of everything they touch)")
    .option("--json", "print the report as JSON (schema clawguard.harden/v1)")
    .option("--state-dir <dir>", "where runs and backups are kept (default ROOT/var/lib/clawguard)")
    .option(
      "--health-timeout <seconds>",
      "how long the gateway may take to answer /healthz under its new unit before it is put back",
      (v: string) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0 || n > 3600)
          throw new InvalidArgumentError("expected a number of seconds between 1 and 3600");
        return n;
      },
      DEFAULT_HEALTH_TIMEOUT_S,
    )
    .action(async (flags: HardenFlags) => {
      const { profile } = await profileFrom(flags, true);
      const host = await hostAt(flags.root);
      const color = wantColor(process.stderr);
      const report = await harden(host, new LocalWriter(host), {
        profile,
        apply: Boolean(flags.apply),
        stateDir: flags.stateDir,
        healthTimeoutMs: flags.healthTimeout * 1000,
        onRecord: flags.json
          ? undefined
          : (r) => {
              if (r.t === "begin")
                process.stderr.write(pc.createColors(color).dim(`[${r.n}] ${describeChange(r.change)}\n`));
            },
      });
      if (flags.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
      else process.stdout.write(renderHardenText(report, wantColor(process.stdout)));
      setCode(report.error || report.egress?.error ? 1 : 0);
    });
}
