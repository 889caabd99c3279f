/**
 * Enrolment's edits of shield.yaml, as YAML document edits: comments, key order and the style of
 * everything else survive, as with the rules API's edits. Each edits a parsed document in place
 * (the text forms parse and print around them); the caller validates the whole config before
 * writing it. Pure.
 */
import { ConfigError } from "../../errors.js";
import { Document, isMap, isScalar, isSeq, parseDocument, type YAMLMap, type YAMLSeq } from "yaml";

/** The file cannot take the edit (it does not parse, or `agents` is not a list). */
export class AgentsFileError extends ConfigError {
  constructor(file: string, keyPath: string, reason: string) {
    super(file, [{ keyPath, reason }]);
  }
}

export interface EnrolledEntry {
  id: string;
  fleet?: string;
  tier?: string;
  /** The agent's tunnel addresses, /32 and /128. */
  sources: string[];
  publicKey: string;
  presharedKeyFile?: string;
}

function load(text: string, file: string): Document {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0)
    throw new AgentsFileError(
      file,
      "",
      `does not parse as YAML right now; fix it first (clawguard shield check --config ${file})`,
    );
  if (!isMap(doc.contents)) throw new AgentsFileError(file, "", "not a mapping at the top");
  return doc;
}

/** `text` with a new entry at the end of `agents:` (made a block list if it was `[]` or absent). */
export function addAgentText(text: string, file: string, e: EnrolledEntry): string {
  const doc = load(text, file);
  addAgent(doc, file, e);
  return documentText(doc);
}

/** The entry as plain data, as the document reads once it is written. */
export function enrolledEntryPlain(e: EnrolledEntry): Record<string, unknown> {
  return {
    id: e.id,
    ...(e.fleet !== undefined ? { fleet: e.fleet } : {}),
    ...(e.tier !== undefined ? { tier: e.tier } : {}),
    sources: e.sources,
    wireguard: {
      public_key: e.publicKey,
      ...(e.presharedKeyFile !== undefined ? { preshared_key_file: e.presharedKeyFile } : {}),
    },
  };
}

/** The entry as a node of `doc`: a block mapping, its sources and key each on one line. */
export function enrolledEntryNode(e: EnrolledEntry, doc: Document = new Document()): YAMLMap {
  const entry = doc.createNode(enrolledEntryPlain(e)) as YAMLMap;
  (entry.get("sources", true) as unknown as YAMLSeq).flow = true;
  (entry.get("wireguard", true) as unknown as YAMLMap).flow = true;
  return entry;
}

export function addAgent(doc: Document, file: string, e: EnrolledEntry): void {
  if (agentIndex(doc, e.id) >= 0)
    throw new AgentsFileError(file, "agents", `agent "${e.id}" is already there`);
  const entry = enrolledEntryNode(e, doc);
  const agents = doc.get("agents", true);
  if (isSeq(agents)) {
    agents.flow = false;
    agents.items.push(entry);
  } else if (agents === undefined || agents === null || (isScalar(agents) && agents.value === null)) {
    const seq = doc.createNode([]) as YAMLSeq;
    seq.items.push(entry);
    doc.set("agents", seq);
  } else throw new AgentsFileError(file, "agents", "not a list");
}

/** Where the agent is in `agents:`, or -1. */
export function agentIndex(doc: Document, id: string): number {
  const agents = doc.get("agents", true);
  if (!isSeq(agents)) return -1;
  return agents.items.findIndex((a) => isMap(a) && String((a as YAMLMap).get("id")) === id);
}

/** `text` with the agent's WireGuard key replaced (a rotation: its addresses stay). */
export function setAgentKeyText(text: string, file: string, id: string, publicKey: string): string {
  const doc = load(text, file);
  setAgentKey(doc, file, id, publicKey);
  return documentText(doc);
}

export function setAgentKey(doc: Document, file: string, id: string, publicKey: string): void {
  const i = agentIndex(doc, id);
  if (i < 0) throw new AgentsFileError(file, "agents", `no agent "${id}"`);
  if (!isMap(doc.getIn(["agents", i, "wireguard"], true)))
    throw new AgentsFileError(
      file,
      `agents[${i}]`,
      `agent "${id}" is not on WireGuard (it has no wireguard: key)`,
    );
  doc.setIn(["agents", i, "wireguard", "public_key"], publicKey);
}

/** `text` without the agent's entry. */
export function removeAgentText(text: string, file: string, id: string): string {
  const doc = load(text, file);
  removeAgent(doc, file, id);
  return documentText(doc);
}

export function removeAgent(doc: Document, file: string, id: string): void {
  const i = agentIndex(doc, id);
  if (i < 0) throw new AgentsFileError(file, "agents", `no agent "${id}"`);
  (doc.get("agents", true) as YAMLSeq).items.splice(i, 1);
}

export interface WireguardSection {
  interface: string;
  listen_port: number;
  address: string[];
  private_key_file: string;
  endpoint: string;
}

/**
 * `text` with a `wireguard:` section after `listen:` (when it has none) and `listen` moved to
 * `listen` (the proxy's address on the tunnel). An existing section is the operator's: left as is.
 */
export function addWireguardSectionText(
  text: string,
  file: string,
  wg: WireguardSection,
  listen: string,
): { text: string; added: boolean; listenMoved: string | null } {
  const doc = load(text, file);
  const top = doc.contents as YAMLMap;
  if (top.has("wireguard")) return { text, added: false, listenMoved: null };
  const before = top.get("listen");
  const moved = String(before) !== listen ? String(before) : null;
  if (moved !== null) top.set("listen", listen);
  const node = doc.createNode(wg) as YAMLMap;
  (node.get("address", true) as unknown as YAMLSeq).flow = true;
  const at = top.items.findIndex((p) => isScalar(p.key) && p.key.value === "listen");
  const pair = doc.createPair("wireguard", node);
  top.items.splice(at < 0 ? 0 : at + 1, 0, pair);
  return { text: documentText(doc), added: true, listenMoved: moved };
}

/** The document as text, ending in a newline as the operator's editor would leave it. */
export function documentText(doc: Document): string {
  const t = doc.toString();
  return t.endsWith("\n") ? t : t + "\n";
}
