/**
 * Rule syntax and the index that matches a target against one level's rules (global, a tier, a
 * fleet or an agent). Exact names sit in a Map, wildcards are found by walking the target's
 * suffixes, and CIDRs are bucketed by prefix length, so a match costs a handful of Map lookups
 * whatever the number of rules.
 *
 * Syntax (port optional; without it the rule covers every port):
 *   example.com[:443]        exactly that name
 *   *.example.com[:443]      any name below example.com at any depth, not example.com itself
 *   *[:443]                  any destination (names and IP literals)
 *   192.0.2.7[:443]          an IP literal, in any spelling the target parser accepts
 *   10.0.0.0/8[:443]         IP literals and resolved addresses inside the range
 *   [2001:db8::/32][:443]    IPv6 ranges and addresses in brackets when a port follows
 */
import type { Decision, Target, Verdict } from "../types.js";
import { type Cidr, type IP, maskV4, maskV6, parseCidr, parseIP } from "../../net/addresses.js";
import { HostPortError, splitHostPort } from "../../net/hostport.js";
import { TargetError, canonicalHost } from "./normalize.js";

export type RuleKind = "any" | "exact" | "wildcard" | "cidr";

export interface ParsedRule {
  kind: RuleKind;
  /** exact: canonical host; wildcard: the suffix after "*." ; otherwise empty. */
  host: string;
  cidr: Cidr | null;
  /** 0 means every port. */
  port: number;
}

export class RuleError extends Error {
  constructor(
    readonly rule: string,
    readonly reason: string,
  ) {
    super(`rule "${rule}": ${reason}`);
    this.name = "RuleError";
  }
}

function splitPort(text: string): { host: string; port: number } {
  // Two or more colons without brackets is a bare IPv6 address or range, which takes no port.
  if (!text.startsWith("[") && text.indexOf(":") !== text.lastIndexOf(":")) return { host: text, port: 0 };
  try {
    const s = splitHostPort(text);
    return { host: s.host, port: s.port ?? 0 };
  } catch (e) {
    throw e instanceof HostPortError ? new RuleError(text, e.reason) : e;
  }
}

const SYNTAX = "a rule is a host, *.domain, * or CIDR, optionally with :port";

/** Parse one rule string. Throws RuleError naming the rule and what is wrong with it. */
export function parseRule(text: string): ParsedRule {
  const t = text.trim();
  if (t === "") throw new RuleError(text, "empty rule");
  if (t.includes("://")) throw new RuleError(text, `${SYNTAX}; not a URL`);
  const { host, port } = splitPort(t);
  if (host === "*") return { kind: "any", host: "", cidr: null, port };
  if (host.includes("/")) {
    const c = parseCidr(host);
    if (typeof c === "string") throw new RuleError(text, `${c} (${SYNTAX})`);
    return { kind: "cidr", host: "", cidr: c, port };
  }
  if (host.startsWith("*.")) {
    const suffix = canonical(host.slice(2), text);
    if (suffix.ip) throw new RuleError(text, "a wildcard applies to names, not IP addresses; use a CIDR");
    return { kind: "wildcard", host: suffix.host, cidr: null, port };
  }
  if (host.includes("*")) {
    throw new RuleError(text, 'only a leading "*." wildcard is supported (e.g. *.example.com)');
  }
  const h = canonical(host, text);
  if (h.ip) {
    const c = parseCidr(h.ip.address);
    if (typeof c === "string") throw new RuleError(text, c);
    return { kind: "cidr", host: "", cidr: c, port };
  }
  return { kind: "exact", host: h.host, cidr: null, port };
}

function canonical(host: string, rule: string) {
  try {
    return canonicalHost(host, rule);
  } catch (e) {
    throw new RuleError(rule, e instanceof TargetError ? e.reason : String(e));
  }
}

/** A rule as the index holds it; `label` is what decisions and logs name. */
export interface IndexedRule {
  verdict: Verdict;
  port: number;
  label: string;
  cidr: Cidr | null;
  /** What decide() returns when this rule decides, built once (frozen) so deciding allocates nothing. */
  enforce: Decision;
  audit: Decision;
}

function ruleDecisions(verdict: Verdict, label: string): { enforce: Decision; audit: Decision } {
  const reason = `matched ${label}`;
  const enforce = Object.freeze({ verdict, audited: false, mode: "enforce" as const, rule: label, reason });
  const audit = Object.freeze(
    verdict === "allow"
      ? { verdict, audited: false, mode: "audit" as const, rule: label, reason }
      : {
          verdict: "allow" as const,
          audited: true,
          mode: "audit" as const,
          rule: label,
          reason: `audit: ${reason}`,
        },
  );
  return { enforce, audit };
}

/** The first deny and first allow that matched; reused between calls to avoid allocation. */
export interface MatchResult {
  deny: IndexedRule | null;
  allow: IndexedRule | null;
}

class CidrBuckets<K extends number | bigint> {
  private readonly byPrefix = new Map<number, Map<K, IndexedRule[]>>();
  /** Longest prefix first, so the most specific rule is reported. */
  prefixes: number[] = [];

