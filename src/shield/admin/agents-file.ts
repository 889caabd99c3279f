/**
 * `shield agents add`: a new agent written into shield.yaml with a fresh token. The token is
 * returned once for the operator to hand to the agent; the file keeps only its sha256. Like a
 * rule edit, only the new entry's bytes are added, the result must pass the same validation as
 * a reload, and it replaces the old file atomically.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { isMap, isScalar, isSeq, parseDocument } from "yaml";
import { ClawguardError, FileUnreadableError } from "../../errors.js";
import { flowText, seqAppend } from "../../yaml/edit.js";
import { parseShieldConfig } from "../config.js";
import { writeFileAtomic } from "./rules-file.js";

export interface NewAgent {
  id: string;
  fleet?: string;
  tier?: string;
}

export interface AddedAgent extends NewAgent {
  /** The agent's proxy password. Shown once: nothing keeps it. */
  token: string;
  tokenSha256: string;
}

/** A token an agent sends as its proxy password: 256 random bits, URL-safe. */
export function newAgentToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * `text` with the agent appended to `agents`, in the style of the entries already there (a
 * flow map per line when the list is empty). Throws CG_CONFIG_INVALID when the id is taken.
 */
export function addAgentText(text: string, entry: Record<string, string>, file: string): string {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0)
    throw new ClawguardError(
      "CG_CONFIG_INVALID",
      "the file does not parse as YAML; fix it before adding agents",
      {
        where: file,
      },
    );
  const agents = doc.get("agents", true);
  if (isSeq(agents)) {
    if (agents.items.some((a) => isMap(a) && String(a.get("id")) === entry.id))
      throw new ClawguardError("CG_CONFIG_INVALID", `agent "${entry.id}" is already in the file`, {
        where: file,
        hint: "pick another id, or remove the old entry first",
      });
    if (agents.items.length > 0) {
      const edited = seqAppend(text, agents, entry);
      if (edited !== null) return edited;
      agents.add(doc.createNode(entry));
      return doc.toString();
    }
  }
  const item = `  - ${flowText(entry)}`;
  // No agents yet: a file without the key gets it at its end, `agents: []` a block list of one.
  if (agents === undefined)
    return `${text}${text === "" || text.endsWith("\n") ? "" : "\n"}agents:\n${item}\n`;
  const range = (agents as { range?: [number, number, number] } | null)?.range;
  if (isSeq(agents) && agents.flow && range)
    return text.slice(0, range[0]).trimEnd() + "\n" + item + text.slice(range[1]);
  if (!isSeq(agents) && !(agents === null || (isScalar(agents) && agents.value === null)))
    throw new ClawguardError("CG_CONFIG_INVALID", "agents in the file is not a list", { where: file });
  doc.set("agents", doc.createNode([entry]));
  return doc.toString();
}

/** Add the agent to `file`, validate the result as a reload would, and write it. */
export async function addAgent(file: string, agent: NewAgent): Promise<AddedAgent> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new FileUnreadableError(
      file,
      `cannot read the config (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  const token = newAgentToken();
  const tokenSha256 = createHash("sha256").update(token).digest("hex");
  const entry: Record<string, string> = {
    id: agent.id,
    ...(agent.fleet !== undefined ? { fleet: agent.fleet } : {}),
    ...(agent.tier !== undefined ? { tier: agent.tier } : {}),
    token_sha256: tokenSha256,
  };
  const after = addAgentText(text, entry, file);
  // An unknown tier or fleet, or an id the shield would refuse, fails here and writes nothing.
  parseShieldConfig(after, file);
  await writeFileAtomic(file, after);
  return { ...agent, token, tokenSha256 };
}
