import { Option, type Command } from "commander";
import { runAudit } from "../audit/audit.js";
import { failingAtOrAbove, LAYERS, SEVERITIES, type Layer, type Severity } from "../checks/finding.js";
import { makeStyle, renderText, wantColor } from "./report.js";
import { parseChoice } from "./main.js";
import { hostAt } from "./root.js";

interface AuditFlags {
  root: string;
  json?: boolean;
  layer?: Layer[];
  skip?: Layer[];
  failOn: Severity;
}

export function registerAudit(program: Command, setCode: (c: number) => void): void {
  program
    .command("audit")
    .description("check every security layer of this server and print evidence and fixes")
    .option("--root <dir>", "audit the system mounted at DIR instead of this one", "/")
    .option("--json", "print the report as JSON (schema clawguard.audit/v1)")
    .addOption(
      new Option("--layer <layer...>", `only these layers (${LAYERS.join(", ")})`).argParser(
        (v: string, prev: Layer[] | undefined) => [...(prev ?? []), parseChoice("--layer", LAYERS)(v)],
      ),
    )
    .addOption(
      new Option(
        "--skip <layer...>",
        "leave these layers out (e.g. openclaw: OpenClaw's own audit takes seconds, the rest milliseconds)",
      ).argParser((v: string, prev: Layer[] | undefined) => [
        ...(prev ?? []),
        parseChoice("--skip", LAYERS)(v),
      ]),
    )
    .addOption(
      new Option("--fail-on <severity>", "exit 1 when a check fails at or above this severity")
        .choices(SEVERITIES)
        .default("high"),
    )
    .action(async (flags: AuditFlags) => {
      const skip = new Set(flags.skip ?? []);
      const layers = (flags.layer ?? LAYERS).filter((l) => !skip.has(l));
      const report = await runAudit(await hostAt(flags.root), { layers });
      if (flags.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
      else process.stdout.write(renderText(report, makeStyle(wantColor(process.stdout))));
      setCode(failingAtOrAbove(report.findings, flags.failOn).length > 0 ? 1 : 0);
    });
}
