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
import { registerFleet } from "./fleet.js";
import { registerCompletion } from "./completion.js";
import { registerSshCa } from "./ssh-ca.js";
import { addHelp } from "./help.js";
import { checkRoot, checkStateDir } from "./root.js";

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
  registerFleet,
  registerSshCa,
  registerCompletion,
];

/**
 * Parse argv and run one of `commands`; returns the exit code (0 ok, 1 findings, 2 usage or
 * runtime error). A command throws what stops it, and it is reported here, once, in the form
 * the command was asked for (text or --json); `commands` is every command clawguard has unless
 * given.
 */
export async function main(argv: string[], commands: readonly Register[] = COMMANDS): Promise<number> {
  let code = 0;
  const program = guardRoots(
    buildProgram(commands, (c) => {
      code = c;
    }),
  );
  try {
    await program.parseAsync(argv);
  } catch (err) {
    return reportError(err, program, argv.slice(2), VERSION);
  }
  return code;
}

/**
 * The whole command line as commander knows it: what main runs, and what shell completion and
 * the docs' examples are checked against, so none of them can drift from the others.
 */
export function buildProgram(
  commands: readonly Register[] = COMMANDS,
  setCode: (code: number) => void = () => undefined,
): Command {
  const program = new Command("clawguard")
    .description("Secure OpenClaw agents on their own Linux servers")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  for (const register of commands) register(program, setCode);
  addHelp(program);
  return program;
}

/**
 * Before any command reads a config or plans a change: a --root that is not a system is
 * refused by every command the same way, so none can report on (or create) an empty tree.
 */
function guardRoots(program: Command): Command {
  return program.hook("preAction", async (_program, command) => {
    const { root, stateDir } = command.optsWithGlobals<{ root?: unknown; stateDir?: unknown }>();
    if (typeof root === "string") await checkRoot(root);
    if (typeof stateDir === "string") await checkStateDir(stateDir);
  });
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
