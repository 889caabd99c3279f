import { describe, expect, it } from "vitest";
import { parseProcNetTcp } from "../../src/facts/sockets.js";
import { MalformedError } from "../../src/facts/fact.js";

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0F02000A:0016 0202000A:C350 01 00000000:00000000 02:0008B1A8 00000000     0        0 3 4 0000000000000000 20 4 30 10 -1
`;

const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:4965 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 4 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6 1 0000000000000000 100 0 0 10 0
`;

describe("/proc/net/tcp parsing", () => {
  it("keeps only listeners, with little-endian IPv4 addresses decoded", () => {
    const l = parseProcNetTcp(TCP, 4, "/proc/net/tcp");
    expect(l.map((x) => `${x.address}:${x.port}`)).toEqual(["127.0.0.1:18789", "0.0.0.0:2222"]);
    expect(l[1]!.source).toBe("/proc/net/tcp line 3");
  });

  it("decodes IPv6 loopback, the wildcard and IPv4-mapped addresses", () => {
    const l = parseProcNetTcp(TCP6, 6, "/proc/net/tcp6");
    expect(l.map((x) => `[${x.address}]:${x.port}`)).toEqual([
      "[::1]:18789",
      "[::]:22",
      "[::ffff:127.0.0.1]:8080",
    ]);
  });

  it("rejects garbage with the line number", () => {
    try {
      parseProcNetTcp("header\n  0: nonsense\n", 4, "/proc/net/tcp");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(MalformedError);
      expect((err as MalformedError).line).toBe(2);
    }
  });
});
