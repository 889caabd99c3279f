/**
 * Errors as data. Every failure clawguard expects (a bad flag, a broken config, a missing file,
 * an unreachable shield) is a ClawguardError with a stable `code` for programs and tests, a
 * message for people, and where known the place (`file:line`, a key path, a flag) and what to
 * do about it. Anything else that reaches the command line is a bug, and is reported as one.
 * docs/errors.md describes each code; a test keeps it and ERROR_CODES in step.
 */

export const ERROR_CODES = [
  "CG_USAGE",
  "CG_FILE_UNREADABLE",
  "CG_CONFIG_INVALID",
  "CG_ROOT_MISSING",
  "CG_HOST_MISSING",
  "CG_HOST_PERMISSION",
  "CG_HOST_MALFORMED",
  "CG_HOST_IO",
  "CG_HOST_UNAVAILABLE",
  "CG_HOST_TIMEOUT",
  "CG_SYSTEM",
  "CG_PLAN_REFUSED",
  "CG_APPLY_FAILED",
  "CG_RUN_NOT_FOUND",
  "CG_RUN_ROLLED_BACK",
  "CG_RUN_DAMAGED",
  "CG_LOCKDOWN_STATE_INVALID",
  "CG_LOCKDOWN_FAILED",
  "CG_DESTINATION_INVALID",
  "CG_AGENT_UNKNOWN",
  "CG_LOG_UNUSABLE",
  "CG_LISTEN_FAILED",
  "CG_ADMIN_TOKEN_INVALID",
  "CG_ADMIN_UNREACHABLE",
  "CG_ADMIN_REFUSED",
  "CG_ADMIN_FAILED",
  "CG_ENROLL_REFUSED",
  "CG_RANGE_EXHAUSTED",
  "CG_WIREGUARD_KEY_INVALID",
  "CG_WIREGUARD_FAILED",
  "CG_JOIN_CODE_INVALID",
  "CG_JOIN_CODE_EXPIRED",
  "CG_JOIN_NO_HANDSHAKE",
  "CG_STORE_UNREACHABLE",
  "CG_STORE_AUTH",
  "CG_STORE_PASSWORD",
  "CG_STORE_SCHEMA_NEWER",
  "CG_STORE_FAILED",
  "CG_SSH_UNREACHABLE",
  "CG_SSH_HOST_KEY_UNKNOWN",
  "CG_SSH_HOST_KEY_CHANGED",
  "CG_SSH_LOGIN_DENIED",
  "CG_SSH_FAILED",
  "CG_BECOME_FAILED",
  "CG_REMOTE_UNSUPPORTED",
  "CG_REMOTE_FAILED",
  "CG_STATE_UNUSABLE",
  "CG_SSH_CA_EXISTS",
  "CG_SSH_CA_MISSING",
  "CG_SSH_KEY_INVALID",
  "CG_SSH_GRANT_UNKNOWN",
  "CG_SSH_CA_FAILED",
  "CG_KRL_UNREACHABLE",
  "CG_KRL_REFUSED",
  "CG_INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorDetails {
  /** Where it failed: `file:line`, a file, a key path or a flag. */
  where?: string;
  /** What to do about it, as a person would type or write it. */
  hint?: string;
  cause?: unknown;
}

export class ClawguardError extends Error {
  readonly code: ErrorCode;
  readonly where: string | undefined;
  readonly hint: string | undefined;
  /** The message without its place; `message` starts with `where: ` when there is one. */
  readonly reason: string;

  constructor(code: ErrorCode, reason: string, details: ErrorDetails = {}) {
    super(
      details.where !== undefined ? `${details.where}: ${reason}` : reason,
      details.cause !== undefined ? { cause: details.cause } : undefined,
    );
    this.name = new.target.name;
    this.code = code;
    this.where = details.where;
    this.hint = details.hint;
    this.reason = reason;
  }
}

/** The command line cannot mean what was wanted: a flag, its value, or flags that do not go together. */
export class UsageError extends ClawguardError {
  constructor(reason: string, details: ErrorDetails = {}) {
    super("CG_USAGE", reason, details);
  }
}

/** A file clawguard was pointed at does not exist or cannot be read. */
export class FileUnreadableError extends ClawguardError {
  constructor(file: string, reason: string, details: Omit<ErrorDetails, "where"> = {}) {
    super("CG_FILE_UNREADABLE", reason, { ...details, where: file });
  }
}

/** One thing wrong in a config file. */
export interface ConfigProblem {
  /** Key path such as `agents[0].token_sha256`; empty for the whole document. */
  keyPath: string;
  /** 1-based line in the file, when known. */
  line?: number;
  reason: string;
}

export function problemWhere(file: string, p: ConfigProblem): string {
  return p.line !== undefined ? `${file}:${p.line}` : file;
}

function problemText(p: ConfigProblem): string {
  return `${p.keyPath === "" ? "" : `${p.keyPath}: `}${p.reason}`;
}

/**
 * A config file that cannot be used, with every problem found in it (there is no partial
 * config). `where` and `reason` are the first problem's; `message` has one line per problem,
 * each starting with its own `file:line`.
 */
export class ConfigError extends ClawguardError {
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
    details: Omit<ErrorDetails, "where"> = {},
  ) {
    const [first, ...rest] = problems;
    if (first === undefined) throw new TypeError("a ConfigError needs at least one problem");
    super("CG_CONFIG_INVALID", problemText(first), { ...details, where: problemWhere(file, first) });
    for (const p of rest) this.message += `\n${problemWhere(file, p)}: ${problemText(p)}`;
  }
}
