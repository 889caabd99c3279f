import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { joinExpiryMs } from "../shield/wireguard/enrolment.js";
import { enrollAgent, revokeAgent, type LiveOutcome } from "../shield/wireguard/enroll.js";
import { describe, startSyncDaemon, syncOnceFromFile } from "../shield/wireguard/sync.js";

interface EnrollFlags {
  config: string;
  endpoint?: string;
  fleet?: string;
  tier?: string;
  publicKey?: string;
  presharedKey?: boolean;
  expires: string;
  json?: boolean;
}

function out(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : text + "\n");
}

function liveLine(live: LiveOutcome | null): string[] {
  if (live === null) return [];
  return [live.applied ? `interface: ${live.detail}` : `interface not changed: ${live.detail}`];
}

/** The shield's log names the user from the journal; without it, the change reads "by hand". */
function journalNote(problem: string | null): void {
  if (problem !== null)
    process.stderr.write(
      `note: the membership journal could not be written (${problem}): the shield's log will say the change was made by hand\n`,
    );
}

function jumpLine(jump: LiveOutcome | null): string[] {
  if (jump === null) return [];
  return [jump.applied ? `sshd: ${jump.detail}` : `sshd not changed: ${jump.detail}`];
}

/** `enroll`, `revoke` (edit shield.yaml and the live interface) and `wireguard-sync` (root's daemon). */
export function registerShieldWireguardCommands(shield: Command, setCode: (c: number) => void): void {
  shield
    .command("enroll")
    .description(
      "add an agent on WireGuard: next free addresses, shield.yaml, the live interface, and a join code",
    )
    .argument("<id>", "the agent's id in shield.yaml")
    .requiredOption("--config <file>", "shield.yaml (with a wireguard section)")
    .option("--endpoint <host:port>", "where agents send their packets (default: wireguard.endpoint)")
    .option("--fleet <fleet>", "the agent's fleet")
    .option("--tier <tier>", "the agent's tier")
    .option(
      "--public-key <key>",
      "the agent made its own key (clawguard lockdown keygen): the code then carries no private key; for an enrolled agent, rotates its key",
    )
    .option(
      "--preshared-key",
      "add a preshared key to the tunnel (kept in a root-only file beside the shield's key)",
    )
    .option("--expires <duration>", "how long the join code may be used (e.g. 30m, 24h, 7d)", "24h")
    .option("--json", 'print {"schema":"clawguard.shield-enroll/v1","agent","addresses","join",...}')
    .action(async (id: string, flags: EnrollFlags) => {
      const ms = joinExpiryMs(flags.expires);
      if (ms === null)
        throw new UsageError(`"${flags.expires}" is not a duration from 1m to 30d (e.g. 30m, 24h, 7d)`, {
          where: "--expires",
        });
      const r = await enrollAgent({
        configFile: flags.config,
        id,
        ...(flags.endpoint !== undefined ? { endpoint: flags.endpoint } : {}),
        ...(flags.fleet !== undefined ? { fleet: flags.fleet } : {}),
        ...(flags.tier !== undefined ? { tier: flags.tier } : {}),
        ...(flags.publicKey !== undefined ? { publicKey: flags.publicKey } : {}),
        presharedKey: flags.presharedKey === true,
        expiresInMs: ms,
      });
      journalNote(r.journal);
      if (flags.json) {
        out(
          JSON.stringify(
            {
              schema: "clawguard.shield-enroll/v1",
              agent: r.agent,
              addresses: r.addresses,
              join: r.join,
              publicKey: r.publicKey,
              rotated: r.rotated,
              expires: new Date(r.expires * 1000).toISOString(),
              live: r.live,
              ...(r.jump ? { jump: r.jump } : {}),
            },
            null,
            2,
          ),
        );
      } else {
        out(
          [
            `${r.rotated ? "new key for" : "enrolled"} ${r.agent}: ${r.addresses.join(", ")}, key ${r.publicKey}`,
            ...liveLine(r.live),
            ...jumpLine(r.jump),
            `join code, valid until ${new Date(r.expires * 1000).toISOString()}` +
              (flags.publicKey === undefined
                ? " (it holds the agent's private key: hand it over as you would a password):"
                : ":"),
            r.join,
            `on the agent: clawguard lockdown --join <code> --apply   (or: clawguard cloud-init --join <code> for a new server)`,
          ].join("\n"),
        );
      }
      setCode(0);
    });

  shield
    .command("revoke")
    .description(
      "remove an agent: shield.yaml, the live interface; the running shield closes its tunnels and logs it",
    )
    .argument("<id>", "the agent's id in shield.yaml")
    .requiredOption("--config <file>", "shield.yaml")
    .option("--json", "print as JSON (schema clawguard.shield-revoke/v1)")
    .action(async (id: string, flags: { config: string; json?: boolean }) => {
      const r = await revokeAgent({ configFile: flags.config, id });
      journalNote(r.journal);
      if (flags.json) {
        const { jump, journal: _journal, ...rest } = r;
        out(
          JSON.stringify(
            { schema: "clawguard.shield-revoke/v1", ...rest, ...(jump ? { jump } : {}) },
            null,
            2,
          ),
        );
      } else
        out(
          [
            `revoked ${r.agent}${r.addresses.length ? ` (${r.addresses.join(", ")})` : ""}: removed from ${flags.config}`,
            r.shieldLogged === true
              ? "the running shield applied it: the agent's tunnels are closed and the revocation is in its log"
              : r.shieldLogged === false
                ? "the shield did not log the revocation within 3 s: is it running? It applies the file when it starts"
                : "no shield log yet: the shield applies the file when it starts",
            ...liveLine(r.live),
            ...jumpLine(r.jump),
          ].join("\n"),
        );
      setCode(0);
    });

  shield
    .command("wireguard-sync")
    .description(
      "as root: keep the WireGuard interface's peers and table in step with shield.yaml, and publish their status for the shield",
    )
    .requiredOption("--config <file>", "shield.yaml (with a wireguard section)")
    .option("--once", "apply once and exit (non-zero when the config or the interface is not right)")
    .action(async (flags: { config: string; once?: boolean }) => {
      if (flags.once) {
        out(`clawguard wireguard-sync: ${describe(await syncOnceFromFile(flags.config))}`);
        setCode(0);
        return;
      }
      const daemon = await startSyncDaemon({
        configFile: flags.config,
        say: (l) => out(`clawguard wireguard-sync: ${l}`),
      });
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGTERM", stop);
          process.off("SIGINT", stop);
          resolve();
        };
        process.on("SIGTERM", stop);
        process.on("SIGINT", stop);
      });
      daemon.close();
      setCode(0);
    });
}
