import { readFile, realpath } from "node:fs/promises";
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
  sshCa?: string;
  agentId?: string;
  sshCaUsers?: string;
  krlFrom?: string;
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
    .option(
      "--ssh-ca <file>",
      "trust this fleet SSH CA public key for certificates naming this agent (with --agent-id)",
    )
    .option("--agent-id <id>", "this agent's id in the shield's config: its SSH principal is agent-ID")
    .option(
      "--ssh-ca-users <a,b>",
      "accounts a grant without --as opens (with --ssh-ca; default: login accounts with authorized_keys, never root)",
    )
    .option(
      "--krl-from <url>",
      "fetch the shield's KRL from here every 15 s (with --ssh-ca), e.g. http://10.77.0.1:3129/ssh/krl",
    )
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

/** This clawguard as the KRL timer runs it: this node and this bin, by their real paths. */
export async function thisClawguard(): Promise<string[]> {
  const bin = process.argv[1];
  return bin ? [process.execPath, await realpath(bin)] : ["/usr/local/bin/clawguard"];
}

/** The profile file with the flags over it; a problem names the file's line or the flag. */
/**
 * `here`: the profile is applied on this machine (harden), so the KRL timer runs this very
 * clawguard; elsewhere (cloud-init, fleet) it runs /usr/local/bin/clawguard, where they install it.
 */
export async function profileFrom(flags: ProfileFlags, here = false): Promise<{ profile: Profile }> {
  const file = flags.profile !== undefined ? await loadProfile(flags.profile) : undefined;
  const raw: Record<string, unknown> = { ...file?.settings };
  const given = new Map<string, string>();
  const set = (key: string, flag: string, value: unknown) => {
    raw[key] = value;
    given.set(key, flag);
  };
  if (flags.user !== undefined) set("user", "--user", flags.user);
  if (flags.gatewayPort !== undefined)
    set("gatewayPort", "--gateway-port", num("--gateway-port", flags.gatewayPort));
  if (flags.port !== undefined)
    set(
      "ports",
      "--port",
      flags.port.map((p) => num("--port", p)),
    );
  if (flags.www) set("www", "--www", true);
  if (flags.shield !== undefined) set("shield", "--shield", flags.shield);
  // --skip adds to the file's list, and commander has checked its values: a bad one is the file's.
  if (flags.skip !== undefined)
    raw.skip = Array.isArray(raw.skip)
      ? [...new Set([...raw.skip, ...flags.skip])]
      : (raw.skip ?? flags.skip);
  if ((flags.sshCa === undefined) !== (flags.agentId === undefined))
    throw new UsageError("--ssh-ca and --agent-id go together: the CA, and the principal it must name");
  if (flags.sshCa !== undefined) {
    const publicKey = await readFile(flags.sshCa, "utf8").catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read --ssh-ca ${flags.sshCa} (${e.code ?? e.message})`, {
        where: "--ssh-ca",
      });
    });
    set("sshCa", "--ssh-ca", {
      publicKey: publicKey.trim(),
      agent: flags.agentId,
      ...(flags.sshCaUsers !== undefined
        ? {
            users: flags.sshCaUsers
              .split(",")
              .map((u) => u.trim())
              .filter(Boolean),
          }
        : {}),
      ...(flags.krlFrom !== undefined
        ? { krlUrl: flags.krlFrom, ...(here ? { launcher: await thisClawguard() } : {}) }
        : {}),
    });
    if (flags.sshCaUsers !== undefined) given.set("sshCa.users", "--ssh-ca-users");
  } else if (flags.sshCaUsers !== undefined)
    throw new UsageError("--ssh-ca-users goes with --ssh-ca: the accounts its certificates open");
  else if (flags.krlFrom !== undefined)
    throw new UsageError("--krl-from goes with --ssh-ca: the KRL is the revocation list of that CA");
  return { profile: validateProfile(raw, { file, flags: given }) };
}
