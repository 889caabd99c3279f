/**
 * The simplest inventory: one `user@host[:port]` a line (`#` starts a comment, an IPv6 address
 * goes in brackets). Ansible's INI reader would take `deploy@web:2222` as one odd host name, so a
 * file is read this way only when every line is one such entry and at least one names a user or
 * a bracketed address; a list of bare names reads the same either way.
 */
import { parseIPv6 } from "../../net/addresses.js";
import { InventoryBuilder, type Inventory, type Vars } from "./model.js";

const ENTRY = /^(?:([^\s@[\]=#;:]+)@)?(?:\[([0-9A-Fa-f:.]+)\]|([^\s@[\]=#;:]+))(?::([0-9]+))?$/;

function entries(text: string): Array<{ line: number; text: string }> {
  return text
    .split(/\r?\n/)
    .map((raw, i) => ({ line: i + 1, text: raw.trim() }))
    .filter((l) => l.text !== "" && !l.text.startsWith("#"));
}

/** Whether `text` is a plain list rather than an INI inventory (see above). */
export function isPlainList(text: string): boolean {
  const lines = entries(text);
  return (
    lines.length > 0 &&
    lines.every((l) => ENTRY.test(l.text)) &&
    lines.some((l) => l.text.includes("@") || l.text.startsWith("["))
  );
}

export function parsePlainList(text: string, file: string): Inventory {
  const b: InventoryBuilder = new InventoryBuilder(file);
  const firstSeen = new Map<string, number>();
  for (const { line, text: entry } of entries(text)) {
    const m = ENTRY.exec(entry);
    if (!m) b.fail({ line }, `"${entry}" is not user@host[:port]`);
    const [, user, v6, name, port] = m;
    if (v6 !== undefined && parseIPv6(v6) === null) b.fail({ line }, `"${v6}" is not an IPv6 address`);
    const host = (v6 ?? name)!;
    const before = firstSeen.get(host);
    if (before !== undefined)
      b.fail(
        { line },
        `${host} is already listed on line ${before}; to reach it twice, name each in an INI inventory (web-a ansible_host=${host} ...)`,
      );
    firstSeen.set(host, line);
    const vars: Vars = {};
    if (user !== undefined) vars.ansible_user = user;
    if (port !== undefined) vars.ansible_port = Number(port);
    b.host("ungrouped", host, vars, { line });
  }
  return b.finish();
}
