/**
 * host:port, read and written in one place. A CONNECT line, a Host header, `listen:` in
 * shield.yaml, `--shield` of lockdown and a harden profile all write a host and a port
 * together; each reading them its own way is how `[::1]:80` came to mean three different things.
 * Pure: no lookups, no I/O. What a host may be (a name, any IP spelling, only an IP) is the
 * caller's to judge with the host this returns.
 */
import { parseIPv6 } from "./addresses.js";

export class HostPortError extends Error {
  constructor(
    /** The text as given. */
    readonly text: string,
    /** Why it is not a host:port, for people. */
    readonly reason: string,
  ) {
    super(`"${text}": ${reason}`);
    this.name = "HostPortError";
  }
}

export interface HostPort {
  /** The host as written, without the brackets of an IPv6 literal. */
  host: string;
  port: number;
}

export interface SplitHostPort {
  host: string;
  /** null when the text named no port. */
  port: number | null;
  /** The host was written in brackets (an IPv6 literal). */
  bracketed: boolean;
}

export interface PortRule {
  /** Port 0, "any free port", is accepted (a listener's address, never a destination). */
  allowZero?: boolean;
}

/** A port's text: 1 to 5 digits, in range. */
export function parsePortText(text: string, rule: PortRule = {}): number {
  if (!/^[0-9]{1,5}$/.test(text)) throw new HostPortError(text, `port "${text}" is not a number`);
  const port = Number(text);
  const min = rule.allowZero ? 0 : 1;
  if (port < min || port > 65535) throw new HostPortError(text, `port ${port} is out of range ${min}-65535`);
  return port;
}

/**
 * `host`, `host:port`, `[v6]` or `[v6]:port` split into host and port, nothing judged but the
 * shape and the port. A host with two colons outside brackets is refused: `fd00::2:3128` could
 * be an address or an address and a port.
 */
export function splitHostPort(text: string, rule: PortRule = {}): SplitHostPort {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) throw new HostPortError(text, "unclosed IPv6 bracket");
    const host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest === "") return { host, port: null, bracketed: true };
    if (!rest.startsWith(":")) throw new HostPortError(text, "unexpected text after IPv6 literal");
    return { host, port: portOf(text, rest.slice(1), rule), bracketed: true };
  }
  const first = text.indexOf(":");
  if (first < 0) return { host: text, port: null, bracketed: false };
  const last = text.lastIndexOf(":");
  if (first !== last) {
    // `fd00::2:3128` most likely means an address and a port: show that one written right.
    const [host, port] = [text.slice(0, last), text.slice(last + 1)];
    const meant = parseIPv6(host) !== null && /^[0-9]{1,5}$/.test(port) ? `[${host}]:${port}` : null;
    throw new HostPortError(
      text,
      `IPv6 literals must be written in brackets${meant ? `: ${meant}` : ", e.g. [2001:db8::1]:443"}`,
    );
  }
  return { host: text.slice(0, first), port: portOf(text, text.slice(first + 1), rule), bracketed: false };
}

function portOf(text: string, portText: string, rule: PortRule): number {
  try {
    return parsePortText(portText, rule);
  } catch (e) {
    throw e instanceof HostPortError ? new HostPortError(text, e.reason) : e;
  }
}

/**
 * `HOST:PORT` where both must be there (a flag, a config value): the host non-empty, and an
 * IPv6 address in brackets. `defaultPort` makes the port optional.
 */
export function parseHostPort(text: string, rule: PortRule & { defaultPort?: number } = {}): HostPort {
  const s = splitHostPort(text.trim(), rule);
  if (s.host === "") throw new HostPortError(text, "no host");
  if (s.bracketed && parseIPv6(s.host) === null)
    throw new HostPortError(text, `"${s.host}" in brackets is not an IPv6 address`);
  const port = s.port ?? rule.defaultPort;
  if (port === undefined)
    throw new HostPortError(text, "no port; write HOST:PORT (IPv6 in brackets: [fd00::2]:3128)");
  return { host: s.host, port };
}

/** `host:port` as a URL authority or a log line writes it: an IPv6 literal in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
