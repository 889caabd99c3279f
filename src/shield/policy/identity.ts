/**
 * Who is calling, from the proxy credentials and the source address only. Nothing else the
 * agent sends (headers, the target) has a say, so an agent cannot choose another agent's policy.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Agent } from "../types.js";
import type { AgentConfig } from "../config.js";
import { type Cidr, type IP, cidrContains, maskV4, maskV6, parseCidr, parseIP } from "../../net/addresses.js";

interface Known {
  agent: Agent;
  token: Buffer | null;
  sources: Cidr[];
}

// Compared against when the user name is unknown, so unknown and known names cost the same.
const DUMMY = createHash("sha256").update("clawguard:no-such-agent").digest();

/** Parse a socket's remote address; Node may add a zone id (`fe80::1%eth0`). */
export function parseSource(address: string): IP | null {
  const pct = address.indexOf("%");
  return parseIP(pct < 0 ? address : address.slice(0, pct));
}

export class Identifier {
  private readonly byId = new Map<string, Known>();
  /** Agents identified by source alone, by prefix length (longest first) then network. */
  private readonly bySource4 = new Map<number, Map<number, Known>>();
  private readonly bySource6 = new Map<number, Map<bigint, Known>>();
  private prefixes4: number[] = [];
  private prefixes6: number[] = [];
  /** Every agent's source ranges, by prefix length then network: who owns an address. */
  private readonly owners4 = new Map<number, Map<number | bigint, Agent[]>>();
  private readonly owners6 = new Map<number, Map<number | bigint, Agent[]>>();

  constructor(agents: AgentConfig[]) {
    for (const a of agents) {
      const agent: Agent = Object.freeze({
        id: a.id,
        ...(a.fleet !== undefined ? { fleet: a.fleet } : {}),
        ...(a.tier !== undefined ? { tier: a.tier } : {}),
      });
      const sources = (a.sources ?? []).map((s) => {
        const c = parseCidr(s);
        if (typeof c === "string") throw new Error(`agent ${a.id}: source ${s}: ${c}`);
        return c;
      });
      const token = a.tokenSha256 !== undefined ? Buffer.from(a.tokenSha256, "hex") : null;
      if (token !== null && token.length !== 32)
        throw new Error(`agent ${a.id}: token_sha256 is not 32 bytes`);
      if (token === null && sources.length === 0) {
        throw new Error(`agent ${a.id}: needs a token hash, sources, or both`);
      }
      const known: Known = { agent, token, sources };
      this.byId.set(a.id, known);
      if (token === null) for (const c of sources) this.addSource(c, known);
      for (const c of sources) {
        const buckets = c.family === 4 ? this.owners4 : this.owners6;
        let m = buckets.get(c.prefix);
        if (!m) buckets.set(c.prefix, (m = new Map()));
        const list = m.get(c.network);
        if (list) list.push(agent);
        else m.set(c.network, [agent]);
      }
    }
    this.prefixes4 = [...this.bySource4.keys()].sort((x, y) => y - x);
    this.prefixes6 = [...this.bySource6.keys()].sort((x, y) => y - x);
  }

  private addSource(c: Cidr, known: Known): void {
    if (c.family === 4) {
      let m = this.bySource4.get(c.prefix);
      if (!m) this.bySource4.set(c.prefix, (m = new Map()));
      if (!m.has(c.network as number)) m.set(c.network as number, known);
    } else {
      let m = this.bySource6.get(c.prefix);
      if (!m) this.bySource6.set(c.prefix, (m = new Map()));
      if (!m.has(c.network as bigint)) m.set(c.network as bigint, known);
    }
  }

  /**
   * With credentials: the user names the agent, the password's sha256 must equal its token hash
   * (constant-time), and when the agent also lists sources the address must be in one of them.
   * Without credentials: the source-only agent whose range contains the address (longest prefix).
   * Anything else is null: the proxy refuses unknown callers.
   */
  identify(sourceAddress: string, basic?: { user: string; pass: string }): Agent | null {
    const ip = parseSource(sourceAddress);
    if (ip === null) return null;
    if (basic !== undefined) {
      const known = this.byId.get(basic.user);
      const presented = createHash("sha256").update(basic.pass, "utf8").digest();
      // Always compare, so a wrong name and a wrong token take the same time.
      const tokenMatches = timingSafeEqual(presented, known?.token ?? DUMMY);
      if (known === undefined) return null;
      if (known.token !== null && !tokenMatches) return null;
      if (known.sources.length > 0 && !known.sources.some((c) => cidrContains(c, ip))) return null;
      return known.agent;
    }
    return this.bySourceOnly(ip)?.agent ?? null;
  }

  private bySourceOnly(ip: IP): Known | undefined {
    if (ip.family === 4) {
      for (const p of this.prefixes4) {
        const k = this.bySource4.get(p)?.get(maskV4(ip.v, p));
        if (k) return k;
      }
    } else {
      for (const p of this.prefixes6) {
        const k = this.bySource6.get(p)?.get(maskV6(ip.v, p));
        if (k) return k;
      }
    }
    return undefined;
  }

  /** Every agent whose source ranges contain the address (for fleet isolation). */
  owners(ip: IP): Agent[] {
    const out: Agent[] = [];
    const buckets = ip.family === 4 ? this.owners4 : this.owners6;
    for (const [prefix, m] of buckets) {
      const key = ip.family === 4 ? maskV4(ip.v, prefix) : maskV6(ip.v, prefix);
      for (const agent of m.get(key) ?? []) if (!out.includes(agent)) out.push(agent);
    }
    return out;
  }

  agent(id: string): Agent | undefined {
    return this.byId.get(id)?.agent;
  }
}
