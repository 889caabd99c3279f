import { InvalidArgumentError, type Command } from "commander";
import { DEFAULT_HEALTH_TIMEOUT_S } from "../harden/harden.js";
import { hardenStep } from "../fleet/harden.js";
import { lockdownStep } from "../fleet/lockdown.js";
import { Progress } from "../fleet/progress.js";
import { rollbackFleet } from "../fleet/rollback.js";
import { rollFleet, type Rollout, type RolloutHost, type Step } from "../fleet/rolling.js";
import { parseSerial } from "../fleet/rollout.js";
import { clean, errorText, renderOutcome, renderPlan, renderRolloutSummary } from "../fleet/render/text.js";
import { Connections, openStore, selectTargets } from "../fleet/setup.js";
import type { RunKind } from "../fleet/store.js";
import { addConnectOptions, positive, printWarnings, withFleet, type ConnectFlags } from "./fleet-options.js";
import { addProfileOptions, profileFrom, type ProfileFlags } from "./profile-flags.js";
import { wantColor } from "./report.js";

interface RolloutFlags extends ConnectFlags {
  apply?: boolean;
  serial: string;
  maxFail: number;
}

interface HardenFlags extends RolloutFlags, ProfileFlags {
  healthTimeout: number;
}

interface LockdownFlags extends RolloutFlags {
  shield: string;
}

function count(name: string) {
  return (v: string): number => {
    if (!/^[0-9]+$/.test(v)) throw new InvalidArgumentError(`${name} must be a number of hosts`);
    return Number(v);
  };
}

function addRolloutOptions(cmd: Command): Command {
  return cmd
    .option("--apply", "make the changes, batch by batch (without it: print the fleet's plan)")
    .option(
      "--serial <n|n%|list>",
      "hosts per batch: N, N% of the hosts to change, or a list like 1,25%",
      "1",
    )
    .option(
      "--max-fail <n>",
      "no further batch starts once more hosts than this have failed",
      count("--max-fail"),
      0,
    )
    .option("--json", "print the run as JSON (schema clawguard.fleet-rollout/v1)");
}

function rolloutDocument(kind: RunKind, runId: string, r: Rollout) {
  const names = (pred: (h: RolloutHost) => boolean) => r.hosts.filter(pred).map((h) => h.host);
  return {
    schema: "clawguard.fleet-rollout/v1",
    command: kind,
    run: runId,
    hosts: r.hosts.map((h) => ({
      host: h.host,
      address: h.target.address,
      status: h.status,
      ...(h.error ? { error: h.error } : {}),
      ...h.result,
      startedAt: h.startedAt,
      durationMs: h.durationMs,
    })),
    summary: {
      changed: names((h) => h.result.outcome === "changed"),
      failed: names((h) => h.result.outcome === "failed"),
      notTouched: names((h) => h.result.outcome === "not-touched"),
      unchanged: names((h) => h.result.outcome === "unchanged"),
      planned: names((h) => h.result.outcome === "planned"),
      notReached: names((h) => h.status !== "ok" && h.result.outcome === undefined),
      stopped: r.stopped,
    },
  };
}

async function runRollout(
  kind: "harden" | "lockdown",
  step: Step,
  flags: RolloutFlags,
  applyTimeoutS: number,
  params: Record<string, unknown>,
  setCode: (c: number) => void,
): Promise<void> {
  const serial = parseSerial(flags.serial);
  const { inventory, targets } = await selectTargets(flags.inventory, flags.limit);
  printWarnings(inventory.warnings);
  const color = wantColor(process.stdout);
  await withFleet(flags, async (store, conn) => {
    const run = store.beginRun(kind, inventory.file, {
      ...params,
      limit: flags.limit,
      apply: Boolean(flags.apply),
    });
    let progress = Progress.for(process.stderr, targets.length, `fleet ${kind}: planning`, flags.json);
    let planned = false;
    const rollout = await rollFleet(targets, conn.ctx, step, {
      apply: Boolean(flags.apply),
      serial,
      maxFail: flags.maxFail,
      forks: flags.forks,
      applyTimeoutMs: Math.max(flags.timeout, applyTimeoutS) * 1000,
      onHost: (h, i) => {
        store.saveHost(run.id, i, h);
        if (!planned) return progress.tick(h.status === "ok");
        progress.tick(h.result.outcome === "changed");
        if (!flags.json) progress.above(process.stdout, renderOutcome(h, color));
      },
      onPlanned: (hosts) => {
        progress.end();
        planned = true;
        if (!flags.json) process.stdout.write(renderPlan({ hosts: [...hosts], stopped: false }, kind, color));
        const todo = hosts.filter((h) => h.result.outcome === "not-touched").length;
        if (flags.apply && todo > 0) {
          if (!flags.json)
            process.stdout.write(
              `\nApplying to ${todo} hosts, --serial ${flags.serial}, --max-fail ${flags.maxFail}:\n`,
            );
          progress = Progress.for(process.stderr, todo, `fleet ${kind}: applying`, flags.json);
        }
      },
    });
    progress.end();
    const doc = rolloutDocument(kind, run.id, rollout);
    store.finishRun(
      run.id,
      Object.fromEntries(Object.entries(doc.summary).map(([k, v]) => [k, Array.isArray(v) ? v.length : v])),
    );
    if (flags.json) process.stdout.write(JSON.stringify(doc, null, 2) + "\n");
    else {
      if (flags.apply) process.stdout.write("\n" + renderRolloutSummary(rollout, flags.maxFail, color));
      else process.stdout.write("Nothing was changed. Run again with --apply to make the changes.\n");
      process.stdout.write(
        `Run ${run.id}${flags.apply ? ` (undo it with: clawguard fleet rollback ${run.id})` : ""}\n`,
      );
    }
    const s = doc.summary;
    setCode(s.failed.length || s.notTouched.length || s.notReached.length ? 1 : 0);
  });
}

