import { Option, type Command } from "commander";
import { LAYERS, type Layer } from "../checks/finding.js";
import { UsageError } from "../errors.js";
import { loadProfile, validateProfile, type Profile } from "../harden/profile.js";
import { parseChoice } from "./main.js";

export interface ProfileFlags {
  profile?: string;
  user?: string;
  gatewayPort?: string;
  port?: string[];
  www?: boolean;
  shield?: string;
  skip?: Layer[];
}

/** The profile options shared by harden and cloud-init; flags override the file. */
export function addProfileOptions(cmd: Command): Command {
  return cmd
    .option("--profile <file>", "YAML profile: user, gatewayPort, ports, www, shield, skip")
    .option("--user <name>", "service user the gateway runs as (default openclaw)")
    .option("--gateway-port <port>", "the gateway's port on loopback (default 18789)")
    .option("--port <port...>", "inbound TCP ports to allow besides SSH (default 80 443)")
    .option("--www", "add the service user to www-data and let it write /var/www")
    .option("--shield <host:port>", "send the gateway's traffic through this egress shield")
    .addOption(
      new Option("--skip <layer...>", `leave these layers alone (${LAYERS.join(", ")})`).argParser(
        (v: string, prev: Layer[] | undefined) => [...(prev ?? []), parseChoice("--skip", LAYERS)(v)],
      ),
    );
}

function num(flag: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag} must be a port number, got "${v}"`);
  return Number(v);
}

export async function profileFrom(
  flags: ProfileFlags,
): Promise<{ profile: Profile; raw: Record<string, unknown> }> {
  const raw: Record<string, unknown> = flags.profile ? await loadProfile(flags.profile) : {};
  if (flags.user !== undefined) raw.user = flags.user;
  if (flags.gatewayPort !== undefined) raw.gatewayPort = num("--gateway-port", flags.gatewayPort);
  if (flags.port !== undefined) raw.ports = flags.port.map((p) => num("--port", p));
  if (flags.www) raw.www = true;
  if (flags.shield !== undefined) raw.shield = flags.shield;
  if (flags.skip !== undefined)
    raw.skip = [...new Set([...((raw.skip as Layer[] | undefined) ?? []), ...flags.skip])];
  return { profile: validateProfile(raw, flags.profile ?? "flags"), raw };
}
