import { readFile, stat } from "node:fs/promises";
import { InvalidArgumentError, type Command } from "commander";
import { stringify } from "yaml";
import { UsageError } from "../errors.js";
import { renderCloudInit } from "../render/cloud-init.js";
import { renderJoinCloudInit, sizeWarnings, type PackageSource } from "../render/cloud-init-join.js";
import { describeTarball, TarballError } from "../render/npm-tarball.js";
import { decodeJoinCode } from "../shield/wireguard/join-code.js";
import { addProfileOptions, profileFrom, type ProfileFlags } from "./profile-flags.js";

interface CloudInitFlags extends ProfileFlags {
  nodeVersion: string;
  package?: string;
  join?: string;
  json?: boolean;
}

/**
 * clawguard is not on the npm registry, so there is no spec that would install it everywhere.
 * Embedding this install's own tarball by default would make user-data that most providers
 * refuse (it is hundreds of KiB; they take 16 to 64), so the operator says where it comes from.
 */
const NO_DEFAULT_PACKAGE =
  "say where the new server gets clawguard: --package with an npm spec (clawguard@VERSION, once published), " +
  "a tarball URL it can download (e.g. a release asset), or a local tarball to embed (npm pack makes one; one " +
  "that bundles its dependencies installs without a registry, but embedded tarballs pass most providers' user-data limits)";

/** What --package names: a tarball file here (embedded), or a spec or URL npm resolves at boot. */
async function packageSource(spec: string): Promise<PackageSource> {
  const local = await stat(spec).catch(() => null);
  if (local?.isFile()) {
    const bytes = await readFile(spec);
    let d: { isPackage: boolean; bundled: boolean };
    try {
      d = describeTarball(bytes);
    } catch (e) {
      throw new UsageError(`${spec} is ${e instanceof TarballError ? e.message : "unreadable"}`, {
        where: "--package",
        hint: "give the .tgz npm pack wrote",
      });
    }
    if (!d.isPackage)
      throw new UsageError(`${spec} is no npm package tarball (no package/package.json in it)`, {
        where: "--package",
      });
    return { kind: "embedded", base64: bytes.toString("base64"), bundled: d.bundled, name: spec };
  }
  // What npm would read as a path is one on the new server, which does not have it.
  if (!/^https?:\/\//.test(spec) && (/^(\.{0,2}\/|~\/|file:)/.test(spec) || /\.(tgz|tar\.gz)$/.test(spec)))
    throw new UsageError(
      local === null
        ? `${spec} does not exist: a path on this machine, which the new server could not read anyway`
        : `"${spec}" is a path on this machine; the new server cannot read it`,
      {
        where: "--package",
        hint: "give a tarball URL or an npm spec, or with --join a tarball here to embed",
      },
    );
  return { kind: "npm", spec };
}

export function registerCloudInit(program: Command): void {
  addProfileOptions(
    program
      .command("cloud-init")
      .description(
        "print #cloud-config user-data that installs clawguard and hardens at first boot (with --join: and joins the shield and locks down)",
      ),
  )
    .option(
      "--node-version <x.y.z>",
      "Node.js release to install from nodejs.org (skipped when the image has Node 20 or later)",
      (v: string) => {
        if (!/^\d+\.\d+\.\d+$/.test(v)) throw new InvalidArgumentError(`expected X.Y.Z, e.g. 24.11.1`);
        return v;
      },
      "24.11.1",
    )
    .option(
      "--package <spec>",
      "clawguard for the new server: an npm spec, a tarball URL, or a local tarball to embed",
    )
    .option(
      "--join <code>",
      "join the shield with this code (from clawguard shield enroll) and lock egress down to it",
    )
    .option("--json", 'print {"schema":"clawguard.cloud-init/v1","userData":...} instead')
    .action(async (flags: CloudInitFlags) => {
      if (flags.package === undefined) throw new UsageError(NO_DEFAULT_PACKAGE, { where: "--package" });
      const { profile } = await profileFrom(flags);
      let userData: string;
      const warnings: string[] = [];
      if (flags.join !== undefined) {
        // A code that would be refused at first boot is refused now, while someone is watching.
        const code = decodeJoinCode(flags.join, Math.floor(Date.now() / 1000));
        if (code.privateKey === undefined)
          throw new UsageError(
            "this join code carries no private key (the agent was enrolled with --public-key): a server that does not exist yet has no key of its own; enroll it without --public-key",
            { where: "--join" },
          );
        userData = renderJoinCloudInit({
          profileYaml: stringify(profile),
          package: await packageSource(flags.package),
          joinCode: flags.join,
          nodeVersion: flags.nodeVersion,
          // Most servers lease their address: the lockdown must let the lease be renewed.
          lockdownFlags: ["--allow-dhcp"],
        });
        warnings.push(...sizeWarnings(userData));
        warnings.push(
          `the user-data carries the agent's private key until first boot (the code expires ${new Date(code.expires * 1000).toISOString()}): keep it where you keep secrets`,
        );
      } else {
        const src = await packageSource(flags.package);
        if (src.kind === "embedded")
          throw new UsageError("a tarball to embed goes with --join; without it give an npm spec or URL", {
            where: "--package",
          });
        userData = renderCloudInit({
          profileYaml: stringify(profile),
          clawguard: src.spec,
          nodeVersion: flags.nodeVersion,
        });
      }
      for (const w of warnings) if (!flags.json) process.stderr.write(`clawguard: warning: ${w}\n`);
      if (flags.json)
        process.stdout.write(
          JSON.stringify({ schema: "clawguard.cloud-init/v1", profile, userData, warnings }, null, 2) + "\n",
        );
      else process.stdout.write(userData);
    });
}
