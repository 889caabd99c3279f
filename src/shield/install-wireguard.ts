/**
 * `shield install --wireguard`: the shield's end of the agents' tunnels. The shield's key (root's
 * alone), the interface's wg-quick config, the root daemon that keeps its peers in step with
 * shield.yaml, the `wireguard:` section of shield.yaml, and UDP on the listen port in ufw. The
 * proxy's own unit stays without capabilities: everything here that needs them runs as root
 * beside it.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { HostPortError, parseHostPort } from "../net/hostport.js";
import { renderShieldWgQuick, renderSyncUnit, SYNC_UNIT_NAME } from "../render/shield-wireguard.js";
import { SHIELD_UNIT_NAME } from "../render/shield-unit.js";
import { writeFileAtomic } from "./admin/rules-file.js";
import { DEFAULT_KRL_PORT, parseShieldConfig } from "./config.js";
import { addWireguardSectionText } from "./wireguard/agents-file.js";
import { parseInterfaceAddress } from "./wireguard/allocate.js";
import { generateKeyPair } from "./wireguard/keys.js";
import type { InstalledFile } from "./install.js";
import { ClawguardError, UsageError } from "../errors.js";

export interface WireguardInstall {
  /** HOST:PORT agents send to: this server's public address and the UDP port. */
  endpoint: string;
  iface: string;
  addresses: string[];
  /** The UDP port; the endpoint's by default. */
  listenPort?: number;
}

export interface CheckedWireguard {
  iface: string;
  addresses: string[];
  listenPort: number;
  endpoint: string;
}

/** The flags read and checked before anything is written. */
export function checkWireguardInstall(w: WireguardInstall): CheckedWireguard {
  let port: number;
  try {
    port = parseHostPort(w.endpoint).port;
  } catch (e) {
    if (e instanceof HostPortError)
      throw new UsageError(`${e.reason} (this server's public HOST:PORT, e.g. 203.0.113.5:51820)`, {
        where: "--endpoint",
      });
    throw e;
  }
  if (!/^[A-Za-z0-9_=+.-]{1,15}$/.test(w.iface))
    throw new UsageError(`"${w.iface}" is not an interface name`, { where: "--interface" });
  const addresses = w.addresses.map((a) => {
    const p = parseInterfaceAddress(a);
    if (typeof p === "string") throw new UsageError(p, { where: "--address" });
    return p.text;
  });
  const v6 = addresses.map((a) => a.includes(":"));
  if (v6.length === 0 || v6.length > 2 || v6[0] || (v6.length === 2 && !v6[1]))
    throw new UsageError(
      "give one IPv4 range and at most one IPv6 range, IPv4 first (e.g. 10.77.0.1/16,fd77:77::1/64)",
      {
        where: "--address",
      },
    );
  return { iface: w.iface, addresses, listenPort: w.listenPort ?? port, endpoint: w.endpoint };
}

export interface WireguardInstallContext {
  root: string;
  configDir: string;
  node: string;
  bin: string;
  /** shield.yaml was there before this install: it gets the section, not a new skeleton. */
  configKept: boolean;
}

async function writeOwn(root: string, shown: string, text: string, mode: number): Promise<InstalledFile> {
  const file = path.join(root, shown);
  const old = await readFile(file, "utf8").catch(() => null);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  if (old !== text) await writeFile(file, text, { mode });
  return { path: shown, action: old === null ? "created" : old === text ? "unchanged" : "updated" };
}

export function keyFileOf(configDir: string): string {
  return path.posix.join(configDir, "wireguard.key");
}

