/**
 * How an error reaches the person or program that ran clawguard: a ClawguardError as one line
 * per problem and its hint; anything else as a bug, with its stack and a request to report it.
 * With `--json`, both go to stderr as one `clawguard.error/v1` object (docs/errors.md).
 */
import { CommanderError, type Command } from "commander";
import { ClawguardError, ConfigError, UsageError, problemWhere } from "../errors.js";
import { formatHostPort } from "../net/hostport.js";

export const ERROR_SCHEMA = "clawguard.error/v1";

/** The command the arguments name (its words after `clawguard`), and whether it was given --json. */
export function commandOf(program: Command, args: readonly string[]): { words: string[]; json: boolean } {
  const chain: Command[] = [program];
  let asked = false;
  for (const a of args) {
    if (a === "--") break;
    if (a === "--json") asked = true;
    const here = chain[chain.length - 1]!;
    const sub = here.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (sub) chain.push(sub);
  }
  // A subcommand may take its parent's --json (lockdown rollback does).
  const json = asked && chain.some((c) => c.options.some((o) => o.long === "--json"));
  return { words: chain.slice(1).map((c) => c.name()), json };
}

/**
 * What went wrong as a ClawguardError, or null when it is a bug. Commander's complaints about
 * the command line are usage errors; a failed system call (a port taken, a directory that may
 * not be written) is about this machine, not a fault in clawguard.
 */
export function asExpected(err: unknown, words: readonly string[]): ClawguardError | null {
  if (err instanceof ClawguardError) return err;
  if (err instanceof CommanderError)
    return new UsageError(err.message.replace(/^error: /, ""), {
      hint: `clawguard ${[...words, "--help"].join(" ")} lists what it takes`,
    });
  return systemError(err);
}

function systemError(err: unknown): ClawguardError | null {
  if (!(err instanceof Error)) return null;
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (typeof e.syscall !== "string" || typeof e.code !== "string") return null;
  // Node words them "EACCES: permission denied, mkdir '/etc/x'": the middle is for people.
  const what = /^[A-Z0-9_]+: (.*?), \w+(?: '.*')?$/.exec(e.message)?.[1] ?? e.message;
  const where = e.path ?? (e.address !== undefined ? formatHostPort(e.address, e.port ?? 0) : undefined);
  const denied = e.code === "EACCES" || e.code === "EPERM";
  return new ClawguardError("CG_SYSTEM", `${e.syscall}: ${what} (${e.code})`, {
    where,
    hint: denied ? "run it as root, or point it at a place this user may use" : undefined,
    cause: err,
  });
}

export function errorText(err: ClawguardError): string {
  const lines = err.message.split("\n").map((l) => `clawguard: ${l}`);
  if (err.hint !== undefined) lines.push(`hint: ${err.hint}`);
  return lines.join("\n") + "\n";
}

export function errorJson(err: ClawguardError): string {
  const body: Record<string, unknown> = { schema: ERROR_SCHEMA, code: err.code, message: err.reason };
  if (err.where !== undefined) body.where = err.where;
  if (err.hint !== undefined) body.hint = err.hint;
  if (err instanceof ConfigError)
    body.problems = err.problems.map((p) => ({
      where: problemWhere(err.file, p),
      ...(p.keyPath !== "" ? { key: p.keyPath } : {}),
      message: p.reason,
    }));
  return JSON.stringify(body) + "\n";
}

function stackOf(err: unknown): string {
  return err instanceof Error && err.stack ? err.stack : String(err);
}

export function bugText(err: unknown, version: string): string {
  return (
    `clawguard: unexpected error, a bug in clawguard:\n${stackOf(err)}\n` +
    `clawguard: please report it with the command you ran and the lines above (clawguard ${version}, node ${process.version})\n`
  );
}

export function bugJson(err: unknown, version: string): string {
  return (
    JSON.stringify({
      schema: ERROR_SCHEMA,
      code: "CG_INTERNAL",
      message: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      bug: true,
      stack: stackOf(err),
      version,
      node: process.version,
    }) + "\n"
  );
}
