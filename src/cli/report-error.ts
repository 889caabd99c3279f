import { CommanderError, type Command } from "commander";
import { asExpected, bugJson, bugText, commandOf, errorJson, errorText } from "./errors.js";

/** Report what stopped a command, once, in the form it was asked for (text or --json); the exit code. */
export function reportError(err: unknown, program: Command, args: string[], version: string): number {
  if (err instanceof CommanderError) {
    // --help and --version end here with 0; help printed for a command given without its
    // subcommand is itself the message.
    if (err.exitCode === 0) return 0;
    if (err.code === "commander.help") return 2;
  }
  const { words, json } = commandOf(program, args);
  const known = asExpected(err, words);
  if (known) process.stderr.write(json ? errorJson(known) : errorText(known));
  else process.stderr.write(json ? bugJson(err, version) : bugText(err, version));
  return 2;
}
