/** A listening TCP socket with the names of the processes that hold it. */
export interface OwnedSocket {
  address: string;
  port: number;
  processes: string[];
}

/** Parse `ss -Hltnp`: `LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))`. */
export function parseSsListen(text: string): OwnedSocket[] {
  const out: OwnedSocket[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const local = f[3]!;
    const colon = local.lastIndexOf(":");
    const port = Number(local.slice(colon + 1));
    if (colon < 0 || !Number.isInteger(port)) continue;
    let address = local.slice(0, colon).replace(/^\[|\]$/g, "");
    address = address.replace(/%.*$/, "");
    const processes = [...line.matchAll(/\("([^"]+)",pid=/g)].map((m) => m[1]!);
    out.push({ address, port, processes: [...new Set(processes)] });
  }
  return out;
}

/** One address family's live ruleset as `iptables -S` prints it. */
export interface IptablesRuleset {
  command: string;
  /** Built-in chain policies, e.g. INPUT -> DROP. */
  policies: Record<string, string>;
  chains: string[];
  /** `-A` lines, verbatim. */
  rules: string[];
}

export function parseIptablesS(text: string, command: string): IptablesRuleset {
  const rs: IptablesRuleset = { command, policies: {}, chains: [], rules: [] };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const p = /^-P\s+(\S+)\s+(\S+)/.exec(line);
    if (p) {
      rs.policies[p[1]!] = p[2]!;
      rs.chains.push(p[1]!);
      continue;
    }
    const n = /^-N\s+(\S+)/.exec(line);
    if (n) rs.chains.push(n[1]!);
    else if (line.startsWith("-A ")) rs.rules.push(line);
  }
  return rs;
}

export interface LiveFirewallFact {
  v4?: IptablesRuleset;
  v6?: IptablesRuleset;
}

/**
 * `nft list ruleset` seen as iptables would show it, per family: every chain name, and INPUT's
 * policy as DROP when any base chain on the input hook drops (a packet must pass them all).
 */
export function parseNftRuleset(text: string): { v4: IptablesRuleset; v6: IptablesRuleset } {
  const v4: IptablesRuleset = { command: "nft list ruleset", policies: {}, chains: [], rules: [] };
  const v6: IptablesRuleset = { command: "nft list ruleset", policies: {}, chains: [], rules: [] };
  let targets: IptablesRuleset[] = [];
  let inInputChain = false;
  for (const raw of text.split("\n")) {
    const t = /^\s*table\s+(\S+)\s+\S+\s*\{/.exec(raw);
    if (t) {
      const fam = t[1]!;
      targets = fam === "inet" ? [v4, v6] : fam === "ip" ? [v4] : fam === "ip6" ? [v6] : [];
      continue;
    }
    const c = /^\s*chain\s+(\S+)\s*\{/.exec(raw);
    if (c) {
      for (const rs of targets) rs.chains.push(c[1]!);
      inInputChain = false;
      continue;
    }
    if (/\bhook\s+input\b/.test(raw)) inInputChain = true;
    const p = /\bpolicy\s+(accept|drop)\b/.exec(raw);
    if (p && inInputChain) {
      for (const rs of targets) if (rs.policies.INPUT !== "DROP") rs.policies.INPUT = p[1]!.toUpperCase();
    }
  }
  return { v4, v6 };
}