  add(network: K, prefix: number, rule: IndexedRule): void {
    let m = this.byPrefix.get(prefix);
    if (!m) {
      m = new Map();
      this.byPrefix.set(prefix, m);
      this.prefixes = [...this.byPrefix.keys()].sort((a, b) => b - a);
    }
    const list = m.get(network);
    if (list) list.push(rule);
    else m.set(network, [rule]);
  }

  match(v: K, mask: (v: K, p: number) => K, port: number, out: MatchResult): void {
    for (const p of this.prefixes) {
      const list = (this.byPrefix.get(p) as Map<K, IndexedRule[]>).get(mask(v, p));
      if (list) scan(list, port, out);
      if (out.deny) return;
    }
  }

  get size(): number {
    return this.prefixes.length;
  }
}

function scan(list: IndexedRule[], port: number, out: MatchResult): void {
  for (let i = 0; i < list.length; i++) {
    const r = list[i] as IndexedRule;
    if (r.port !== 0 && r.port !== port) continue;
    if (r.verdict === "deny") {
      out.deny = r;
      return;
    }
    if (out.allow === null) out.allow = r;
  }
}

/** All rules of one level. Immutable once built. */
export class RuleIndex {
  private readonly exact = new Map<string, IndexedRule[]>();
  private readonly wild = new Map<string, IndexedRule[]>();
  private readonly any: IndexedRule[] = [];
  private readonly v4 = new CidrBuckets<number>();
  private readonly v6 = new CidrBuckets<bigint>();
  private readonly entries: Array<{ parsed: ParsedRule; rule: IndexedRule }> = [];

  constructor(
    readonly level: string,
    rules: { allow: string[]; deny: string[] } = { allow: [], deny: [] },
  ) {
    for (const verdict of ["deny", "allow"] as const) {
      for (const text of rules[verdict]) {
        const parsed = parseRule(text);
        const label = `${level} ${verdict} ${text}`;
        const rule = {
          verdict,
          port: parsed.port,
          label,
          cidr: parsed.cidr,
          ...ruleDecisions(verdict, label),
        };
        this.insert(parsed, rule);
      }
    }
  }

  /**
   * One index holding the rules of several levels. Deny beats allow whatever the level, so the
   * merged index decides exactly as the levels one after another would, with fewer lookups.
   */
  static merge(level: string, parts: RuleIndex[]): RuleIndex {
    const m = new RuleIndex(level);
    for (const p of parts) for (const e of p.entries) m.insert(e.parsed, e.rule);
    return m;
  }

  private insert(r: ParsedRule, rule: IndexedRule): void {
    this.entries.push({ parsed: r, rule });
    switch (r.kind) {
      case "any":
        this.any.push(rule);
        return;
      case "exact":
        push(this.exact, r.host, rule);
        return;
      case "wildcard":
        push(this.wild, r.host, rule);
        return;
      case "cidr": {
        const c = r.cidr as Cidr;
        if (c.family === 4) this.v4.add(c.network as number, c.prefix, rule);
        else this.v6.add(c.network as bigint, c.prefix, rule);
        return;
      }
    }
  }

  get empty(): boolean {
    return this.entries.length === 0;
  }

  get size(): number {
    return this.entries.length;
  }

  /** Add this level's matches for a target to `out` (deny stops the search). */
  matchTarget(t: Target, ipOfTarget: IP | null, out: MatchResult): void {
    if (this.any.length > 0) scan(this.any, t.port, out);
    if (out.deny) return;
    if (ipOfTarget) {
      this.matchIP(ipOfTarget, t.port, out);
      return;
    }
    const host = t.host;
    const list = this.exact.get(host);
    if (list) scan(list, t.port, out);
    if (out.deny || this.wild.size === 0) return;
    let dot = host.indexOf(".");
    while (dot >= 0) {
      const w = this.wild.get(host.slice(dot + 1));
      if (w) {
        scan(w, t.port, out);
        if (out.deny) return;
      }
      dot = host.indexOf(".", dot + 1);
    }
  }

  /** CIDR and IP-literal rules only: what a resolved address is judged by. */
  matchIP(ip: IP, port: number, out: MatchResult): void {
    if (ip.family === 4) {
      if (this.v4.size > 0) this.v4.match(ip.v, maskV4, port, out);
    } else if (this.v6.size > 0) {
      this.v6.match(ip.v, maskV6, port, out);
    }
  }
}

function push(m: Map<string, IndexedRule[]>, key: string, rule: IndexedRule): void {
  const list = m.get(key);
  if (list) list.push(rule);
  else m.set(key, [rule]);
}

/**
 * A target's IP, parsed once per decision for the CIDR buckets. A host that is an address but
 * arrived without `ip` set is still treated as one, so it cannot slip past CIDR deny rules.
 */
export function ipOf(t: Target): IP | null {
  if (t.ip) return parseIP(t.ip.address);
  const last = t.host.charCodeAt(t.host.length - 1);
  if ((last >= 48 && last <= 57) || t.host.includes(":")) return parseIP(t.host);
  return null;
}
