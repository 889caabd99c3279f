/**
 * The lockdown's plan: from the agent's facts and the shield it is pinned to, every file, link
 * and change `lockdown --apply` makes (ruleset, boot unit, services' drop-ins, the tunnel, the
 * fleet's SSH CA), each with what is there now, so that apply, diff and rollback work from it.
 * Where those files live and what the units say is units.ts's.
 */
import { readlink } from "node:fs/promises";
import { FactContext } from "../host/context.js";
import { HostError } from "../host/errors.js";
import { realNoFollow, type Host } from "../host/host.js";
import { unifiedDiff } from "../render/diff.js";
import {
  IPT_CHAIN,
  NFT_FAMILY,
  NFT_TABLE,
  renderIptablesRules,
  renderNftRuleset,
  type EgressAllow,
  type EgressSpec,
} from "../render/nftables.js";
import { formatHostPort as authority } from "../net/hostport.js";
import type { PinnedShield } from "./spec.js";
import type { Change } from "../change/change.js";
import { planSshCa } from "../harden/plan-ssh-ca.js";
import type { PlanInput as HardenPlanInput } from "../harden/plan.js";
import type { Profile } from "../harden/profile.js";
import { SSH_CA_DIR, SSH_CA_DROP_IN, SSH_CA_KRL, SSH_CA_PRINCIPALS } from "../render/sshd-ca.js";
import {
  DROPIN_NAME,
  IPT_FILES,
  NFT_FILE,
  RULES_DIR,
  UNIT_FILE,
  UNIT_NAME,
  WANTS_LINK,
  renderGatewayDropIn,
  renderLockdownUnit,
  type Backend,
} from "./units.js";

export interface PlannedFile {
  path: string;
  content: string;
  /** Holds a key: shown and diffed with its secrets blanked. */
  secret?: boolean;
  mode: number;
  /** What is there now, null when absent. */
  before: string | null;
  /** `diff -u` of before and after; empty when unchanged. */
  diff: string;
  why: string;
}

export interface PlannedLink {
  path: string;
  target: string;
  /** The current link target, null when absent. */
  before: string | null;
}

export interface LockdownPlan {
  schema: "clawguard.lockdown-plan/v1";
  root: string;
  backend: Backend;
  shield: { host: string; port: number; addresses: string[]; pinned: boolean; proxyUrl: string };
  sshPorts: { ports: number[]; source: string };
  spec: EgressSpec;
  /** The live ruleset (nft) or the two iptables-restore files joined. */
  ruleset: string;
  dirs: string[];
  files: PlannedFile[];
  links: PlannedLink[];
  /** Gateway units that get the proxy drop-in; empty with `gatewaySkipped` saying why. */
  gatewayUnits: string[];
  gatewaySkipped?: string;
  /** The WireGuard tunnel to the shield, when joined with a join code. */
  tunnel?: TunnelState;
  /** The fleet's SSH CA, as harden's planner installs it: its files, sshd -t, the reload, the KRL timer. */
  sshCa: Change[];
  notes: string[];
  warnings: string[];
}

/** The tunnel as lockdown records it: what verify and rollback need. */
export interface TunnelState {
  interface: string;
  /** The shield's public endpoint, resolved and pinned as the rules allow it. */
  endpoint: { host: string; port: number; addresses: string[] };
  shieldPublicKey: string;
  /** wg-quick's config file. */
  config: string;
}

/** What `--join` adds to the plan: the tunnel's config, the endpoint its packets may go to. */
export interface TunnelInput extends Omit<TunnelState, "config"> {
  /** wg-quick's config, private key included. */
  conf: string;
}

export const WG_DIR = "/etc/wireguard";

export function tunnelUnit(iface: string): string {
  return `wg-quick@${iface}.service`;
}

export interface PlanInput {
  shield: PinnedShield;
  /** From --ssh-port; undefined means sshd's real ports. */
  sshPorts?: number[];
  allowOut: EgressAllow[];
  dns: string[];
  dhcp: boolean;
  log: boolean;
  /** Filter traffic routed out of local containers and VMs too. */
  forward: boolean;
  backend: Backend;
  /** Reach the shield through this WireGuard tunnel (lockdown --join). */
  tunnel?: TunnelInput;
  /** Trust the fleet's SSH CA as `harden --ssh-ca` does (a join code that carries one). */
  sshCa?: NonNullable<Profile["sshCa"]>;
}

