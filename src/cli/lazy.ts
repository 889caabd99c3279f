import type { Command } from "commander";

/**
 * Commands registered as the command line asks for them. Each command's module (and all it
 * imports: the audit's checks, the shield's policy, the fleet's SSH) is loaded only when the
 * command line names it, so `clawguard shield enroll` starts without reading audit, harden or
 * lockdown. Help, completion and a misspelt command see every command: when the words do not
 * name one, every module is loaded, in the order they are listed.
 */

/** Adds commands to `parent`; a command hands its exit code to `setCode`. */
export type Register = (parent: Command, setCode: (code: number) => void) => void;

/** A module of commands, loaded when the command line names one of them (or all commands are wanted). */
export interface LazyCommands {
  /** The commands it adds under its parent, in the order it adds them. */
  readonly names: readonly string[];
  readonly load: () => Promise<Register>;
  /** Its command works on the whole command line (shell completion): naming it loads every command. */
  readonly wholeProgram?: boolean;
}

/** A command whose sub-commands come from several modules, each loaded on its own. */
export interface CommandGroup {
  readonly name: string;
  readonly description: string;
  readonly members: readonly CommandEntry[];
}

/** A Register adds its commands whatever the command line: it is always registered when all are. */
export type CommandEntry = Register | LazyCommands | CommandGroup;

const isLazy = (e: CommandEntry): e is LazyCommands => typeof e === "object" && "load" in e;
const namesOf = (e: CommandEntry): readonly string[] =>
  typeof e === "function" ? [] : isLazy(e) ? e.names : [e.name];

/**
 * The entry `word` names, or null when it names none or names one that needs every command.
 */
function chosen(entries: readonly CommandEntry[], word: string | undefined): CommandEntry | null {
  if (word === undefined) return null;
  const named = entries.find((e) => namesOf(e).includes(word));
  return !named || (isLazy(named) && named.wholeProgram) ? null : named;
}

/**
 * Adds `entries` under `parent`: only the one that `words` (the command line after `parent`)
 * names, or all of them when it names none of them.
 */
export async function addCommands(
  parent: Command,
  entries: readonly CommandEntry[],
  words: readonly string[],
  setCode: (code: number) => void,
): Promise<void> {
  const only = chosen(entries, words[0]);
  const wanted = only ? [only] : entries;
  // Every module of this level is read at once; they register in the listed order.
  const loaded = await Promise.all(wanted.map((e) => (isLazy(e) ? e.load() : null)));
  for (const [i, e] of wanted.entries()) {
    if (typeof e === "function") e(parent, setCode);
    else if (isLazy(e)) loaded[i]!(parent, setCode);
    else {
      const group = parent.command(e.name).description(e.description);
      await addCommands(group, e.members, only ? words.slice(1) : [], setCode);
    }
  }
}
