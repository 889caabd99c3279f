/**
 * Edits of a YAML file's text that change only the bytes they must. Re-printing a parsed
 * document moves comments, adds blank lines and re-pads every flow collection; an operator's
 * file should come back as they wrote it, with one item more or less. Each edit works on the
 * node ranges of a document parsed from that very text, and returns null when the node's
 * shape is one it does not handle, so the caller can fall back to printing the document.
 */
import { isMap, isScalar, stringify, type Node, type Pair, type YAMLMap, type YAMLSeq } from "yaml";

type Ranged = Node & { range: [number, number, number] };

function ranged(n: unknown): Ranged | null {
  return n !== null && typeof n === "object" && Array.isArray((n as Ranged).range) ? (n as Ranged) : null;
}

function lineStart(text: string, at: number): number {
  return text.lastIndexOf("\n", at - 1) + 1;
}

/** Just past the newline that ends the line holding the character before `end`. */
function pastLine(text: string, end: number): number {
  const nl = text.indexOf("\n", Math.max(end - 1, 0));
  return nl < 0 ? text.length : nl + 1;
}

/** `value` as it would appear inside a flow collection (quoted where a flow needs it). */
export function flowText(value: unknown, padded = true): string {
  const s = stringify([value], { collectionStyle: "flow", flowCollectionPadding: padded, lineWidth: 0 });
  return s.trim().slice(1, -1).trim();
}

