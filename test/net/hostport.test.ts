import { describe, expect, it } from "vitest";
import { formatHostPort, parseHostPort, parsePortText, splitHostPort } from "../../src/net/hostport.js";
import { parseEndpoint } from "../../src/shield/config.js";
import { parseHostPort as lockdownHostPort } from "../../src/lockdown/spec.js";
import { ProfileSchema } from "../../src/harden/profile.js";
import { parseTarget } from "../../src/shield/policy/index.js";
import { PORT_REQUIRED } from "../../src/shield/policy/normalize.js";

describe("splitHostPort", () => {
  it("splits names, IPv4 and bracketed IPv6, with and without a port", () => {
    expect(splitHostPort("example.com")).toEqual({ host: "example.com", port: null, bracketed: false });
    expect(splitHostPort("example.com:443")).toEqual({ host: "example.com", port: 443, bracketed: false });
    expect(splitHostPort("[::1]")).toEqual({ host: "::1", port: null, bracketed: true });
    expect(splitHostPort("[::1]:80")).toEqual({ host: "::1", port: 80, bracketed: true });
  });

  it("refuses what could be read two ways, and ports out of range", () => {
    expect(() => splitHostPort("fd00::2:3128")).toThrow(
      /IPv6 literals must be written in brackets: \[fd00::2\]:3128$/,
    );
    expect(() => splitHostPort("a:b:c")).toThrow(/must be written in brackets, e\.g\. \[2001:db8::1\]:443$/);
    expect(() => splitHostPort("[::1")).toThrow(/unclosed IPv6 bracket/);
    expect(() => splitHostPort("[::1]x")).toThrow(/unexpected text after IPv6 literal/);
    expect(() => splitHostPort("a:0")).toThrow(/port 0 is out of range 1-65535/);
    expect(() => splitHostPort("a:65536")).toThrow(/out of range/);
    expect(() => splitHostPort("a:+80")).toThrow(/is not a number/);
    expect(() => splitHostPort("a:")).toThrow(/is not a number/);
    expect(splitHostPort("a:0", { allowZero: true }).port).toBe(0);
  });
});

describe("parseHostPort and formatHostPort", () => {
  it("needs a host and a port unless a default is given", () => {
    expect(parseHostPort(" shield.example:3128 ")).toEqual({ host: "shield.example", port: 3128 });
    expect(parseHostPort("shield.example", { defaultPort: 3128 }).port).toBe(3128);
    expect(() => parseHostPort("shield.example")).toThrow(/no port/);
    expect(() => parseHostPort(":3128")).toThrow(/no host/);
    expect(() => parseHostPort("[nope]:1")).toThrow(/in brackets is not an IPv6 address/);
  });

  it("round-trips through the formatter", () => {
    for (const t of ["10.0.0.1:3128", "[fd00::2]:3128", "shield.example:80"]) {
      const hp = parseHostPort(t);
      expect(formatHostPort(hp.host, hp.port)).toBe(t);
    }
  });

  it("is the reader behind every host:port the project takes", () => {
    // One text, one reading: config, lockdown flags, the harden profile and the proxy agree.
    const bad = "fd00::2:3128";
    expect(parseEndpoint(bad)).toMatch(/IPv6 literals must be written in brackets/);
    expect(() => lockdownHostPort(bad, "--shield")).toThrow(/IPv6 literals must be written in brackets/);
    expect(ProfileSchema.safeParse({ shield: bad }).success).toBe(false);
    expect(() => parseTarget(bad, 443)).toThrow(/IPv6 literals must be written in brackets/);
    expect(parseEndpoint("[::1]:0")).toEqual({ host: "::1", port: 0 });
    expect(() => lockdownHostPort("shield:0", "--shield")).toThrow(/--shield: .*port 0 is out of range/);
  });

  it("a CONNECT authority must name its port", () => {
    expect(() => parseTarget("example.com", PORT_REQUIRED)).toThrow(/no port/);
    expect(parseTarget("example.com:8443", PORT_REQUIRED).port).toBe(8443);
  });

  it("parsePortText says which port is wrong", () => {
    expect(parsePortText("8080")).toBe(8080);
    expect(() => parsePortText("99999")).toThrow(/port 99999 is out of range 1-65535/);
  });
});
