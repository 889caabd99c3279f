export interface UfwInput {
  /** Ports sshd really listens on: allowed before anything is denied. */
  sshPorts: number[];
  /** Other inbound TCP ports the profile opens (80, 443). */
  ports: number[];
  /** Never opened, whatever else asks for it. */
  gatewayPort: number;
  /** Current default incoming policy, restored by rollback. */
  previousIncoming: "allow" | "deny" | "reject";
  /** Whether ufw was enabled before, so rollback knows whether to disable it again. */
  wasEnabled: boolean;
  /** Rules already present (`22/tcp`), which need no command. */
  existing: string[];
}

export interface UfwCommand {
  argv: string[];
  undo?: string[];
}

/**
 * ufw commands in the only safe order: SSH's real ports first, then the profile's ports, then
 * default deny, then enable. Enabling last means a cut connection is never one step away.
 */
export function renderUfwCommands(u: UfwInput): UfwCommand[] {
  const out: UfwCommand[] = [];
  const seen = new Set<number>();
  for (const port of [...u.sshPorts, ...u.ports]) {
    if (port === u.gatewayPort || seen.has(port)) continue;
    seen.add(port);
    const rule = `${port}/tcp`;
    if (u.existing.includes(rule)) continue;
    out.push({ argv: ["ufw", "allow", rule], undo: ["ufw", "delete", "allow", rule] });
  }
  if (u.previousIncoming !== "deny")
    out.push({
      argv: ["ufw", "default", "deny", "incoming"],
      undo: ["ufw", "default", u.previousIncoming, "incoming"],
    });
  if (!u.wasEnabled) out.push({ argv: ["ufw", "--force", "enable"], undo: ["ufw", "disable"] });
  return out;
}

/** /etc/default/ufw with IPV6=yes, every other line kept. */
export function ufwDefaultsWithIpv6(text: string): string {
  const lines = text.split("\n");
  let found = false;
  const out = lines.map((l) => {
    if (/^\s*IPV6\s*=/.test(l)) {
      found = true;
      return "IPV6=yes";
    }
    return l;
  });
  if (!found) {
    if (out.length && out[out.length - 1] === "") out.pop();
    out.push("IPV6=yes", "");
  }
  return out.join("\n");
}