export async function installWireguard(
  w: CheckedWireguard,
  c: WireguardInstallContext,
  next: string[],
): Promise<InstalledFile[]> {
  const files: InstalledFile[] = [];
  const at = (p: string) => path.join(c.root, p);
  const keyFile = keyFileOf(c.configDir);
  const configFile = path.posix.join(c.configDir, "shield.yaml");

  // The shield's identity to every agent: made once, never replaced (agents pin its public half).
  try {
    await writeFile(at(keyFile), generateKeyPair().privateKey + "\n", { mode: 0o600, flag: "wx" });
    files.push({ path: keyFile, action: "created", note: "the shield's WireGuard key; root's alone" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    files.push({ path: keyFile, action: "kept", note: "exists; agents know its public half" });
  }

  const syncOnce = `${c.node} ${c.bin} shield wireguard-sync --config ${configFile} --once`;
  await mkdir(at("/etc/wireguard"), { recursive: true, mode: 0o700 });
  files.push(
    await writeOwn(
      c.root,
      `/etc/wireguard/${w.iface}.conf`,
      renderShieldWgQuick({
        iface: w.iface,
        addresses: w.addresses,
        listenPort: w.listenPort,
        privateKeyFile: keyFile,
        syncOnce,
      }),
      0o600,
    ),
  );
  files.push(
    await writeOwn(
      c.root,
      `/etc/systemd/system/${SYNC_UNIT_NAME}`,
      renderSyncUnit({ node: c.node, bin: c.bin, configFile, iface: w.iface }),
      0o644,
    ),
  );

  if (c.configKept) {
    const before = await readFile(at(configFile), "utf8");
    const r = addWireguardSectionText(
      before,
      configFile,
      {
        interface: w.iface,
        listen_port: w.listenPort,
        address: w.addresses,
        private_key_file: keyFile,
        endpoint: w.endpoint,
      },
      `${w.addresses[0]!.split("/")[0]}:3128`,
    );
    if (r.added) {
      await writeFileAtomic(at(configFile), r.text);
      files.push({
        path: configFile,
        action: "updated",
        note: `wireguard section added${r.listenMoved ? `; listen moved from ${r.listenMoved} to the tunnel` : ""}`,
      });
    } else
      next.push(
        `${configFile} has a wireguard section already: check that it matches --interface ${w.iface} and --address ${w.addresses.join(",")}`,
      );
  }

  // The proxy listens where shield.yaml says now (the operator's own config may move it).
  const { listen, krl } = await readFile(at(configFile), "utf8")
    .then((t) => {
      const cfg = parseShieldConfig(t, configFile);
      return { listen: cfg.listen, krl: cfg.sshAccess.krlListen };
    })
    .catch(() => {
      const host = w.addresses[0]!.split("/")[0]!;
      return { listen: { host, port: 3128 }, krl: { host, port: DEFAULT_KRL_PORT } };
    });
  // The proxy, and the KRL agents fetch: both on the tunnel only.
  const tcp = [listen, ...(krl ? [krl] : [])];
  const ufw = await openFirewall(c.root, w.listenPort, w.iface, tcp);
  if (ufw) files.push(...ufw);
  else
    next.push(
      `open UDP ${w.listenPort} in this server's firewall, and TCP ${tcp.map((t) => `${t.port} to ${t.host}`).join(" and ")} on ${w.iface}; nothing else needs to be open besides SSH (e.g. ufw allow ${w.listenPort}/udp; ${tcp.map((t) => `ufw allow in on ${w.iface} to ${t.host} port ${t.port} proto tcp`).join("; ")})`,
    );
  next.push(
    `systemctl daemon-reload && systemctl enable --now wg-quick@${w.iface} ${SYNC_UNIT_NAME} ${SHIELD_UNIT_NAME}`,
  );
  next.push(
    `enrol an agent: clawguard shield enroll ID --config ${configFile}; on the agent: clawguard lockdown --join CODE --apply`,
  );
  return files;
}

/**
 * On the live system with ufw: UDP on the listen port from anywhere, and TCP to the proxy (and
 * the KRL) on the tunnel (ufw refuses what arrives on any interface but lo unless told). Null
 * when there is no ufw here, or it is not this system.
 */
async function openFirewall(
  root: string,
  port: number,
  iface: string,
  tcp: Array<{ host: string; port: number }>,
): Promise<InstalledFile[] | null> {
  if (root !== "/" || process.getuid?.() !== 0) return null;
  const rules = [
    ["allow", `${port}/udp`, "comment", "clawguard shield wireguard"],
    ...tcp.map((t, i) => [
      "allow",
      "in",
      "on",
      iface,
      "to",
      t.host,
      "port",
      String(t.port),
      "proto",
      "tcp",
      "comment",
      i === 0 ? "clawguard shield proxy" : "clawguard shield ssh krl",
    ]),
  ];
  for (const args of rules) {
    try {
      await promisify(execFile)("ufw", args);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw new ClawguardError(
        "CG_SYSTEM",
        `ufw ${args.join(" ")} failed: ${(e as { stderr?: string }).stderr?.trim() ?? String(e)}`,
      );
    }
  }
  return [
    { path: "ufw", action: "updated", note: `allow ${port}/udp` },
    ...tcp.map((t) => ({
      path: "ufw",
      action: "updated" as const,
      note: `allow in on ${iface} to ${t.host} port ${t.port} proto tcp`,
    })),
  ];
}
