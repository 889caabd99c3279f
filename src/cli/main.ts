import { createRequire } from "node:module";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { registerAudit } from "./audit.js";
import { registerChecks } from "./checks.js";
import { registerShield } from "./shield.js";
import { registerLockdown } from "./lockdown.js";
import { registerHarden } from "./harden.js";
import { registerRollback } from "./rollback.js";
import { registerCloudInit } from "./cloud-init.js";

const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

/** Parse argv and run; returns the exit code (0 ok, 1 findings, 2 usage or runtime error). */
export async function main(argv: string[]): Promise<number> {
  const program = new Command("clawguard")
    .description("Secure OpenClaw agents on their own Linux servers")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) });
  let code = 0;
  const setCode = (c: number) => {
    code = c;
  };
  registerAudit(program, setCode);
  registerChecks(program);
  registerShield(program, setCode);
  registerLockdown(program, setCode);
  registerHarden(program, setCode);
  registerRollback(program, setCode);
  registerCloudInit(program, VERSION);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`clawguard: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
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
