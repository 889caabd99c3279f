/**
 * What the audit knows about a system, as plain data: each fact can be gathered on one server,
 * written out as JSON and judged anywhere later. Nothing here reads a disk, a socket or a process.
 */

/** Why a file or command could not give us what we wanted. */
export type ProblemKind = "missing" | "permission" | "malformed" | "io" | "unavailable" | "timeout";

export interface Problem {
  kind: ProblemKind;
  /** The path (as seen on the audited system) or command that failed. */
  source: string;
  message: string;
  /** 1-based line for malformed input, when known. */
  line?: number;
}

export function describeProblem(p: Problem): string {
  const where = p.line !== undefined ? `${p.source}:${p.line}` : p.source;
  return `${where}: ${p.message}`;
}

/** A parser's complaint about its input, with the line when known. */
export class MalformedError extends Error {
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = "MalformedError";
  }
}

/**
 * One gathered fact. `ok` may still carry problems: parts that could not be read (one
 * unreadable file among several) while the rest could. `error` means nothing usable was read;
 * `skip` means it was not attempted, with the reason (not root, not applicable).
 */
export type Fact<T> =
  | { status: "ok"; value: T; sources: string[]; problems: Problem[] }
  | { status: "error"; problems: Problem[] }
  | { status: "skip"; reason: string };

export function ok<T>(value: T, sources: string[], problems: Problem[] = []): Fact<T> {
  return { status: "ok", value, sources, problems };
}

export function failed<T>(...problems: Problem[]): Fact<T> {
  return { status: "error", problems };
}

export function skipped<T>(reason: string): Fact<T> {
  return { status: "skip", reason };
}
