import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { profileFrom } from "../../src/cli/profile-flags.js";
import { ClawguardError } from "../../src/errors.js";
import { tempDir } from "./tree.js";

function profileFile(text: string): string {
  const file = path.join(tempDir("profile"), "profile.yaml");
  writeFileSync(file, text);
  return file;
}

async function refusal(flags: Parameters<typeof profileFrom>[0]): Promise<ClawguardError> {
  const err = await profileFrom(flags).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err instanceof ClawguardError) return err;
  throw new Error(`expected a ClawguardError, got ${String(err)}`);
}

describe("a harden profile", () => {
  it("names the file, line and key of a bad setting", async () => {
    const file = profileFile("user: openclaw\nports:\n  - 80\n  - 99999\n");
    const err = await refusal({ profile: file });
    expect(err.code).toBe("CG_CONFIG_INVALID");
    expect(err.message).toMatch(new RegExp(`^${file}:4: ports\\[1\\]: Too big`));
  });

  it("names the line of an unknown key", async () => {
    const err = await refusal({ profile: profileFile("user: openclaw\nwebsite: true\n") });
    expect(err.where).toMatch(/profile\.yaml:2$/);
    expect(err.reason).toBe('website: unknown key "website"');
  });

  it("names the flag, not the file, when a flag's value is wrong", async () => {
    const file = profileFile("user: openclaw\ngatewayPort: 18789\n");
    const err = await refusal({ profile: file, port: ["80", "18789"] });
    expect(err.code).toBe("CG_USAGE");
    expect(err.message).toBe(
      "--port: the gateway port may never be opened in the firewall; reach it through ssh -L",
    );
  });

  it("takes an empty file as every default, with the flags over it", async () => {
    const { profile } = await profileFrom({ profile: profileFile("# nothing yet\n"), user: "agent" });
    expect(profile).toMatchObject({ user: "agent", gatewayPort: 18789, ports: [80, 443] });
  });

  it("takes --ssh-ca-users as the CA's default accounts, and refuses it alone or malformed", async () => {
    const ca = path.join(tempDir("ca"), "fleet-ca.pub");
    writeFileSync(
      ca,
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOa3Z7kTJ0Wl0m2F2xq2cC8m3kqJd1QkXo0l3bqK9yQ3 ca\n",
    );
    const { profile } = await profileFrom({ sshCa: ca, agentId: "scout", sshCaUsers: "deploy, ops" });
    expect(profile.sshCa?.users).toEqual(["deploy", "ops"]);
    const alone = await refusal({ sshCaUsers: "deploy" });
    expect(alone.message).toBe("--ssh-ca-users goes with --ssh-ca: the accounts its certificates open");
    const bad = await refusal({ sshCa: ca, agentId: "scout", sshCaUsers: "deploy,Root" });
    expect(bad.code).toBe("CG_USAGE");
    expect([bad.where, bad.reason]).toEqual([
      "--ssh-ca-users",
      "must be Linux user names (lowercase, at most 32 characters)",
    ]);
  });
});
