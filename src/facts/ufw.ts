import { MalformedError } from "./fact.js";
import { table } from "./record.js";

export const UFW_CONF = "/etc/ufw/ufw.conf";
export const UFW_DEFAULTS = "/etc/default/ufw";
export const UFW_USER_RULES = "/etc/ufw/user.rules";
export const UFW_USER6_RULES = "/etc/ufw/user6.rules";

/** A `KEY=value` line of a shell-style settings file. */
export interface ShellSetting {
  value: string;
  source: string;
  line: number;
}

/**
 * One rule as ufw saves it: `### tuple ### ACTION PROTO DPORT DST SPORT SRC [DAPP SAPP] DIR`,
 * ufw's own record of what `ufw allow` was asked, next to the iptables lines it generated.
 */
export interface UfwRule {
  action: string;
  proto: string;
  dport: string;
  dst: string;
  sport: string;
  src: string;
  direction: string;
  iface?: string;
  app?: string;
  /** `ufw route` rules filter forwarded traffic, not traffic to this host. */
  route: boolean;
  family: 4 | 6;
  source: string;
  line: number;
  text: string;
}

export interface UfwRulesFile {
  path: string;
  rules: UfwRule[];
}

export interface UfwFact {
  conf: Record<string, ShellSetting>;
  defaults: Record<string, ShellSetting>;
  /** Missing when the file does not exist or could not be parsed (then a problem names it). */
  v4?: UfwRulesFile;
  v6?: UfwRulesFile;
}

export function parseShellSettings(text: string, source: string): Record<string, ShellSetting> {
  const out = table<ShellSetting>();
  text.split("\n").forEach((raw, i) => {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(raw);
    if (!m) return;
    let v = m[2]!.trim();
    const q = /^"([^"]*)"|^'([^']*)'/.exec(v);
    v = q ? (q[1] ?? q[2]!) : v.replace(/\s+#.*$/, "");
    out[m[1]!] = { value: v, source, line: i + 1 };
  });
  return out;
}

// What iptables-restore accepts in a ufw rules file; anything else means the file is not ufw's.
const RULES_LINE = /^(?:$|#|\*[a-z]+$|:\S+ \S+|-[AIN] \S|COMMIT$)/;

export function parseUfwRules(data: Buffer | string, path: string, family: 4 | 6): UfwRulesFile {
  const buf = typeof data === "string" ? Buffer.from(data) : data;
  const nul = buf.indexOf(0);
  if (nul >= 0) {
    const line = buf.subarray(0, nul).toString("latin1").split("\n").length;
    throw new MalformedError("binary data where ufw saves its rules as text", line);
  }
  const text = buf.toString("utf8");
  if (text.includes("\uFFFD")) {
    const line = text.slice(0, text.indexOf("\uFFFD")).split("\n").length;
    throw new MalformedError("invalid UTF-8 where ufw saves its rules as text", line);
  }
  const rules: UfwRule[] = [];
  const lines = text.split("\n");
  let sawFilter = false;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!RULES_LINE.test(line))
      throw new MalformedError(`not an iptables-restore or ufw tuple line: "${line.slice(0, 60)}"`, i + 1);
    if (line === "*filter") sawFilter = true;
    const t = /^### tuple ###\s*(.*)$/.exec(line);
    if (!t) return;
    const f = t[1]!.replace(/\s+comment=\S*$/, "").split(/\s+/);
    if (f.length < 6 || f.length > 9)
      throw new MalformedError(`ufw tuple with ${f.length} fields, expected 6 to 9: "${line}"`, i + 1);
    let action = f[0]!;
    const route = action.startsWith("route:");
    if (route) action = action.slice("route:".length);
    let direction = "in";
    let iface: string | undefined;
    if (f.length === 7 || f.length === 9) {
      const d = f[f.length - 1]!;
      const u = d.indexOf("_");
      direction = u < 0 ? d : d.slice(0, u);
      iface = u < 0 ? undefined : d.slice(u + 1);
    }
    const app = f.length >= 8 && f[6] !== "-" ? f[6]!.replace(/%20/g, " ") : undefined;
    rules.push({
      action: action.replace(/_log(?:-all)?$/, ""),
      proto: f[1]!,
      dport: f[2]!,
      dst: f[3]!,
      sport: f[4]!,
      src: f[5]!,
      direction,
      iface,
      app,
      route,
      family,
      source: path,
      line: i + 1,
      text: t[1]!,
    });
  });
  if (!sawFilter) throw new MalformedError("no *filter table: not a ufw rules file", 1);
  return { path, rules };
}

/** Whether a tuple's port field (`22`, `80,443`, `6000:6010`, `any`) covers `port`. */
export function portFieldCovers(field: string, port: number): boolean {
  if (field === "any") return true;
  return field.split(",").some((part) => {
    const [a, b] = part.split(":").map(Number);
    return b === undefined ? a === port : a! <= port && port <= b;
  });
}

/** Every port a field names; `any` and ranges longer than 64 ports become the range itself. */
export function portFieldPorts(field: string): Array<number | [number, number]> {
  if (field === "any") return [[1, 65535]];
  return field.split(",").flatMap((part): Array<number | [number, number]> => {
    const [a, b] = part.split(":").map(Number);
    if (b === undefined) return [a!];
    if (b - a! > 64) return [[a!, b]];
    return Array.from({ length: b - a! + 1 }, (_, k) => a! + k);
  });
}
