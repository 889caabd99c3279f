/**
 * Mode switches made through the admin API, kept on disk so that a restart does not quietly
 * lift a lockdown an operator put on in an incident. Written atomically (temp, fsync, rename,
 * 600); read at start, where a file that cannot be read or understood stops the shield: running
 * with fewer restrictions than the operator asked for is the failure this file exists to avoid.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { FileUnreadableError } from "../../errors.js";
import { parseJsonAs } from "../../yaml/read.js";
import type { ShieldConfig } from "../config.js";
import type { Overrides } from "./control.js";
import { writeFileAtomic } from "./rules-file.js";

export const MODES_SCHEMA = "clawguard.shield-modes/v1";

const mode = z.enum(["enforce", "audit", "lockdown"]);
const fileSchema = z.strictObject({
  schema: z.literal(MODES_SCHEMA),
  savedAt: z.string(),
  global: mode.nullable(),
  fleets: z.record(z.string(), mode),
  agents: z.record(z.string(), mode),
});

export const NO_OVERRIDES: Overrides = { global: null, fleets: {}, agents: {} };

/** The saved switches, or none when the file does not exist yet. Throws on anything else. */
export async function loadModeOverrides(file: string): Promise<Overrides> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return NO_OVERRIDES;
    throw new FileUnreadableError(file, `cannot read the saved mode switches (${code ?? String(e)})`);
  }
  const { data } = parseJsonAs(text, file, fileSchema, {
    list: false,
    reason: `expected the saved mode switches, an object with "schema": "${MODES_SCHEMA}"`,
    hint: "fix the file, or delete it to drop every switch made through the admin API",
  });
  return { global: data.global, fleets: data.fleets, agents: data.agents };
}

export async function saveModeOverrides(file: string, o: Overrides): Promise<void> {
  const body = { schema: MODES_SCHEMA, savedAt: new Date().toISOString(), ...o };
  await writeFileAtomic(file, JSON.stringify(body, null, 2) + "\n");
}

/**
 * The config as the saved switches make it: what the proxy starts with, so that not even the
 * first connection is decided without them. Switches for fleets or agents the config no longer
 * has are left out.
 */
export function withOverrides(cfg: ShieldConfig, o: Overrides): ShieldConfig {
  const fleets = Object.fromEntries(
    Object.entries(cfg.fleets).map(([name, f]) => [
      name,
      o.fleets[name] ? { ...f, mode: o.fleets[name] } : f,
    ]),
  );
  return {
    ...cfg,
    mode: o.global ?? cfg.mode,
    fleets,
    agents: cfg.agents.map((a) => (o.agents[a.id] ? { ...a, mode: o.agents[a.id] } : a)),
  };
}
