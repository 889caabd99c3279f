/**
 * Several servers on one "internet": a router namespace (forwarding IPv4 and IPv6) with a veth
 * link to each node's namespace, and "internet" addresses on the router's `lo` where small
 * servers stand for destinations. A node's namespace is what a Container boots in. Names carry
 * a random suffix, so files running at the same time never share a namespace; everything made
 * here is removed by destroy(), and at process exit if a run is cut short.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { TestNetwork } from "./netns.js";
import { cmd, sleep, type CmdResult } from "./run.js";

export interface Node extends TestNetwork {
  /** The node's IPv6 address and its gateway (the router). */
  containerAddr6: string;
  peerAddr6: string;
}

const live = new Set<Topology>();

export class Topology {
  readonly router: string;
  private readonly nodes: string[] = [];
  private readonly children: ChildProcess[] = [];
  private destroyed = false;

  private constructor(readonly tag: string) {
    this.router = `cg-${tag}-rt`;
  }

  /** The router namespace, forwarding, its `lo` up. */
  static async create(tag: string): Promise<Topology> {
    const t = new Topology(`${tag.slice(0, 6)}${randomBytes(2).toString("hex")}`);
    live.add(t);
    await cmd(["ip", "netns", "add", t.router]);
    await t.in(["ip", "link", "set", "lo", "up"]);
    await t.in(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
    return t;
  }

  /** Run argv in the router's namespace (never throws for an exit code; check it). */
  in(argv: string[], timeoutMs = 60_000): Promise<CmdResult> {
    return cmd(["ip", "netns", "exec", this.router, ...argv], { check: false, timeoutMs });
  }

  /**
   * A node on subnet `n` (1-250): 198.18.n.2/24 and 2001:db8:n::2/64 on its eth0, the router
   * at .1 and ::1 as its gateway, on the router's interface `r-NAME`.
   */
  async addNode(name: string, n: number): Promise<Node> {
    const ns = `cg-${this.tag}-${name}`.slice(0, 30);
    const rif = `r-${name}`.slice(0, 15);
    const node: Node = {
      containerNs: ns,
      peerNs: this.router,
      containerIf: "eth0",
      peerIf: rif,
      containerAddr: `198.18.${n}.2`,
      peerAddr: `198.18.${n}.1`,
      containerAddr6: `2001:db8:${n}::2`,
      peerAddr6: `2001:db8:${n}::1`,
      prefixLen: 24,
    };
    const ip = (...a: string[]) => cmd(["ip", ...a]);
    await ip("netns", "add", ns);
    this.nodes.push(ns);
    await ip("-n", this.router, "link", "add", rif, "type", "veth", "peer", "name", "eth0", "netns", ns);
    await ip("-n", this.router, "addr", "add", `${node.peerAddr}/24`, "dev", rif);
    await ip("-n", this.router, "addr", "add", `${node.peerAddr6}/64`, "dev", rif, "nodad");
    await ip("-n", ns, "addr", "add", `${node.containerAddr}/24`, "dev", "eth0");
    await ip("-n", ns, "addr", "add", `${node.containerAddr6}/64`, "dev", "eth0", "nodad");
    for (const [where, dev] of [
      [this.router, rif],
      [ns, "eth0"],
      [ns, "lo"],
    ] as const)
      await ip("-n", where, "link", "set", dev, "up");
    await ip("-n", ns, "route", "add", "default", "via", node.peerAddr);
    await ip("-n", ns, "-6", "route", "add", "default", "via", node.peerAddr6);
    return node;
  }

  /** An "internet" address on the router's lo (no dummy interfaces on this kernel). */
  async addInternet(address: string): Promise<void> {
    await cmd([
      "ip",
      "-n",
      this.router,
      "addr",
      "add",
      `${address}/${address.includes(":") ? 128 : 32}`,
      "dev",
      "lo",
    ]);
  }

  /** A long-running process in the router's namespace, ready once `ready` shows in its output. */
  start(argv: string[], ready: RegExp, onLine?: (line: string) => void): Promise<ChildProcess> {
    const child = spawn("ip", ["netns", "exec", this.router, ...argv], { stdio: ["ignore", "pipe", "pipe"] });
    this.children.push(child);
    let out = "";
    let partial = "";
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${argv.join(" ")} not ready in 60 s:\n${out}`)),
        60_000,
      );
      const on = (d: Buffer) => {
        out = (out + d.toString()).slice(-16_000);
        partial += d.toString();
        const lines = partial.split("\n");
        partial = lines.pop() ?? "";
        if (onLine) for (const l of lines) onLine(l);
        if (ready.test(out)) {
          clearTimeout(timer);
          resolve(child);
        }
      };
      child.stdout!.on("data", on);
      child.stderr!.on("data", on);
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${argv.join(" ")} exited ${code}:\n${out}`));
      });
    });
  }

  /** Capture everything crossing the router's interface to a node, until stop(). */
  async capture(iface: string, file: string): Promise<{ stop(): Promise<void> }> {
    const child = spawn(
      "ip",
      ["netns", "exec", this.router, "tcpdump", "-i", iface, "--immediate-mode", "-U", "-n", "-w", file],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    this.children.push(child);
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    for (let i = 0; i < 50 && !/listening on/.test(err); i++) await sleep(100);
    if (!/listening on/.test(err)) throw new Error(`tcpdump did not start: ${err}`);
    return {
      async stop() {
        // Packets still on their way to the capture are written before it ends.
        await sleep(500);
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGINT");
        await Promise.race([gone, sleep(5000)]);
      },
    };
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
    await sleep(200);
    for (const ns of [...this.nodes, this.router]) await cmd(["ip", "netns", "del", ns], { check: false });
  }

  destroySync(): void {
    for (const c of this.children) if (c.exitCode === null) c.kill("SIGKILL");
    for (const ns of [...this.nodes, this.router]) {
      try {
        execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      } catch {
        // Already gone.
      }
    }
  }
}

process.once("exit", () => {
  for (const t of live) t.destroySync();
});
