import type { Command } from "commander";
import { catalogEntries } from "../checks/catalog.js";
import { LAYER_CHECKS } from "../checks/index.js";

export function registerChecks(program: Command): void {
  program
    .command("checks")
    .description("list every check the audit can report: stable id, severity, whether harden fixes it")
    .option("--json", "print as JSON (array of {id, layer, severity, title, remediation, fixable})")
    .action((flags: { json?: boolean }) => {
      // The catalog fills as layer modules load; LAYER_CHECKS is referenced so that they have.
      void LAYER_CHECKS;
      const entries = catalogEntries();
      if (flags.json) {
        process.stdout.write(JSON.stringify(entries, null, 2) + "\n");
        return;
      }
      const width = Math.max(...entries.map((e) => e.id.length));
      for (const e of entries) {
        process.stdout.write(
          `${e.id.padEnd(width)}  ${e.severity.padEnd(8)}  ${e.fixable ? "fix" : "   "}  ${e.title}\n`,
        );
      }
    });
}
