import { MalformedError } from "./fact.js";

export interface Listener {
  family: 4 | 6;
  address: string;
  port: number;
  /** Where it was read, e.g. /proc/net/tcp6 line 3. */
  source: string;
}

const TCP_LISTEN = "0A";

function hexToIPv4(hex: string): string {
  // /proc/net/tcp stores the address as a little-endian 32-bit word.
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join(".");
}

function hexToIPv6(hex: string): string {
  // Four little-endian 32-bit words.
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (let b = 3; b >= 0; b--) bytes.push(parseInt(word.slice(b * 2, b * 2 + 2), 16));
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return compressIPv6(groups);
}

function compressIPv6(groups: string[]): string {
  if (groups.slice(0, 5).every((g) => g === "0") && groups[5] === "ffff") {
    const a = parseInt(groups[6]!, 16);
    const b = parseInt(groups[7]!, 16);
    return `::ffff:${a >> 8}.${a & 0xff}.${b >> 8}.${b & 0xff}`;
  }
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

export function parseProcNetTcp(text: string, family: 4 | 6, path: string): Listener[] {
  const out: Listener[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (i === 0 || !line.trim()) return;
    const f = line.trim().split(/\s+/);
    const local = f[1];
    const state = f[3];
    const m = local ? /^([0-9A-Fa-f]+):([0-9A-Fa-f]{4})$/.exec(local) : null;
    if (!m || !state) throw new MalformedError(`unexpected socket line "${line.trim().slice(0, 60)}"`, i + 1);
    if (state.toUpperCase() !== TCP_LISTEN) return;
    const addrHex = m[1]!;
    if ((family === 4 && addrHex.length !== 8) || (family === 6 && addrHex.length !== 32)) {
      throw new MalformedError(`address of unexpected length in "${local}"`, i + 1);
    }
    out.push({
      family,
      address: family === 4 ? hexToIPv4(addrHex) : hexToIPv6(addrHex),
      port: parseInt(m[2]!, 16),
      source: `${path} line ${i + 1}`,
    });
  });
  return out;
}

export function isLoopbackAddress(addr: string): boolean {
  return addr.startsWith("127.") || addr === "::1" || addr.startsWith("::ffff:127.");
}
