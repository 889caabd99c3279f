import { InvalidArgumentError, type Command } from "commander";
import { stringify } from "yaml";
import { renderCloudInit } from "../render/cloud-init.js";
import { addProfileOptions, profileFrom, type ProfileFlags } from "./profile-flags.js";

interface CloudInitFlags extends ProfileFlags {
  nodeVersion: string;
  package: string;
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
    .option("--package <spec>", "what npm installs", `clawguard@${version}`)
    .option("--json", 'print {"schema":"clawguard.cloud-init/v1","userData":...} instead')
    .action(async (flags: CloudInitFlags) => {
      const { profile } = await profileFrom(flags);
      const userData = renderCloudInit({
        profileYaml: stringify(profile),
        clawguard: flags.package,
        nodeVersion: flags.nodeVersion,
      });
      if (flags.json)
        process.stdout.write(
          JSON.stringify({ schema: "clawguard.cloud-init/v1", profile, userData }, null, 2) + "\n",
        );
      else process.stdout.write(userData);
    });
}
