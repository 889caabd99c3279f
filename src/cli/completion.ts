import { InvalidArgumentError, type Command } from "commander";
import { commandPath } from "./help.js";

/**
 * `clawguard completion bash|zsh`: a completion script written from the command line itself, so
 * every command and flag it offers is one clawguard has. zsh loads the same function through its
 * bash compatibility layer (bashcompinit), which every zsh since 4.3 ships.
 */

const SHELLS = ["bash", "zsh"] as const;
type Shell = (typeof SHELLS)[number];

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

function words(cmd: Command): string[] {
  const flags = cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)));
  return [...cmd.commands.map((c) => c.name()).filter((n) => n !== "help"), ...flags, "--help"];
}

export function bashCompletion(program: Command): string {
  const transitions: string[] = [];
  const choices: string[] = [];
  const walk = (cmd: Command) => {
    const here = commandPath(cmd);
    choices.push(`    ${quote(here)}) opts=${quote(words(cmd).join(" "))} ;;`);
    for (const sub of cmd.commands) {
      if (sub.name() === "help") continue;
      transitions.push(`      ${quote(`${here}|${sub.name()}`)}) at=${quote(commandPath(sub))} ;;`);
      walk(sub);
    }
  };
  walk(program);
  return [
    "# clawguard completion for bash (and zsh through bashcompinit)",
    "_clawguard() {",
    '  local cur="${COMP_WORDS[COMP_CWORD]}" at="" opts="" i',
    "  for ((i = 1; i < COMP_CWORD; i++)); do",
    '    case "$at|${COMP_WORDS[i]}" in',
    ...transitions,
    "    esac",
    "  done",
    '  case "$at" in',
    ...choices,
    "  esac",
    '  COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
    "}",
    "complete -o default -F _clawguard clawguard",
    "",
  ].join("\n");
}

export function completionScript(program: Command, shell: Shell): string {
  if (shell === "bash") return bashCompletion(program);
  return ["#compdef clawguard", "autoload -U +X bashcompinit && bashcompinit", bashCompletion(program)].join(
    "\n",
  );
}

export function registerCompletion(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script: source it, or save it where your shell loads completions")
    .argument("<shell>", SHELLS.join(" | "), (v: string): Shell => {
      if (!(SHELLS as readonly string[]).includes(v))
        throw new InvalidArgumentError(`one of ${SHELLS.join(", ")}`);
      return v as Shell;
    })
    .action((shell: Shell) => {
      process.stdout.write(completionScript(program, shell));
    });
}
