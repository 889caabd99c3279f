/**
 * A CONNECT tunnel's download path reads into buffers of its own that grow with bulk traffic:
 * whatever the pace of the client, every byte must arrive once and in order, and the record
 * must count them.
 */
import { createHash } from "node:crypto";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BulkBuffers } from "../../src/shield/proxy/bulk-buffers.js";
import { basic, sha256, startTestShield, TableResolver, v4, type TestShield } from "./proxy-harness.js";

const TOKEN = "relay-token";
const SIZE = 24 * 1024 * 1024 + 13;

/** Bytes no two nearby offsets share a pattern of, so a reordered or overwritten piece shows. */
function pattern(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = 2463534242;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const payload = pattern(SIZE);
let origin: net.Server;
let port = 0;
let t: TestShield;
/** The same shield with one buffer of each bulk size: other tunnels make do with smaller reads. */
let one: TestShield;

beforeAll(async () => {
  // Sends the payload in pieces of varied size as soon as a tunnel connects, then closes.
  origin = net.createServer((s) => {
    s.on("error", () => {});
    let at = 0;
    const sizes = [1, 700, 65_536, 1_048_576, 3_000_000, 17, 200_000];
    let k = 0;
    const pump = () => {
      while (at < SIZE) {
        const n = Math.min(sizes[k++ % sizes.length]!, SIZE - at);
        const ok = s.write(payload.subarray(at, at + n));
        at += n;
        if (!ok) return void s.once("drain", pump);
      }
      s.end();
    };
    pump();
  });
  await new Promise<void>((r) => origin.listen(0, "127.0.0.3", r));
  port = (origin.address() as net.AddressInfo).port;
  const config = `
listen: 127.0.0.1:3128
log: { path: ./unused.db }
agents:
  - { id: scout, token_sha256: "${sha256(TOKEN)}", allow: [relay.test, 127.0.0.3/32] }
`;
  const resolver = new TableResolver({ "relay.test": v4("127.0.0.3") }).resolve;
  t = await startTestShield(config, resolver);
  one = await startTestShield(config, resolver, { maxBulkBuffers: 1, maxLargeBuffers: 1 });
});

afterAll(async () => {
  await t?.close();
  await one?.close();
  await new Promise<void>((r) => origin?.close(() => r()));
});

/** Download through a tunnel; `stall` pauses the reader now and then, so the shield's writes queue. */
function download(stall: boolean, via: TestShield = t): Promise<{ hash: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(via.port, "127.0.0.1");
    const hash = createHash("sha256");
    let head = "";
    let open = false;
    let bytes = 0;
    let nextStall = 2 * 1024 * 1024;
    s.on("error", reject);
    s.on("data", (d: Buffer) => {
      let body = d;
      if (!open) {
        head += d.toString("latin1");
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!head.startsWith("HTTP/1.1 200")) return reject(new Error(head.split("\r\n")[0]));
        open = true;
        // `head` holds every byte so far, one char each: the body starts end + 4 bytes in.
        body = d.subarray(end + 4 - (head.length - d.length));
      }
      hash.update(body);
      bytes += body.length;
      if (stall && bytes >= nextStall) {
        nextStall += 5 * 1024 * 1024;
        s.pause();
        setTimeout(() => s.resume(), 60);
      }
    });
    s.on("end", () => resolve({ hash: hash.digest("hex"), bytes }));
    s.write(
      `CONNECT relay.test:${port} HTTP/1.1\r\nHost: relay.test:${port}\r\nProxy-Authorization: ${basic("scout", TOKEN)}\r\n\r\n`,
    );
  });
}

describe("tunnel relay", () => {
  const expected = createHash("sha256").update(payload).digest("hex");

  it("delivers every byte in order to a fast reader and to one that stalls, and counts them", async () => {
    for (const stall of [false, true]) {
      const before = t.sink.records.length;
      // Reads grow to 8 MiB once 1 MiB ones come back full, and the buffer goes home at the end.
      let large = 0;
      const watch = setInterval(() => (large = Math.max(large, t.shield.proxy.largeBuffers.inUse)), 1);
      const got = await download(stall).finally(() => clearInterval(watch));
      expect(large, stall ? "stalling reader" : "fast reader").toBe(1);
      expect(got.bytes).toBe(SIZE);
      expect(got.hash).toBe(expected);
      const records = await t.sink.waitFor(before + 1);
      expect(records.at(-1)).toMatchObject({ method: "CONNECT", decision: "allowed", bytesDown: SIZE });
    }
  });

  it("lends bulk buffers to as many tunnels as allowed, and gets every one back", async () => {
    // Three downloads at once through a shield with one buffer of each size: each arrives whole, and
    // once they are done the buffer is home again. The stalling reader holds its buffer back
    // under a pending write, which is when returning it too early would corrupt another tunnel.
    const got = await Promise.all([download(true, one), download(false, one), download(false, one)]);
    for (const g of got) {
      expect(g.bytes).toBe(SIZE);
      expect(g.hash).toBe(expected);
    }
    await one.sink.waitFor(3);
    for (const pools of [one.shield.proxy, t.shield.proxy]) {
      expect(pools.bulkBuffers.inUse).toBe(0);
      expect(pools.largeBuffers.inUse).toBe(0);
    }
  });
});

describe("bulk buffer pool", () => {
  it("lends at most maxLent, reuses what comes back and keeps at most maxIdle", () => {
    const pool = new BulkBuffers(16, 2, 1);
    const a = pool.take()!;
    const b = pool.take()!;
    expect(a.length).toBe(16);
    expect(pool.take()).toBeNull();
    pool.give(a);
    pool.give(b);
    expect(pool.inUse).toBe(0);
    // Only one was kept: the next take reuses it, the one after allocates.
    expect(pool.take()).toBe(a);
    expect(pool.take()).not.toBe(b);
  });
});