async function sshPortsOf(ctx: FactContext, given: number[] | undefined, warnings: string[]) {
  if (given && given.length > 0)
    return { ports: [...new Set(given)].sort((a, b) => a - b), source: "--ssh-port" };
  const f = await ctx.get("sshd");
  if (f.status === "ok" && f.value.ports.length > 0)
    return { ports: f.value.ports, source: f.sources[0] ?? "sshd" };
  const why =
    f.status === "skip"
      ? f.reason
      : f.status === "error"
        ? f.problems.map((p) => `${p.source}: ${p.message}`).join("; ")
        : "no port found in sshd's settings";
  warnings.push(
    `sshd's ports could not be read (${why}); assuming 22. If SSH listens elsewhere, pass --ssh-port N, ` +
      `or replies of SSH sessions older than the table may be dropped`,
  );
  return { ports: [22], source: "assumed: sshd's settings unreadable" };
}

export async function current(host: Host, p: string): Promise<string | null> {
  const st = await host.lstat(p);
  if (!st) return null;
  if (st.type !== "file")
    throw new HostError({
      kind: "io",
      source: p,
      message: `is a ${st.type}, not a file; move it away before running lockdown`,
    });
  return host.readFile(p);
}

export async function currentLink(host: Host, p: string): Promise<string | null> {
  const st = await host.lstat(p);
  if (!st) return null;
  if (st.type !== "symlink")
    throw new HostError({
      kind: "io",
      source: p,
      message: `is a ${st.type}, not a symlink; move it away before running lockdown`,
    });
  return readlink(await realNoFollow(host, p));
}

/**
 * Everything lockdown would change, read against the system at `host.root`: the ruleset, the
 * files that keep it across reboots and the gateway's proxy drop-in, each with a diff.
 */
