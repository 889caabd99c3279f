import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  renderPeersConf,
  renderShieldWgNft,
  renderShieldWgQuick,
} from "../../../src/render/shield-wireguard.js";
import { agentTunnels, parseWgDump } from "../../../src/shield/wireguard/status.js";
import { parseShieldConfig } from "../../../src/shield/config.js";
import { tableFor } from "../../../src/shield/wireguard/live.js";
import { tempDir } from "../../harden/tree.js";
import { haveTool } from "../../render/tool.js";

const NFT = renderShieldWgNft({
  iface: "cg0",
  shieldAddresses: ["10.77.0.1", "fd77:77::1"],
  proxy: { host: "10.77.0.1", port: 3128 },
});
const WITH_KRL = renderShieldWgNft({
  iface: "cg0",
  shieldAddresses: ["10.77.0.1", "fd77:77::1"],
  proxy: { host: "10.77.0.1", port: 3128 },
  krl: { host: "10.77.0.1", port: 3129 },
});

describe("the shield's side of the tunnels, as text", () => {
  it("lets agents reach the proxy port and nothing else, forwards nothing, and keeps the tunnel address off the uplink", () => {
    const from = NFT.slice(NFT.indexOf("chain from_agents"), NFT.indexOf("chain forward"));
    expect(from.match(/accept/g)).toHaveLength(2);
    expect(from).toContain("ct state established,related accept");
    expect(from).toContain("ip daddr 10.77.0.1 tcp dport 3128 accept");
    expect(from.trim().split("\n").at(-2)).toMatch(/^\s*counter drop/);
    expect(NFT).toMatch(/iifname "cg0" jump from_agents/);
    expect(NFT).toMatch(/ip daddr 10.77.0.1 iifname != "lo" counter drop/);
    expect(NFT).toMatch(/ip6 daddr fd77:77::1 iifname != "lo" counter drop/);
    expect(NFT).toMatch(/iifname "cg0" counter drop comment "no agent reaches another agent/);
    expect(NFT).toMatch(/oifname "cg0" counter drop/);
    // A proxy that does not listen on the tunnel is reachable through it by nobody.
    const elsewhere = renderShieldWgNft({
      iface: "cg0",
      shieldAddresses: ["10.77.0.1"],
      proxy: { host: "127.0.0.1", port: 3128 },
    });
    expect(elsewhere).not.toMatch(/dport 3128 accept/);
  });

  it("lets agents fetch the SSH KRL where shield.yaml serves it on the tunnel, and nowhere else", () => {
    const yaml = (more: string) =>
      parseShieldConfig(
        `listen: 10.77.0.1:3128\nlog: { path: s.db }\nwireguard: { address: [10.77.0.1/16], private_key_file: k }\n${more}`,
        "/etc/s.yaml",
      );
    const accepts = (t: string) =>
      t
        .slice(t.indexOf("chain from_agents"), t.indexOf("chain forward"))
        .split("\n")
        .filter((l) => / accept/.test(l))
        .map((l) => l.trim());
    // By default the KRL is on the proxy's tunnel address, port 3129: the fetch every 15 s passes.
    expect(accepts(tableFor(yaml("")))).toEqual([
      "ct state established,related accept",
      'ip daddr 10.77.0.1 tcp dport 3128 accept comment "the proxy"',
      'ip daddr 10.77.0.1 tcp dport 3129 accept comment "the SSH KRL"',
    ]);
    expect(accepts(tableFor(yaml('ssh_access: { krl_listen: "10.77.0.1:4000" }\n')))).toContain(
      'ip daddr 10.77.0.1 tcp dport 4000 accept comment "the SSH KRL"',
    );
    // Served nowhere, or off the tunnel: nothing more for agents on the tunnel.
    for (const off of ["off", "127.0.0.1:3129"])
      expect(accepts(tableFor(yaml(`ssh_access: { krl_listen: "${off}" }\n`))), off).toHaveLength(2);
  });

  it.runIf(haveTool("nft") && process.getuid?.() === 0)("is a table nft accepts", () => {
    for (const text of [NFT, WITH_KRL]) {
      const file = path.join(tempDir("nft"), "t.nft");
      writeFileSync(file, text);
      const r = spawnSync("nft", ["-c", "-f", file], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
    }
  });

  it("gives wg syncconf the key and port with every peer, since it resets what it is not given", () => {
    const text = renderPeersConf("PRIVATE=", 51820, [
      { publicKey: "A=", allowedIps: ["10.77.0.2/32", "fd77:77::2/128"] },
      { publicKey: "B=", allowedIps: ["10.77.0.3/32"], presharedKey: "PSK=" },
    ]);
    expect(text).toBe(
      "[Interface]\nPrivateKey = PRIVATE=\nListenPort = 51820\n\n[Peer]\nPublicKey = A=\nAllowedIPs = 10.77.0.2/32, fd77:77::2/128\n\n[Peer]\nPublicKey = B=\nPresharedKey = PSK=\nAllowedIPs = 10.77.0.3/32\n",
    );
  });

  it("brings the interface up with its key from its file and the table before any peer", () => {
    const conf = renderShieldWgQuick({
      iface: "cg0",
      addresses: ["10.77.0.1/16", "fd77:77::1/64"],
      listenPort: 51820,
      privateKeyFile: "/etc/clawguard/wireguard.key",
      syncOnce:
        "/usr/bin/node /opt/clawguard/bin/clawguard.js shield wireguard-sync --config /etc/clawguard/shield.yaml --once",
    });
    expect(conf).toContain("Address = 10.77.0.1/16, fd77:77::1/64\nListenPort = 51820\n");
    expect(conf.indexOf("PostUp = wg set %i private-key /etc/clawguard/wireguard.key")).toBeLessThan(
      conf.indexOf("wireguard-sync"),
    );
    expect(conf).not.toMatch(/PrivateKey|\[Peer\]/);
    expect(conf).toContain("PreDown = nft delete table inet clawguard_shield_wg || true");
  });

  it("reads wg show dump without keeping the private or preshared keys, and maps peers to agents", () => {
    const dump =
      "cPRIVATE=\tSHIELDPUB=\t51820\toff\n" +
      "KEY1=\tPSK1=\t198.51.100.2:40000\t10.77.0.2/32,fd77:77::2/128\t1796590224\t180\t92\t25\n" +
      "KEY2=\t(none)\t(none)\t10.77.0.3/32\t0\t0\t0\toff\n";
    const s = parseWgDump(dump, "cg0", 5);
    expect(JSON.stringify(s)).not.toMatch(/PRIVATE|PSK1/);
    expect(s).toEqual({
      schema: "clawguard.wireguard-status/v1",
      interface: "cg0",
      publicKey: "SHIELDPUB=",
      listenPort: 51820,
      at: 5,
      peers: [
        {
          publicKey: "KEY1=",
          endpoint: "198.51.100.2:40000",
          allowedIps: ["10.77.0.2/32", "fd77:77::2/128"],
          latestHandshake: 1796590224,
          rxBytes: 180,
          txBytes: 92,
        },
        {
          publicKey: "KEY2=",
          endpoint: null,
          allowedIps: ["10.77.0.3/32"],
          latestHandshake: 0,
          rxBytes: 0,
          txBytes: 0,
        },
      ],
    });
    expect(() => parseWgDump("x\ty\n", "cg0", 0)).toThrow(/no interface line/);
    const key = (n: string) => n.padEnd(43, "A") + "=";
    const cfg = parseShieldConfig(
      `listen: 10.77.0.1:3128\nlog: { path: s.db }\nwireguard: { address: [10.77.0.1/16], private_key_file: k }\nagents:\n` +
        `  - { id: a, sources: [10.77.0.2/32], wireguard: { public_key: "${key("K")}" } }\n` +
        `  - { id: b, sources: [10.77.0.3/32], wireguard: { public_key: "${key("L")}" } }\n` +
        `  - { id: c, sources: [127.0.0.9/32] }\n`,
      "/etc/s.yaml",
    );
    const t = agentTunnels(cfg.agents, { ...s, peers: [{ ...s.peers[0]!, publicKey: key("K") }] });
    expect([...t.keys()]).toEqual(["a", "b"]);
    expect(t.get("a")).toMatchObject({
      onInterface: true,
      endpoint: "198.51.100.2:40000",
      latestHandshake: 1796590224000,
    });
    expect(t.get("b")).toMatchObject({ onInterface: false, latestHandshake: null });
  });
});
