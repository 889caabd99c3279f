import { ClawguardError, type ErrorCode } from "../errors.js";
import { MalformedError, type Problem, type ProblemKind } from "../facts/fact.js";

const CODES: Record<ProblemKind, ErrorCode> = {
  missing: "CG_HOST_MISSING",
  permission: "CG_HOST_PERMISSION",
  malformed: "CG_HOST_MALFORMED",
  io: "CG_HOST_IO",
  unavailable: "CG_HOST_UNAVAILABLE",
  timeout: "CG_HOST_TIMEOUT",
};

export class HostError extends ClawguardError {
  constructor(readonly problem: Problem) {
    super(CODES[problem.kind], problem.message, { where: whereOf(problem) });
  }
}

function whereOf(p: Problem): string {
  return p.line !== undefined ? `${p.source}:${p.line}` : p.source;
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
