import { createRequire } from "node:module";
import { Command, InvalidArgumentError, Option } from "commander";
import { reportError } from "./report-error.js";
import { addHelp } from "./help.js";
import { addCommands, type CommandEntry, type Register } from "./lazy.js";
import { checkRoot, checkStateDir } from "./root.js";
import { FLEET } from "./fleet-commands.js";
import { SHIELD } from "./shield.js";

const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

export type { CommandEntry, Register };

/**
 * Every command clawguard has, in the order help lists them. A module is loaded only when the
 * command line names one of its commands (see lazy.ts): a command starts with its own modules
 * and commander's, not with every command's.
 */
export const COMMANDS: readonly CommandEntry[] = [
  { names: ["audit"], load: async () => (await import("./audit.js")).registerAudit },
  { names: ["checks"], load: async () => (await import("./checks.js")).registerChecks },
  SHIELD,
  { names: ["lockdown"], load: async () => (await import("./lockdown.js")).registerLockdown },
  { names: ["harden"], load: async () => (await import("./harden.js")).registerHarden },
  { names: ["rollback"], load: async () => (await import("./rollback.js")).registerRollback },
  {
    names: ["cloud-init"],
    load: async () => {
      const { registerCloudInit } = await import("./cloud-init.js");
      return (program) => registerCloudInit(program);
    },
  },
  FLEET,
  { names: ["ssh-ca"], load: async () => (await import("./ssh-ca.js")).registerSshCa },
  {
    names: ["completion"],
    load: async () => (await import("./completion.js")).registerCompletion,
    wholeProgram: true,
  },
];

/**
 * Parse argv and run one of `commands`; returns the exit code (0 ok, 1 findings, 2 usage or
 * runtime error). A command throws what stops it, and it is reported here, once, in the form
 * the command was asked for (text or --json); `commands` is every command clawguard has unless
 * given.
 */
export async function main(argv: string[], commands: readonly CommandEntry[] = COMMANDS): Promise<number> {
  let code = 0;
  const setCode = (c: number) => {
    code = c;
  };
  const program = guardRoots(await buildProgram(commands, setCode, argv.slice(2)));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    return reportError(err, program, argv.slice(2), VERSION);
  }
  return code;
}

/**
 * The command line as commander knows it: what main runs, and what shell completion and the
 * docs' examples are checked against, so none of them can drift from the others. Given `args`
 * (the words after `clawguard`), only the commands they name are loaded; without, all of them.
 */
export async function buildProgram(
  commands: readonly CommandEntry[] = COMMANDS,
  setCode: (code: number) => void = () => undefined,
  args: readonly string[] = [],
): Promise<Command> {
  const program = new Command("clawguard")
    .description("Secure OpenClaw agents on their own Linux servers")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  await addCommands(program, commands, args, setCode);
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
