import type { CommandGroup } from "./lazy.js";

/**
 * The `fleet` command group. `fleet audit` loads the audit's rendering and the fleet's SSH, not
 * the harden and lockdown steps a rollout needs; `names` lists what each module adds, in order.
 */
export const FLEET: CommandGroup = {
  name: "fleet",
  description: "audit, harden and lock down every server of an inventory over ssh, and keep the history",
  members: [
    { names: ["audit"], load: async () => (await import("./fleet.js")).registerFleetAudit },
    {
      names: ["harden", "lockdown", "rollback"],
      load: async () => (await import("./fleet-rollout.js")).registerFleetRollouts,
    },
    { names: ["history", "diff"], load: async () => (await import("./fleet.js")).registerFleetRuns },
  ],
};
