import { MalformedError, type Problem } from "../facts/fact.js";

export class HostError extends Error {
  constructor(readonly problem: Problem) {
    super(`${problem.source}: ${problem.message}`);
    this.name = "HostError";
  }
}

/** Turn a Node fs error into a Problem a person can act on. */
export function problemFromFsError(source: string, err: unknown): Problem {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOENT":
    case "ENOTDIR":
      return { kind: "missing", source, message: "does not exist" };
    case "EACCES":
    case "EPERM":
      return { kind: "permission", source, message: "permission denied (run as root to read it)" };
    case "ELOOP":
      return { kind: "io", source, message: "too many levels of symbolic links" };
    case "EISDIR":
      return { kind: "io", source, message: "is a directory, expected a file" };
    default:
      return { kind: "io", source, message: err instanceof Error ? err.message : String(err) };
  }
}

/** Whatever reading `source` threw, as a Problem: the host's own, a parser's, or the file system's. */
export function toProblem(source: string, err: unknown): Problem {
  if (err instanceof HostError) return err.problem;
  if (err instanceof MalformedError)
    return { kind: "malformed", source, message: err.message, line: err.line };
  return problemFromFsError(source, err);
}

/** The error means the path or command is not there. */
export function isMissing(err: unknown): boolean {
  return err instanceof HostError && err.problem.kind === "missing";
}
