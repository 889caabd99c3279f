/**
 * `clawguard shield ca init`, `grant`, `grants` and `revoke-grant`: time-limited SSH access to
 * agents. The CA is made on the shield (as root, beside shield.yaml); grants go through the
 * admin API, so the operator's role and fleets decide, and each is logged with their name.
 */
import { readFile, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { call, DEFAULT_CONFIG, type ApiFlags } from "../shield/admin/client.js";
import { caDirOf, SshCa, type Grant } from "../shield/ssh/ca.js";
import { apiOptions, table } from "./shield-admin.js";

const print = (flags: { json?: boolean }, json: unknown, text: string) =>
  process.stdout.write(
    flags.json ? JSON.stringify(json, null, 2) + "\n" : text.endsWith("\n") ? text : text + "\n",
  );

interface GrantFlags extends ApiFlags {
  key: string;
  for: string;
  as?: string;
  forwarding?: boolean;
  reason?: string;
  out?: string;
}

export function registerShieldAccessCommands(shield: Command): void {
  const ca = shield.command("ca").description("the fleet's SSH user CA, which signs access grants");
  ca.command("init")
    .description("make the CA (ed25519, key 0600 in a 0700 directory beside shield.yaml); once per fleet")
    .option("--config <file>", `shield.yaml (default ${DEFAULT_CONFIG})`)
    .option("--json", "print JSON")
    .action(async (flags: { config?: string; json?: boolean }) => {
      const dir = caDirOf(flags.config ?? DEFAULT_CONFIG);
      const r = await new SshCa(dir).init();
      print(flags, { ok: true, dir, publicKey: r.publicKey }, `SSH CA made in ${dir}\n${r.publicKey}`);
    });

  apiOptions(
    shield
      .command("grant <agent>")
      .description("sign a public key for SSH access to one agent, for a while")
      .requiredOption("--key <file>", "the public key to sign (KEY.pub)")
      .requiredOption("--for <duration>", "how long: 30m, 2h (at most the shield's maximum, 8h unless set)")
      .option("--as <user>", "the one account it opens on the agent (else the agent's default accounts)")
      .option("--no-forwarding", "no port, agent or X11 forwarding with this certificate")
      .option("--reason <text>", "why, for the log")
      .option("--out <file>", "write the certificate there (else it is printed)"),
  ).action(async (agent: string, flags: GrantFlags) => {
    const key = await readFile(flags.key, "utf8").catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read --key ${flags.key} (${e.code ?? e.message})`, { where: "--key" });
    });
    const r = await call(flags, "POST", "/api/grants", {
      agent,
      key,
      for: flags.for,
      ...(flags.as !== undefined ? { as: flags.as } : {}),
      ...(flags.forwarding === false ? { noForwarding: true } : {}),
      ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
    });
    const g = r.grant as Grant;
    const cert = String(r.certificate);
    if (flags.out) await writeFile(flags.out, cert + "\n", { mode: 0o644 });
    print(
      flags,
      r,
      flags.out
        ? `grant ${g.serial} for ${g.principal}${g.user ? ` (as ${g.user} only)` : ""} until ${new Date(g.validBefore).toISOString()}: certificate in ${flags.out}`
        : cert,
    );
  });

  apiOptions(shield.command("grants").description("SSH access grants: active, expired and revoked")).action(
    async (flags: ApiFlags) => {
      const r = await call(flags, "GET", "/api/grants");
      const list = r.grants as Array<Grant & { state: string }>;
      print(
        flags,
        r,
        list.length === 0
          ? "no grants"
          : table([
              ["SERIAL", "AGENT", "AS", "STATE", "UNTIL", "OPERATOR", "REASON"],
              ...list.map((g) => [
                String(g.serial),
                g.agent,
                g.user ?? "(default)",
                g.state,
                new Date(g.validBefore).toISOString(),
                g.operator,
                g.reason ?? "",
              ]),
            ]),
      );
    },
  );

  apiOptions(
    shield
      .command("revoke-grant <serial>")
      .description("revoke a grant: its certificate goes into the KRL agents fetch"),
  ).action(async (serial: string, flags: ApiFlags) => {
    if (!/^[1-9][0-9]{0,15}$/.test(serial))
      throw new UsageError(`a grant's serial is a number, not "${serial}"`);
    const r = await call(flags, "DELETE", "/api/grants", { serial: Number(serial) });
    print(flags, r, `grant ${serial} revoked: in the KRL now`);
  });
}
