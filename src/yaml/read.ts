/**
 * Reading a YAML file a person wrote (shield.yaml, policy tests, a harden profile), or JSON
 * that clawguard wrote for itself (saved mode switches): parsed with line numbers kept, refused
 * when it repeats a key or its aliases would expand it without bound, and checked against a
 * zod schema. Every problem becomes a ConfigError naming the file, the line and the key path;
 * what passes comes back typed, with a Locator so that the checks a schema cannot express can
 * name lines too.
 */
import { readFile } from "node:fs/promises";
import {
  Document,
  LineCounter,
  isAlias,
  isCollection,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  parseDocument,
  visit,
  type Alias,
  type Node,
  type Pair,
} from "yaml";
import type { z } from "zod";
import { ConfigError, FileUnreadableError, type ConfigProblem } from "../errors.js";

export type Segment = string | number;

/** `agents[0].token_sha256`, `tiers["a b"]`, `[2].denied[0]`. */
export function formatKeyPath(segments: readonly Segment[]): string {
  let out = "";
  for (const s of segments) {
    if (typeof s === "number") out += `[${s}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(s)) out += out === "" ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** Lines of a parsed document's nodes, by key path. */
export class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /**
   * Line of the node at `segments` (of its nearest ancestor there when the path goes further
   * than the document), or of its key when `key` names a child key.
   */
  line(segments: readonly Segment[], key?: string): number | undefined {
    let node: unknown = this.doc.contents;
    for (const s of segments) {
      const next = child(node, s);
      if (next === undefined) break;
      node = next;
    }
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      if (pair && isNode(pair.key)) return this.at(pair.key.range?.[0]);
    }
    return isNode(node) ? this.at(node.range?.[0]) : undefined;
  }

  at(offset: number | undefined): number | undefined {
    return offset === undefined ? undefined : this.lines.linePos(offset).line;
  }
}

function child(node: unknown, s: Segment): unknown {
  if (!isCollection(node)) return undefined;
  if (typeof s === "number") return (node.items as unknown[])[s];
  for (const p of node.items) {
    if (isPair(p) && isScalar(p.key) && String(p.key.value) === s) return p.value ?? p.key;
  }
  return undefined;
}

/** What the document must be at its top, and what to say when it is not. */
export interface Shape {
  list: boolean;
  reason: string;
  /** What an empty document stands for; without it, an empty document is refused. */
  empty?: unknown;
  /** What to do when the file cannot be used, beyond fixing the lines named. */
  hint?: string;
  /** YAML 1.1 for files other tools read that way (Ansible's: `yes` is a boolean there). */
  version?: "1.1";
}

/** A file's text, or FileUnreadableError saying why not; `hint` says how to name another. */
export async function readConfigText(file: string, hint: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new FileUnreadableError(file, "file does not exist", { hint });
    if (code === "EACCES")
      throw new FileUnreadableError(file, "permission denied reading the file", {
        hint: "run as root, or let this user read the file",
      });
    throw new FileUnreadableError(file, e instanceof Error ? e.message : String(e));
  }
}

/**
 * Nodes the aliases of a document may add to it once expanded. A "billion laughs" file of a
 * few hundred bytes adds a billion; a config that shares a list of rules among a few hundred
 * agents adds a few thousand.
 */
export const MAX_ALIAS_EXPANSION = 100_000;

/** YAML text, its shape checked: the plain data and the lines of its nodes. */
export function parseYaml(text: string, file: string, shape: Shape): { data: unknown; loc: Locator } {
  const { doc, lines } = readYamlDocument(text, file, shape);
  return documentData(doc, lines, file, shape);
}

/**
 * YAML text as a document, refused as parseYaml refuses it: for a program that edits a file
 * and checks its edit (documentAs) without parsing the text again.
 */
export function readYamlDocument(
  text: string,
  file: string,
  shape: Shape,
): { doc: Document; lines: LineCounter } {
  const refuse = (problems: ConfigProblem[]) => new ConfigError(file, problems, { hint: shape.hint });
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, version: shape.version ?? "1.2" });
  if (doc.errors.length > 0) {
    throw refuse(
      doc.errors.map((e) => ({
        keyPath: "",
        line: e.linePos?.[0]?.line,
        reason:
          e.code === "DUPLICATE_KEY"
            ? `duplicate key ${JSON.stringify(keyAt(doc, e.pos[0]))}: map keys must be unique`
            : `invalid YAML: ${(e.message.split("\n")[0] as string).replace(/ at line \d+, column \d+:?$/, "")}`,
      })),
    );
  }
  const bad = aliasProblem(doc);
  if (bad) {
    throw refuse([
      {
        keyPath: formatKeyPath(bad.path),
        line: new Locator(doc, lines).at(bad.alias.range?.[0]),
        reason: bad.reason,
      },
    ]);
  }
  return { doc, lines };
}

/** A document's plain data, its shape checked, with the lines of its nodes. */
function documentData(
  doc: Document,
  lines: LineCounter,
  file: string,
  shape: Shape,
): { data: unknown; loc: Locator } {
  const refuse = (problems: ConfigProblem[]) => new ConfigError(file, problems, { hint: shape.hint });
  const loc = new Locator(doc, lines);
  // yaml's own bound (maxAliasCount) refuses a config that uses one anchor a hundred times, and
  // without saying where; aliasProblem above bounds what aliases add, and names the alias.
  let data: unknown = doc.toJS({ maxAliasCount: -1 });
  if (data === null && shape.empty !== undefined) data = shape.empty;
  if (data === null || typeof data !== "object" || Array.isArray(data) !== shape.list) {
    throw refuse([{ keyPath: "", line: 1, reason: shape.reason }]);
  }
  return { data, loc };
}

/** The key of the pair whose key starts at `offset` in the source. */
function keyAt(doc: Document, offset: number): string {
  let key = "";
  visit(doc, {
    Pair: (_key, pair) => {
      if (!isScalar(pair.key) || pair.key.range?.[0] !== offset) return;
      key = String(pair.key.value);
      return visit.BREAK;
    },
  });
  return key;
}

/** YAML text checked against `schema`, or ConfigError with line, key path and reason for every problem. */
export function parseYamlAs<T>(
  text: string,
  file: string,
  schema: z.ZodType<T>,
  shape: Shape,
): { data: T; loc: Locator } {
  const { doc, lines } = readYamlDocument(text, file, shape);
  return documentAs(doc, lines, file, schema, shape);
}

/** A document (as read, or since edited) checked as parseYamlAs checks text. */
export function documentAs<T>(
  doc: Document,
  lines: LineCounter,
  file: string,
  schema: z.ZodType<T>,
  shape: Shape,
): { data: T; loc: Locator; plain: unknown } {
  const { data, loc } = documentData(doc, lines, file, shape);
  const parsed = schema.safeParse(data);
  if (!parsed.success)
    throw new ConfigError(file, schemaProblems(parsed.error.issues, data, loc), { hint: shape.hint });
  return { data: parsed.data, loc, plain: data };
}

/**
 * A document's plain data (as documentAs returned it, perhaps since extended) checked as
 * documentAs checks the document. Its errors name no lines: a caller that needs them checks the
 * document itself.
 */
export function plainAs<T>(
  plain: unknown,
  file: string,
  schema: z.ZodType<T>,
  shape: Shape,
): { data: T; loc: Locator } {
  const loc = new Locator(new Document(), new LineCounter());
  if (plain === null || typeof plain !== "object" || Array.isArray(plain) !== shape.list)
    throw new ConfigError(file, [{ keyPath: "", reason: shape.reason }], { hint: shape.hint });
  const parsed = schema.safeParse(plain);
  if (!parsed.success)
    throw new ConfigError(file, schemaProblems(parsed.error.issues, plain, loc), { hint: shape.hint });
  return { data: parsed.data, loc };
}

/**
 * JSON text checked against `schema`, with the same errors as YAML: JSON that a program wrote
 * is read as strictly as JSON, and its problems still name their lines.
 */
export function parseJsonAs<T>(
  text: string,
  file: string,
  schema: z.ZodType<T>,
  shape: Shape,
): { data: T; loc: Locator } {
  try {
    JSON.parse(text);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const at = /at position (\d+)/.exec(message);
    const line = at ? text.slice(0, Number(at[1])).split("\n").length : undefined;
    throw new ConfigError(file, [{ keyPath: "", line, reason: `not JSON: ${message}` }], {
      hint: shape.hint,
    });
  }
  return parseYamlAs(text, file, schema, shape);
}

/** zod's issues as problems with key paths, and lines where `loc` knows them. */
export function schemaProblems(
  issues: readonly z.core.$ZodIssue[],
  data: unknown,
  loc: Locator,
): ConfigProblem[] {
  return issues.map((i) => {
    const segs = i.path.filter((s): s is Segment => typeof s !== "symbol");
    if (i.code === "unrecognized_keys") {
      const key = i.keys[0] as string;
      return {
        keyPath: formatKeyPath([...segs, key]),
        line: loc.line(segs, key),
        reason: `unknown key "${key}"${i.keys.length > 1 ? ` (also: ${i.keys.slice(1).join(", ")})` : ""}`,
      };
    }
    if (i.code === "invalid_type" && valueAt(data, segs) === undefined) {
      return {
        keyPath: formatKeyPath(segs),
        line: loc.line(segs.slice(0, -1)),
        reason: `required key "${String(segs[segs.length - 1])}" is missing`,
      };
    }
    return { keyPath: formatKeyPath(segs), line: loc.line(segs), reason: i.message };
  });
}

function valueAt(data: unknown, segs: readonly Segment[]): unknown {
  let v = data;
  for (const s of segs) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

interface AliasProblem {
  alias: Alias;
  path: Segment[];
  reason: string;
}

/**
 * The first alias, in document order, that names no anchor, sits inside the node it names, or
 * makes the nodes that aliases add pass MAX_ALIAS_EXPANSION; null when there is none. Linear in
 * the document: each anchored node's expanded size is counted once.
 */
function aliasProblem(doc: Document): AliasProblem | null {
  // An alias names the last node anchored so before it in document order, as yaml resolves it.
  // So it can name a node it sits in only as its ancestor: that is the one way to a cycle.
  const anchored = new Map<string, Node>();
  const uses: Array<{ alias: Alias; target: Node; path: Segment[] }> = [];
  let first: AliasProblem | null = null;
  visit(doc, {
    Node: (_key, node, path) => {
      if (!isAlias(node)) {
        if (node.anchor) anchored.set(node.anchor, node);
        return;
      }
      const target = anchored.get(node.source);
      const at = keyPath(path, node);
      if (target === undefined) {
        first = {
          alias: node,
          path: at,
          reason: `alias *${node.source} names no anchor (&${node.source}) before it`,
        };
        return visit.BREAK;
      }
      if (path.includes(target)) {
        first = {
          alias: node,
          path: at,
          reason: `alias *${node.source} is inside the node it names, so it would never end; write the value out`,
        };
        return visit.BREAK;
      }
      uses.push({ alias: node, target, path: at });
    },
  });
  if (first) return first;
  const targetOf = new Map(uses.map((u) => [u.alias, u.target]));
  const sizes = new Map<Node, number>();
  const size = (node: unknown): number => {
    if (isAlias(node)) return size(targetOf.get(node));
    if (isPair(node)) return size(node.key) + size(node.value);
    if (!isCollection(node)) return isNode(node) ? 1 : 0;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    let n = 1;
    for (const item of node.items) n = Math.min(n + size(item), MAX_ALIAS_EXPANSION + 1);
    sizes.set(node, n);
    return n;
  };
  let added = 0;
  for (const u of uses) {
    added += size(u.target) - 1;
    if (added > MAX_ALIAS_EXPANSION)
      return {
        alias: u.alias,
        path: u.path,
        reason:
          `alias *${u.alias.source} would grow the document past ${MAX_ALIAS_EXPANSION} nodes once aliases are ` +
          "expanded (an alias bomb?); write the values out, or use fewer aliases",
      };
  }
  return null;
}

/** The key path of `node`, from the ancestors `visit` gives. */
function keyPath(ancestors: readonly (Document | Node | Pair)[], node: Node): Segment[] {
  const out: Segment[] = [];
  const chain = [...ancestors, node];
  chain.forEach((a, i) => {
    if (isPair(a) && isScalar(a.key) && chain[i + 1] !== a.key) out.push(String(a.key.value));
    else if (isSeq(a)) out.push(a.items.indexOf(chain[i + 1] as Node));
  });
  return out;
}
