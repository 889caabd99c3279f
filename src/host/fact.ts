import { HostError, problemFromFsError, type Problem } from "./errors.js";

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

export function toProblem(source: string, err: unknown): Problem {
  if (err instanceof HostError) return err.problem;
  if (err instanceof MalformedError)
    return { kind: "malformed", source, message: err.message, line: err.line };
  return problemFromFsError(source, err);
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

/** Run a gatherer; anything it throws becomes an `error` fact instead of a crash. */
export async function gather<T>(source: string, fn: () => Promise<Fact<T>>): Promise<Fact<T>> {
  try {
    return await fn();
  } catch (err) {
    return failed(toProblem(source, err));
  }
}
