/**
 * What an operator scoped to some fleets sees of the shield: their fleets' agents, tiers and
 * rules, their records, their share of the totals, and metrics without a label that names
 * anything else. Pure: views in, views out. Operators over every fleet see everything as is.
 */
import type { AgentConfig, ShieldConfig } from "../config.js";
import type { RuleLevelView } from "./rules-file.js";
import { seesFleet, type Operator } from "./access.js";

/** The agents of the config the operator sees. */
export function visibleAgents(op: Operator, cfg: ShieldConfig): AgentConfig[] {
  return op.fleets === null ? cfg.agents : cfg.agents.filter((a) => seesFleet(op, a.fleet));
}

/** The agent by id if the operator sees it; an agent they do not see is absent, as an unknown one. */
export function visibleAgent(op: Operator, cfg: ShieldConfig, id: string): AgentConfig | null {
  const a = cfg.agents.find((x) => x.id === id);
  return a && seesFleet(op, a.fleet) ? a : null;
}

export function visibleFleet(op: Operator, cfg: ShieldConfig, name: string): boolean {
  return Object.hasOwn(cfg.fleets, name) && seesFleet(op, name);
}

/** Tiers the operator sees: every tier when unscoped, else the tiers of the agents they see. */
export function visibleTiers(op: Operator, cfg: ShieldConfig): Set<string> {
  if (op.fleets === null) return new Set(Object.keys(cfg.tiers));
  return new Set(visibleAgents(op, cfg).flatMap((a) => (a.tier !== undefined ? [a.tier] : [])));
}

export function scopeLevels(op: Operator, cfg: ShieldConfig, levels: RuleLevelView[]): RuleLevelView[] {
  if (op.fleets === null) return levels;
  const tiers = visibleTiers(op, cfg);
  const agents = new Set(visibleAgents(op, cfg).map((a) => a.id));
  return levels.filter(
    (l) =>
      l.level === "global" ||
      (l.level === "tier" && tiers.has(l.name!)) ||
      (l.level === "fleet" && seesFleet(op, l.name)) ||
      (l.level === "agent" && agents.has(l.name!)),
  );
}

export interface ModesView {
  global: string;
  fleets: Record<string, unknown>;
  agents: Record<string, unknown>;
  overrides: { global: unknown; fleets: Record<string, unknown>; agents: Record<string, unknown> };
}

export function scopeModes<M extends ModesView>(op: Operator, cfg: ShieldConfig, m: M): M {
  if (op.fleets === null) return m;
  const agents = new Set(visibleAgents(op, cfg).map((a) => a.id));
  const pick = (o: Record<string, unknown>, keep: (k: string) => boolean) =>
    Object.fromEntries(Object.entries(o).filter(([k]) => keep(k)));
  const fleet = (k: string) => seesFleet(op, k);
  const agent = (k: string) => agents.has(k);
  return {
    ...m,
    fleets: pick(m.fleets, fleet),
    agents: pick(m.agents, agent),
    overrides: {
      global: m.overrides.global,
      fleets: pick(m.overrides.fleets, fleet),
      agents: pick(m.overrides.agents, agent),
    },
  };
}

/**
 * Prometheus text without the samples whose labels name an agent, a fleet or a level the
 * operator does not see (`agent="x"`, `fleet="x"`, `scope="fleet:x"`). Metrics without such
 * labels are the shield's own (CPU, memory, the log) and stay.
 */
export function scopeMetrics(op: Operator, cfg: ShieldConfig, text: string): string {
  if (op.fleets === null) return text;
  const agents = new Set(visibleAgents(op, cfg).map((a) => a.id));
  const tiers = visibleTiers(op, cfg);
  const allowed = (name: string, value: string): boolean => {
    if (name === "agent") return value === "" || agents.has(value);
    if (name === "fleet") return seesFleet(op, value);
    if (name === "scope") {
      const [level, id] = value.split(":", 2);
      if (level === "global") return true;
      if (level === "tier") return tiers.has(id ?? "");
      if (level === "fleet") return seesFleet(op, id);
      if (level === "agent") return agents.has(id ?? "");
    }
    return true;
  };
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  return text
    .split("\n")
    .filter((line) => {
      if (line.startsWith("#")) return true;
      const open = line.indexOf("{");
      if (open < 0) return true;
      const labels = line.slice(open + 1, line.indexOf("}", open));
      for (const m of labels.matchAll(label)) if (!allowed(m[1]!, m[2]!)) return false;
      return true;
    })
    .join("\n");
}
