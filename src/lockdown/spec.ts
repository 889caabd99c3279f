import { promises as dns } from "node:dns";
import net from "node:net";
import { UsageError } from "../errors.js";
import type { EgressAllow } from "../render/nftables.js";
import {
  HostPortError,
  parseHostPort as readHostPort,
  parsePortText,
  type HostPort,
} from "../net/hostport.js";

/** A flag the operator typed that cannot mean what they wanted. */
export class LockdownInputError extends UsageError {}

export type { HostPort };

/** `HOST:PORT`, `[V6]:PORT`; a bare IPv6 literal needs brackets to carry a port. */
export function parseHostPort(s: string, what: string): HostPort {
  try {
    return readHostPort(s);
  } catch (e) {
    throw e instanceof HostPortError ? new LockdownInputError(`${what}: ${e.message}`) : e;
  }
}

export function parsePort(s: string, what: string): number {
  try {
    return parsePortText(s);
  } catch (e) {
    throw e instanceof HostPortError ? new LockdownInputError(`${what}: ${e.reason}`) : e;
  }
}

function validCidr(c: string): boolean {
  const [addr, len, ...rest] = c.split("/");
  if (rest.length > 0 || !addr) return false;
  const fam = net.isIP(addr);
  if (fam === 0) return false;
  if (len === undefined) return true;
  if (!/^\d+$/.test(len)) return false;
  return Number(len) <= (fam === 6 ? 128 : 32);
}

/** `CIDR:PORT`, `[V6CIDR]:PORT`, optionally `/udp` at the end (tcp otherwise). */
export function parseAllowOut(s: string): EgressAllow {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)(?:\/(tcp|udp))?$/.exec(s);
  if (!m)
    throw new LockdownInputError(
      `--allow-out: "${s}" is not CIDR:PORT[/udp] (e.g. 203.0.113.0/24:443 or [2001:db8::/32]:443)`,
    );
  const cidr = (m[1] ?? m[2])!;
  if (!validCidr(cidr)) throw new LockdownInputError(`--allow-out: "${cidr}" is not an IP address or CIDR`);
  return {
    cidr,
    port: parsePort(m[3]!, "--allow-out"),
    proto: (m[4] as "tcp" | "udp" | undefined) ?? "tcp",
    why: `allowed with --allow-out ${s}`,
  };
}

export function parseIp(s: string, what: string): string {
  if (net.isIP(s) === 0) throw new LockdownInputError(`${what}: "${s}" is not an IP address`);
  return s;
}

export interface PinnedShield extends HostPort {
  addresses: string[];
  /** The name was resolved here and its addresses written into the rules. */
  pinned: boolean;
}

export type Lookup = (name: string) => Promise<string[]>;

const systemLookup: Lookup = async (name) =>
  (await dns.lookup(name, { all: true, verbatim: true })).map((a) => a.address);

/**
 * After lockdown the agent has no DNS, so a shield given by name is resolved now and its
 * addresses written into the rules; the rules do not follow later changes of the name.
 */
export async function pinShield(hp: HostPort, lookup: Lookup = systemLookup): Promise<PinnedShield> {
  if (net.isIP(hp.host) !== 0) return { ...hp, addresses: [hp.host], pinned: false };
  let addresses: string[];
  try {
    addresses = [...new Set(await lookup(hp.host))];
  } catch (err) {
    throw new LockdownInputError(
      `--shield: cannot resolve "${hp.host}" (${err instanceof Error ? err.message : String(err)}); ` +
        `give the shield's IP address instead`,
    );
  }
  if (addresses.length === 0)
    throw new LockdownInputError(
      `--shield: "${hp.host}" resolves to no address; give its IP address instead`,
    );
  return { ...hp, addresses, pinned: true };
}
