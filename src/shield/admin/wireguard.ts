/**
 * What the operator sees of the agents' tunnels: each WireGuard agent's latest handshake,
 * endpoint and transfer, from the status the root sync daemon publishes (the shield itself has
 * no right to ask the interface), for /api/agents, the dashboard and /metrics.
 */
import { Gauge, type Registry } from "prom-client";
import type { ShieldConfig } from "../config.js";
import { agentTunnels, StatusReader, type AgentTunnel, type InterfaceStatus } from "../wireguard/status.js";

export class WireguardView {
  private reader: StatusReader | null = null;

  constructor(private readonly cfg: () => ShieldConfig) {}

  /** The status, or null without a wireguard section or before root published one. */
  status(): Promise<InterfaceStatus | null> {
    const file = this.cfg().wireguard?.statusFile;
    if (file === undefined) return Promise.resolve(null);
    if (this.reader?.file !== file) this.reader = new StatusReader(file);
    return this.reader.read();
  }

  /** Each WireGuard agent's tunnel, by agent id. */
  async tunnels(): Promise<Map<string, AgentTunnel>> {
    const cfg = this.cfg();
    if (!cfg.wireguard) return new Map();
    return agentTunnels(cfg.agents, await this.status());
  }

  register(registry: Registry): void {
    const tunnels = () => this.tunnels();
    const status = () => this.status();
    new Gauge({
      name: "clawguard_shield_wireguard_latest_handshake_seconds",
      help: "Each WireGuard agent's latest handshake, seconds since the epoch (0: none yet, or not on the interface).",
      labelNames: ["agent"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [agent, t] of await tunnels()) this.set({ agent }, (t.latestHandshake ?? 0) / 1000);
      },
    });
    new Gauge({
      name: "clawguard_shield_wireguard_peers",
      help: "Peers on the shield's WireGuard interface, as root last published them.",
      registers: [registry],
      async collect() {
        this.set((await status())?.peers.length ?? 0);
      },
    });
  }
}
