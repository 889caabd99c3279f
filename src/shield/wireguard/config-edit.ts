/**
 * Enrolment's edits of shield.yaml, applied whole or not at all: the file is read, its config
 * checked, the caller decides one change of `agents:`, the result is checked as a reload checks
 * it, and the file is replaced only if nobody changed it meanwhile (the admin API and the sync
 * daemon's operator write it too); otherwise the edit starts over from the new text. Only the
 * changed entry's bytes move when the list's shape allows it (else the document is printed).
 *
 * An enrolment into a file of a thousand agents need not parse it: when root kept the file's
 * plain data under the hash of this very text (config-cache.ts), the config is checked from
 * that data, the new entry's text goes in where the kept plan says, and the new data is checked
 * whole, with the same schema and rules as a parse. Anything else takes the parsing path.
 */
import { readFile } from "node:fs/promises";
import { isDeepStrictEqual } from "node:util";
import { isSeq, parse, type Document } from "yaml";
import { ConfigError } from "../../errors.js";
import { blockAppend, blockAppendOf, seqRemove, type BlockAppend } from "../../yaml/edit.js";
import { writeFileAtomic } from "../admin/rules-file.js";
import { keep, readKeptConfig, type KeptConfig } from "../config-cache.js";
import {
  parseShieldConfig,
  readShieldDocument,
  shieldConfigAndPlain,
  shieldConfigOfPlain,
  type ShieldConfig,
} from "../config.js";
import {
  addAgent,
  agentIndex,
  documentText,
  enrolledEntryNode,
  enrolledEntryPlain,
  removeAgent,
  setAgentKey,
  type EnrolledEntry,
} from "./agents-file.js";

/** The one change an enrolment makes to `agents:`. */
export type AgentsEdit =
  | { kind: "add"; entry: EnrolledEntry }
  | { kind: "setKey"; id: string; publicKey: string }
  | { kind: "remove"; id: string };

interface Edited {
  text: string;
  cfg: ShieldConfig;
  kept: KeptConfig | null;
}

/**
 * Read `file`, let `decide` pick the change from its config, check and write the result.
 * Nothing is written when anything throws. `unreadable` makes the error for a file not read;
 * `beforeWrite` sees the new text just before it replaces the file.
 */
export async function editAgents<T>(
  file: string,
  decide: (cfg: ShieldConfig) => Promise<{ result: T; edit: AgentsEdit }>,
  errors: { unreadable: (code: string) => Error; busy: () => Error },
  beforeWrite?: (text: string) => Promise<void>,
): Promise<{ cfg: ShieldConfig; result: T }> {
  for (let attempt = 0; ; attempt++) {
    const before = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
      throw errors.unreadable(e.code ?? e.message);
    });
    const kept = readKeptConfig(file, before);
    const parsed = kept ? null : readShieldDocument(before, file);
    const cfg = kept?.cfg ?? shieldConfigAndPlain(parsed!.doc, parsed!.lines, file).cfg;
    const { result, edit } = await decide(cfg);
    const plan = kept?.kept.agents;
    const out =
      (plan && edit.kind === "add" ? appendKept(before, kept.kept.plain, plan, edit.entry, file) : null) ??
      editDocument(before, parsed ?? readShieldDocument(before, file), edit, file);
    const now = await readFile(file, "utf8").catch(() => null);
    if (now !== before) {
      if (attempt < 3) continue;
      throw errors.busy();
    }
    await beforeWrite?.(out.text);
    await writeFileAtomic(file, out.text);
    if (out.kept) keep(file, out.text, out.kept);
    return { cfg: out.cfg, result };
  }
}

/** The new entry spliced in where the kept plan says; null when the text would not read back as the entry. */
function appendKept(
  text: string,
  plain: unknown,
  plan: BlockAppend,
  entry: EnrolledEntry,
  file: string,
): Edited | null {
  const value = enrolledEntryPlain(entry);
  const { text: next, next: after } = blockAppend(text, plan, enrolledEntryNode(entry));
  // What went in must read back as the entry, alone, as one item of a list.
  let back: unknown;
  try {
    back = parse(next.slice(plan.at, after.at));
  } catch {
    return null;
  }
  if (!Array.isArray(back) || back.length !== 1 || !isDeepStrictEqual(back[0], value)) return null;
  const top = plain as Record<string, unknown>;
  const nextPlain = { ...top, agents: [...(top.agents as unknown[]), value] };
  let cfg: ShieldConfig;
  try {
    cfg = shieldConfigOfPlain(nextPlain, file);
  } catch (e) {
    // The data's errors name no lines: the text's do.
    if (e instanceof ConfigError) parseShieldConfig(next, file);
    throw e;
  }
  return { text: next, cfg, kept: { plain: nextPlain, agents: after } };
}

/** The change made to the parsed document, its bytes into the text where the shape allows. */
function editDocument(
  before: string,
  parsed: { doc: Document; lines: Parameters<typeof shieldConfigAndPlain>[1] },
  edit: AgentsEdit,
  file: string,
): Edited {
  const { doc, lines } = parsed;
  const seq = doc.get("agents", true);
  // Planned on the text as read, before the document changes under it.
  const plan = isSeq(seq) ? blockAppendOf(before, seq) : null;
  const index = edit.kind === "remove" ? agentIndex(doc, edit.id) : -1;
  const removed = edit.kind === "remove" && isSeq(seq) && index >= 0 ? seqRemove(before, seq, index) : null;
  if (edit.kind === "add") addAgent(doc, file, edit.entry);
  else if (edit.kind === "setKey") setAgentKey(doc, file, edit.id, edit.publicKey);
  else removeAgent(doc, file, edit.id);
  const appended =
    edit.kind === "add" && plan ? blockAppend(before, plan, enrolledEntryNode(edit.entry)) : null;
  const text = appended?.text ?? removed ?? documentText(doc);
  let checked: { cfg: ShieldConfig; plain: unknown };
  try {
    checked = shieldConfigAndPlain(doc, lines, file);
  } catch (e) {
    // Lines of the edited document are the old file's: read the new text for the right ones.
    if (e instanceof ConfigError) parseShieldConfig(text, file);
    throw e;
  }
  return {
    text,
    cfg: checked.cfg,
    kept: appended ? { plain: checked.plain, agents: appended.next } : null,
  };
}
