/**
 * Who made the agents' changes that `shield enroll` and `shield revoke` write into shield.yaml
 * on the shield host. Before the CLI replaces the file, it appends one line per change to a
 * journal beside it (written by root, readable by the shield's group), bound to the SHA-256 of
 * the text it is about to write. The shield, applying a file whose hash a line names, logs that
 * user in the membership record; a change no line claims was made by hand. The journal names,
 * it never decides: a missing, unreadable or garbled journal stops neither an enrolment nor a
 * reload, it only loses the names.
 */
import { createHash } from "node:crypto";
import { appendFile, chown, readFile, rename, stat, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";
import type { Author, Authors } from "./membership.js";

export const JOURNAL_NAME = "membership.journal";
/** Past this size the journal keeps its newest half: only the last few edits are ever asked about. */
const MAX_BYTES = 256 * 1024;
const NAME = /^[A-Za-z0-9._@-]{1,64}$/;

export interface JournalEntry {
  /** SHA-256 (hex) of the shield.yaml text that carries the change. */
  sha256: string;
  agent: string;
  /** What the user ran: "shield enroll", "shield revoke". */
  via: string;
  user: string;
  at: number;
}

export function journalPath(configFile: string): string {
  return path.join(path.dirname(path.resolve(configFile)), JOURNAL_NAME);
}

export function textSha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The user running the CLI: the one sudo ran it for, else the name of the process's uid. */
export function localUser(env: NodeJS.ProcessEnv = process.env): string {
  const sudo = env.SUDO_USER;
  if (sudo !== undefined && NAME.test(sudo)) return sudo;
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "unknown"}`;
  }
}

/**
 * Append the entry (before the file it names is written). Returns why it could not be noted, or
 * null: the caller goes on either way, the shield then says "by hand".
 */
export async function noteChange(configFile: string, e: JournalEntry): Promise<string | null> {
  const file = journalPath(configFile);
  const line = JSON.stringify(e) + "\n";
  try {
    const size = (await stat(file).catch(() => null))?.size ?? null;
    if (size !== null && size + line.length > MAX_BYTES) {
      const lines = (await readFile(file, "utf8")).split("\n").filter((l) => l !== "");
      const kept = lines.slice(Math.floor(lines.length / 2));
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, kept.join("\n") + "\n" + line, { mode: 0o640 });
      await shareWithShield(configFile, tmp);
      await rename(tmp, file);
    } else {
      await appendFile(file, line, { mode: 0o640 });
      if (size === null) await shareWithShield(configFile, file);
    }
    return null;
  } catch (err) {
    return `${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
}

/** Root's file, readable by the group the shield runs as (the group of its config). */
async function shareWithShield(configFile: string, file: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const owner = await stat(configFile).catch(() => null);
  if (owner) await chown(file, 0, owner.gid);
}

/** One journal line, or null for anything that is not one written by noteChange. */
function parseLine(line: string): JournalEntry | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  const ok =
    typeof o.sha256 === "string" &&
    typeof o.agent === "string" &&
    typeof o.via === "string" &&
    typeof o.user === "string" &&
    NAME.test(o.user) &&
    typeof o.at === "number";
  return ok ? (o as unknown as JournalEntry) : null;
}

/** Who the journal says changed which agent in the text with this hash; nobody when it cannot say. */
export function authorsIn(journal: string, sha256: string): Authors {
  const found = new Map<string, Author>();
  for (const line of journal.split("\n")) {
    const e = line.includes(sha256) ? parseLine(line) : null;
    if (e && e.sha256 === sha256) found.set(e.agent, { user: e.user, via: e.via });
  }
  return (agent) => found.get(agent) ?? null;
}

/** The journal beside `configFile` read for one text; a journal that cannot be read names nobody. */
export async function readAuthors(configFile: string, sha256: string): Promise<Authors> {
  const text = await readFile(journalPath(configFile), "utf8").catch(() => "");
  return authorsIn(text, sha256);
}
