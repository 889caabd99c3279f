/**
 * A command line read by the real commander program without running it: each command's action
 * is replaced by one that records which command was reached. Options, choices and argument
 * parsers are commander's own, so a flag that does not exist or a value it refuses fails here
 * as it would for a person.
 */
import type { Command } from "commander";
import { buildProgram } from "../../src/cli/main.js";

export type Parsed = { ok: true; command: string } | { ok: false; error: string };

export async function parseCommandLine(words: readonly string[]): Promise<Parsed> {
  const program = await buildProgram();
  let reached: string | null = null;
  const quiet = (cmd: Command) => {
    cmd.configureOutput({
      writeOut: () => undefined,
      writeErr: () => undefined,
      outputError: () => undefined,
    });
    cmd.exitOverride();
    cmd.action(() => {
      const names: string[] = [];
      for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
      reached = names.join(" ");
    });
    for (const sub of cmd.commands) quiet(sub);
  };
  for (const sub of program.commands) quiet(sub);
  program.configureOutput({
    writeOut: () => undefined,
    writeErr: () => undefined,
    outputError: () => undefined,
  });
  try {
    await program.parseAsync(["node", "clawguard", ...words]);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    // --help and --version are lines a person may type.
    if (e.code === "commander.helpDisplayed" || e.code === "commander.version")
      return { ok: true, command: "help" };
    return { ok: false, error: e.message ?? String(err) };
  }
  return reached === null ? { ok: false, error: "no command was reached" } : { ok: true, command: reached };
}

/** Shell words of a command line: quotes kept together, as sh splits them (no expansions). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === "\\" && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}
