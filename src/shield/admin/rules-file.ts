/**
 * Rule edits written back into shield.yaml. Only the bytes of the rule change (comments, blank
 * lines, key order, flow or block style and spacing stay), the result must pass the same validation as a
 * reload, and it replaces the old file atomically so a crash leaves one or the other.
 */
import { randomBytes } from "node:crypto";
import { chown, open, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { isMap, isScalar, isSeq, parseDocument, type Document, type YAMLMap } from "yaml";
import { mapAdd, mapRemove, seqAppend, seqRemove } from "../../yaml/edit.js";
import { RuleError, parseRule } from "../policy/rules.js";
import type { ShieldConfig } from "../config.js";
import { ControlError } from "./control.js";

export type RuleLevel = "global" | "tier" | "fleet" | "agent";
export const RULE_LEVELS: readonly RuleLevel[] = ["global", "tier", "fleet", "agent"];

export interface RuleEdit {
  level: RuleLevel;
  /** Tier, fleet or agent id; absent for global. */
  name?: string;
  verdict: "allow" | "deny";
  rule: string;
}

export interface RuleLevelView {
  level: RuleLevel;
  name: string | null;
  allow: string[];
  deny: string[];
}

/** Every rule of the config, level by level, in the order the policy applies them. */
export function listRules(cfg: ShieldConfig): RuleLevelView[] {
  return [
    { level: "global", name: null, allow: cfg.allow, deny: cfg.deny },
    ...Object.entries(cfg.tiers).map(([n, t]) => ({
      level: "tier" as const,
      name: n,
      allow: t.allow,
      deny: t.deny,
    })),
    ...Object.entries(cfg.fleets).map(([n, f]) => ({
      level: "fleet" as const,
      name: n,
      allow: f.allow,
      deny: f.deny,
    })),
    ...cfg.agents.map((a) => ({ level: "agent" as const, name: a.id, allow: a.allow, deny: a.deny })),
  ];
}

/** The YAML text with `edit` added or removed; throws ControlError (400/404/409) otherwise. */
export function editRulesText(text: string, edit: RuleEdit, op: "add" | "remove"): string {
  const rule = edit.rule.trim();
  try {
    parseRule(rule);
  } catch (e) {
    throw new ControlError(400, "rule", e instanceof RuleError ? e.message : String(e));
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ControlError(
      409,
      null,
      "the config file does not parse as YAML right now; fix it before editing rules",
    );
  }
  const keyPath = levelPath(doc, edit);
  const where = `${edit.level}${edit.name !== undefined ? ` ${edit.name}` : ""}`;
  const seq = doc.getIn(keyPath, true);
  const parent = keyPath.length > 1 ? doc.getIn(keyPath.slice(0, -1), true) : doc.contents;
  const items = isSeq(seq) ? seq.items : [];
  const index = items.findIndex((n) => isScalar(n) && String(n.value).trim() === rule);
  // The edit twice: on the text, touching only its bytes, and on the document, as a reference.
  let edited: string | null = null;
  if (op === "add") {
    if (index >= 0)
      throw new ControlError(409, "rule", `${edit.verdict} ${rule} is already a rule of ${where}`);
    if (isSeq(seq)) {
      edited = seqAppend(text, seq, rule);
      seq.add(doc.createNode(rule));
    } else if (seq === undefined || seq === null || (isScalar(seq) && seq.value === null)) {
      if (seq === undefined && isMap(parent)) edited = mapAdd(text, parent, edit.verdict, [rule]);
      doc.setIn(keyPath, doc.createNode([rule]));
    } else throw new ControlError(409, null, `${keyPathText(keyPath)} in the config is not a list`);
  } else {
    if (index < 0 || !isSeq(seq))
      throw new ControlError(404, "rule", `${where} has no ${edit.verdict} rule "${rule}"`);
    // A tier's, fleet's or agent's last rule takes its key along; the global lists stay, empty.
    if (seq.items.length === 1 && edit.level !== "global" && isMap(parent)) {
      edited = mapRemove(text, parent, edit.verdict);
      parent.delete(edit.verdict);
    } else {
      edited = seqRemove(text, seq, index);
      seq.items.splice(index, 1);
    }
  }
  if (edited !== null && isDeepStrictEqual(parseDocument(edited).toJS(), doc.toJS())) return edited;
  return doc.toString();
}

function levelPath(doc: Document, edit: RuleEdit): Array<string | number> {
  if (edit.level === "global") return [edit.verdict];
  if (edit.name === undefined || edit.name === "")
    throw new ControlError(400, "name", `a ${edit.level} rule needs a name`);
  if (edit.level === "agent") {
    const agents = doc.get("agents", true);
    const i = isSeq(agents)
      ? agents.items.findIndex((a) => isMap(a) && String((a as YAMLMap).get("id")) === edit.name)
      : -1;
    if (i < 0) throw new ControlError(404, "name", `unknown agent "${edit.name}"`);
    return ["agents", i, edit.verdict];
  }
  const section = edit.level === "tier" ? "tiers" : "fleets";
  if (!isMap(doc.getIn([section, edit.name], true))) {
    throw new ControlError(
      404,
      "name",
      `unknown ${edit.level} "${edit.name}" (define it under ${section} first)`,
    );
  }
  return [section, edit.name, edit.verdict];
}

function keyPathText(p: Array<string | number>): string {
  return p.map((s) => (typeof s === "number" ? `[${s}]` : s)).join(".");
}

/**
 * Replace `file` with `text`: a temp file in the same directory, fsynced, renamed over the old
 * one (keeping its mode and, when allowed, its owner), then the directory fsynced.
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const old = await stat(file).catch(() => null);
  const fh = await open(tmp, "wx", old ? old.mode & 0o7777 : 0o600);
  try {
    await fh.writeFile(text, "utf8");
    await fh.chmod(old ? old.mode & 0o7777 : 0o600);
    if (old) await chown(tmp, old.uid, old.gid).catch(() => undefined);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
