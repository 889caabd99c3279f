/**
 * ClientHellos as real clients send them (Node's TLS, OpenSSL, curl), captured on loopback, and
 * every way they may arrive: byte by byte, split over records, altered.
 */
import { execFile } from "node:child_process";
import net from "node:net";
import tls from "node:tls";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readClientHello } from "../../../src/shield/transparent/client-hello.js";

/** A listener that keeps the first bytes of each connection and closes it. */
let capture: net.Server;
let port = 0;
const captured: Buffer[] = [];
const waiters: Array<(b: Buffer) => void> = [];

beforeAll(async () => {
  capture = net.createServer((s) => {
    const chunks: Buffer[] = [];
    let total = 0;
    s.on("data", (d: Buffer) => {
      chunks.push(d);
      total += d.length;
      const all = Buffer.concat(chunks);
      if (readClientHello(all).kind !== "incomplete" || total > 70_000) {
        s.destroy();
        const w = waiters.shift();
        if (w) w(all);
        else captured.push(all);
      }
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => capture.listen(0, "127.0.0.1", r));
  port = (capture.address() as net.AddressInfo).port;
});

afterAll(() => capture.close());

function next(): Promise<Buffer> {
  const b = captured.shift();
  return b ? Promise.resolve(b) : new Promise((r) => waiters.push(r));
}

async function fromNode(opts: tls.ConnectionOptions): Promise<Buffer> {
  const got = next();
  const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...opts });
  s.on("error", () => undefined);
  return got;
}

async function fromCommand(cmd: string, args: string[]): Promise<Buffer> {
  const got = next();
  execFile(cmd, args, { timeout: 5000 }, () => undefined);
  return got;
}

/** The handshake of a captured hello re-framed into records of `size` bytes each. */
function reframe(hello: Buffer, size: number): Buffer {
  const msg = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const out: Buffer[] = [];
  for (let i = 0; i < msg.length; i += size) {
    const part = msg.subarray(i, i + size);
    const head = Buffer.from([22, 3, 1, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    out.push(head, part);
  }
  return Buffer.concat(out);
}

/** A captured hello with one more extension appended (lengths fixed up). */
function withExtension(hello: Buffer, type: number, body: Buffer): Buffer {
  const ext = Buffer.alloc(4 + body.length);
  ext.writeUInt16BE(type, 0);
  ext.writeUInt16BE(body.length, 2);
  body.copy(ext, 4);
  const b = Buffer.concat([hello, ext]);
  b.writeUInt16BE(b.readUInt16BE(3) + ext.length, 3); // record
  b.writeUIntBE(b.readUIntBE(6, 3) + ext.length, 6, 3); // handshake
  // The extensions block's length: after version, random, session id, suites, compression.
  let i = 9 + 2 + 32;
  i += 1 + b[i]!;
  i += 2 + b.readUInt16BE(i);
  i += 1 + b[i]!;
  b.writeUInt16BE(b.readUInt16BE(i) + ext.length, i);
  return b;
}

describe("ClientHellos from real clients", () => {
  it("names the server Node's TLS client asks for, and nothing for an IP address", async () => {
    expect(readClientHello(await fromNode({ servername: "allowed.test" }))).toEqual({
      kind: "sni",
      name: "allowed.test",
    });
    // Node sends no SNI for an IP literal.
    expect(readClientHello(await fromNode({})).kind).toBe("no-sni");
  });

  it("reads OpenSSL's and curl's", async () => {
    const o = await fromCommand("openssl", [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-servername",
      "x.example.test",
    ]);
    expect(readClientHello(o)).toEqual({ kind: "sni", name: "x.example.test" });
    const none = await fromCommand("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-noservername"]);
    expect(readClientHello(none).kind).toBe("no-sni");
    const c = await fromCommand("curl", [
      "-sk",
      "--resolve",
      `curl.test:${port}:127.0.0.1`,
      `https://curl.test:${port}/`,
    ]);
    expect(readClientHello(c)).toEqual({ kind: "sni", name: "curl.test" });
  });

  it("is incomplete until the last byte, split anywhere, and over several records", async () => {
    const hello = await fromNode({ servername: "split.test" });
    for (let n = 0; n < hello.length; n++)
      expect(readClientHello(hello.subarray(0, n)).kind, `${n} bytes`).toBe("incomplete");
    expect(readClientHello(hello)).toEqual({ kind: "sni", name: "split.test" });
    for (const size of [1, 7, 64, 100])
      expect(readClientHello(reframe(hello, size))).toEqual({ kind: "sni", name: "split.test" });
  });

  it("reports Encrypted Client Hello, whose visible name is not the destination", async () => {
    const hello = await fromNode({ servername: "public.test" });
    expect(readClientHello(withExtension(hello, 0xfe0d, Buffer.from([0, 1, 2, 3])))).toEqual({
      kind: "ech",
      outer: "public.test",
    });
  });

  it("refuses two server names, and what is not TLS", async () => {
    const hello = await fromNode({ servername: "one.test" });
    const second = Buffer.from([0, 8, 0, 0, 5, ...Buffer.from("two.t")]);
    expect(readClientHello(withExtension(hello, 0, second)).kind).toBe("not-tls");
    expect(readClientHello(Buffer.from("GET / HTTP/1.1\r\nHost: a\r\n\r\n")).kind).toBe("not-tls");
    expect(readClientHello(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0])).kind).toBe("not-tls");
  });
});

describe("any bytes at all", () => {
  it("never throw, and a name is only ever printable ASCII", async () => {
    const hello = await fromNode({ servername: "fuzz.test" });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(hello.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(hello.length),
        (edits, cut) => {
          const b = Buffer.from(hello.subarray(0, cut));
          for (const [at, v] of edits) if (at < b.length) b[at] = v;
          const r = readClientHello(b);
          if (r.kind === "sni") expect(r.name).toMatch(/^[\x21-\x7e]+$/);
        },
      ),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => void readClientHello(Buffer.from(bytes))),
    );
  });
});
