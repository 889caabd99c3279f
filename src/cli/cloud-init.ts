import { InvalidArgumentError, type Command } from "commander";
import { stringify } from "yaml";
import { UsageError } from "../errors.js";
import { renderCloudInit } from "../render/cloud-init.js";
import { addProfileOptions, profileFrom, type ProfileFlags } from "./profile-flags.js";

interface CloudInitFlags extends ProfileFlags {
  nodeVersion: string;
  package?: string;
  json?: boolean;
}

export function registerCloudInit(program: Command, version: string): void {
  addProfileOptions(
    program
      .command("cloud-init")
      .description("print #cloud-config user-data that installs clawguard and hardens at first boot"),
  )
    .option(
      "--node-version <x.y.z>",
      "Node.js release to install from nodejs.org",
      (v: string) => {
        if (!/^\d+\.\d+\.\d+$/.test(v)) throw new InvalidArgumentError(`expected X.Y.Z, e.g. 24.11.1`);
        return v;
      },
      "24.11.1",
    )
    .option(
      "--package <spec>",
      "what npm installs on the new server: a tarball URL (npm pack, then host it) or a registry spec",
    )
    .option("--json", 'print {"schema":"clawguard.cloud-init/v1","userData":...} instead')
    .action(async (flags: CloudInitFlags) => {
      const clawguard = packageSpec(flags.package, version);
      const { profile } = await profileFrom(flags);
      const userData = renderCloudInit({
        profileYaml: stringify(profile),
        clawguard,
        nodeVersion: flags.nodeVersion,
      });
      if (flags.json)
        process.stdout.write(
          JSON.stringify({ schema: "clawguard.cloud-init/v1", profile, userData }, null, 2) + "\n",
        );
      else process.stdout.write(userData);
    });
}

/**
 * What the new server's npm installs. There is no default: clawguard is not on the npm registry,
 * so a default `clawguard@VERSION` would render user-data whose install fails at first boot. A
 * path on this machine is refused too, since the new server does not have it.
 */
export function packageSpec(spec: string | undefined, version: string): string {
  const hint = `in a clawguard checkout: npm pack; put clawguard-${version}.tgz where the server can fetch it; then: --package https://HOST/clawguard-${version}.tgz`;
  if (spec === undefined || spec.trim() === "")
    throw new UsageError(
      "required: the new server installs clawguard with npm, and clawguard is not on the npm registry",
      {
        where: "--package",
        hint,
      },
    );
  if (/^https?:\/\//.test(spec)) return spec;
  if (/^(\.{0,2}\/|~\/|file:)/.test(spec) || /\.tgz$/.test(spec))
    throw new UsageError(`"${spec}" is a path on this machine; the new server cannot read it`, {
      where: "--package",
      hint,
    });
  return spec;
}
