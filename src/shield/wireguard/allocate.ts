/**
 * Addresses on the shield's WireGuard network: the interface's own (`10.77.0.1/16`: the shield's
 * address and the range agents get theirs from) and the next free one for an agent. Pure.
 */
import {
  type Cidr,
  type IP,
  cidrContains,
  formatCidr,
  formatIP,
  maskV4,
  maskV6,
  parseIP,
} from "../../net/addresses.js";
import { ClawguardError } from "../../errors.js";

/** One `wireguard.address` entry: the shield's address with the prefix of the agents' range. */
export interface InterfaceAddress {
  ip: IP;
  prefix: number;
  range: Cidr;
  /** As written back: "10.77.0.1/16". */
  text: string;
}

/** The smallest ranges worth running: the shield plus at least one agent (two in IPv4). */
const MAX_PREFIX = { 4: 30, 6: 127 } as const;

/** "10.77.0.1/16" or "fd77:77::1/64": host bits set on purpose, they are the shield's address. */
export function parseInterfaceAddress(text: string): InterfaceAddress | string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) return `"${text}" is not ADDRESS/PREFIX (e.g. 10.77.0.1/16 or fd77:77::1/64)`;
  const ip = parseIP(m[1]!);
  if (ip === null || m[1]!.includes(":") !== (ip.family === 6))
    return `"${m[1]}" is not an IPv4 or IPv6 address`;
  const prefix = Number(m[2]);
  const max = MAX_PREFIX[ip.family];
  if (prefix > max || prefix < 8)
    return `/${prefix} leaves no room for agents: use a prefix from /8 to /${max} for IPv${ip.family}`;
  const range: Cidr =
    ip.family === 4
      ? { family: 4, network: maskV4(ip.v, prefix), prefix }
      : { family: 6, network: maskV6(ip.v, prefix), prefix };
  const addr = { ip, prefix, range, text: `${formatIP(ip)}/${prefix}` };
  const bad = reserved(addr).some((r) => sameIP(r, ip));
  if (bad)
    return `${formatIP(ip)} is the network${ip.family === 4 ? " or broadcast" : ""} address of ${formatCidr(range)}`;
  return addr;
}

/** "10.77.0.2/32" or "fd77:77::2/128": one host, as an agent's `sources` and AllowedIPs list it. */
export function hostCidr(ip: IP): string {
  return `${formatIP(ip)}/${ip.family === 4 ? 32 : 128}`;
}

export function sameIP(a: IP, b: IP): boolean {
  return a.family === b.family && a.v === b.v;
}

export class RangeExhaustedError extends ClawguardError {
  constructor(
    readonly range: string,
    readonly index: number,
  ) {
    super(
      "CG_RANGE_EXHAUSTED",
      `no free address left in ${range} (wireguard.address[${index}]): widen the range or revoke an agent`,
    );
  }
}

/** The addresses no agent may get: the network's own and, in IPv4, its broadcast address. */
function reserved(a: Pick<InterfaceAddress, "range">): IP[] {
  const r = a.range;
  if (r.family === 4) {
    const size = 2 ** (32 - r.prefix);
    return [
      { family: 4, v: r.network as number },
      { family: 4, v: (r.network as number) + size - 1 },
    ];
  }
  return [{ family: 6, v: r.network as bigint }];
}

/**
 * The lowest free address of each range, in the order of `ranges`. Taken are the shield's own,
 * the network (and broadcast) address, and `taken` (every address some agent already owns).
 * Throws RangeExhaustedError naming the full range.
 */
export function allocateAddresses(ranges: readonly InterfaceAddress[], taken: readonly IP[]): IP[] {
  return ranges.map((a, index) => {
    const used = new Set<string>();
    for (const ip of [a.ip, ...reserved(a), ...taken])
      if (cidrContains(a.range, ip)) used.add(ip.v.toString());
    if (a.range.family === 4) {
      const first = (a.range.network as number) + 1;
      const last = (a.range.network as number) + 2 ** (32 - a.range.prefix) - 2;
      for (let v = first; v <= last; v++) if (!used.has(v.toString())) return { family: 4, v };
    } else {
      const first = (a.range.network as bigint) + 1n;
      const last = (a.range.network as bigint) + (1n << BigInt(128 - a.range.prefix)) - 1n;
      // Every taken address is below the first free one, so this ends within used.size + 1 steps.
      for (let v = first; v <= last; v++) if (!used.has(v.toString())) return { family: 6, v };
    }
    throw new RangeExhaustedError(formatCidr(a.range), index);
  });
}
