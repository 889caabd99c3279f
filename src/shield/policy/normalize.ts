/**
 * A destination's host made canonical, so every spelling of it reaches the rules as one form
 * (the host:port split itself is ../../net/hostport.ts). Each trick that bypassed other egress proxies is closed here: a trailing dot,
 * mixed case, IDN, IP literals in decimal/octal/hex/short form, IPv4-mapped IPv6, userinfo.
 */
import { domainToASCII } from "node:url";
import type { Target } from "../types.js";
import { formatIP, formatIPv4, parseIP, parseIPv6, parseLooseIPv4 } from "../../net/addresses.js";
import { HostPortError, splitHostPort, type SplitHostPort } from "../../net/hostport.js";

export class TargetError extends Error {
  constructor(
    readonly authority: string,
    readonly reason: string,
  ) {
    super(`bad destination "${printable(authority)}": ${reason}`);
    this.name = "TargetError";
  }
}

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function printable(s: string): string {
  const cut = s.length > 80 ? `${s.slice(0, 80)}...` : s;
  return cut.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

export interface CanonicalHost {
  host: string;
  ip?: { address: string; family: 4 | 6 };
}

/**
 * Canonical form of a bare host (no port): lowercase punycode without a trailing dot, or an IP
 * address in canonical text. Throws TargetError for anything else. Brackets around IPv6 are
 * accepted. Shared by targets and by the rules, so both sides are spelled the same way.
 */
export function canonicalHost(raw: string, authority = raw): CanonicalHost {
  if (raw === "") throw new TargetError(authority, "empty host");
  if (raw.startsWith("[")) {
    if (!raw.endsWith("]")) throw new TargetError(authority, "unclosed IPv6 bracket");
    const inner = raw.slice(1, -1);
    if (inner.includes("%")) throw new TargetError(authority, "IPv6 zone ids are not allowed");
    return ipHost(parseIPv6(inner), authority, "not an IPv6 address inside brackets");
  }
  if (raw.includes(":")) return ipHost(parseIPv6(raw), authority, "not a host name or IP address");
  // Percent-escapes, whitespace and control characters have no place in a host; the IDN mapper
  // would decode some of them into a different name than the one the client showed.
  if (/[%\s/\\?#@[\]]/.test(raw) || hasControl(raw)) {
    throw new TargetError(authority, "host contains characters that are not allowed");
  }
  // ASCII numbers are judged before the IDN mapper so out-of-range ones get a precise reason.
  if (/^[\x21-\x7e]+$/.test(raw)) {
    const numeric = ipv4Host(stripDot(raw.toLowerCase(), authority), authority);
    if (numeric) return numeric;
  }
  const ascii = domainToASCII(raw);
  if (ascii === "") throw new TargetError(authority, "not a valid host name (IDN conversion failed)");
  // IDN mapping can turn full-width digits and dots into an IPv4 literal, so look again.
  const host = stripDot(ascii.toLowerCase(), authority);
  const mapped = ipv4Host(host, authority);
  if (mapped) return mapped;
  if (host.length > 253) throw new TargetError(authority, "host name longer than 253 characters");
  for (const label of host.split(".")) {
    if (!LABEL.test(label)) throw new TargetError(authority, `invalid label "${printable(label)}"`);
  }
  return { host };
}

function stripDot(host: string, authority: string): string {
  const h = host.endsWith(".") ? host.slice(0, -1) : host;
  if (h === "" || h.startsWith(".") || h.endsWith(".") || h.includes("..")) {
    throw new TargetError(authority, "empty label in host name");
  }
  return h;
}

function ipv4Host(host: string, authority: string): CanonicalHost | null {
  const v4 = parseLooseIPv4(host);
  if (v4 === "invalid") throw new TargetError(authority, "numeric host is not a valid IPv4 address");
  if (v4 === null) return null;
  const address = formatIPv4(v4);
  return { host: address, ip: { address, family: 4 } };
}

function ipHost(v: bigint | null, authority: string, reason: string): CanonicalHost {
  if (v === null) throw new TargetError(authority, reason);
  const ip = parseIP(formatIP({ family: 6, v }));
  if (ip === null) throw new TargetError(authority, reason);
  const address = formatIP(ip);
  return { host: address, ip: { address, family: ip.family } };
}

/** As `defaultPort`: the authority must name its port (a CONNECT request, RFC 9110 §9.3.6). */
export const PORT_REQUIRED = 0;

/** Longest authority remembered: a valid host is at most 253 characters, plus brackets and port. */
const CACHEABLE_LENGTH = 300;
/** Parsed authorities, for each default port the proxy uses; bounded, and emptied when full. */
const MAX_PARSED = 4096;
const parsed = new Map<number, Map<string, Target>>([
  [80, new Map()],
  [443, new Map()],
  [PORT_REQUIRED, new Map()],
]);

/**
 * Parse `host`, `host:port`, `[v6]` or `[v6]:port` as it appears in a CONNECT line or a Host
 * header; without a port it is `defaultPort`, or an error for PORT_REQUIRED. userinfo (`user@host`) is refused: it is how URLs smuggle a second host past a reader.
 *
 * Agents ask for the same few destinations over and over, so valid authorities are remembered
 * under the proxy's default ports, 80 and 443 (parsing is a pure function of the text). Each
 * call still returns its own Target object, since callers key per-request state by it. A client
 * sending ever new names can churn the cache, never grow it; refused authorities are not
 * remembered and are parsed again each time.
 */
export function parseTarget(authority: string, defaultPort: number): Target {
  const byText = parsed.get(defaultPort);
  const known = byText?.get(authority);
  if (known !== undefined) return copyTarget(known);
  const target = parseTargetText(authority, defaultPort);
  if (byText !== undefined && authority.length <= CACHEABLE_LENGTH) {
    if (byText.size >= MAX_PARSED) byText.clear();
    byText.set(authority, target);
  }
  return copyTarget(target);
}

function copyTarget(t: Target): Target {
  // `ip` is never written to: it can be shared.
  return t.ip ? { host: t.host, port: t.port, ip: t.ip } : { host: t.host, port: t.port };
}

function parseTargetText(authority: string, defaultPort: number): Target {
  if (authority.includes("@")) throw new TargetError(authority, "userinfo (user@host) is not allowed");
  let split: SplitHostPort;
  try {
    split = splitHostPort(authority);
  } catch (e) {
    throw e instanceof HostPortError ? new TargetError(authority, e.reason) : e;
  }
  const port = split.port ?? defaultPort;
  if (port === PORT_REQUIRED) throw new TargetError(authority, "no port; CONNECT names host:port");
  const h = canonicalHost(split.bracketed ? `[${split.host}]` : split.host, authority);
  return h.ip ? { host: h.host, port, ip: h.ip } : { host: h.host, port };
}
