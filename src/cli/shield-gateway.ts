import type { Command } from "commander";
import pc from "picocolors";
import type { Step } from "../change/ruleset.js";
import { UsageError } from "../errors.js";
import { LocalWriter } from "../host/writer.js";
import { loadShieldConfig } from "../shield/config.js";
import { applyGateway, rollbackGateway } from "../shield/gateway/apply.js";
import { planGateway, type GatewayPlan } from "../shield/gateway/plan.js";
import { verifyGateway } from "../shield/gateway/verify.js";
import { wantColor } from "./report.js";
import { hostAt } from "./root.js";

interface GatewayFlags {
  config?: string;
  apply?: boolean;
  verify?: boolean;
  root: string;
  load?: boolean;
  json?: boolean;
}

function paint() {
  return pc.createColors(wantColor(process.stdout));
}

function stepLines(steps: Step[]): string[] {
  const c = paint();
  return steps.map(
    (s) =>
      `  ${s.ok ? c.green("ok  ") : c.red("FAIL")} ${s.command}${s.detail ? c.dim(`  (${s.detail})`) : ""}`,
  );
}

function planText(plan: GatewayPlan): string {
  const c = paint();
  const o = [c.bold(`clawguard shield gateway: plan for ${plan.root}`), ""];
  for (const f of plan.files)
    o.push(c.bold(f.path) + c.dim(`  ${f.why}`), f.diff ? f.diff.trimEnd() : c.dim("  unchanged"), "");
  for (const l of plan.links)
    o.push(
      c.bold(l.path) + c.dim("  enables the unit"),
      l.before === l.target ? c.dim("  unchanged") : `  ln -sf ${l.target} ${l.path}`,
      "",
    );
  for (const n of plan.notes) o.push(`note: ${n}`);
  o.push("", c.dim("Nothing was changed. Run again with --apply, then --verify."));
  return o.join("\n") + "\n";
}

/** `clawguard shield gateway`: the shield host's table that makes it its agents' only way out. */
export function registerShieldGatewayCommand(shield: Command, setCode: (c: number) => void): void {
  const gateway = shield
    .command("gateway")
    .description("gateway mode: the nftables table that makes this server its agents' only way out")
    // Not required here: `gateway rollback` needs none.
    .option("--config <file>", "shield.yaml with a gateway section")
    .option("--apply", "write the table, its unit and link, and load it (journaled; undo with rollback)")
    .option("--verify", "check that the table is loaded as planned and saved for the next boot")
    .option("--root <dir>", "the system to write to (a mounted image); rules are loaded only on /", "/")
    .option(
      "--load",
      "with --root: load the table into this network namespace all the same (a lab of namespaces)",
    )
    .option("--json", "print JSON (schemas clawguard.shield-gateway-plan|apply|verify/v1)")
    .action(async (flags: GatewayFlags) => {
      if (flags.apply && flags.verify) throw new UsageError("give --apply or --verify, not both");
      if (!flags.config) throw new UsageError("which shield? pass --config shield.yaml");
      const cfg = await loadShieldConfig(flags.config);
      if (!cfg.gateway)
        throw new UsageError(`${flags.config} has no gateway section`, {
          hint: "add gateway: { networks: [...], listen: [...] } (see docs)",
        });
      const host = await hostAt(flags.root);
      const plan = await planGateway(host, cfg);
      const c = paint();
      if (flags.verify) {
        const r = await verifyGateway(plan, cfg.gateway.listen);
        if (flags.json) process.stdout.write(JSON.stringify(r, null, 2) + "\n");
        else {
          const o = r.checks.map(
            (k) =>
              `  ${k.ok ? c.green("PASS") : k.info ? c.yellow("WARN") : c.red("FAIL")} ${k.id.padEnd(10)} ${k.detail}`,
          );
          if (r.dropped)
            o.push(
              c.dim(
                `  dropped so far: ${r.dropped.input} sent to the shield, ${r.dropped.forward} to be routed`,
              ),
            );
          o.push(r.ok ? c.green("the gateway holds") : c.red("the gateway does NOT hold"));
          process.stdout.write(o.join("\n") + "\n");
        }
        setCode(r.ok ? 0 : 1);
        return;
      }
      if (!flags.apply) {
        process.stdout.write(flags.json ? JSON.stringify(plan, null, 2) + "\n" : planText(plan));
        return;
      }
      // The rules go into this machine's kernel only when --root is this machine.
      const r = await applyGateway(host, new LocalWriter(host), plan, {
        live: host.root === "/" || flags.load === true,
      });
      if (flags.json) process.stdout.write(JSON.stringify(r, null, 2) + "\n");
      else {
        const o = [
          c.bold(
            `clawguard shield gateway: applied to ${r.root}` +
              (r.runId
                ? ` (run ${r.runId}; undo with: clawguard shield gateway rollback)`
                : " (nothing to change)"),
          ),
        ];
        for (const p of r.written) o.push(`  wrote ${p}`);
        for (const p of r.unchanged) o.push(c.dim(`  unchanged ${p}`));
        o.push(...stepLines(r.steps), c.dim("Check it: clawguard shield gateway --config FILE --verify"));
        process.stdout.write(o.join("\n") + "\n");
      }
    });

  gateway
    .command("rollback")
    .description("undo every gateway run: the table, its unit and link go, as they were before")
    .option("--root <dir>", "the system to undo it on", "/")
    .option("--load", "with --root: remove the table from this network namespace all the same")
    .option("--json", "print JSON (schema clawguard.shield-gateway-rollback/v1)")
    .action(async (flags: { root: string; load?: boolean; json?: boolean }) => {
      const host = await hostAt(flags.root);
      const r = await rollbackGateway(host, new LocalWriter(host), {
        live: host.root === "/" || flags.load === true,
      });
      if (flags.json) process.stdout.write(JSON.stringify(r, null, 2) + "\n");
      else {
        const c = paint();
        const o = [c.bold(`clawguard shield gateway rollback: ${r.root}`)];
        if (r.runs.length === 0)
          o.push(c.dim("  no gateway run recorded; only a loaded table was looked for"));
        for (const id of r.runs) o.push(`  undid run ${id}`);
        o.push(...stepLines(r.steps));
        for (const p of r.problems) o.push(c.red(`problem: ${p}`));
        process.stdout.write(o.join("\n") + "\n");
      }
      setCode(r.problems.length > 0 ? 2 : 0);
    });
}
