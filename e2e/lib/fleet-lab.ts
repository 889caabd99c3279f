/**
 * A lab for fleet tests: one namespace (where the fleet's operator sits) with a veth to each
 * server's namespace, server N at 10.79.N.2/24 and the lab at 10.79.N.1 as its gateway. Servers
 * boot into their namespace with Container.boot({ network }). Names carry a random suffix, so
 * labs of files running at the same time never meet; destroy() removes every namespace, a
 * process exit does too when a run is cut short, and the namespaces of a run that was killed are
 * recorded where the next container boot sweeps them away.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import { recordNamespaces, RUN_DIR } from "./container.js";
import type { TestNetwork } from "./netns.js";
import { cmd } from "./run.js";

const live = new Set<FleetLab>();
process.once("exit", () => {
  for (const lab of live)
    for (const ns of lab.namespaces()) {
      try {
        execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      } catch {
        // Already gone.
      }
    }
});

export class FleetLab {
  private readonly servers: string[] = [];

  private constructor(readonly ns: string) {}

  static async create(tag: string): Promise<FleetLab> {
    const lab = new FleetLab(`cg-${tag.slice(0, 6)}-${randomBytes(2).toString("hex")}`);
    live.add(lab);
    recordNamespaces(lab.ns, lab.namespaces());
    await cmd(["ip", "netns", "add", lab.ns]);
    await cmd(["ip", "-n", lab.ns, "link", "set", "lo", "up"]);
    return lab;
  }

  namespaces(): string[] {
    return [...this.servers, this.ns];
  }

  /** Server `n`'s network (1-250): its namespace, wired to the lab. */
  async server(n: number): Promise<TestNetwork> {
    const ns = `${this.ns}-${n}`;
    const net: TestNetwork = {
      containerNs: ns,
      peerNs: this.ns,
      containerIf: "eth0",
      peerIf: `l${n}`,
      containerAddr: `10.79.${n}.2`,
      peerAddr: `10.79.${n}.1`,
      prefixLen: 24,
    };
    this.servers.push(ns);
    recordNamespaces(this.ns, this.namespaces());
    await cmd(["ip", "netns", "add", ns]);
    const lab = ["ip", "-n", this.ns];
    const srv = ["ip", "-n", ns];
    await cmd([...lab, "link", "add", net.peerIf, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    await cmd([...lab, "addr", "add", `${net.peerAddr}/24`, "dev", net.peerIf]);
    await cmd([...lab, "link", "set", net.peerIf, "up"]);
    await cmd([...srv, "addr", "add", `${net.containerAddr}/24`, "dev", "eth0"]);
    await cmd([...srv, "link", "set", "eth0", "up"]);
    await cmd([...srv, "link", "set", "lo", "up"]);
    await cmd([...srv, "route", "add", "default", "via", net.peerAddr]);
    return net;
  }

  /** argv run from the lab's namespace. */
  argv(command: string[]): string[] {
    return ["ip", "netns", "exec", this.ns, ...command];
  }

  async destroy(): Promise<void> {
    for (const ns of this.namespaces()) await cmd(["ip", "netns", "del", ns], { check: false });
    rmSync(path.join(RUN_DIR, this.ns), { recursive: true, force: true });
    live.delete(this);
  }
}
