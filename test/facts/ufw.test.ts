import { describe, expect, it } from "vitest";
import { parseShellSettings, parseUfwRules, portFieldCovers, portFieldPorts } from "../../src/facts/ufw.js";
import { MalformedError } from "../../src/facts/fact.js";

const file = (tuples: string[]) =>
  ["*filter", ":ufw-user-input - [0:0]", "### RULES ###", ...tuples, "### END RULES ###", "COMMIT", ""].join(
    "\n",
  );

describe("ufw saved state", () => {
  it("reads tuples with application names, interfaces, comments, logging and route rules", () => {
    const f = parseUfwRules(
      file([
        "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in",
        "### tuple ### allow_log tcp 443 0.0.0.0/0 any 0.0.0.0/0 in_eth0 comment=7765622074726166666963",
        "### tuple ### route:allow any any 0.0.0.0/0 any 10.0.0.0/8 in_wg0!out_eth0",
        "### tuple ### deny udp 53 0.0.0.0/0 any 0.0.0.0/0",
      ]),
      "/etc/ufw/user.rules",
      4,
    );
    expect(
      f.rules.map((r) => [r.action, r.proto, r.dport, r.src, r.direction, r.iface, r.app, r.route, r.line]),
    ).toEqual([
      ["allow", "tcp", "22", "0.0.0.0/0", "in", undefined, "OpenSSH", false, 4],
      ["allow", "tcp", "443", "0.0.0.0/0", "in", "eth0", undefined, false, 5],
      ["allow", "any", "any", "10.0.0.0/8", "in", "wg0!out_eth0", undefined, true, 6],
      ["deny", "udp", "53", "0.0.0.0/0", "in", undefined, undefined, false, 7],
    ]);
  });

  it("rejects binary data, a short tuple and a file without *filter, naming the line", () => {
    const bin = () => parseUfwRules(Buffer.from([0x2a, 0x0a, 0x0a, 0x00]), "/etc/ufw/user.rules", 4);
    expect(bin).toThrow(MalformedError);
    try {
      bin();
    } catch (e) {
      expect((e as MalformedError).line).toBe(3);
    }
    expect(() => parseUfwRules(file(["### tuple ### allow tcp 22"]), "x", 4)).toThrow(/3 fields/);
    expect(() => parseUfwRules("# empty\n", "x", 4)).toThrow(/no \*filter/);
  });

  it("matches ports in lists and ranges", () => {
    expect(portFieldCovers("80,443", 443)).toBe(true);
    expect(portFieldCovers("6000:6010", 6005)).toBe(true);
    expect(portFieldCovers("6000:6010", 22)).toBe(false);
    expect(portFieldCovers("any", 22)).toBe(true);
    expect(portFieldPorts("8000:8002,9000")).toEqual([8000, 8001, 8002, 9000]);
    expect(portFieldPorts("1024:65535")).toEqual([[1024, 65535]]);
  });

  it("reads shell-style settings with quotes and comments", () => {
    const s = parseShellSettings(
      'IPV6=yes\n# DEFAULT_INPUT_POLICY="ACCEPT"\nDEFAULT_INPUT_POLICY="DROP"\n',
      "/etc/default/ufw",
    );
    expect(s.DEFAULT_INPUT_POLICY).toEqual({ value: "DROP", source: "/etc/default/ufw", line: 3 });
    expect(s["IPV6"]?.value).toBe("yes");
  });
});
