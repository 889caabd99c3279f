/**
 * The agents' resolver in gateway mode. An agent on the shield's private network asks the
 * shield for names; the shield answers A and AAAA only for names the agent may reach, with the
 * addresses it resolved and checked itself (what the agent gets is what the shield would dial),
 * and NXDOMAIN for the rest. No other record type is answered and nothing is forwarded, so DNS
 * carries no tunnel out: a TXT, NULL or CNAME chain to a name server the agent controls never
 * leaves the shield. Every query is counted per agent.
 *
 * The name is decided on the one admission path, as a CONNECT to it on the transparent HTTPS
 * port, else a plain request on the HTTP port: modes, rules and the address checks apply as
 * for the request that follows. Budgets are not spent by a lookup.
 */
import dgram from "node:dgram";
import net from "node:net";
import dnsPacket from "dns-packet";
import { Admissions, type AdmissionPolicy } from "../admission/index.js";
import type { Resolver } from "../net/resolve.js";

export type DnsAnswer = "answered" | "nodata" | "nxdomain" | "refused" | "servfail";

export interface DnsOptions {
  /** The policy in force; null refuses every query (the shield is not ready). */
  policy: () => AdmissionPolicy | null;
  resolver: Resolver;
  /** The ports the transparent listeners intercept: a name is allowed if either is. */
  ports: { https: number | null; http: number | null };
  /** Each query, by agent (null: the source is no agent) and how it was answered. */
  onQuery?: (agent: string | null, answer: DnsAnswer) => void;
}

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

/** Seconds an answer may be cached: short, the shield decides again at every connection anyway. */
const TTL = 30;
/** Largest TCP query read; a query is a few hundred bytes. */
const MAX_TCP_MESSAGE = 4096;

export class ShieldDns {
  private readonly admissions: Admissions;
  private readonly udp: dgram.Socket[] = [];
  private readonly tcp: net.Server[] = [];

  constructor(private readonly opts: DnsOptions) {
    this.admissions = new Admissions({ resolver: opts.resolver, budgets: null });
  }

  /** The response to one query message from `source`, or null when it is no query at all. */
  async answer(message: Buffer, source: string): Promise<Buffer | null> {
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(message);
    } catch {
      return null;
    }
    if (q.type !== "query") return null;
    const reply = (rcode: keyof typeof RCODE, answers: dnsPacket.Answer[] = []): Buffer =>
      dnsPacket.encode({
        type: "response",
        id: q.id ?? 0,
        // Recursion desired is echoed; the shield answers as a recursive resolver would. The
        // response code sits in the flags' low bits.
        flags: ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | RCODE[rcode],
        questions: q.questions,
        answers,
      });
    const policy = this.opts.policy();
    const agent = policy?.identify(source) ?? null;
    const count = (answer: DnsAnswer) => this.opts.onQuery?.(agent?.id ?? null, answer);
    const questions = q.questions ?? [];
    if (!policy || !agent || questions.length !== 1 || ((q.flags ?? 0) & 0x7800) !== 0) {
      count("refused");
      return reply("REFUSED");
    }
    const question = questions[0]!;
    if ((question.type !== "A" && question.type !== "AAAA") || (question.class ?? "IN") !== "IN") {
      count("refused");
      return reply("REFUSED");
    }
    const name = question.name;
    const family = question.type === "A" ? 4 : 6;
    let unresolved = false;
    for (const [port, kind] of [
      [this.opts.ports.https, "connect"],
      [this.opts.ports.http, "http"],
    ] as const) {
      if (port === null) continue;
      const target = kind === "connect" ? `${name}:${port}` : `http://${name}:${port}/`;
      const a = await this.admissions.admit(policy, { kind, target, caller: { agent } }, true);
      // An IP literal asked as a name is no name: nothing to answer.
      if (a.target?.ip) break;
      if (a.ok) {
        const addresses = (a.addresses ?? []).map((v) => v.address).filter((x) => net.isIP(x) === family);
        count(addresses.length > 0 ? "answered" : "nodata");
        return reply(
          "NOERROR",
          addresses.map(
            (data) => ({ type: question.type, name, ttl: TTL, class: "IN", data }) as dnsPacket.Answer,
          ),
        );
      }
      if (a.status === 502) unresolved = true;
    }
    count(unresolved ? "servfail" : "nxdomain");
    return reply(unresolved ? "SERVFAIL" : "NXDOMAIN");
  }

  /** Answer on UDP and TCP at `host:port`. */
  async listen(host: string, port: number): Promise<void> {
    const udp = dgram.createSocket({ type: net.isIPv6(host) ? "udp6" : "udp4" });
    udp.on("message", (msg, rinfo) => {
      void this.answer(msg, rinfo.address).then(
        (out) => {
          if (out) udp.send(out, rinfo.port, rinfo.address);
        },
        () => undefined,
      );
    });
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(port, host, () => {
        udp.off("error", reject);
        resolve();
      });
    });
    this.udp.push(udp);
    const tcp = net.createServer((s) => this.serveTcp(s));
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen({ host, port: udp.address().port }, () => {
        tcp.off("error", reject);
        resolve();
      });
    });
    this.tcp.push(tcp);
  }

  /** The port the first listener got (port 0 asks for a free one). */
  get port(): number {
    return this.udp[0]?.address().port ?? 0;
  }

  /** TCP: each message is prefixed with its length (RFC 1035 4.2.2). */
  private serveTcp(s: net.Socket): void {
    let buf = Buffer.alloc(0);
    s.setTimeout(10_000, () => s.destroy());
    s.on("error", () => s.destroy());
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const n = buf.readUInt16BE(0);
        if (n > MAX_TCP_MESSAGE) return s.destroy();
        if (buf.length < 2 + n) return;
        const msg = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        const source = s.remoteAddress ?? "";
        void this.answer(
          msg,
          source.startsWith("::ffff:") && source.includes(".") ? source.slice(7) : source,
        ).then(
          (out) => {
            if (!out || s.destroyed) return;
            const len = Buffer.alloc(2);
            len.writeUInt16BE(out.length);
            s.write(Buffer.concat([len, out]));
          },
          () => s.destroy(),
        );
      }
    });
  }

  async close(): Promise<void> {
    for (const u of this.udp) u.close();
    await Promise.all(this.tcp.map((t) => new Promise<void>((r) => t.close(() => r()))));
  }
}
