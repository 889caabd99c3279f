import { createRequire } from "node:module";
import { Command, InvalidArgumentError, Option } from "commander";
import { registerAudit } from "./audit.js";
import { registerChecks } from "./checks.js";
import { registerShield } from "./shield.js";
import { registerLockdown } from "./lockdown.js";
import { registerHarden } from "./harden.js";
import { registerRollback } from "./rollback.js";
import { registerCloudInit } from "./cloud-init.js";
import { reportError } from "./report-error.js";

const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

/** Adds a command to the program; the command hands its exit code to `setCode`. */
export type Register = (program: Command, setCode: (code: number) => void) => void;

const COMMANDS: readonly Register[] = [
  registerAudit,
  registerChecks,
  registerShield,
  registerLockdown,
  registerHarden,
  registerRollback,
  (program) => registerCloudInit(program),
];

/**
 * Parse argv and run one of `commands`; returns the exit code (0 ok, 1 findings, 2 usage or
 * runtime error). A command throws what stops it, and it is reported here, once, in the form
 * the command was asked for (text or --json); `commands` is every command clawguard has unless
 * given.
 */
export async function main(argv: string[], commands: readonly Register[] = COMMANDS): Promise<number> {
  const program = new Command("clawguard")
    .description("Secure OpenClaw agents on their own Linux servers")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  let code = 0;
  for (const register of commands)
    register(program, (c) => {
      code = c;
    });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    return reportError(err, program, argv.slice(2), VERSION);
  }
  return code;
}

export function parseChoice<T extends string>(name: string, allowed: readonly T[]) {
  return (v: string): T => {
    if (!(allowed as readonly string[]).includes(v)) {
      throw new InvalidArgumentError(`${name} must be one of ${allowed.join(", ")}`);
    }
    return v as T;
  };
}

export { Option };