export async function planLockdown(host: Host, input: PlanInput): Promise<LockdownPlan> {
  const ctx = new FactContext(host);
  const warnings: string[] = [];
  const notes: string[] = [];
  const ssh = await sshPortsOf(ctx, input.sshPorts, warnings);
  const { shield } = input;
  const label = authority(shield.host, shield.port);
  const tunnel = input.tunnel;
  const endpointLabel = tunnel ? authority(tunnel.endpoint.host, tunnel.endpoint.port) : "";
  const spec: EgressSpec = {
    shield: {
      addresses: shield.addresses,
      port: shield.port,
      label: tunnel
        ? `${label} through ${tunnel.interface}`
        : shield.pinned
          ? `${label} (${shield.addresses.join(", ")})`
          : label,
      ...(tunnel ? { via: tunnel.interface } : {}),
    },
    sshPorts: ssh.ports,
    // The tunnel's own packets: UDP to the shield's endpoint, and nowhere else.
    allowOut: [
      ...krlAllow(input),
      ...(tunnel?.endpoint.addresses ?? []).map((a) => ({
        cidr: a,
        port: tunnel!.endpoint.port,
        proto: "udp" as const,
        why: `WireGuard to the shield ${endpointLabel}`,
      })),
      ...input.allowOut,
    ],
    dns: input.dns,
    dhcp: input.dhcp,
    log: input.log,
    forward: input.forward && input.backend === "nft",
  };
  // The agent cannot resolve names once locked down: the proxy URL names an address.
  const proxyUrl = `http://${authority(shield.addresses[0]!, shield.port)}`;

  if (shield.pinned)
    notes.push(
      `${shield.host} resolved to ${shield.addresses.join(", ")} now; those addresses are pinned in the rules. ` +
        `If the shield's address changes, run lockdown again.`,
    );
  if (input.dns.length === 0)
    notes.push(
      "No DNS leaves this server: the agent reaches names through the shield (CONNECT host:port), " +
        "which resolves them. Pass --allow-dns IP to let a resolver through.",
    );
  notes.push(
    "apt is not allowed out directly: point it at the shield " +
      `(echo 'Acquire::http::Proxy "${proxyUrl}"; Acquire::https::Proxy "${proxyUrl}";' > /etc/apt/apt.conf.d/80clawguard-proxy) ` +
      "and allow the mirror there, or allow the mirror here with --allow-out CIDR:80.",
  );
  if (!input.dhcp)
    notes.push(
      "DHCP is dropped: if this server leases its address (udp 68->67, 546->547), pass --allow-dhcp.",
    );
  notes.push(
    `Traffic to this server is untouched (there is no input chain): new SSH connections keep working; ` +
      `replies of SSH on port ${ssh.ports.join(", ")} pass.`,
  );
  if (input.forward && input.backend === "nft")
    notes.push(
      "Traffic routed out of local containers and VMs (Docker sandboxes) is held to the same rules; " +
        "traffic into them is not. Pass --no-forward if this server routes for other machines.",
    );
  else if (!input.forward)
    warnings.push("--no-forward: local containers and VMs can still reach the internet directly.");
  if (input.backend === "iptables")
    warnings.push(
      `iptables backend: the rules go into iptables/ip6tables chain ${IPT_CHAIN} instead of table ` +
        `${NFT_FAMILY} ${NFT_TABLE}. Install nftables and run lockdown again to get the table the audit expects. ` +
        `This fallback filters this server's own traffic only, not that of its containers.`,
    );

  const files: PlannedFile[] = [];
  const addFile = async (path: string, content: string, mode: number, why: string, secret = false) => {
    const before = await current(host, path);
    const shown = (t: string) => (secret ? blankSecrets(t) : t);
    files.push({
      path,
      content,
      mode,
      before,
      diff: unifiedDiff(shown(before ?? ""), shown(content), before === null ? "/dev/null" : path, path),
      why,
      ...(secret ? { secret: true } : {}),
    });
  };
  let ruleset: string;
  if (input.backend === "nft") {
    ruleset = renderNftRuleset(spec);
    await addFile(NFT_FILE, ruleset, 0o644, "the ruleset, loaded at boot by " + UNIT_NAME);
  } else {
    const v4 = renderIptablesRules(spec, 4);
    const v6 = renderIptablesRules(spec, 6);
    ruleset = v4 + "\n" + v6;
    await addFile(IPT_FILES[4], v4, 0o644, "IPv4 rules, loaded at boot by " + UNIT_NAME);
    await addFile(IPT_FILES[6], v6, 0o644, "IPv6 rules, loaded at boot by " + UNIT_NAME);
  }
  await addFile(UNIT_FILE, renderLockdownUnit(input.backend), 0o644, "loads the rules at every boot");

  const gatewayUnits: string[] = [];
  let gatewaySkipped: string | undefined;
  const oc = await ctx.get("openclaw");
  if (oc.status !== "ok") {
    gatewaySkipped =
      oc.status === "skip"
        ? oc.reason
        : `OpenClaw could not be read (${oc.problems.map((p) => `${p.source}: ${p.message}`).join("; ")})`;
  } else if (oc.value.units.length === 0) {
    gatewaySkipped = "no OpenClaw gateway unit found (system or user); no proxy drop-in written";
  } else {
    for (const u of oc.value.units) {
      const dir = u.path.replace(/\/[^/]+$/, "");
      await addFile(
        `${dir}/${u.name}.d/${DROPIN_NAME}`,
        renderGatewayDropIn(proxyUrl, shield.addresses),
        0o644,
        `sends ${u.name} through the shield`,
      );
      gatewayUnits.push(u.name);
      if (u.scope === "user")
        notes.push(
          `${u.name} is a user unit of ${u.owner ?? "a user"}: its manager may not enforce IPAddressDeny; ` +
            `the table still drops its direct traffic.`,
        );
    }
  }

  const links: PlannedLink[] = [
    { path: WANTS_LINK, target: UNIT_FILE, before: await currentLink(host, WANTS_LINK) },
  ];
  let tunnelState: TunnelState | undefined;
  if (tunnel) {
    const config = `${WG_DIR}/${tunnel.interface}.conf`;
    await addFile(
      config,
      tunnel.conf,
      0o600,
      `the tunnel to the shield, brought up at boot by ${tunnelUnit(tunnel.interface)}`,
      true,
    );
    const wants = `/etc/systemd/system/multi-user.target.wants/${tunnelUnit(tunnel.interface)}`;
    links.push({
      path: wants,
      target: "/lib/systemd/system/wg-quick@.service",
      before: await currentLink(host, wants),
    });
    tunnelState = {
      interface: tunnel.interface,
      endpoint: tunnel.endpoint,
      shieldPublicKey: tunnel.shieldPublicKey,
      config,
    };
    notes.push(
      `The shield is reached through WireGuard only: ${tunnel.interface} to ${endpointLabel}` +
        `${tunnel.endpoint.addresses.join(", ") !== tunnel.endpoint.host ? ` (${tunnel.endpoint.addresses.join(", ")}, pinned)` : ""}` +
        `, key ${tunnel.shieldPublicKey}. Out of this server go UDP to that endpoint and, inside the tunnel, TCP to the proxy ${label}.`,
    );
  }
  const dirs = [
    ...(tunnel ? [WG_DIR] : []),
    RULES_DIR,
    "/etc/systemd/system",
    "/etc/systemd/system/multi-user.target.wants",
    ...files.filter((f) => f.path.includes(".service.d/")).map((f) => f.path.replace(/\/[^/]+$/, "")),
  ];
  return {
    schema: "clawguard.lockdown-plan/v1",
    root: host.root,
    backend: input.backend,
    shield: {
      host: shield.host,
      port: shield.port,
      addresses: shield.addresses,
      pinned: shield.pinned,
      proxyUrl,
    },
    sshPorts: ssh,
    spec,
    ruleset,
    dirs,
    files,
    links,
    gatewayUnits,
    gatewaySkipped,
    ...(tunnelState ? { tunnel: tunnelState } : {}),
    sshCa: await sshCaChanges(host, input.sshCa),
    notes,
    warnings,
  };
}

