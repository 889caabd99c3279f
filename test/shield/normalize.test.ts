import { describe, expect, it } from "vitest";
import { TargetError, parseTarget } from "../../src/shield/policy/normalize.js";

describe("parseTarget", () => {
  it.each([
    ["pastebin.com.", "pastebin.com"],
    ["pastebin.com.:443", "pastebin.com"],
    ["PasteBin.COM", "pastebin.com"],
    ["PASTEBIN.COM.", "pastebin.com"],
    ["bücher.example", "xn--bcher-kva.example"],
    ["BÜCHER.example.", "xn--bcher-kva.example"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["pastebin\u3002com", "pastebin.com"],
    ["api.openai.com", "api.openai.com"],
    ["_srv.example.com", "_srv.example.com"],
  ])("names: %s -> %s", (input, host) => {
    const t = parseTarget(input, 443);
    expect(t.host).toBe(host);
    expect(t.ip).toBeUndefined();
  });

  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["2130706433", "127.0.0.1"],
    ["0177.0.0.1", "127.0.0.1"],
    ["0x7f.1", "127.0.0.1"],
    ["0x7F000001", "127.0.0.1"],
    ["127.1", "127.0.0.1"],
    ["127.0.1", "127.0.0.1"],
    ["0xa9.0xfe.0xa9.0xfe", "169.254.169.254"],
    ["2852039166", "169.254.169.254"],
    ["0251.0376.0251.0376", "169.254.169.254"],
    ["10.0.0.1.", "10.0.0.1"],
    ["\uff11\uff12\uff17.0.0.1", "127.0.0.1"],
    ["0", "0.0.0.0"],
  ])("IPv4 literal %s -> %s", (input, address) => {
    const t = parseTarget(input, 80);
    expect(t).toEqual({ host: address, port: 80, ip: { address, family: 4 } });
  });

  it.each([
    ["[::1]", "::1", 6],
    ["[::ffff:7f00:1]", "127.0.0.1", 4],
    ["[::ffff:127.0.0.1]", "127.0.0.1", 4],
    ["[0:0:0:0:0:ffff:a9fe:a9fe]", "169.254.169.254", 4],
    ["[2001:DB8:0:0:0:0:0:1]", "2001:db8::1", 6],
    ["[2001:db8:0:0:1:0:0:1]", "2001:db8::1:0:0:1", 6],
    ["[64:ff9b::127.0.0.1]", "64:ff9b::7f00:1", 6],
    ["[fe80::0001]", "fe80::1", 6],
  ])("IPv6 literal %s -> %s", (input, address, family) => {
    const t = parseTarget(`${input}:8443`, 443);
    expect(t).toEqual({ host: address, port: 8443, ip: { address, family } });
  });

  it("takes the port from the authority, else the default", () => {
    expect(parseTarget("example.com:8080", 443).port).toBe(8080);
    expect(parseTarget("example.com", 443).port).toBe(443);
    expect(parseTarget("[::1]", 80).port).toBe(80);
  });

  it.each([
    ["user@pastebin.com", "userinfo"],
    ["user:pass@pastebin.com:443", "userinfo"],
    ["allowed.com@pastebin.com", "userinfo"],
    ["", "empty host"],
    [":443", "empty host"],
    ["example.com:", "is not a number"],
    ["example.com:0", "out of range"],
    ["example.com:65536", "out of range"],
    ["example.com:+443", "is not a number"],
    ["::1", "brackets"],
    ["[::1", "unclosed"],
    ["[::1]x", "unexpected text"],
    ["[fe80::1%eth0]", "zone"],
    ["[not-v6]", "IPv6"],
    ["1.2.3.999", "not a valid IPv4"],
    ["1.2.3.4.5", "not a valid IPv4"],
    ["0x100.0.0.1", "not a valid IPv4"],
    ["09.0.0.1", "not a valid IPv4"],
    ["4294967296", "not a valid IPv4"],
    ["foo.123", "not a valid IPv4"],
    ["a..b", "empty label"],
    ["pastebin.com..", "empty label"],
    [".pastebin.com", "empty label"],
    ["-bad.com", "invalid label"],
    ["bad-.com", "invalid label"],
    ["exa mple.com", "not allowed"],
    ["ex%61mple.com", "not allowed"],
    ["example.com/path", "not allowed"],
    ["exam\u0000ple.com", "not allowed"],
    [`${"a".repeat(64)}.com`, "invalid label"],
    [`${"abcdefgh.".repeat(32)}com`, "longer than 253"],
  ])("refuses %j (%s)", (input, why) => {
    let err: unknown;
    try {
      parseTarget(input, 443);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TargetError);
    expect((err as TargetError).message).toContain(why);
  });
});

describe("parseTarget, asked the same thing again", () => {
  it("answers equal values in a new object each time, so per-request state keyed by it stays apart", () => {
    const a = parseTarget("API.Example.COM.:8443", 443);
    a.host = "changed.example";
    a.port = 1;
    const b = parseTarget("API.Example.COM.:8443", 443);
    expect(b).not.toBe(a);
    expect(b).toEqual({ host: "api.example.com", port: 8443 });
    const ip1 = parseTarget("0x7f.1", 80);
    const ip2 = parseTarget("0x7f.1", 80);
    expect(ip2).not.toBe(ip1);
    expect(ip2).toEqual({ host: "127.0.0.1", port: 80, ip: { address: "127.0.0.1", family: 4 } });
  });

  it("keeps the default port apart: the same text under CONNECT, plain HTTP and any other port", () => {
    expect(parseTarget("example.org", 443).port).toBe(443);
    expect(parseTarget("example.org", 80).port).toBe(80);
    expect(parseTarget("example.org", 443).port).toBe(443);
    expect(parseTarget("example.org", 8080).port).toBe(8080);
    expect(parseTarget("example.org", 8080)).toEqual({ host: "example.org", port: 8080 });
  });

  it("refuses a bad authority every time it is asked, and stays right after many distinct names", () => {
    for (let i = 0; i < 3; i++) expect(() => parseTarget("user@example.com", 443)).toThrow(TargetError);
    for (let i = 0; i < 10_000; i++) parseTarget(`host-${i}.example.net`, 443);
    expect(parseTarget("host-5.example.net:444", 443)).toEqual({ host: "host-5.example.net", port: 444 });
    expect(parseTarget("host-9999.example.net", 443)).toEqual({ host: "host-9999.example.net", port: 443 });
    expect(() => parseTarget("user@example.com", 443)).toThrow(TargetError);
  });
});
