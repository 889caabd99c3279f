import { createRequire } from "node:module";
import { homedir, hostname as osHostname } from "node:os";
import path from "node:path";
import { Option, type Command } from "commander";
import { runAudit, type AuditReport } from "../audit/audit.js";
import { selectChecks } from "../audit/select.js";
import { applyWaivers, loadWaivers } from "../audit/waivers.js";
import { failingAtOrAbove, LAYERS, SEVERITIES, type Severity } from "../checks/finding.js";
import { UsageError } from "../errors.js";
import { FactContext } from "../host/context.js";
import type { Host } from "../host/host.js";
import { renderJunit } from "../render/audit-junit.js";
import { renderSarif } from "../render/audit-sarif.js";
import { makeStyle, renderAuditText } from "../render/audit-text.js";
import { terminalProgress } from "./progress.js";
import { wantColor } from "./report.js";
import { hostAt } from "./root.js";

const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

const FORMATS = ["text", "json", "sarif", "junit"] as const;
type Format = (typeof FORMATS)[number];

interface AuditFlags {
  root: string;
  json?: boolean;
  format?: Format;
  verbose?: boolean;
  layer?: string[];
  skip?: string[];
  waivers?: string;
  failOn: Severity;
  openclawTimeout?: string;
  cache: boolean;
}

/** Where OpenClaw's audit results are kept between audits: root's cache, or this user's. */
function cacheDir(): string {
  if (process.getuid?.() === 0) return "/var/cache/clawguard";
  return path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), ".cache"), "clawguard");
}

function seconds(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0)
    throw new UsageError(`--openclaw-timeout ${v}: expected a number of seconds above 0`);
  return Math.round(Number(v) * 1000);
}

/** The audited system's name and OS from its own files; this machine's name when it is this machine. */
async function identity(host: Host): Promise<{ hostname: string; os: string }> {
  const read = (p: string) => host.readFile(p).catch(() => "");
  const name = host.root === "/" ? osHostname() : (await read("/etc/hostname")).trim();
  const release = await read("/etc/os-release");
  const pretty = /^PRETTY_NAME=(?:"([^"]*)"|(.*))$/m.exec(release);
  return { hostname: name || "unknown", os: (pretty?.[1] ?? pretty?.[2] ?? "").trim() || "unknown OS" };
}

function formatOf(flags: AuditFlags): Format {
  if (flags.json && flags.format && flags.format !== "json")
    throw new UsageError(`--json and --format ${flags.format} ask for different outputs`, {
      where: "--format",
    });
  return flags.json ? "json" : (flags.format ?? "text");
}

export function registerAudit(program: Command, setCode: (c: number) => void): void {
  const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];
  program
    .command("audit")
    .description("check every security layer of this server and print evidence and fixes")
    .option("--root <dir>", "audit the system mounted at DIR instead of this one", "/")
    .addOption(
      new Option("--format <format>", "text for people; json, sarif or junit for tools").choices(FORMATS),
    )
    .option("--json", "the same as --format json (schema clawguard.audit/v1)")
    .option("-v, --verbose", "list every check, passed and skipped ones too")
    .option("--layer <layer-or-check...>", `only these layers (${LAYERS.join(", ")}) or check ids`, collect)
    .option(
      "--skip <layer-or-check...>",
      "leave these layers or check ids out (e.g. openclaw: OpenClaw's own audit takes seconds, the rest milliseconds)",
      collect,
    )
    .option("--openclaw-timeout <seconds>", "how long OpenClaw's own audit may run (default 60)")
    .option("--no-cache", "run OpenClaw's own audit even when a result for its version and config is kept")
    .option("--waivers <file>", "YAML list of accepted exceptions: check, host pattern, reason, expires")
    .addOption(
      new Option("--fail-on <severity>", "exit 1 when a check fails at or above this severity")
        .choices(SEVERITIES)
        .default("high"),
    )
    .action(async (flags: AuditFlags) => {
      const format = formatOf(flags);
      const selection = selectChecks(flags.layer, flags.skip);
      const waivers = flags.waivers !== undefined ? await loadWaivers(flags.waivers) : [];
      const timeoutMs = seconds(flags.openclawTimeout);
      const host = await hostAt(flags.root);
      const context = new FactContext(host, {
        openclawAuditTimeoutMs: timeoutMs,
        cacheDir: flags.cache ? cacheDir() : undefined,
        progress: terminalProgress(),
      });
      const [audited, system] = await Promise.all([
        runAudit(host, { layers: selection.layers, keep: selection.keep, context }),
        identity(host),
      ]);
      const today = new Date().toISOString().slice(0, 10);
      const report: AuditReport = {
        ...audited,
        version: VERSION,
        system,
        findings: applyWaivers(audited.findings, waivers, system.hostname, today),
      };
      const code = failingAtOrAbove(report.findings, flags.failOn).length > 0 ? 1 : 0;
      const out = process.stdout;
      if (format === "json") out.write(JSON.stringify(report, null, 2) + "\n");
      else if (format === "sarif") out.write(JSON.stringify(renderSarif(report), null, 2) + "\n");
      else if (format === "junit") out.write(renderJunit(report));
      else
        out.write(
          renderAuditText(report, {
            style: makeStyle(wantColor(out)),
            verbose: flags.verbose,
            width: out.isTTY ? out.columns : undefined,
            failOn: flags.failOn,
            exitCode: code,
          }),
        );
      setCode(code);
    });
}
