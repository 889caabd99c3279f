/**
 * Pure IP address handling for the shield: parsing every spelling a client or a resolver may
 * produce, canonical text, CIDR containment, and the classes of addresses an agent must never
 * reach through the shield (loopback, private, link-local, ...). No I/O here: the policy and the
 * resolver both build on it.
 */

export type IP = { family: 4; v: number } | { family: 6; v: bigint };

export type AddressClass =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "cgnat"
  | "ula"
  | "multicast"
  | "this-host"
  | "broadcast"
  | "reserved";

export interface Classification {
  class: AddressClass;
  /** The registry range that decided, e.g. "10.0.0.0/8", or "2000::/3" for public IPv6. */
  range: string;
  /** For IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4, Teredo): that address. */
  embedded?: string;
  /** The embedding that was unwrapped, e.g. "NAT64 64:ff9b::/96". */
  via?: string;
}

export interface Cidr {
  family: 4 | 6;
  /** Network address with host bits cleared. */
  network: number | bigint;
  prefix: number;
}

const MASK128 = (1n << 128n) - 1n;

/** Strict dotted quad (four decimal parts, no leading zeros), as resolvers return them. */
export function parseDottedQuad(text: string): number | null {
  // Hand-rolled: this runs for every IP literal decision and every resolved address.
  const len = text.length;
  if (len < 7 || len > 15) return null;
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return null;
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return null; // leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return null;
      digits++;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0) return null;
  return v * 256 + part;
}

/**
 * IPv4 in every spelling inet_aton and the WHATWG URL parser accept: 1 to 4 parts, each decimal,
 * octal (leading 0) or hex (0x); the last part fills the remaining bytes (`127.1`, `2130706433`).
 * Returns null when the text is not such a number, and "invalid" when it looks numeric but is out
 * of range, so callers can refuse instead of treating it as a name.
 */
export function parseLooseIPv4(text: string): number | null | "invalid" {
  // Most hosts are names: a numeric last part (after one trailing dot) starts with a digit.
  const end = text.endsWith(".") ? text.length - 1 : text.length;
  const first = text.charCodeAt(text.lastIndexOf(".", end - 1) + 1);
  if (!(first >= 48 && first <= 57)) return null;
  const parts = text.split(".");
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  const last = parts[parts.length - 1];
  if (last === undefined || !isNumericPart(last)) return null;
  if (parts.length > 4) return "invalid";
  const nums: number[] = [];
  for (const p of parts) {
    const n = parseNumericPart(p);
    if (n === null) return "invalid";
    nums.push(n);
  }
  let v = 0;
  for (let i = 0; i < nums.length - 1; i++) {
    const n = nums[i] as number;
    if (n > 255) return "invalid";
    v = v * 256 + n;
  }
  const tail = nums[nums.length - 1] as number;
  const tailBytes = 5 - nums.length;
  if (tail >= 256 ** tailBytes) return "invalid";
  return v * 256 ** tailBytes + tail;
}

function isNumericPart(p: string): boolean {
  return /^[0-9]+$/.test(p) || /^0x[0-9a-f]*$/i.test(p);
}

function parseNumericPart(p: string): number | null {
  if (p === "") return null;
  let n: number;
  if (/^0x/i.test(p)) {
    const digits = p.slice(2);
    if (!/^[0-9a-f]*$/i.test(digits)) return null;
    n = digits === "" ? 0 : parseInt(digits, 16);
  } else if (p.length > 1 && p.startsWith("0")) {
    if (!/^[0-7]+$/.test(p)) return null;
    n = parseInt(p, 8);
  } else {
    if (!/^[0-9]+$/.test(p)) return null;
    n = Number(p);
  }
  return Number.isSafeInteger(n) ? n : null;
}

/** IPv6 text (RFC 4291 forms, including a trailing dotted quad); no zone ids, no brackets. */
export function parseIPv6(text: string): bigint | null {
  if (text.length < 2 || text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let s = text;
  let tailV4: number | null = null;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".")) {
    tailV4 = parseDottedQuad(s.slice(lastColon + 1));
    if (tailV4 === null) return null;
    s = s.slice(0, lastColon + 1) + "0:0";
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parseGroups = (h: string): number[] | null => {
    if (h === "") return [];
    const out: number[] = [];
    for (const g of h.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0] as string);
  const tail = halves.length === 2 ? parseGroups(halves[1] as string) : [];
  if (head === null || tail === null) return null;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return null;
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (tailV4 !== null) v = (v & ~0xffffffffn) | BigInt(tailV4);
  return v;
}

