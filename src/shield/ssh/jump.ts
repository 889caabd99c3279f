/**
 * Keep the shield's sshd forwarding to enrolled agents' SSH ports only (ssh_access.jump): the
 * drop-in is rewritten from shield.yaml's WireGuard agents, `sshd -t` must accept the whole
 * config before sshd reloads, and a config it refuses is put back as it was. sshd reads its
 * files only when it starts or reloads, so a refused file is never in force.
 */
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import type { ShieldConfig } from "../config.js";
import { JUMP_DROP_IN, renderJumpDropIn } from "../../render/sshd-jump.js";
import type { Run } from "../wireguard/live.js";

export interface JumpOutcome {
  applied: boolean;
  /** The drop-in was rewritten (false when it was in step already, or put back). */
  changed: boolean;
  detail: string;
}

/** The enrolled WireGuard agents' tunnel addresses, without their prefix. */
export function jumpTargets(cfg: ShieldConfig): string[] {
  return cfg.agents
    .filter((a) => a.wireguard !== undefined)
    .flatMap((a) => (a.sources ?? []).map((s) => s.split("/")[0]!));
}

export async function syncJumpHosts(
  cfg: ShieldConfig,
  run: Run,
  file: string = JUMP_DROP_IN,
): Promise<JumpOutcome | null> {
  if (!cfg.sshAccess.jump) return null;
  const targets = jumpTargets(cfg);
  const text = renderJumpDropIn(targets);
  const before = await readFile(file, "utf8").catch(() => null);
  if (before === text)
    return { applied: true, changed: false, detail: `${file}: in step (${targets.length} address(es))` };
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, file);
  const check = await run(["sshd", "-t"]).catch((e: unknown) => ({
    code: -1,
    stdout: "",
    stderr: String(e),
  }));
  if (check.code !== 0) {
    if (before === null) await rm(file, { force: true });
    else await writeFile(file, before, { mode: 0o644 });
    return {
      applied: false,
      changed: false,
      detail: `sshd -t refused the config with ${file} (${check.stderr.trim().split("\n")[0] ?? ""}); put back as it was`,
    };
  }
  const reload = await run(["systemctl", "reload", "ssh.service"]).catch((e: unknown) => ({
    code: -1,
    stdout: "",
    stderr: String(e),
  }));
  if (reload.code !== 0)
    return {
      applied: false,
      changed: true,
      detail: `${file} written and accepted by sshd -t, but systemctl reload ssh.service failed (${reload.stderr.trim().split("\n")[0] ?? ""}): reload sshd`,
    };
  return {
    applied: true,
    changed: true,
    detail: `${file}: forwarding to ${targets.length} agent address(es) only`,
  };
}
