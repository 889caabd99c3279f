import type { Command } from "commander";
import { loadShieldConfig } from "../shield/config.js";
import { startManagedShield } from "../shield/daemon.js";
import { missingNodeFlags } from "../shield/node-flags.js";

interface RunFlags {
  config: string;
  json?: boolean;
}

/** `shield run`: the daemon in the foreground, as its unit runs it. */
export function registerShieldRun(shield: Command, setCode: (c: number) => void): void {
  shield
    .command("run")
    .description("run the shield until SIGTERM or SIGINT (refuses to start on an invalid config)")
    .requiredOption("--config <file>", "shield.yaml: listen address, log, agents, tiers, fleets and rules")
    .option("--json", "print lifecycle events as JSON lines (schema clawguard.shield-run/v1)")
    .action(async (flags: RunFlags) => {
      // Any error here (bad config, port taken, unwritable log) reaches main and exits 2:
      // the shield never runs without the rules it was given.
      const cfg = await loadShieldConfig(flags.config);
      const running = await startManagedShield(cfg);
      const { address, port } = running.shield.address;
      const say = (event: Record<string, unknown>, text: string) =>
        process.stdout.write(
          flags.json ? JSON.stringify({ schema: "clawguard.shield-run/v1", ...event }) + "\n" : text + "\n",
        );
      // Handlers first: whoever waits for "listening" may signal the moment it reads it.
      const stopped = new Promise<NodeJS.Signals>((resolve) => {
        const on = (s: NodeJS.Signals) => {
          process.off("SIGTERM", on);
          process.off("SIGINT", on);
          resolve(s);
        };
        process.on("SIGTERM", on);
        process.on("SIGINT", on);
      });
      // SIGHUP re-reads the config; a config that fails validation leaves the running policy.
      const onHup = () => {
        void running.reload("SIGHUP", true).then((r) => {
          if (r.ok)
            say({ event: "reloaded", tunnelsClosed: r.tunnelsClosed }, "clawguard shield: config reloaded");
        });
      };
      process.on("SIGHUP", onHup);
      say(
        {
          event: "listening",
          host: address,
          port,
          agents: cfg.agents.length,
          mode: cfg.mode,
          log: cfg.log.path,
          admin: running.admin ? { host: running.admin.address, port: running.admin.port } : null,
        },
        `clawguard shield: listening on ${address}:${port}, ${cfg.agents.length} agent(s), mode ${cfg.mode}, log ${cfg.log.path}` +
          (running.admin ? `, admin API on ${running.admin.address}:${running.admin.port}` : ""),
      );
      const missing = missingNodeFlags();
      if (missing.length > 0)
        process.stderr.write(
          `clawguard shield: node was started without ${missing.join(" ")}: after a bulk tunnel every request costs about a third more CPU; ` +
            `run it as \`node ${missing.join(" ")} ${process.argv[1] ?? "clawguard.js"} shield run\`, or as \`clawguard\` itself\n`,
        );
      const signal = await stopped;
      process.off("SIGHUP", onHup);
      say({ event: "stopping", signal }, `clawguard shield: ${signal}: no new connections, flushing the log`);
      await running.close();
      say({ event: "stopped" }, "clawguard shield: stopped");
      setCode(0);
    });
}
