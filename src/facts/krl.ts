/**
 * An OpenSSH key revocation list as `ssh-keygen -Q -l -f FILE` lists it, and the record the
 * agent's fetcher keeps of its last attempts. Pure.
 */

/** Where the fetcher records its attempts; audit reads it (ssh.krl_fresh). */
export const KRL_STATE_FILE = "/var/lib/clawguard/krl-fetch.json";
/** A list older than this is stale: the timer fetches every 15 s, so this is many misses. */
export const KRL_STALE_AFTER_S = 300;

/** sshd's RevokedKeys, and how the list there came. */
export interface RevocationFact {
  /** The file RevokedKeys names. */
  path: string;
  /** Its size, or null when it is missing (sshd then refuses every public key). */
  bytes: number | null;
  /** The fetcher's record, or null when there is none (no timer, or it never ran). */
  fetch: KrlFetchState | null;
  /** Seconds from the last successful fetch to when the facts were gathered. */
  sinceSuccessS: number | null;
}

export interface KrlListing {
  /** The KRL's version number (`ssh-keygen -k -z N`); the shield raises it with every list. */
  version: number;
  /** Certificate serials revoked, over every CA the list names. */
  serials: number;
}

/** The listing of a KRL, or null when the text is not one (ssh-keygen prints "# KRL version N" first). */
export function parseKrlListing(text: string): KrlListing | null {
  const m = /^# KRL version (\d+)$/m.exec(text);
  if (!m) return null;
  const version = Number(m[1]);
  if (!Number.isSafeInteger(version)) return null;
  let serials = 0;
  for (const line of text.split("\n")) {
    const s = /^serial: (\d+)(?:-(\d+))?$/.exec(line.trim());
    if (s) serials += s[2] !== undefined ? Number(s[2]) - Number(s[1]) + 1 : 1;
  }
  return { version, serials };
}

/** What `clawguard ssh-ca fetch-krl` writes after every attempt, for audit to read. */
export interface KrlFetchState {
  schema: "clawguard.krl-fetch/v1";
  url: string;
  /** ms since the epoch. */
  lastAttempt: number;
  /** The last attempt that got a valid list (installed, or the same as the one in place). */
  lastSuccess: number | null;
  /** Why the last attempt failed, or null when it succeeded. */
  error: string | null;
  version: number | null;
  sha256: string | null;
}

/** The fetcher's record, or null when the text is not one. */
export function parseKrlFetchState(text: string): KrlFetchState | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (v === null || typeof v !== "object") return null;
  const o = v as Record<string, unknown>;
  const num = (x: unknown) => typeof x === "number" && Number.isFinite(x);
  if (o.schema !== "clawguard.krl-fetch/v1" || typeof o.url !== "string" || !num(o.lastAttempt)) return null;
  if (o.lastSuccess !== null && !num(o.lastSuccess)) return null;
  return {
    schema: "clawguard.krl-fetch/v1",
    url: o.url,
    lastAttempt: o.lastAttempt as number,
    lastSuccess: o.lastSuccess as number | null,
    error: typeof o.error === "string" ? o.error : null,
    version: num(o.version) ? (o.version as number) : null,
    sha256: typeof o.sha256 === "string" ? o.sha256 : null,
  };
}