export function registerFleetRollouts(fleet: Command, setCode: (c: number) => void): void {
  addRolloutOptions(
    addProfileOptions(
      addConnectOptions(
        fleet
          .command("harden")
          .description(
            "plan harden on every host; --apply rolls it out in batches, each host verified, a failed one put back",
          ),
        300,
      ),
    ),
  )
    .option(
      "--health-timeout <seconds>",
      "how long each gateway may take to answer /healthz under its new unit",
      (v: string) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0 || n > 3600)
          throw new InvalidArgumentError("expected 1 to 3600 seconds");
        return n;
      },
      DEFAULT_HEALTH_TIMEOUT_S,
    )
    .action(async (flags: HardenFlags) => {
      // The profile is read and checked here, where its file is, and sent to each host whole.
      const { profile } = await profileFrom(flags);
      const step = hardenStep({ profile, healthTimeoutS: flags.healthTimeout });
      // An apply waits for the gateway, then may undo everything: time for both, and apt.
      await runRollout("harden", step, flags, 2 * flags.healthTimeout + 600, { profile }, setCode);
    });

  addRolloutOptions(
    addConnectOptions(
      fleet
        .command("lockdown")
        .description(
          "plan the egress lockdown on every host; --apply rolls it out in batches, each host verified",
        ),
      300,
    ),
  )
    .requiredOption("--shield <host:port>", "the egress shield every host must send its traffic through")
    .action((flags: LockdownFlags) =>
      runRollout("lockdown", lockdownStep(flags.shield), flags, 600, { shield: flags.shield }, setCode),
    );

  fleet
    .command("rollback <run>")
    .description("undo a fleet harden or lockdown run, host by host (each through its own rollback)")
    .option("--timeout <seconds>", "how long each step on a host may take", positive("--timeout", 86400), 900)
    .option(
      "--accept-new-host-keys",
      "take the key of a host never seen before (a changed key is always refused)",
    )
    .option("--ssh-config <file>", "ssh config file instead of ~/.ssh/config (ssh -F)")
    .option("--state <file>", "where fleet runs are kept (default $XDG_STATE_HOME/clawguard/fleet.db)")
    .option("--json", "print the result as JSON (schema clawguard.fleet-rollback/v1)")
    .action(async (id: string, flags: ConnectFlags) => {
      const stored = openStore(flags.state);
      let run;
      let hosts;
      try {
        run = stored.run(id);
        hosts = stored.hosts(run.id);
      } finally {
        stored.close();
      }
      const of = run;
      await withFleet(flags, async (store, conn: Connections) => {
        const undo = store.beginRun("rollback", of.inventory, { of: of.id });
        const undone = await rollbackFleet(of, hosts, conn.ctx, (h, i) => {
          store.saveHost(undo.id, i, h);
          if (flags.json) return;
          const r = h.result;
          const line =
            r.outcome === "undone"
              ? `undone   ${clean(h.host)}${r.runId ? ` (run ${r.runId})` : ""}`
              : r.outcome === "nothing-to-undo"
                ? `nothing  ${clean(h.host)}: the run left nothing here`
                : `FAILED   ${clean(h.host)}: ${h.error ? errorText(h.error) : (r.undo?.problems ?? []).map(clean).join("; ")}`;
          process.stdout.write(line + "\n");
        });
        const failed = undone.filter((h) => h.result.outcome === "failed").map((h) => h.host);
        store.finishRun(undo.id, {
          undone: undone.filter((h) => h.result.outcome === "undone").length,
          failed: failed.length,
        });
        if (flags.json)
          process.stdout.write(
            JSON.stringify(
              { schema: "clawguard.fleet-rollback/v1", run: undo.id, of: of.id, hosts: undone },
              null,
              2,
            ) + "\n",
          );
        setCode(failed.length ? 1 : 0);
      });
    });
}
