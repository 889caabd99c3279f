import type { Command } from "commander";
import { registerShieldAdminCommands } from "./shield-admin.js";
import { registerShieldCheckCommand } from "./shield-check.js";
import { registerShieldGatewayCommand } from "./shield-gateway.js";
import { registerShieldOperatorsCommand } from "./shield-operators.js";
import { registerShieldLogCommands } from "./shield-log.js";
import { registerShieldStoreCommands } from "./shield-store.js";
import { registerShieldWireguardCommands } from "./shield-wireguard.js";
import { registerShieldRun } from "./shield-run.js";
import { registerShieldAccessCommands } from "./shield-access.js";

/** The `shield` command group: the egress proxy and its audit log. */
export function registerShield(program: Command, setCode: (c: number) => void): void {
  const shield = program
    .command("shield")
    .description("the egress shield: a forward proxy that every agent's traffic must cross");

  registerShieldRun(shield, setCode);
  registerShieldCheckCommand(shield, setCode);
  registerShieldLogCommands(shield, setCode);
  registerShieldAdminCommands(shield, setCode);
  registerShieldWireguardCommands(shield, setCode);
  registerShieldGatewayCommand(shield, setCode);
  registerShieldStoreCommands(shield, setCode);
  registerShieldOperatorsCommand(shield);
  registerShieldAccessCommands(shield);
}
