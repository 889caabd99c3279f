/** The gateway section of shield.yaml, its rendered table and its plan on a whole root tree. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseShieldConfig } from "../../src/shield/config.js";
import { LocalHost } from "../../src/host/host.js";
import { planGateway, GATEWAY_NFT, GATEWAY_UNIT_FILE } from "../../src/shield/gateway/plan.js";
import { cli } from "./cli-harness.js";

const BASE = "listen: 10.80.0.1:3128\nlog: { path: ./shield.db }\n";

describe("gateway: in shield.yaml", () => {
  it("reads networks, listen addresses, intercepted ports and the listeners' ports, with defaults", () => {
    const cfg = parseShieldConfig(
      `${BASE}gateway: { networks: [10.80.0.0/24, "FD80::/64"], listen: [10.80.0.1] }\n`,
      "shield.yaml",
    );
    expect(cfg.gateway).toEqual({
      networks: ["10.80.0.0/24", "fd80::/64"],
      listen: ["10.80.0.1"],
      http: { port: 80, listener: 3180 },
      https: { port: 443, listener: 3443 },
      dns: 3053,
    });
    const off = parseShieldConfig(
      `${BASE}gateway: { networks: [10.80.0.0/24], listen: [10.80.0.1], transparent: { http: null }, dns: false }\n`,
      "s.yaml",
    );
    expect(off.gateway).toMatchObject({ http: null, dns: null });
  });

  it.each([
    ["networks: [10.80.0.1/24], listen: [10.80.0.1]", "gateway.networks[0]", "host bits set"],
    ["networks: [0.0.0.0/0], listen: [10.80.0.1]", "gateway.networks[0]", "every address"],
    ["networks: [10.80.0.0/24], listen: [gateway.example]", "gateway.listen[0]", "not an IP address"],
    [
      "networks: [10.80.0.0/24], listen: [10.80.0.1], ports: { https: 3128 }",
      "gateway.ports.https",
      "taken by the proxy",
    ],
    [
      "networks: [10.80.0.0/24], listen: [10.80.0.1], transparent: { http: 443, https: 443 }",
      "gateway.transparent.https",
      "same port",
    ],
    ["networks: [], listen: [10.80.0.1]", "gateway.networks", ""],
  ])("refuses %s, naming %s", (body, key, why) => {
    expect(() => parseShieldConfig(`${BASE}gateway: { ${body} }\n`, "shield.yaml")).toThrow(
      new RegExp(`shield.yaml:3: ${key.replace(/[.[\]]/g, "\\$&")}.*${why}`),
    );
  });
});

describe("the gateway's plan", () => {
  it("writes the table, a unit that loads it at boot and the link that enables it, under the root", async () => {
    const root = mkdtempSync(path.join(tmpdir(), "clawguard-gw-"));
    try {
      const cfg = parseShieldConfig(
        `${BASE}gateway: { networks: [10.80.0.0/24], listen: [10.80.0.1] }\n`,
        "shield.yaml",
      );
      const plan = await planGateway(new LocalHost(root), cfg);
      expect(plan.files.map((f) => f.path)).toEqual([GATEWAY_NFT, GATEWAY_UNIT_FILE]);
      expect(plan.ruleset).toMatch(/ip saddr @agents4 tcp dport 443 redirect to :3443/);
      expect(plan.ruleset).toMatch(/ip saddr @agents4 tcp dport \{ 3180, 3443, 3128 \} accept/);
      expect(plan.ruleset).toMatch(/chain forward \{[^}]*ip saddr @agents4 counter drop/);
      expect(plan.ruleset).not.toMatch(/agents6/);
      expect(plan.files[1]!.content).toMatch(/ExecStart=\/usr\/sbin\/nft -f \/etc\/clawguard\/gateway.nft/);
      expect(plan.links[0]).toMatchObject({ before: null, target: GATEWAY_UNIT_FILE });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("is refused for a config without a gateway section", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "clawguard-gw-"));
    try {
      const file = path.join(dir, "shield.yaml");
      (await import("node:fs")).writeFileSync(file, BASE);
      const r = await cli("shield", "gateway", "--config", file, "--root", dir);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/has no gateway section/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
