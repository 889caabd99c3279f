import { describe, expect, it } from "vitest";
import {
  canonicalIP,
  cidrContains,
  classifyAddress,
  formatCidr,
  isThisHost,
  parseCidr,
  parseIP,
  parseLooseIPv4,
} from "../../src/net/addresses.js";

/** Teredo: 2001:0:<server>:<flags>:<port>:<client XOR ffff:ffff>, client 127.0.0.1 -> 80ff:fffe. */
const TEREDO_CLIENT_LOOPBACK = "2001:0:4136:e378:8000:63bf:80ff:fffe";
const TEREDO_CLIENT_PRIVATE = "2001:0:4136:e378:8000:63bf:f5ff:fffe"; // ~10.0.0.1
const TEREDO_CLIENT_METADATA = "2001:0:4136:e378:8000:63bf:5601:5601"; // ~169.254.169.254
const TEREDO_CLIENT_PUBLIC = "2001:0:4136:e378:8000:63bf:f7f7:f7f7"; // ~8.8.8.8
const TEREDO_SERVER_PRIVATE = "2001:0:a00:1:8000:63bf:f7f7:f7f7"; // server 10.0.0.1

describe("classifyAddress", () => {
  it.each([
    // IPv4
    ["8.8.8.8", "public", undefined],
    ["1.1.1.1", "public", undefined],
    ["127.0.0.1", "loopback", undefined],
    ["127.255.255.254", "loopback", undefined],
    ["10.0.0.1", "private", undefined],
    ["10.255.255.255", "private", undefined],
    ["172.16.0.1", "private", undefined],
    ["172.31.255.255", "private", undefined],
    ["172.32.0.1", "public", undefined],
    ["172.15.255.255", "public", undefined],
    ["192.168.1.1", "private", undefined],
    ["169.254.169.254", "link-local", undefined],
    ["169.254.0.1", "link-local", undefined],
    ["100.64.0.1", "cgnat", undefined],
    ["100.127.255.255", "cgnat", undefined],
    ["100.128.0.1", "public", undefined],
    ["224.0.0.1", "multicast", undefined],
    ["239.255.255.250", "multicast", undefined],
    ["0.0.0.0", "this-host", undefined],
    ["0.1.2.3", "this-host", undefined],
    ["255.255.255.255", "broadcast", undefined],
    ["240.0.0.1", "reserved", undefined],
    ["192.0.2.1", "reserved", undefined],
    ["198.18.0.1", "reserved", undefined],
    ["203.0.113.9", "reserved", undefined],
    // IPv6
    ["2606:4700:4700::1111", "public", undefined],
    ["::1", "loopback", undefined],
    ["::", "this-host", undefined],
    ["fe80::1", "link-local", undefined],
    ["fc00::1", "ula", undefined],
    ["fd12:3456::1", "ula", undefined],
    ["ff02::1", "multicast", undefined],
    ["2001:db8::1", "reserved", undefined],
    ["100::1", "reserved", undefined],
    ["4000::1", "reserved", undefined],
    // IPv4-mapped: parsed as the IPv4 address itself
    ["::ffff:127.0.0.1", "loopback", undefined],
    ["::ffff:a9fe:a9fe", "link-local", undefined],
    ["::ffff:8.8.8.8", "public", undefined],
    // NAT64 well-known prefix
    ["64:ff9b::127.0.0.1", "loopback", "127.0.0.1"],
    ["64:ff9b::a00:1", "private", "10.0.0.1"],
    ["64:ff9b::a9fe:a9fe", "link-local", "169.254.169.254"],
    ["64:ff9b::808:808", "public", "8.8.8.8"],
    // NAT64 local-use prefix
    ["64:ff9b:1::7f00:1", "loopback", "127.0.0.1"],
    ["64:ff9b:1::a00:1", "private", "10.0.0.1"],
    ["64:ff9b:1::a9fe:a9fe", "link-local", "169.254.169.254"],
    ["64:ff9b:1::808:808", "public", "8.8.8.8"],
    // 6to4
    ["2002:7f00:1::1", "loopback", "127.0.0.1"],
    ["2002:a00:1::1", "private", "10.0.0.1"],
    ["2002:a9fe:a9fe::1", "link-local", "169.254.169.254"],
    ["2002:808:808::1", "public", "8.8.8.8"],
    // Teredo (client inverted; server in clear; the worse one decides)
    [TEREDO_CLIENT_LOOPBACK, "loopback", "127.0.0.1"],
    [TEREDO_CLIENT_PRIVATE, "private", "10.0.0.1"],
    [TEREDO_CLIENT_METADATA, "link-local", "169.254.169.254"],
    [TEREDO_CLIENT_PUBLIC, "public", "8.8.8.8"],
    [TEREDO_SERVER_PRIVATE, "private", "10.0.0.1"],
    // IPv4-compatible (deprecated)
    ["::127.0.0.1", "loopback", "127.0.0.1"],
    ["::a9fe:a9fe", "link-local", "169.254.169.254"],
  ])("%s is %s", (address, cls, embedded) => {
    const c = classifyAddress(address);
    expect(c?.class).toBe(cls);
    expect(c?.embedded).toBe(embedded);
  });

  it("returns null for text that is not an address", () => {
    expect(classifyAddress("example.com")).toBeNull();
    expect(classifyAddress("127.1")).toBeNull(); // resolvers never answer short forms
    expect(classifyAddress("1.2.3.04")).toBeNull();
    expect(classifyAddress("1:2:3:4:5:6:7:8:9")).toBeNull();
    expect(classifyAddress("1::2::3")).toBeNull();
  });
});

