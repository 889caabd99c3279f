import { describe, expect, it } from "vitest";
import { parseRouteV4, parseRouteV6 } from "../../src/facts/routes.js";

const V4 = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
wg0	00000000	00000000	0000	0	0	0	00000000	0	0	0
`;

const V6 = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`;

describe("routes from /proc", () => {
  it("finds the IPv4 default route and its next hop, in the kernel's byte order", () => {
    expect(parseRouteV4(V4)).toEqual([{ family: 4, via: "192.0.2.1", dev: "eth0" }]);
  });

  it("finds the IPv6 default route, and not the loopback's unreachable entry", () => {
    expect(parseRouteV6(V6)).toEqual([{ family: 6, via: "fd00::1", dev: "eth0" }]);
  });

  it("names the line of a table it cannot read", () => {
    expect(() => parseRouteV4("header\neth0 0000 nothex\n")).toThrow(/columns/);
    expect(() => parseRouteV4("header\neth0 ZZZZZZZZ 00000000 0003 0 0 0 00000000\n")).toThrow(
      /8 hex digits/,
    );
  });
});
