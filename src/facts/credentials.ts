import type { Problem } from "./fact.js";

/** A file or directory that holds secrets, with what it is and who should own it. */
export interface SecretPath {
  path: string;
  type: "file" | "dir";
  mode: number;
  uid: number;
  /** The service user's uid; root (0) is also accepted where `rootMayOwn`. */
  expectedUid?: number;
  expectedUser?: string;
  rootMayOwn: boolean;
}

export interface CredentialsFact {
  secrets: SecretPath[];
  /** Directories the walk could not enter (the walk went on without them). */
  unreadable: Problem[];
  /** Roots walked: state dirs, workspaces, env files. */
  roots: string[];
  /** Entries looked at, and whether the cap cut the walk short. */
  visited: number;
  truncated: boolean;
}

/** Names that hold secrets wherever they are: `*.env`, `.env*`, `*.json`, `.credentials*`. */
export function secretName(name: string): boolean {
  return (
    name.endsWith(".env") ||
    name.startsWith(".env") ||
    name.endsWith(".json") ||
    name.startsWith(".credentials")
  );
}

/**
 * Whether a path inside an OpenClaw state dir (relative, "/"-separated, "" for the dir itself)
 * holds secrets: OpenClaw's documented secret files and dirs (and state/, where it keeps its
 * sqlite database), plus secret-looking names.
 */
export function isSecretInStateDir(rel: string, type: "file" | "dir"): boolean {
  const parts = rel === "" ? [] : rel.split("/");
  const [a, , c, ...rest] = parts;
  if (type === "dir") {
    if (parts.length === 0) return true;
    if (a === "credentials") return true;
    if (a === "state" && parts.length === 1) return true;
    if (a === "agents" && parts.length >= 3 && (c === "agent" || c === "sessions"))
      return c === "sessions" || parts.length === 3;
    return false;
  }
  const name = parts[parts.length - 1]!;
  if (parts.length === 1 && ["openclaw.json", ".env", "secrets.json"].includes(name)) return true;
  if (a === "credentials") return true;
  if (a === "agents" && parts.length >= 4) {
    if (c === "sessions") return true;
    if (c === "agent" && rest.length === 1 && (name === "auth-profiles.json" || /\.sqlite/.test(name)))
      return true;
  }
  if (a === "state" && parts.length === 2 && /\.sqlite/.test(name)) return true;
  return secretName(name);
}
