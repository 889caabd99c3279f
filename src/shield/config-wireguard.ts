/**
 * The parts of shield.yaml about how agents reach the shield: the WireGuard interface, the
 * agents enrolled on it, and whether the proxy may listen where cleartext crosses the internet.
 * Called by config.ts with its `fail`, so every problem carries its key path and line.
 */
import path from "node:path";
import type { RawShieldConfig } from "./config-schema.js";
import { cidrContains, classify, formatCidr, parseCidr, parseIP } from "../net/addresses.js";
import { parseInterfaceAddress, sameIP, type InterfaceAddress } from "./wireguard/allocate.js";
import { wireguardKeyProblem } from "./wireguard/keys.js";
import { HostPortError, parseHostPort, type HostPort } from "../net/hostport.js";

type Segment = string | number;
type Fail = (segs: Segment[], reason: string) => void;

export interface WireguardConfig {
  interface: string;
  listenPort: number;
  /** As written and checked: "10.77.0.1/16", "fd77:77::1/64" (see parseInterfaceAddress). */
  addresses: string[];
  /** Absolute; root reads it, the shield process never does. */
  privateKeyFile: string;
  /** Absolute; the interface's peers as root last saw them, for the shield to show. */
  statusFile: string;
  /** Where agents send their packets, as enroll writes it into join codes by default. */
  endpoint?: HostPort;
}

export interface AgentWireguard {
  publicKey: string;
  /** Absolute, when the agent has a preshared key. */
  presharedKeyFile?: string;
}

const IFACE = /^[A-Za-z0-9_=+.-]{1,15}$/;
export const STATUS_DIR = "/run/clawguard-wireguard";

/** The `wireguard` section read, or undefined when absent (problems go to `fail`). */
export function readWireguard(
  raw: RawShieldConfig["wireguard"],
  file: string,
  fail: Fail,
): WireguardConfig | undefined {
  if (raw === undefined) return undefined;
  if (!IFACE.test(raw.interface))
    fail(
      ["wireguard", "interface"],
      `"${raw.interface}" is not an interface name (1-15 of A-Z a-z 0-9 _ = + . -)`,
    );
  const families = new Set<number>();
  const addresses: string[] = [];
  raw.address.forEach((text, i) => {
    const a = parseInterfaceAddress(text);
    if (typeof a === "string") return fail(["wireguard", "address", i], a);
    if (families.has(a.ip.family))
      return fail(["wireguard", "address", i], `a second IPv${a.ip.family} range; give at most one of each`);
    families.add(a.ip.family);
    addresses.push(a.text);
  });
  let endpoint: HostPort | undefined;
  if (raw.endpoint !== undefined) {
    try {
      endpoint = parseHostPort(raw.endpoint);
    } catch (e) {
      if (!(e instanceof HostPortError)) throw e;
      fail(
        ["wireguard", "endpoint"],
        `${e.reason} (the shield's public address and UDP port, e.g. 203.0.113.5:51820)`,
      );
    }
  }
  const dir = path.dirname(path.resolve(file));
  return {
    ...(endpoint ? { endpoint } : {}),
    interface: raw.interface,
    listenPort: raw.listen_port,
    addresses,
    privateKeyFile: path.resolve(dir, raw.private_key_file),
    statusFile:
      raw.status_file !== undefined
        ? path.resolve(dir, raw.status_file)
        : `${STATUS_DIR}/${raw.interface}.json`,
  };
}

const parsedRanges = new WeakMap<WireguardConfig, InterfaceAddress[]>();

/** The parsed ranges of a checked config (they parsed once, so they parse again; kept per config). */
export function interfaceAddresses(wg: WireguardConfig): InterfaceAddress[] {
  let r = parsedRanges.get(wg);
  if (!r) parsedRanges.set(wg, (r = wg.addresses.map((t) => parseInterfaceAddress(t) as InterfaceAddress)));
  return r;
}

/**
 * An agent's `wireguard:`: a valid key no other agent has, and `sources` that are exactly its
 * tunnel addresses (one host per family, inside the shield's ranges, not the shield's own).
 */
export function readAgentWireguard(
  raw: RawShieldConfig["agents"][number],
  at: (...k: Segment[]) => Segment[],
  wg: WireguardConfig | undefined,
  keyOwners: Map<string, string>,
  file: string,
  fail: Fail,
): AgentWireguard | undefined {
  if (raw.wireguard === undefined) return undefined;
  if (wg === undefined) {
    fail(
      at("wireguard"),
      "an agent on WireGuard needs the top-level wireguard section (the shield's interface)",
    );
    return undefined;
  }
  const key = raw.wireguard.public_key.trim();
  const problem = wireguardKeyProblem(key);
  if (problem) fail(at("wireguard", "public_key"), problem);
  const owner = keyOwners.get(key);
  if (owner !== undefined && owner !== raw.id)
    fail(at("wireguard", "public_key"), `agent "${owner}" already has this key; every agent needs its own`);
  keyOwners.set(key, raw.id);
  if (raw.sources === undefined) {
    fail(
      at("sources"),
      "an agent on WireGuard needs its tunnel addresses as sources (e.g. [10.77.0.2/32, fd77:77::2/128])",
    );
  } else {
    const ranges = interfaceAddresses(wg);
    const families = new Set<number>();
    raw.sources.forEach((s, j) => {
      const c = parseCidr(s.trim());
      if (typeof c === "string") return; // config.ts reports it
      const host = c.prefix === (c.family === 4 ? 32 : 128) ? parseIP(formatCidr(c).split("/")[0]!) : null;
      const range = host && ranges.find((r) => cidrContains(r.range, host));
      if (!host || !range)
        return fail(
          at("sources", j),
          `${formatCidr(c)} is not one address in the WireGuard ranges (${wg.addresses.join(", ")}): an agent on WireGuard is known by its tunnel addresses alone`,
        );
      if (sameIP(range.ip, host))
        return fail(at("sources", j), `${formatCidr(c)} is the shield's own address`);
      if (families.has(host.family)) return fail(at("sources", j), `a second IPv${host.family} address`);
      families.add(host.family);
    });
  }
  return {
    publicKey: key,
    ...(raw.wireguard.preshared_key_file !== undefined
      ? { presharedKeyFile: path.resolve(path.dirname(path.resolve(file)), raw.wireguard.preshared_key_file) }
      : {}),
  };
}

/** Address classes that never leave a network the operator runs. */
const PRIVATE = new Set(["loopback", "private", "cgnat", "ula", "link-local"]);

/**
 * Why listening on `host` would carry agents' tokens, destinations and CONNECT lines across the
 * internet in cleartext, or null when it would not (or the operator said `allow_cleartext`).
 */
export function cleartextListenProblem(
  host: string,
  allowCleartext: boolean,
  wg: WireguardConfig | undefined,
): string | null {
  if (allowCleartext) return null;
  const ip = parseIP(host);
  if (ip === null) return null;
  const cls = classify(ip).class;
  if (PRIVATE.has(cls)) return null;
  const what =
    cls === "this-host"
      ? `${host} is a wildcard: the proxy would answer on every address, the public one too`
      : `${host} is a public address`;
  const fix =
    wg !== undefined
      ? `listen on the shield's WireGuard address instead (e.g. listen: ${wg.addresses[0]?.split("/")[0] ?? "10.77.0.1"}:3128)`
      : "give the shield a WireGuard interface (clawguard shield install --wireguard) and listen on its address";
  return `${what}, and proxy requests carry tokens, destinations and CONNECT lines in cleartext; ${fix}, or, on a private network you trust, set allow_cleartext: true`;
}