function isMapValue(v: unknown): boolean {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function flowPadded(text: string, n: Ranged): boolean {
  return /^[[{]\s/.test(text.slice(n.range[0], n.range[1]));
}

function splice(text: string, from: number, to: number, insert = ""): string {
  return text.slice(0, from) + insert + text.slice(to);
}

/** `text` with `value` appended to the sequence `seq` (a node of a document parsed from `text`). */
export function seqAppend(text: string, seq: YAMLSeq, value: unknown): string | null {
  const s = ranged(seq);
  if (!s) return null;
  const items = seq.items.map(ranged);
  if (items.some((i) => i === null)) return null;
  const last = items[items.length - 1];
  if (seq.flow) {
    const padded = flowPadded(text, s);
    if (!last)
      return splice(text, s.range[0], s.range[1], padded ? `[ ${flowText(value)} ]` : `[${flowText(value)}]`);
    return splice(text, last.range[1], last.range[1], `, ${flowText(value, padded)}`);
  }
  const plan = blockAppendOf(text, seq);
  return plan && blockAppend(text, plan, value).text;
}

/**
 * Where and how an item goes at the end of a block sequence: what seqAppend works out from the
 * parsed sequence, kept so that a program can add item after item without parsing again.
 */
export interface BlockAppend {
  /** The offset the next item's text goes in at. */
  at: number;
  /** The text before an item on its line: indentation, dash and spaces. */
  prefix: string;
  /** The last item is a block mapping (a new mapping is written as one too). */
  blockMaps: boolean;
  /** Flow items have spaces inside their brackets. */
  padded: boolean;
}

/** How to append to the block sequence `seq` of a document parsed from `text`; null if it has no items or an odd shape. */
export function blockAppendOf(text: string, seq: YAMLSeq): BlockAppend | null {
  if (seq.flow) return null;
  const items = seq.items.map(ranged);
  if (items.some((i) => i === null)) return null;
  const first = items[0];
  const last = items[items.length - 1];
  if (!first || !last) return null;
  const prefix = text.slice(lineStart(text, first.range[0]), first.range[0]);
  if (!/^ *- +$/.test(prefix)) return null;
  // Shape the new item like the last one: a flow item for flow or scalar items, else block.
  const lastNode = seq.items[seq.items.length - 1];
  return {
    at: pastLine(text, last.range[1]),
    prefix,
    blockMaps: isMap(lastNode) && !lastNode.flow,
    padded: isMap(lastNode) && lastNode.flow ? flowPadded(text, last) : true,
  };
}

/** `text` with `value` as a new last item where `plan` says, and the plan for the item after it. */
export function blockAppend(
  text: string,
  plan: BlockAppend,
  value: unknown,
): { text: string; next: BlockAppend } {
  let body: string;
  const blockMap = plan.blockMaps && isMapValue(value);
  if (blockMap) {
    const indent = " ".repeat(plan.prefix.length);
    body = stringify(value, { lineWidth: 0 })
      .trimEnd()
      .split("\n")
      .map((l, i) => (i === 0 ? l : indent + l))
      .join("\n");
  } else body = flowText(value, plan.padded);
  const lead = plan.at === text.length && !text.endsWith("\n") ? "\n" : "";
  const item = `${lead}${plan.prefix}${body}\n`;
  return {
    text: splice(text, plan.at, plan.at, item),
    next: {
      ...plan,
      at: plan.at + item.length,
      blockMaps: blockMap,
      padded: isMapValue(value) && !blockMap ? plan.padded : true,
    },
  };
}

/** `text` without item `index` of `seq`. */
export function seqRemove(text: string, seq: YAMLSeq, index: number): string | null {
  const items = seq.items.map(ranged);
  const item = items[index];
  const s = ranged(seq);
  if (!s || !item || items.some((i) => i === null)) return null;
  if (seq.flow) {
    if (items.length === 1) {
      const inner = text.slice(s.range[0] + 1, s.range[1] - 1);
      if (inner.includes("#")) return null;
      return splice(text, s.range[0], s.range[1], "[]");
    }
    if (index < items.length - 1) return splice(text, item.range[0], items[index + 1]!.range[0]);
    return splice(text, items[index - 1]!.range[1], item.range[1]);
  }
  const start = lineStart(text, item.range[0]);
  if (!/^ *- +$/.test(text.slice(start, item.range[0]))) return null;
  // Removing the only item would leave a key with nothing under it: null, not an empty list.
  if (items.length === 1) return null;
  return splice(text, start, pastLine(text, item.range[1]));
}

/** `text` with `key: value` added to the mapping `map` (which lacks `key`). */
export function mapAdd(text: string, map: YAMLMap, key: string, value: unknown): string | null {
  const m = ranged(map);
  if (!m) return null;
  const pairs = map.items;
  const lastPair: Pair | undefined = pairs[pairs.length - 1];
  const lastEnd = lastPair ? (ranged(lastPair.value) ?? ranged(lastPair.key))?.range[1] : undefined;
  if (map.flow) {
    const padded = flowPadded(text, m);
    const entry = `${flowText(key)}: ${flowText(value, padded)}`;
    if (lastEnd === undefined)
      return splice(text, m.range[0], m.range[1], padded ? `{ ${entry} }` : `{${entry}}`);
    return splice(text, lastEnd, lastEnd, `, ${entry}`);
  }
  const firstKey = ranged(pairs[0]?.key);
  if (!firstKey || lastEnd === undefined) return null;
  const column = firstKey.range[0] - lineStart(text, firstKey.range[0]);
  const at = pastLine(text, lastEnd);
  const lead = at === text.length && !text.endsWith("\n") ? "\n" : "";
  return splice(text, at, at, `${lead}${" ".repeat(column)}${flowText(key)}: ${flowText(value, false)}\n`);
}

/** `text` without the pair `key` of `map`. */
export function mapRemove(text: string, map: YAMLMap, key: string): string | null {
  const index = map.items.findIndex((p) => isScalar(p.key) && String(p.key.value) === key);
  const pair = map.items[index];
  if (!pair) return null;
  const k = ranged(pair.key);
  const end = (ranged(pair.value) ?? k)?.range[1];
  if (!k || end === undefined) return null;
  if (map.flow) {
    const prev = map.items[index - 1];
    const prevEnd = prev ? (ranged(prev.value) ?? ranged(prev.key))?.range[1] : undefined;
    if (prevEnd !== undefined) return splice(text, prevEnd, end);
    const next = ranged(map.items[index + 1]?.key);
    if (next) return splice(text, k.range[0], next.range[0]);
    const m = ranged(map);
    return m ? splice(text, m.range[0], m.range[1], "{}") : null;
  }
  const start = lineStart(text, k.range[0]);
  // Only a key that starts its own line (not the first key of a "- " item) goes with its lines.
  if (!/^ *$/.test(text.slice(start, k.range[0])) || map.items.length === 1) return null;
  return splice(text, start, pastLine(text, end));
}
