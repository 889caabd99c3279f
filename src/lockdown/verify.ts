import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import net from "node:net";
import { defaultRunner, type Runner } from "../change/ruleset.js";
import { rulesLoaded } from "./live.js";
import { formatHostPort as authority, type HostPort } from "../net/hostport.js";

export interface Probe {
  id: "rules" | "direct_tcp" | "dns" | "via_shield" | "tunnel_up" | "handshake" | "direct_shield";
  target: string;
  expect: "loaded" | "blocked" | "through" | "up" | "recent";
  /** The expectation holds. */
  held: boolean;
  outcome: string;
}

export interface VerifyReport {
  schema: "clawguard.lockdown-verify/v1";
  ok: boolean;
  probes: Probe[];
}

export interface VerifyInput {
  shield: HostPort;
  /** Destinations a direct connection must not reach. */
  direct: HostPort[];
  /** Resolvers a query must not get an answer from. */
  resolvers: string[];
  /** host:port to CONNECT to through the shield. */
  viaShield: HostPort;
  /** `user:token` for the shield, when it asks for one. */
  proxyUser?: string;
  timeoutMs?: number;
  run?: Runner;
  /** Joined over WireGuard: the tunnel must be up with a recent handshake, the shield's public address closed. */
  tunnel?: TunnelProbes;
}

export interface TunnelProbes {
  iface: string;
  /** The shield's public key on the tunnel. */
  peer: string;
  /** The shield's public address with the proxy's port: a direct connection must not get there. */
  direct: HostPort[];
}

/**
 * WireGuard renews a session every two minutes while packets flow (the keepalive makes them
 * flow), and drops one that is three minutes old: a handshake older than that is a dead tunnel.
 */
export const HANDSHAKE_MAX_AGE_S = 180;

/** The tunnel is up, and its latest handshake with the shield is recent. */
export async function probeTunnel(t: TunnelProbes, run: Runner, nowSeconds: number): Promise<Probe[]> {
  const r = await run(["wg", "show", t.iface, "latest-handshakes"]).catch((e: unknown) => ({
    code: 127,
    stdout: "",
    stderr: e instanceof Error ? e.message : String(e),
  }));
  const up: Probe = {
    id: "tunnel_up",
    target: t.iface,
    expect: "up",
    held: r.code === 0,
    outcome:
      r.code === 0 ? `wg show ${t.iface}: up` : `wg show ${t.iface}: ${r.stderr.trim() || `exit ${r.code}`}`,
  };
  const at = r.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .find(([k]) => k === t.peer)?.[1];
  const age = at && Number(at) > 0 ? nowSeconds - Number(at) : null;
  const handshake: Probe = {
    id: "handshake",
    target: `${t.iface} peer ${t.peer}`,
    expect: "recent",
    held: age !== null && age <= HANDSHAKE_MAX_AGE_S,
    outcome:
      r.code !== 0
        ? "no interface"
        : at === undefined
          ? "the shield is not a peer of the interface"
          : age === null
            ? "no handshake with the shield yet"
            : `latest handshake ${age} s ago${age > HANDSHAKE_MAX_AGE_S ? ` (over ${HANDSHAKE_MAX_AGE_S} s: the tunnel is dead)` : ""}`,
  };
  return [up, handshake];
}

export const DEFAULT_DIRECT_PROBES: HostPort[] = [
  { host: "1.1.1.1", port: 443 },
  { host: "2606:4700:4700::1111", port: 443 },
];

/**
 * A direct connection that completes, or is refused by the far end, got out. One that times out
 * or fails here (EPERM from the output hook, no route) did not.
 */
export function probeDirectTcp(target: HostPort, timeoutMs: number): Promise<Probe> {
  const base = {
    id: "direct_tcp" as const,
    target: authority(target.host, target.port),
    expect: "blocked" as const,
  };
  return new Promise((resolve) => {
    const s = net.connect({ host: target.host, port: target.port });
    const done = (held: boolean, outcome: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ...base, held, outcome });
    };
    const timer = setTimeout(() => done(true, `no connection within ${timeoutMs} ms`), timeoutMs);
    s.on("connect", () => done(false, "connected directly: traffic leaves without the shield"));
    s.on("error", (e: NodeJS.ErrnoException) =>
      e.code === "ECONNREFUSED"
        ? done(false, "refused by the far end (ECONNREFUSED): packets leave without the shield")
        : done(true, `failed here: ${e.code ?? e.message}`),
    );
  });
}

function dnsQuery(name: string): { id: number; packet: Buffer } {
  const id = randomBytes(2).readUInt16BE(0);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // recursion desired
  header.writeUInt16BE(1, 4);
  const labels = name
    .split(".")
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "ascii")]));
  return { id, packet: Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]) };
}

