/**
 * Operators added to and removed from shield.yaml, as the admin API does it: the file is edited
 * as a YAML document, so its comments and layout survive; only a token's SHA-256 is written.
 */
import { isMap, isSeq, parseDocument, type YAMLMap } from "yaml";
import type { Role } from "../config-operators.js";
import { ControlError } from "./control.js";

export interface NewOperator {
  name: string;
  role: Role;
  fleets?: string[];
  tokenSha256: string;
}

function operatorsOf(text: string) {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0)
    throw new ControlError(409, null, `shield.yaml does not parse: ${doc.errors[0]!.message}`);
  const list = doc.get("operators", true);
  return { doc, list: isSeq(list) ? list : null };
}

function indexOf(list: ReturnType<typeof operatorsOf>["list"], name: string): number {
  return list ? list.items.findIndex((o) => isMap(o) && String((o as YAMLMap).get("name")) === name) : -1;
}

export function addOperatorText(text: string, o: NewOperator): string {
  const { doc, list } = operatorsOf(text);
  if (indexOf(list, o.name) >= 0) throw new ControlError(409, "name", `operator "${o.name}" exists already`);
  const entry = doc.createNode({
    name: o.name,
    role: o.role,
    ...(o.fleets ? { fleets: o.fleets } : {}),
    token_sha256: o.tokenSha256,
  }) as YAMLMap;
  // A hash of 64 characters does not fit one line: a block per operator, its fleets one list.
  const fleets = entry.get("fleets", true);
  if (isSeq(fleets)) fleets.flow = true;
  if (list) list.items.push(entry);
  else doc.set("operators", doc.createNode([entry]));
  return doc.toString();
}

export function removeOperatorText(text: string, name: string): string {
  const { doc, list } = operatorsOf(text);
  const i = indexOf(list, name);
  if (!list || i < 0) throw new ControlError(404, "name", `no operator "${name}" in shield.yaml`);
  list.items.splice(i, 1);
  if (list.items.length === 0) doc.delete("operators");
  return doc.toString();
}
