/**
 * The name a TLS client asks for, read from its ClientHello without decrypting anything: the
 * transparent TLS listener decides on it, resolves it itself and dials the address it checked,
 * never the one the agent dialled. Pure: bytes in, an answer out.
 *
 * RFC 8446 (records and the handshake), RFC 6066 section 3 (server_name). A ClientHello may be
 * split over several records; the handshake's own length says when it is complete. A client
 * that offers Encrypted Client Hello shows only the outer, public name: the real destination is
 * hidden, so it is reported as such and refused by the caller.
 */

export type ClientHello =
  /** More bytes are needed. */
  | { kind: "incomplete" }
  | { kind: "sni"; name: string }
  /** A well-formed ClientHello without a host_name. */
  | { kind: "no-sni" }
  /** Offers Encrypted Client Hello (extension 0xfe0d): the name shown is not the destination. */
  | { kind: "ech"; outer: string | null }
  | { kind: "not-tls"; reason: string };

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ECH = 0xfe0d;
const HOST_NAME = 0;
/** A ClientHello larger than this is refused: post-quantum key shares make them a few KiB, not more. */
export const MAX_CLIENT_HELLO = 64 * 1024;

class Malformed extends Error {}

/** A cursor over the handshake message that throws on reading past its end. */
class Reader {
  constructor(
    private readonly b: Buffer,
    public i: number,
    private readonly end: number,
  ) {}

  u8(): number {
    this.need(1);
    return this.b[this.i++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.b.readUInt16BE(this.i);
    this.i += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const v = this.b.readUIntBE(this.i, 3);
    this.i += 3;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.i += n;
  }

  /** A sub-reader over the next `n` bytes (a length-prefixed vector). */
  sub(n: number): Reader {
    this.need(n);
    const r = new Reader(this.b, this.i, this.i + n);
    this.i += n;
    return r;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const out = this.b.subarray(this.i, this.i + n);
    this.i += n;
    return out;
  }

  get left(): number {
    return this.end - this.i;
  }

  private need(n: number): void {
    if (this.i + n > this.end) throw new Malformed("a length runs past its container");
  }
}

/**
 * Read what the client sent so far. Records are unwrapped until the handshake message is
 * whole; anything that is not a TLS handshake starting with a ClientHello is `not-tls`.
 */
export function readClientHello(input: Buffer): ClientHello {
  // Gather the handshake bytes carried by the records received so far.
  const parts: Buffer[] = [];
  let have = 0;
  let want = -1;
  let i = 0;
  while (i + 5 <= input.length) {
    const type = input[i]!;
    const major = input[i + 1]!;
    const length = input.readUInt16BE(i + 3);
    if (type !== HANDSHAKE) return { kind: "not-tls", reason: `record type ${type}, not a handshake` };
    if (major !== 3) return { kind: "not-tls", reason: "not a TLS record version" };
    if (length === 0 || length > 16384 + 256)
      return { kind: "not-tls", reason: "record length out of range" };
    if (i + 5 + length > input.length) break;
    parts.push(input.subarray(i + 5, i + 5 + length));
    have += length;
    i += 5 + length;
    if (want < 0 && have >= 4) {
      const head = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (head[0] !== CLIENT_HELLO)
        return { kind: "not-tls", reason: "the first handshake is not a ClientHello" };
      want = 4 + head.readUIntBE(1, 3);
      if (want > MAX_CLIENT_HELLO)
        return { kind: "not-tls", reason: "ClientHello larger than the shield reads" };
    }
    if (want >= 0 && have >= want) break;
  }
  if (i === 0 && input.length >= 1 && input[0] !== HANDSHAKE)
    return { kind: "not-tls", reason: `record type ${input[0]}, not a handshake` };
  if (want < 0 || have < want) {
    if (input.length > MAX_CLIENT_HELLO + 5 * 8)
      return { kind: "not-tls", reason: "no complete ClientHello" };
    return { kind: "incomplete" };
  }
  const msg = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  try {
    return parseHello(new Reader(msg, 4, want));
  } catch (e) {
    if (e instanceof Malformed) return { kind: "not-tls", reason: `malformed ClientHello: ${e.message}` };
    throw e;
  }
}

function parseHello(r: Reader): ClientHello {
  r.skip(2); // legacy_version
  r.skip(32); // random
  r.skip(r.u8()); // legacy_session_id
  const suites = r.u16();
  if (suites === 0 || suites % 2 !== 0) throw new Malformed("cipher suites");
  r.skip(suites);
  const compression = r.u8();
  if (compression === 0) throw new Malformed("compression methods");
  r.skip(compression);
  // A ClientHello without extensions (SSL 3 style) names no server.
  if (r.left === 0) return { kind: "no-sni" };
  const ext = r.sub(r.u16());
  if (r.left !== 0) throw new Malformed("bytes after the extensions");
  let name: string | null = null;
  let ech = false;
  const seen = new Set<number>();
  while (ext.left > 0) {
    const type = ext.u16();
    const body = ext.sub(ext.u16());
    // RFC 8446 4.2: at most one extension of each type; two server_names could be read two ways.
    if (seen.has(type)) throw new Malformed(`extension ${type} twice`);
    seen.add(type);
    if (type === EXT_ECH) ech = true;
    if (type === EXT_SERVER_NAME) name = serverName(body);
  }
  if (ech) return { kind: "ech", outer: name };
  return name === null ? { kind: "no-sni" } : { kind: "sni", name };
}

function serverName(body: Reader): string | null {
  const list = body.sub(body.u16());
  if (body.left !== 0) throw new Malformed("bytes after the server name list");
  let host: string | null = null;
  while (list.left > 0) {
    const type = list.u8();
    const value = list.bytes(list.u16());
    if (type !== HOST_NAME) continue;
    // RFC 6066: one host_name at most, ASCII, no trailing dot required, never an empty name.
    if (host !== null) throw new Malformed("two host names");
    if (value.length === 0) throw new Malformed("an empty host name");
    for (const c of value)
      if (c <= 0x20 || c >= 0x7f) throw new Malformed("a host name that is not printable ASCII");
    host = value.toString("latin1");
  }
  return host;
}
