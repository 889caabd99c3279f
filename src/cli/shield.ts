import type { CommandGroup } from "./lazy.js";

/**
 * The `shield` command group: the egress proxy and its audit log. Each module is loaded only when
 * its command is run (`shield run` reads the daemon's modules and nothing of `shield check` or
 * the shared store's client); `names` lists what each one adds, in order (a test holds them to it).
 */
export const SHIELD: CommandGroup = {
  name: "shield",
  description: "the egress shield: a forward proxy that every agent's traffic must cross",
  members: [
    { names: ["run"], load: async () => (await import("./shield-run.js")).registerShieldRun },
    { names: ["check"], load: async () => (await import("./shield-check.js")).registerShieldCheckCommand },
    {
      names: ["log", "verify-log"],
      load: async () => (await import("./shield-log.js")).registerShieldLogCommands,
    },
    {
      names: ["status", "reload", "agents", "mode", "rules", "install"],
      load: async () => (await import("./shield-admin.js")).registerShieldAdminCommands,
    },
    {
      names: ["enroll", "revoke", "wireguard-sync"],
      load: async () => (await import("./shield-wireguard.js")).registerShieldWireguardCommands,
    },
    {
      names: ["gateway"],
      load: async () => (await import("./shield-gateway.js")).registerShieldGatewayCommand,
    },
    {
      names: ["nodes", "move", "drain"],
      load: async () => (await import("./shield-store.js")).registerShieldStoreCommands,
    },
    {
      names: ["operators"],
      load: async () => (await import("./shield-operators.js")).registerShieldOperatorsCommand,
    },
    {
      names: ["ca", "grant", "grants", "revoke-grant"],
      load: async () => (await import("./shield-access.js")).registerShieldAccessCommands,
    },
  ],
};