/** TCP to the shield's KRL, inside the tunnel only, for the timer that fetches it. */
function krlAllow(input: PlanInput): EgressAllow[] {
  const url = input.sshCa?.krlUrl;
  if (url === undefined || !input.tunnel) return [];
  const u = new URL(url);
  const port = u.port !== "" ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
  return [
    {
      cidr: u.hostname.replace(/^\[|\]$/g, ""),
      port,
      proto: "tcp",
      why: "the shield's SSH revocation list",
      oif: input.tunnel.interface,
    },
  ];
}

/** harden's own planner for the CA, against the files and accounts as they are here. */
async function sshCaChanges(host: Host, sshCa: PlanInput["sshCa"]): Promise<Change[]> {
  if (!sshCa) return [];
  const files = new Map<string, { stat: unknown }>();
  for (const p of [SSH_CA_DIR, SSH_CA_KRL, SSH_CA_DROP_IN, "/etc/ssh/sshd_config.d"])
    files.set(p, { stat: await host.stat(p) });
  const principals = await host.lstat(SSH_CA_PRINCIPALS);
  files.set(SSH_CA_PRINCIPALS, { stat: principals });
  const entries = principals?.type === "dir" ? await host.readDir(SSH_CA_PRINCIPALS) : [];
  const trees = new Map([
    [SSH_CA_PRINCIPALS, entries.map((e) => ({ path: `${SSH_CA_PRINCIPALS}/${e.name}`, type: e.type }))],
  ]);
  const ctx = new FactContext(host);
  const [users, sshd] = await Promise.all([ctx.get("users"), ctx.get("sshd")]);
  return planSshCa({
    profile: { sshCa },
    facts: { files, trees, users, sshd },
  } as unknown as HardenPlanInput);
}

/** A WireGuard config with its keys blanked, for plans and diffs a person reads. */
export function blankSecrets(text: string): string {
  return text.replace(/^(\s*(?:PrivateKey|PresharedKey)\s*=\s*).*$/gim, "$1(secret, not shown)");
}

/** The plan as printed (text or JSON): a file that holds a key shows it blanked. */
export function shownPlan(plan: LockdownPlan): LockdownPlan {
  return {
    ...plan,
    files: plan.files.map((f) =>
      f.secret
        ? {
            ...f,
            content: blankSecrets(f.content),
            before: f.before === null ? null : blankSecrets(f.before),
          }
        : f,
    ),
  };
}
