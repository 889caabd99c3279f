/**
 * `clawguard shield run` on its own: the same command, loading the daemon's modules and nothing
 * of audit, harden or lockdown. A restarted shield serves its agents again that much sooner.
 */
import { createRequire } from "node:module";
import { Command } from "commander";
import { reportError } from "./report-error.js";
import { registerShieldRun } from "./shield-run.js";

const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

export async function main(argv: string[]): Promise<number> {
  const program = new Command("clawguard")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  let code = 0;
  registerShieldRun(program.command("shield"), (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    return reportError(err, program, argv.slice(2), VERSION);
  }
  return code;
}
