/**
 * The kernel's routes out of this server, from /proc/net/route and /proc/net/ipv6_route: does a
 * path lead anywhere but the networks the server sits on? Pure parsers of those two tables.
 */
import { MalformedError } from "./fact.js";

export interface DefaultRoute {
  family: 4 | 6;
  /** The next hop, or null for a route straight out of the interface. */
  via: string | null;
  dev: string;
}

export interface RoutesFact {
  /** Routes to every address (0.0.0.0/0, ::/0), the way out to the internet. */
  defaults: DefaultRoute[];
}

const RTF_UP = 0x1;

/** /proc/net/route: addresses are hex in host (little-endian) byte order. */
export function parseRouteV4(text: string): DefaultRoute[] {
  const out: DefaultRoute[] = [];
  text.split("\n").forEach((line, i) => {
    if (i === 0 || line.trim() === "") return;
    const f = line.trim().split(/\s+/);
    if (f.length < 8) throw new MalformedError("expected at least 8 columns", i + 1);
    const [dev, dest, gateway, flags, , , , mask] = f as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (!/^[0-9A-Fa-f]{8}$/.test(dest) || !/^[0-9A-Fa-f]{8}$/.test(gateway) || !/^[0-9A-Fa-f]{8}$/.test(mask))
      throw new MalformedError("an address column is not 8 hex digits", i + 1);
    if ((parseInt(flags, 16) & RTF_UP) === 0 || parseInt(dest, 16) !== 0 || parseInt(mask, 16) !== 0) return;
    const g = parseInt(gateway, 16);
    out.push({
      family: 4,
      via: g === 0 ? null : [g & 255, (g >>> 8) & 255, (g >>> 16) & 255, g >>> 24].join("."),
      dev,
    });
  });
  return out;
}

/** /proc/net/ipv6_route: destination, its prefix length, ..., next hop, metric, ..., flags, device. */
export function parseRouteV6(text: string): DefaultRoute[] {
  const out: DefaultRoute[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const f = line.trim().split(/\s+/);
    if (f.length < 10) throw new MalformedError("expected 10 columns", i + 1);
    const [dest, prefix, , , nextHop, , , , flags, dev] = f as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (!/^[0-9a-f]{32}$/i.test(dest) || !/^[0-9a-f]{32}$/i.test(nextHop))
      throw new MalformedError("an address column is not 32 hex digits", i + 1);
    // The loopback device's own default entry is "unreachable", not a way out.
    if (parseInt(prefix, 16) !== 0 || /^0+$/.test(dest) === false || dev === "lo") return;
    if ((parseInt(flags, 16) & RTF_UP) === 0) return;
    const via = /^0+$/.test(nextHop)
      ? null
      : nextHop
          .match(/.{4}/g)!
          .map((g) => g.replace(/^0{1,3}/, ""))
          .join(":");
    out.push({ family: 6, via: via === null ? null : compress(via), dev });
  });
  return out;
}

function compress(v6: string): string {
  // The longest run of zero groups as "::", lowercase (RFC 5952).
  const groups = v6.toLowerCase().split(":");
  let best = -1;
  let len = 0;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === "0") j++;
    if (j - i > len && j - i > 1) {
      best = i;
      len = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + len).join(":")}`;
}