const RCODES: Record<number, string> = { 0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED" };

/**
 * A query for a name no cache holds. A remote resolver answering at all means DNS leaves; a
 * local one (systemd-resolved, dnsmasq) leaks when it answers NOERROR or NXDOMAIN, which only an
 * upstream server can give it, and holds when it can only say SERVFAIL.
 */
export function probeDns(resolver: string, timeoutMs: number, port = 53): Promise<Probe> {
  const base = { id: "dns" as const, target: authority(resolver, port), expect: "blocked" as const };
  const name = `clawguard-probe-${randomBytes(6).toString("hex")}.example.com`;
  const { id, packet } = dnsQuery(name);
  const local = /^127\.|^::1$/.test(resolver);
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(resolver) ? "udp6" : "udp4");
    const done = (held: boolean, outcome: string) => {
      clearTimeout(timer);
      sock.close();
      resolve({ ...base, held, outcome: `${name}: ${outcome}` });
    };
    const timer = setTimeout(() => done(true, `no answer within ${timeoutMs} ms`), timeoutMs);
    sock.on("error", (e: NodeJS.ErrnoException) => done(true, `failed here: ${e.code ?? e.message}`));
    sock.on("message", (msg) => {
      if (msg.length < 12 || msg.readUInt16BE(0) !== id) return;
      const rcode = msg.readUInt16BE(2) & 0xf;
      const answers = msg.readUInt16BE(6);
      const what = `${RCODES[rcode] ?? `rcode ${rcode}`}, ${answers} answer(s)`;
      if (!local) done(false, `answered (${what}): DNS leaves without the shield`);
      else if (rcode === 0 || rcode === 3) done(false, `the local resolver got an upstream answer (${what})`);
      else done(true, `the local resolver could not ask upstream (${what})`);
    });
    sock.send(packet, port, resolver, (err) => {
      if (err) done(true, `failed here: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
    });
  });
}

/**
 * CONNECT through the shield. 200 is the path working; 403 or 407 is the shield refusing that
 * host or asking who is calling, which still proves the agent reaches the shield and only it.
 */
export function probeViaShield(
  shield: HostPort,
  target: HostPort,
  timeoutMs: number,
  proxyUser?: string,
): Promise<Probe> {
  const dest = authority(target.host, target.port);
  const base = {
    id: "via_shield" as const,
    target: `${authority(shield.host, shield.port)} -> ${dest}`,
    expect: "through" as const,
  };
  return new Promise((resolve) => {
    const s = net.connect({ host: shield.host, port: shield.port });
    let buf = "";
    const done = (held: boolean, outcome: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ...base, held, outcome });
    };
    const timer = setTimeout(
      () => done(false, `no answer from the shield within ${timeoutMs} ms`),
      timeoutMs,
    );
    s.on("connect", () => {
      const auth = proxyUser
        ? `Proxy-Authorization: Basic ${Buffer.from(proxyUser).toString("base64")}\r\n`
        : "";
      s.write(`CONNECT ${dest} HTTP/1.1\r\nHost: ${dest}\r\n${auth}\r\n`);
    });
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      const end = buf.indexOf("\r\n");
      if (end < 0) return;
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf.slice(0, end));
      const code = m ? Number(m[1]) : 0;
      if (code >= 200 && code < 300) done(true, `tunnel open (${code})`);
      else if (code === 403 || code === 407)
        done(true, `the shield refused ${dest} (${code}): the path to it works`);
      else done(false, `the shield answered ${buf.slice(0, end)}`);
    });
    s.on("error", (e: NodeJS.ErrnoException) =>
      done(false, `cannot reach the shield: ${e.code ?? e.message}`),
    );
    s.on("end", () => done(false, "the shield closed the connection without an answer"));
  });
}

/** Every probe, concurrently; ok only when all hold. */
export async function verifyLockdown(input: VerifyInput): Promise<VerifyReport> {
  const t = input.timeoutMs ?? 3000;
  const rules = (async (): Promise<Probe> => {
    const r = await rulesLoaded(input.run ?? defaultRunner);
    return {
      id: "rules",
      target: "this network namespace",
      expect: "loaded",
      held: r.loaded,
      outcome: r.evidence,
    };
  })();
  const probes = await Promise.all([
    rules,
    ...input.direct.map((d) => probeDirectTcp(d, t)),
    ...(input.tunnel?.direct ?? []).map(async (d) => ({
      ...(await probeDirectTcp(d, t)),
      id: "direct_shield" as const,
    })),
    ...input.resolvers.map((r) => probeDns(r, t)),
    probeViaShield(input.shield, input.viaShield, t + 2000, input.proxyUser),
  ]);
  // After the request through the shield: it made packets flow, so the handshake is fresh.
  if (input.tunnel)
    probes.push(
      ...(await probeTunnel(input.tunnel, input.run ?? defaultRunner, Math.floor(Date.now() / 1000))),
    );
  return { schema: "clawguard.lockdown-verify/v1", ok: probes.every((p) => p.held), probes };
}

/** Nameservers of resolv.conf text, in order. */
export function resolversOf(resolvConf: string): string[] {
  return resolvConf
    .split("\n")
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((a): a is string => a !== undefined && net.isIP(a.replace(/%.*$/, "")) !== 0)
    .map((a) => a.replace(/%.*$/, ""));
}
