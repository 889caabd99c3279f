import { ClawguardError, type ErrorCode } from "../errors.js";

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

export function describeProblem(p: Problem): string {
  return `${whereOf(p)}: ${p.message}`;
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
