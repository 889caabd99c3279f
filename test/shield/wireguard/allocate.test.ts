import { describe, expect, it } from "vitest";
import { formatIP, parseIP, type IP } from "../../../src/net/addresses.js";
import {
  allocateAddresses,
  hostCidr,
  parseInterfaceAddress,
  RangeExhaustedError,
  type InterfaceAddress,
} from "../../../src/shield/wireguard/allocate.js";

const range = (t: string) => parseInterfaceAddress(t) as InterfaceAddress;
const ip = (t: string) => parseIP(t) as IP;
const next = (ranges: string[], taken: string[]) =>
  allocateAddresses(ranges.map(range), taken.map(ip)).map(hostCidr);

describe("the shield's tunnel addresses", () => {
  it("reads the shield's address with the agents' range, and refuses what leaves no room", () => {
    expect(range("10.77.0.1/16")).toMatchObject({ text: "10.77.0.1/16", prefix: 16 });
    expect(range("fd77:77:0::1/64").text).toBe("fd77:77::1/64");
    expect(parseInterfaceAddress("10.77.0.1")).toMatch(/not ADDRESS\/PREFIX/);
    expect(parseInterfaceAddress("10.77.0.1/31")).toMatch(/leaves no room .* \/8 to \/30/);
    expect(parseInterfaceAddress("10.77.0.0/16")).toMatch(
      /is the network or broadcast address of 10.77.0.0\/16/,
    );
    expect(parseInterfaceAddress("10.77.255.255/16")).toMatch(/network or broadcast/);
    expect(parseInterfaceAddress("fd77::/64")).toMatch(/is the network address/);
    expect(parseInterfaceAddress("nope/16")).toMatch(/not an IPv4 or IPv6 address/);
  });

  it("gives the lowest free address of each range, skipping the shield's and every taken one", () => {
    expect(next(["10.77.0.1/16", "fd77:77::1/64"], [])).toEqual(["10.77.0.2/32", "fd77:77::2/128"]);
    expect(next(["10.77.0.1/16", "fd77:77::1/64"], ["10.77.0.2", "10.77.0.4", "fd77:77::2"])).toEqual([
      "10.77.0.3/32",
      "fd77:77::3/128",
    ]);
    // The shield need not sit at the bottom of its range; the network address is never handed out.
    expect(next(["10.77.0.9/29"], [])).toEqual(["10.77.0.10/32"]);
    expect(next(["10.77.0.14/29"], [])).toEqual(["10.77.0.9/32"]);
    // Addresses outside the range do not count against it.
    expect(next(["10.77.0.1/30"], ["10.78.0.2"])).toEqual(["10.77.0.2/32"]);
  });

  it("names the range that is full, and which entry of wireguard.address it is", () => {
    expect(() => next(["10.77.0.1/30"], ["10.77.0.2"])).toThrow(RangeExhaustedError);
    expect(() => next(["10.77.0.1/30"], ["10.77.0.2"])).toThrow(
      "no free address left in 10.77.0.0/30 (wireguard.address[0]): widen the range or revoke an agent",
    );
    expect(() => next(["10.77.0.1/16", "fd77:77::1/126"], ["fd77:77::2", "fd77:77::3"])).toThrow(
      /fd77:77::\/126 \(wireguard.address\[1\]\)/,
    );
  });

  it("finds the next address among a thousand taken ones", () => {
    const taken = Array.from({ length: 1000 }, (_, i) =>
      formatIP({ family: 4, v: (10 << 24) + (77 << 16) + 2 + i }),
    );
    expect(next(["10.77.0.1/16"], taken)).toEqual(["10.77.3.234/32"]);
  });
});
