/**
 * `clawguard ssh-ca fetch-krl`: on an agent, get the fleet's KRL from the shield and install it
 * where sshd's RevokedKeys points. The timer `harden --ssh-ca ... --krl-from URL` (and
 * `lockdown --join`) installs runs it every 15 s; by hand it says what it did.
 */
import { fetchKrl, KRL_STATE_FILE } from "../harden/krl-fetch.js";
import { SSH_CA_KRL } from "../render/sshd-ca.js";
import type { Register } from "./main.js";

export const registerSshCa: Register = (program) => {
  const group = program
    .command("ssh-ca")
    .description("on an agent: the fleet's SSH CA and its revocation list");
  group
    .command("fetch-krl")
    .description(
      "fetch the shield's KRL, check it with ssh-keygen -Q, and install it; keep the last one on failure",
    )
    .requiredOption("--from <url>", "where the shield serves it, e.g. http://10.77.0.1:3129/ssh/krl")
    .option("--krl <file>", `where sshd's RevokedKeys points (default ${SSH_CA_KRL})`)
    .option("--state <file>", `the record of attempts audit reads (default ${KRL_STATE_FILE})`)
    .option("--json", "print JSON")
    .action(async (flags: { from: string; krl?: string; state?: string; json?: boolean }) => {
      const r = await fetchKrl({
        url: flags.from,
        ...(flags.krl !== undefined ? { krlFile: flags.krl } : {}),
        ...(flags.state !== undefined ? { stateFile: flags.state } : {}),
      });
      process.stdout.write(
        flags.json
          ? JSON.stringify({ schema: "clawguard.krl-fetch-result/v1", ok: true, ...r }) + "\n"
          : `KRL version ${r.version} (${r.serials} serial(s) revoked): ${r.installed ? "installed" : "unchanged"}\n`,
      );
    });
};
