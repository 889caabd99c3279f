import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../src/errors.js";
import { parseShieldConfig } from "../../../src/shield/config.js";
import { generateKeyPair } from "../../../src/shield/wireguard/keys.js";

const FILE = "/etc/clawguard/shield.yaml";
const K1 = generateKeyPair().publicKey;
const K2 = generateKeyPair().publicKey;

const WG = `wireguard:
  interface: cg0
  listen_port: 51820
  address: [10.77.0.1/16, fd77:77::1/64]
  private_key_file: wireguard.key
`;

function problems(text: string): string[] {
  try {
    parseShieldConfig(text, FILE);
  } catch (e) {
    if (e instanceof ConfigError) return e.message.split("\n");
    throw e;
  }
  return [];
}

const agent = (id: string, key: string, sources: string) =>
  `  - id: ${id}\n    sources: [${sources}]\n    wireguard: { public_key: "${key}" }\n`;

describe("shield.yaml on WireGuard", () => {
  it("reads the interface and agents known by their tunnel addresses and key", () => {
    const cfg = parseShieldConfig(
      `listen: 10.77.0.1:3128\nlog: { path: shield.db }\n${WG}  endpoint: "203.0.113.5:51820"\nagents:\n${agent("scout", K1, '10.77.0.2/32, "fd77:77::2/128"')}`,
      FILE,
    );
    expect(cfg.wireguard).toEqual({
      interface: "cg0",
      listenPort: 51820,
      addresses: ["10.77.0.1/16", "fd77:77::1/64"],
      privateKeyFile: "/etc/clawguard/wireguard.key",
      statusFile: "/run/clawguard-wireguard/cg0.json",
      endpoint: { host: "203.0.113.5", port: 51820 },
    });
    expect(cfg.agents[0]).toMatchObject({
      id: "scout",
      sources: ["10.77.0.2/32", "fd77:77::2/128"],
      wireguard: { publicKey: K1 },
    });
    expect(cfg.allowCleartext).toBe(false);
  });

  it("refuses a public or wildcard listen address without allow_cleartext, saying why and what to do", () => {
    for (const listen of [
      "0.0.0.0:3128",
      "[::]:3128",
      "198.51.100.7:3128",
      "8.8.8.8:3128",
      "[2a01:4f8::1]:3128",
    ]) {
      const p = problems(`listen: "${listen}"\nlog: { path: shield.db }\n`);
      expect(p, listen).toHaveLength(1);
      expect(p[0]).toMatch(
        /^\/etc\/clawguard\/shield.yaml:1: listen: .* (wildcard|public address).*cleartext.*WireGuard.*allow_cleartext: true$/,
      );
    }
    // With the tunnel configured, the advice names its address.
    expect(problems(`listen: 0.0.0.0:3128\nlog: { path: shield.db }\n${WG}`)[0]).toMatch(
      /listen: 10.77.0.1:3128/,
    );
    for (const listen of [
      "127.0.0.1:3128",
      "10.1.2.3:3128",
      "192.168.1.2:3128",
      "100.64.0.9:3128",
      "[fd00::1]:3128",
    ])
      expect(problems(`listen: "${listen}"\nlog: { path: shield.db }\n`), listen).toEqual([]);
    expect(problems(`listen: 0.0.0.0:3128\nallow_cleartext: true\nlog: { path: shield.db }\n`)).toEqual([]);
  });

  it("reports every bad WireGuard key with file, line and key path", () => {
    const p = problems(
      `listen: 10.77.0.1:3128\nlog: { path: shield.db }\nwireguard:\n  interface: "wg/0"\n  address: [10.77.0.1/16, 10.78.0.1/16, "fd77::/64", 10.79.0.1/31]\n  private_key_file: k\n  endpoint: "nowhere"\n`,
    );
    expect(p).toEqual([
      expect.stringMatching(/shield.yaml:4: wireguard.interface: "wg\/0" is not an interface name/),
      expect.stringMatching(
        /shield.yaml:5: wireguard.address\[1\]: a second IPv4 range; give at most one of each/,
      ),
      expect.stringMatching(/shield.yaml:5: wireguard.address\[2\]: fd77:: is the network address/),
      expect.stringMatching(/shield.yaml:5: wireguard.address\[3\]: \/31 leaves no room/),
      expect.stringMatching(/shield.yaml:7: wireguard.endpoint: no port/),
    ]);
    expect(
      problems(
        `listen: 10.77.0.1:3128\nlog: { path: shield.db }\nwireguard: { address: [10.77.0.1/16], private_key_file: k, mtu: 1 }\n`,
      ),
    ).toEqual([expect.stringMatching(/shield.yaml:3: wireguard.mtu: unknown key "mtu"/)]);
  });

  it("holds each agent on WireGuard to one key of its own and its tunnel addresses", () => {
    const base = `listen: 10.77.0.1:3128\nlog: { path: shield.db }\n${WG}agents:\n`;
    expect(
      problems(
        base +
          agent("a", K1, "10.77.0.2/32") +
          agent("b", K1, "10.77.0.3/32") +
          agent("c", "nope", "10.77.0.0/24") +
          agent("d", K2, "10.77.0.1/32, 10.78.0.2/32") +
          agent("e", generateKeyPair().publicKey, "10.77.0.5/32, 10.77.0.6/32") +
          `  - id: f\n    wireguard: { public_key: "${generateKeyPair().publicKey}" }\n`,
      ),
    ).toEqual([
      expect.stringMatching(/:14: agents\[1\].wireguard.public_key: agent "a" already has this key/),
      expect.stringMatching(/:17: agents\[2\].wireguard.public_key: "nope" is not a WireGuard key/),
      expect.stringMatching(
        /:16: agents\[2\].sources\[0\]: 10.77.0.0\/24 is not one address in the WireGuard ranges/,
      ),
      expect.stringMatching(/:19: agents\[3\].sources\[0\]: 10.77.0.1\/32 is the shield's own address/),
      expect.stringMatching(/:19: agents\[3\].sources\[1\]: 10.78.0.2\/32 is not one address/),
      expect.stringMatching(/:22: agents\[4\].sources\[1\]: a second IPv4 address/),
      expect.stringMatching(/:24: agents\[5\].sources: an agent on WireGuard needs its tunnel addresses/),
    ]);
    expect(
      problems(
        `listen: 127.0.0.1:3128\nlog: { path: shield.db }\nagents:\n${agent("a", K1, "10.77.0.2/32")}`,
      ),
    ).toEqual([
      expect.stringMatching(
        /:6: agents\[0\].wireguard: an agent on WireGuard needs the top-level wireguard section/,
      ),
    ]);
  });
});
