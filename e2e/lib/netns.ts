import { cmd } from "./run.js";

/**
 * Two network namespaces joined by a veth pair: the container's (its only interface is `eth0`,
 * default route via the peer) and a peer namespace standing in for "the internet side" (an SSH
 * client, an attacker, an egress shield). Nothing is added to the machine's own namespace, so
 * fixed addresses cannot collide between tests running at the same time.
 */
export interface TestNetwork {
  /** Namespace the container boots in (/run/netns/NAME). */
  containerNs: string;
  /** Namespace on the other end of the veth: run clients and servers here with `ip netns exec`. */
  peerNs: string;
  containerIf: string;
  peerIf: string;
  containerAddr: string;
  peerAddr: string;
  prefixLen: number;
}

export const CONTAINER_ADDR = "10.77.0.2";
export const PEER_ADDR = "10.77.0.1";

export async function createNetwork(name: string): Promise<TestNetwork> {
  const net: TestNetwork = {
    containerNs: name,
    peerNs: `${name}-peer`,
    containerIf: "eth0",
    peerIf: "veth0",
    containerAddr: CONTAINER_ADDR,
    peerAddr: PEER_ADDR,
    prefixLen: 30,
  };
  const ct = ["ip", "-n", net.containerNs];
  const peer = ["ip", "-n", net.peerNs];
  try {
    await cmd(["ip", "netns", "add", net.containerNs]);
    await cmd(["ip", "netns", "add", net.peerNs]);
    await cmd([...peer, "link", "add", net.peerIf, "type", "veth", "peer", "name", "eth0", "netns", name]);
    await cmd([...peer, "addr", "add", `${net.peerAddr}/30`, "dev", net.peerIf]);
    await cmd([...peer, "link", "set", net.peerIf, "up"]);
    await cmd([...peer, "link", "set", "lo", "up"]);
    await cmd([...ct, "addr", "add", `${net.containerAddr}/30`, "dev", net.containerIf]);
    await cmd([...ct, "link", "set", net.containerIf, "up"]);
    await cmd([...ct, "link", "set", "lo", "up"]);
    await cmd([...ct, "route", "add", "default", "via", net.peerAddr]);
  } catch (e) {
    await destroyNetwork(net);
    throw e;
  }
  return net;
}

/** Deleting a namespace deletes the veth end inside it, and with it the pair. */
export async function destroyNetwork(net: Pick<TestNetwork, "containerNs" | "peerNs">): Promise<void> {
  for (const ns of [net.containerNs, net.peerNs]) {
    await cmd(["ip", "netns", "del", ns], { check: false });
  }
}

/** Run argv inside a namespace of the test network (e.g. `inNetns(net.peerNs, ["curl", ...])`). */
export function netnsArgv(ns: string, argv: string[]): string[] {
  return ["ip", "netns", "exec", ns, ...argv];
}
