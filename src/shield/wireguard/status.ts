/**
 * The interface's peers as `wg show IFACE dump` prints them, without its secrets: the private key
 * and preshared keys never leave the root daemon that reads the dump. What it publishes, the
 * shield reads to show each agent's handshake, endpoint and transfer. Pure, except readStatus.
 */
import { readFile } from "node:fs/promises";
import type { AgentConfig } from "../config.js";

export const STATUS_SCHEMA = "clawguard.wireguard-status/v1";

export interface PeerStatus {
  publicKey: string;
  /** host:port the peer last sent from, or null before it ever did. */
  endpoint: string | null;
  allowedIps: string[];
  /** Seconds since the epoch; 0 before the first handshake. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
}

export interface InterfaceStatus {
  schema: typeof STATUS_SCHEMA;
  interface: string;
  publicKey: string | null;
  listenPort: number;
  /** When the dump was taken, ms since the epoch. */
  at: number;
  peers: PeerStatus[];
}

export class DumpError extends Error {}

const num = (s: string | undefined): number => {
  const n = Number(s);
  return Number.isFinite(n) && n >= 0 ? n : 0;
};

/** `wg show IFACE dump`: the interface line, then one tab-separated line per peer. */
export function parseWgDump(text: string, iface: string, at: number): InterfaceStatus {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const head = lines[0]?.split("\t");
  if (!head || head.length < 4) throw new DumpError(`wg show ${iface} dump: no interface line`);
  const peers = lines.slice(1).map((l, i) => {
    const f = l.split("\t");
    if (f.length < 8)
      throw new DumpError(`wg show ${iface} dump: peer line ${i + 1} has ${f.length} fields, not 8`);
    return {
      publicKey: f[0]!,
      endpoint: f[2] === "(none)" ? null : f[2]!,
      allowedIps: f[3] === "(none)" ? [] : f[3]!.split(","),
      latestHandshake: num(f[4]),
      rxBytes: num(f[5]),
      txBytes: num(f[6]),
    };
  });
  return {
    schema: STATUS_SCHEMA,
    interface: iface,
    publicKey: head[1] === "(none)" ? null : head[1]!,
    listenPort: num(head[2]),
    at,
    peers,
  };
}

/** What the shield shows of an agent's tunnel. */
export interface AgentTunnel {
  publicKey: string;
  addresses: string[];
  /** False when the interface has no peer with the agent's key (not synced yet, or removed). */
  onInterface: boolean;
  endpoint: string | null;
  /** ms since the epoch, or null before the first handshake. */
  latestHandshake: number | null;
  rxBytes: number;
  txBytes: number;
}

/** Each WireGuard agent's tunnel, by id; a status that is null (none yet) shows them off the interface. */
export function agentTunnels(
  agents: readonly AgentConfig[],
  status: InterfaceStatus | null,
): Map<string, AgentTunnel> {
  const byKey = new Map((status?.peers ?? []).map((p) => [p.publicKey, p]));
  const out = new Map<string, AgentTunnel>();
  for (const a of agents) {
    if (!a.wireguard) continue;
    const p = byKey.get(a.wireguard.publicKey);
    out.set(a.id, {
      publicKey: a.wireguard.publicKey,
      addresses: a.sources ?? [],
      onInterface: p !== undefined,
      endpoint: p?.endpoint ?? null,
      latestHandshake: p && p.latestHandshake > 0 ? p.latestHandshake * 1000 : null,
      rxBytes: p?.rxBytes ?? 0,
      txBytes: p?.txBytes ?? 0,
    });
  }
  return out;
}

/**
 * The status file root publishes, read at most once per `maxAgeMs`; null when there is none yet
 * or it cannot be read (the shield serves agents either way: this is only what it shows).
 */
export class StatusReader {
  private cached: { at: number; value: InterfaceStatus | null } | null = null;
  private pending: Promise<InterfaceStatus | null> | null = null;

  constructor(
    readonly file: string,
    private readonly maxAgeMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  read(): Promise<InterfaceStatus | null> {
    if (this.cached && this.now() - this.cached.at < this.maxAgeMs) return Promise.resolve(this.cached.value);
    this.pending ??= readFile(this.file, "utf8")
      .then((t) => {
        const v = JSON.parse(t) as InterfaceStatus;
        return v.schema === STATUS_SCHEMA && Array.isArray(v.peers) ? v : null;
      })
      .catch(() => null)
      .then((value) => {
        this.cached = { at: this.now(), value };
        this.pending = null;
        return value;
      });
    return this.pending;
  }

  /** The last value read, without reading (for gauges, which are collected synchronously). */
  get last(): InterfaceStatus | null {
    return this.cached?.value ?? null;
  }
}
