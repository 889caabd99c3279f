/**
 * A host as an inventory names it: `web[01:03].example.com:2222`, `[2001:db8::1]:22`,
 * `db-[a:c]`. Ansible splits off a port only when what is left is a valid host name or
 * address (so `deploy@web:2222` stays one name), then expands `[x:y(:step)]` ranges, numeric
 * (zero-padded when the start is) or alphabetic, several per name.
 */
import { parseIPv6 } from "../../net/addresses.js";

const NUM_RANGE = String.raw`\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]`;
const ALNUM_RANGE = String.raw`\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]`;
const LABEL = String.raw`(?:[\p{L}\p{N}_]|${ALNUM_RANGE})(?:[\p{L}\p{N}_-]|${ALNUM_RANGE})*(?<![_-])`;
const V4_PART = String.raw`(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|${NUM_RANGE})`;

const BRACKETED_HOSTPORT = /^\[(.+)\]:([0-9]+)$/;
const HOSTPORT = /^((?:[^:[\]]|\[[^\]]*\])*):([0-9]+)$/;
const IPV4 = new RegExp(String.raw`^(?:${V4_PART}\.){3}${V4_PART}$`, "i");
const HOSTNAME = new RegExp(String.raw`^${LABEL}(?:\.${LABEL})*$`, "iu");

export class HostPatternError extends Error {}

/** `address` as (host, port), or null when it is not a host with an optional port. */
export function parseAddress(address: string): { host: string; port: number | undefined } | null {
  let rest = address;
  let port: number | undefined;
  for (const re of [BRACKETED_HOSTPORT, HOSTPORT]) {
    const m = re.exec(rest);
    if (m) {
      rest = m[1]!;
      port = Number(m[2]);
    }
  }
  const valid = IPV4.test(rest) || parseIPv6(rest) !== null || HOSTNAME.test(rest);
  return valid ? { host: rest, port } : null;
}

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** Every name `line` stands for, its first `[x:y(:step)]` expanded and then the rest. */
export function expandRanges(line: string): string[] {
  const open = line.indexOf("[");
  if (open < 0) return [line];
  const close = line.indexOf("]", open);
  if (close < 0) throw new HostPatternError(`"${line}": a host range opens with [ and never closes`);
  const head = line.slice(0, open);
  const tail = line.slice(close + 1);
  const bounds = line.slice(open + 1, close).split(":");
  if (bounds.length !== 2 && bounds.length !== 3)
    throw new HostPatternError(`"${line}": a host range must be [begin:end] or [begin:end:step]`);
  const beg = bounds[0] || "0";
  const end = bounds[1]!;
  const stepText = bounds[2] ?? "1";
  if (!end) throw new HostPatternError(`"${line}": a host range must name its end`);
  if (!/^[0-9]+$/.test(stepText) || Number(stepText) === 0)
    throw new HostPatternError(`"${line}": a host range's step must be a positive number`);
  const step = Number(stepText);
  let items: string[];
  const a = LETTERS.indexOf(beg);
  const b = LETTERS.indexOf(end);
  if (beg.length === 1 && end.length === 1 && a >= 0 && b >= 0) {
    if (a > b) throw new HostPatternError(`"${line}": a host range must not end before it begins`);
    items = [];
    for (let i = a; i <= b; i += step) items.push(LETTERS[i]!);
  } else {
    if (!/^[0-9]+$/.test(beg) || !/^[0-9]+$/.test(end))
      throw new HostPatternError(`"${line}": a host range is numbers or single letters, not "${beg}:${end}"`);
    const pad = beg.length > 1 && beg.startsWith("0") ? beg.length : 0;
    if (pad && pad !== end.length)
      throw new HostPatternError(`"${line}": a zero-padded range needs a begin and end of equal length`);
    items = [];
    for (let i = Number(beg); i <= Number(end); i += step) items.push(String(i).padStart(pad, "0"));
  }
  return items.flatMap((x) => expandRanges(head + x + tail));
}

/** The names a host entry stands for, and the port it gives them all. */
export function expandHostPattern(pattern: string): { names: string[]; port: number | undefined } {
  const parsed = parseAddress(pattern);
  const base = parsed ? parsed.host : pattern;
  return { names: expandRanges(base), port: parsed?.port };
}
