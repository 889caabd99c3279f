/** /etc/login.defs: shadow's defaults for new accounts (useradd, newusers) and for pam_umask. */
export const LOGIN_DEFS = "/etc/login.defs";

export interface LoginDef {
  value: string;
  line: number;
}

export interface LoginDefsFact {
  /** By name as written; shadow's getdef keeps the last definition of a name. */
  values: Record<string, LoginDef>;
}

export function parseLoginDefs(text: string): LoginDefsFact {
  const values = Object.create(null) as Record<string, LoginDef>;
  text.split("\n").forEach((raw, i) => {
    const m = /^\s*([A-Z_][A-Z0-9_]*)\s+(\S+)/.exec(raw.replace(/#.*/, ""));
    if (m) values[m[1]!] = { value: m[2]!, line: i + 1 };
  });
  return { values };
}

/** The text with `name` set to `value`: its last definition rewritten in place, or one added. */
export function setLoginDef(text: string, name: string, value: string): string {
  const lines = text.split("\n");
  const def = parseLoginDefs(text).values[name];
  const line = `${name}\t\t${value}`;
  if (def) lines[def.line - 1] = line;
  else {
    if (lines.at(-1) === "") lines.pop();
    lines.push(line, "");
  }
  return lines.join("\n");
}
