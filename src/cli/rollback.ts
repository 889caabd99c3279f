import type { Command } from "commander";
import { defaultStateDir } from "../change/apply.js";
import { describeChange } from "../change/change.js";
import { listRuns } from "../change/journal.js";
import { rollbackRun } from "../change/rollback.js";
import { LocalWriter } from "../host/writer.js";
import { migrateLegacyState } from "../lockdown/legacy.js";
import { hostAt } from "./root.js";

interface RollbackFlags {
  root: string;
  stateDir?: string;
  list?: boolean;
  load?: boolean;
  json?: boolean;
}

export function registerRollback(program: Command, setCode: (c: number) => void): void {
  program
    .command("rollback [run]")
    .description("undo a harden or lockdown run (default: the most recent one that changed something)")
    .option("--root <dir>", "the system mounted at DIR instead of this one", "/")
    .option("--state-dir <dir>", "where runs and backups are kept (default ROOT/var/lib/clawguard)")
    .option("--load", "with --root: undo loaded rules and units on this machine all the same")
    .option("--list", "list the runs instead")
    .option("--json", "print JSON (schema clawguard.rollback/v1)")
    .action(async (run: string | undefined, flags: RollbackFlags) => {
      const host = await hostAt(flags.root);
      const writer = new LocalWriter(host);
      const stateDir = flags.stateDir ?? defaultStateDir(host.root);
      // A lockdown recorded by an earlier version becomes a run where lockdown keeps its runs.
      await migrateLegacyState(host, writer, defaultStateDir(host.root));
      if (flags.list) {
        const runs = await listRuns(stateDir);
        if (flags.json)
          process.stdout.write(JSON.stringify({ schema: "clawguard.rollback/v1", runs }, null, 2) + "\n");
        else if (runs.length === 0) process.stdout.write(`no runs in ${stateDir}\n`);
        else
          for (const r of runs)
            process.stdout.write(
              `${r.id}  ${r.kind.padEnd(8)} ${r.status.padEnd(11)} ${String(r.done).padStart(3)}/${r.begun} changes${r.rolledBack ? "  rolled back" : ""}\n`,
            );
        return;
      }
      // --root names another system: its files go back, this machine's rules and units stay.
      const res = await rollbackRun(host, writer, stateDir, run, {
        leaveRunning: host.root !== "/" && flags.load !== true,
      });
      if (flags.json)
        process.stdout.write(JSON.stringify({ schema: "clawguard.rollback/v1", ...res }, null, 2) + "\n");
      else {
        process.stdout.write(`Rolled back run ${res.runId}: ${res.undone.length} changes undone\n`);
        for (const c of res.undone) process.stdout.write(`  undid: ${describeChange(c)}\n`);
        for (const c of res.left)
          process.stdout.write(
            `  left as it runs on this machine (--root is another system; --load undoes it here too): ${describeChange(c)}\n`,
          );
        if (res.packagesKept.length)
          process.stdout.write(
            `  packages installed by the run stay: ${res.packagesKept.join(" ")} (apt-get remove them if unwanted)\n`,
          );
        for (const p of res.problems) process.stdout.write(`  not restored: ${p}\n`);
      }
      setCode(res.problems.length ? 1 : 0);
    });
}