describe("isThisHost", () => {
  it("is every spelling Linux connects to the machine itself", () => {
    for (const a of [
      "0.0.0.0",
      "0.255.1.2",
      "::",
      "::ffff:0.0.0.0",
      "::0.0.0.7",
      "64:ff9b::0.0.0.0",
      "2002:0000:0001::",
    ])
      expect(isThisHost(parseIP(a)!), a).toBe(true);
    for (const a of ["127.0.0.1", "::1", "1.0.0.0", "::ffff:1.2.3.4", "2002:0101:0101::"])
      expect(isThisHost(parseIP(a)!), a).toBe(false);
  });
});

describe("address parsing and CIDRs", () => {
  it("canonicalises IPv6 per RFC 5952 and maps IPv4-mapped addresses to IPv4", () => {
    expect(canonicalIP("2001:0DB8:0000:0000:0000:0000:0000:0001")).toBe("2001:db8::1");
    expect(canonicalIP("2001:db8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1");
    expect(canonicalIP("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1");
    expect(canonicalIP("0:0:0:0:0:0:0:0")).toBe("::");
    expect(canonicalIP("::ffff:10.1.2.3")).toBe("10.1.2.3");
    expect(canonicalIP("::ffff:0a01:0203")).toBe("10.1.2.3");
  });

  it("parses every IPv4 spelling inet_aton accepts", () => {
    expect(parseLooseIPv4("2130706433")).toBe(0x7f000001);
    expect(parseLooseIPv4("0177.0.0.01")).toBe(0x7f000001);
    expect(parseLooseIPv4("0x7f.0.0.0x1")).toBe(0x7f000001);
    expect(parseLooseIPv4("127.1")).toBe(0x7f000001);
    expect(parseLooseIPv4("10.1.256")).toBe(0x0a010100);
    expect(parseLooseIPv4("example.com")).toBeNull();
    expect(parseLooseIPv4("256.0.0.1")).toBe("invalid");
    expect(parseLooseIPv4("08")).toBe("invalid");
  });

  it("tells names from numbers by the last part, with or without one trailing dot", () => {
    expect(parseLooseIPv4("127.1.")).toBe(0x7f000001);
    expect(parseLooseIPv4("example.0x7f")).toBe("invalid");
    expect(parseLooseIPv4("a.1")).toBe("invalid");
    for (const name of ["", ".", "1.2..", "1.a", "1.2.3.4..", "com.", "x1", "0x7f.com"]) {
      expect(parseLooseIPv4(name), name).toBeNull();
    }
  });

  it("parses CIDRs, refusing host bits and bad prefixes", () => {
    const c = parseCidr("10.0.0.0/8");
    expect(typeof c).toBe("object");
    expect(formatCidr(c as Exclude<typeof c, string>)).toBe("10.0.0.0/8");
    expect(parseCidr("10.0.0.1/8")).toContain("host bits");
    expect(parseCidr("10.0.0.0/33")).toContain("prefix length");
    expect(parseCidr("fd00::/129")).toContain("prefix length");
    expect(parseCidr("10.0.0/8")).toContain("not an IP address");
    expect(formatCidr(parseCidr("::ffff:10.0.0.0/104") as Exclude<typeof c, string>)).toBe("10.0.0.0/8");
    expect(formatCidr(parseCidr("127.0.0.2") as Exclude<typeof c, string>)).toBe("127.0.0.2/32");
    const v6 = parseCidr("fd00::/8") as Exclude<typeof c, string>;
    expect(cidrContains(v6, parseIP("fd12::1")!)).toBe(true);
    expect(cidrContains(v6, parseIP("fe80::1")!)).toBe(false);
    expect(cidrContains(v6, parseIP("10.0.0.1")!)).toBe(false);
    const all = parseCidr("0.0.0.0/0") as Exclude<typeof c, string>;
    expect(cidrContains(all, parseIP("203.0.113.1")!)).toBe(true);
  });
});
