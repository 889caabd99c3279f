/**
 * shield.yaml as root last read it, kept so that `shield enroll` does not parse a file of a
 * thousand agents to add one. What is kept is the document's plain data and where the next
 * agent's text goes, under the SHA-256 of the very text they came from: a file changed in any
 * byte misses, and the command parses it as before. What is kept is never trusted as a config:
 * the reader checks it with the schema and rules a reload uses.
 *
 * Root's alone: the directory and the entries must belong to this user and be writable by
 * nobody else, or they are ignored. Failing to read or write an entry never fails a command.
 * The root sync daemon, which reads the file after every change, writes the entry, so the next
 * enrolment finds it whoever edited the file.
 */
import { createHash } from "node:crypto";
import {
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  closeSync,
  fstatSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { isSeq } from "yaml";
import { blockAppendOf, type BlockAppend } from "../yaml/edit.js";
import {
  readShieldDocument,
  shieldConfigAndPlain,
  shieldConfigOfPlain,
  type ShieldConfig,
} from "./config.js";
import { SHIELD_VERSION } from "./version.js";

/** Bumped when what an entry holds changes meaning. */
const FORMAT = 1;

export interface KeptConfig {
  /** The document's plain data (before the schema). */
  plain: unknown;
  /** Where the next item of `agents:` goes, when it is a block list with items. */
  agents: BlockAppend | null;
}

interface Entry extends KeptConfig {
  format: number;
  version: string;
  file: string;
  sha256: string;
}

/** Where entries are kept: CLAWGUARD_CONFIG_CACHE ("off": nowhere), else root's /var/cache. */
export function configCacheDir(): string | null {
  const env = process.env.CLAWGUARD_CONFIG_CACHE;
  if (env === "off") return null;
  if (env) return env;
  return process.getuid?.() === 0 ? "/var/cache/clawguard/shield-config" : null;
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

function entryFile(dir: string, file: string): string {
  return path.join(dir, `${sha256(path.resolve(file)).slice(0, 32)}.json`);
}

/** Ours and nobody else's to write. */
function private_(st: { uid: number; mode: number }): boolean {
  return st.uid === process.geteuid?.() && (st.mode & 0o022) === 0;
}

/** What was kept for `file` with exactly this text, or null. */
export function readKept(file: string, text: string): KeptConfig | null {
  const dir = configCacheDir();
  if (dir === null) return null;
  let fd: number | null = null;
  try {
    if (!private_(lstatSync(dir))) return null;
    fd = openSync(entryFile(dir, file), "r");
    const st = fstatSync(fd);
    if (!st.isFile() || !private_(st)) return null;
    const e = JSON.parse(readFileSync(fd, "utf8")) as Partial<Entry>;
    if (
      e.format !== FORMAT ||
      e.version !== SHIELD_VERSION ||
      e.file !== path.resolve(file) ||
      e.sha256 !== sha256(text)
    )
      return null;
    return { plain: e.plain, agents: e.agents ?? null };
  } catch {
    return null;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Keep `kept` for `file` with this text (only if its data survives JSON unchanged). */
export function keep(file: string, text: string, kept: KeptConfig): void {
  const dir = configCacheDir();
  if (dir === null) return;
  try {
    const entry: Entry = {
      format: FORMAT,
      version: SHIELD_VERSION,
      file: path.resolve(file),
      sha256: sha256(text),
      ...kept,
    };
    const json = JSON.stringify(entry);
    if (!isDeepStrictEqual((JSON.parse(json) as Entry).plain, kept.plain)) return;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!private_(lstatSync(dir))) return;
    const target = entryFile(dir, file);
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, json, { mode: 0o600 });
    renameSync(tmp, target);
  } catch {
    // A cache that cannot be written only costs the next reader a parse.
  }
}

/** What was kept for exactly this text and its config, checked as a parse checks it; or null. */
export function readKeptConfig(file: string, text: string): { cfg: ShieldConfig; kept: KeptConfig } | null {
  const kept = readKept(file, text);
  if (!kept) return null;
  try {
    return { cfg: shieldConfigOfPlain(kept.plain, file), kept };
  } catch {
    // Kept by a build whose rules passed it: this one reads the file itself.
    return null;
  }
}

/** Parse shield.yaml's text as parseShieldConfig does, and keep what the next enrolment needs. */
export function parseShieldConfigKept(text: string, file: string): ShieldConfig {
  const { doc, lines } = readShieldDocument(text, file);
  const { cfg, plain } = shieldConfigAndPlain(doc, lines, file);
  const agents = doc.get("agents", true);
  keep(file, text, { plain, agents: isSeq(agents) ? blockAppendOf(text, agents) : null });
  return cfg;
}