export function formatIPv4(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run of two or more zero groups as "::". */
export function formatIPv6(v: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/**
 * Parse an address as a resolver or socket reports it: dotted quad or IPv6 text. IPv4-mapped IPv6
 * (`::ffff:a.b.c.d`, which dual-stack sockets report for IPv4 peers) becomes the IPv4 address.
 */
export function parseIP(text: string): IP | null {
  const v4 = parseDottedQuad(text);
  if (v4 !== null) return { family: 4, v: v4 };
  const v6 = parseIPv6(text);
  if (v6 === null) return null;
  if (v6 >> 32n === 0xffffn) return { family: 4, v: Number(v6 & 0xffffffffn) };
  return { family: 6, v: v6 };
}

export function formatIP(ip: IP): string {
  return ip.family === 4 ? formatIPv4(ip.v) : formatIPv6(ip.v);
}

/** Canonical text of an address in any accepted form, or null when it is not an address. */
export function canonicalIP(text: string): string | null {
  const ip = parseIP(text);
  return ip === null ? null : formatIP(ip);
}

/** `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128). Host bits must be zero. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIP(addrText);
  if (ip === null) return `"${addrText}" is not an IP address`;
  const writtenAsV6 = addrText.includes(":");
  const max = writtenAsV6 ? 128 : 32;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) {
      return `prefix length "/${p}" must be a number from 0 to ${max}`;
    }
    prefix = Number(p);
  }
  if (ip.family === 4 && writtenAsV6) {
    if (prefix < 96) return `${text} reaches outside ::ffff:0:0/96; write IPv4 ranges as a.b.c.d/n`;
    prefix -= 96;
  }
  const cidr = makeCidr(ip, prefix);
  if (cidr.network !== ip.v) {
    return `${text} has host bits set; the network is ${formatCidr(cidr)}`;
  }
  return cidr;
}

function makeCidr(ip: IP, prefix: number): Cidr {
  if (ip.family === 4) return { family: 4, network: maskV4(ip.v, prefix), prefix };
  return { family: 6, network: maskV6(ip.v, prefix), prefix };
}

export function maskV4(v: number, prefix: number): number {
  if (prefix <= 0) return 0;
  return (v & (0xffffffff << (32 - prefix))) >>> 0;
}

export function maskV6(v: bigint, prefix: number): bigint {
  if (prefix <= 0) return 0n;
  return v & (MASK128 ^ ((1n << BigInt(128 - prefix)) - 1n));
}

export function formatCidr(c: Cidr): string {
  const addr = c.family === 4 ? formatIPv4(c.network as number) : formatIPv6(c.network as bigint);
  return `${addr}/${c.prefix}`;
}

export function cidrContains(c: Cidr, ip: IP): boolean {
  if (c.family !== ip.family) return false;
  return ip.family === 4 ? maskV4(ip.v, c.prefix) === c.network : maskV6(ip.v, c.prefix) === c.network;
}

interface Range4 {
  cidr: Cidr;
  cls: AddressClass;
  /** What `classify` answers for an address in this range: built once, shared, never written. */
  answer: Readonly<Classification>;
}

function r4(text: string, cls: AddressClass): Range4 {
  const c = parseCidr(text);
  if (typeof c === "string") throw new Error(c);
  return { cidr: c, cls, answer: Object.freeze({ class: cls, range: formatCidr(c) }) };
}

// Most specific first: the first containing range decides.
const V4_RANGES: Range4[] = [
  r4("255.255.255.255/32", "broadcast"),
  // "This host on this network" (RFC 1122): Linux connects 0.0.0.0 to the local host itself.
  r4("0.0.0.0/8", "this-host"),
  r4("10.0.0.0/8", "private"),
  r4("100.64.0.0/10", "cgnat"),
  r4("127.0.0.0/8", "loopback"),
  r4("169.254.0.0/16", "link-local"),
  r4("172.16.0.0/12", "private"),
  r4("192.0.0.0/24", "reserved"),
  r4("192.0.2.0/24", "reserved"),
  r4("192.88.99.0/24", "reserved"),
  r4("192.168.0.0/16", "private"),
  r4("198.18.0.0/15", "reserved"),
  r4("198.51.100.0/24", "reserved"),
  r4("203.0.113.0/24", "reserved"),
  r4("224.0.0.0/4", "multicast"),
  r4("240.0.0.0/4", "reserved"),
];

const V6_RANGES: Range4[] = [
  // The unspecified address: Linux connects :: to ::1.
  r4("::/128", "this-host"),
  r4("::1/128", "loopback"),
  r4("fe80::/10", "link-local"),
  r4("fec0::/10", "private"),
  r4("fc00::/7", "ula"),
  r4("ff00::/8", "multicast"),
  r4("2001:db8::/32", "reserved"),
  r4("2001::/23", "reserved"),
  r4("100::/64", "reserved"),
  r4("2000::/3", "public"),
];

const EMBEDDINGS: Array<{ cidr: Cidr; name: string; extract: (v: bigint) => number[] }> = [
  { cidr: cidrOf("64:ff9b::/96"), name: "NAT64 64:ff9b::/96", extract: (v) => [low32(v)] },
  { cidr: cidrOf("64:ff9b:1::/48"), name: "NAT64 64:ff9b:1::/48", extract: (v) => [low32(v)] },
  { cidr: cidrOf("2002::/16"), name: "6to4 2002::/16", extract: (v) => [Number((v >> 80n) & 0xffffffffn)] },
  // Teredo carries the server address in clear and the client address inverted; both are judged.
  {
    cidr: cidrOf("2001::/32"),
    name: "Teredo 2001::/32",
    extract: (v) => [~low32(v) >>> 0, Number((v >> 64n) & 0xffffffffn)],
  },
  // IPv4-compatible addresses (deprecated ::a.b.c.d) are still routed by some stacks.
  { cidr: cidrOf("::/96"), name: "IPv4-compatible ::/96", extract: (v) => [low32(v)] },
];

function cidrOf(text: string): Cidr {
  const c = parseCidr(text);
  if (typeof c === "string") throw new Error(c);
  return c;
}

function low32(v: bigint): number {
  return Number(v & 0xffffffffn);
}

const CLASS_RANK: Record<AddressClass, number> = {
  public: 0,
  reserved: 1,
  multicast: 1,
  broadcast: 1,
  "this-host": 3,
  cgnat: 2,
  ula: 2,
  private: 2,
  "link-local": 3,
  loopback: 3,
};

const PUBLIC_V4: Readonly<Classification> = Object.freeze({ class: "public", range: "0.0.0.0/0" });
const OUTSIDE_V6: Readonly<Classification> = Object.freeze({ class: "reserved", range: "outside 2000::/3" });

function classifyV4(v: number): Readonly<Classification> {
  for (const r of V4_RANGES) {
    if (maskV4(v, r.cidr.prefix) === r.cidr.network) return r.answer;
  }
  return PUBLIC_V4;
}

/**
 * What kind of address this is. IPv6 forms that embed an IPv4 address are judged by the embedded
 * address (the worst one, for Teredo), so `64:ff9b::7f00:1` is loopback, not public.
 */
export function classify(ip: IP): Readonly<Classification> {
  if (ip.family === 4) return classifyV4(ip.v);
  if (ip.v === 0n) return V6_RANGES[0]!.answer;
  if (ip.v === 1n) return V6_RANGES[1]!.answer;
  for (const e of EMBEDDINGS) {
    if (maskV6(ip.v, e.cidr.prefix) !== e.cidr.network) continue;
    let worst: { c: Readonly<Classification>; addr: number } | null = null;
    for (const addr of e.extract(ip.v)) {
      const c = classifyV4(addr);
      if (worst === null || CLASS_RANK[c.class] > CLASS_RANK[worst.c.class]) worst = { c, addr };
    }
    if (worst === null) break;
    return { ...worst.c, embedded: formatIPv4(worst.addr), via: e.name };
  }
  for (const r of V6_RANGES) {
    if (maskV6(ip.v, r.cidr.prefix) === r.cidr.network) return r.answer;
  }
  // Outside 2000::/3 nothing is assigned for global unicast.
  return OUTSIDE_V6;
}

/**
 * The IPv4 addresses an IPv6 address carries (NAT64, 6to4, Teredo server and client,
 * IPv4-compatible), so rules written for IPv4 can be applied to them; empty for anything else.
 */
export function embeddedIPv4(ip: IP): IP[] {
  if (ip.family === 4 || ip.v === 0n || ip.v === 1n) return [];
  for (const e of EMBEDDINGS) {
    if (maskV6(ip.v, e.cidr.prefix) === e.cidr.network) return e.extract(ip.v).map((v) => ({ family: 4, v }));
  }
  return [];
}

/**
 * Addresses that reach the machine they are dialled from, whatever follows them: 0.0.0.0/8 and
 * :: (Linux connects them to the local host), and every IPv6 form carrying 0.0.0.0/8.
 */
export function isThisHost(ip: IP): boolean {
  if (classify(ip).class === "this-host") return true;
  return embeddedIPv4(ip).some((a) => classify(a).class === "this-host");
}

/** Classify an address given as text; null when the text is not an address. */
export function classifyAddress(text: string): Readonly<Classification> | null {
  const ip = parseIP(text);
  return ip === null ? null : classify(ip);
}
