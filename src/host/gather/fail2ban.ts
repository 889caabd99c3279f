import { ok, skipped, type Fact, type Problem } from "../../facts/fact.js";
import {
  F2B_DIR,
  F2B_WANTS,
  jailOption,
  parseIni,
  parseServices,
  type Fail2banFact,
  type Ini,
  type LogFile,
} from "../../facts/fail2ban.js";
import { entry, table } from "../../facts/record.js";
import type { FactContext } from "../context.js";
import { HostError, isMissing, toProblem } from "../errors.js";
import type { Host } from "../host.js";
import { expandGlob } from "./glob.js";
import { gather } from "./guard.js";

const JOURNALD = ["/usr/lib/systemd/systemd-journald", "/lib/systemd/systemd-journald"];

async function readOptional(host: Host, path: string): Promise<string | null> {
  try {
    return await host.readFile(path);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

/** Read a file and its `[INCLUDES] before/after` files around it, in fail2ban's order. */
async function readWithIncludes(
  host: Host,
  path: string,
  ini: Ini,
  files: string[],
  depth = 0,
): Promise<void> {
  if (depth > 10) return;
  const text = await readOptional(host, path);
  if (text === null) return;
  const own = parseIni(text, path);
  const inc = entry(own, "INCLUDES");
  const dir = path.slice(0, path.lastIndexOf("/"));
  const list = (k: string) =>
    (entry(inc ?? {}, k)?.value ?? "")
      .split(/\s+/)
      .filter(Boolean)
      .map((p) => (p.startsWith("/") ? p : `${dir}/${p}`));
  for (const p of list("before")) await readWithIncludes(host, p, ini, files, depth + 1);
  parseIni(text, path, ini);
  files.push(path);
  for (const p of list("after")) await readWithIncludes(host, p, ini, files, depth + 1);
}

/** fail2ban's reading order for jails: jail.conf < jail.d/*.conf < jail.local < jail.d/*.local. */
export async function readJailConfig(host: Host, dir = F2B_DIR): Promise<{ ini: Ini; files: string[] }> {
  const ini: Ini = table();
  const files: string[] = [];
  const order = [
    [`${dir}/jail.conf`],
    await expandGlob(host, `${dir}/jail.d/*.conf`),
    [`${dir}/jail.local`],
    await expandGlob(host, `${dir}/jail.d/*.local`),
  ].flat();
  for (const p of order) await readWithIncludes(host, p, ini, files);
  return { ini, files };
}

// Used when /etc/services is missing (a minimal image); the names that matter for an sshd jail.
const WELL_KNOWN: Record<string, number> = { ssh: 22, http: 80, https: 443 };

async function liveState(host: Host, verb: string): Promise<string | undefined> {
  if (host.root !== "/") return undefined;
  try {
    const r = await host.run("systemctl", [verb, "fail2ban.service"]);
    return r.stdout.trim().split("\n")[0] || undefined;
  } catch (err) {
    if (err instanceof HostError) return undefined;
    throw err;
  }
}

/** fail2ban's merged jail configuration and what its sshd jail needs from this system. */
export function gatherFail2ban(ctx: FactContext): Promise<Fact<Fail2banFact>> {
  return gather(`${F2B_DIR}/jail.conf`, async () => {
    const h = ctx.host;
    if (!(await h.stat(F2B_DIR))) return skipped(`${F2B_DIR} does not exist`);
    const problems: Problem[] = [];
    const { ini, files } = await readJailConfig(h);
    let services = WELL_KNOWN;
    try {
      const text = await readOptional(h, "/etc/services");
      if (text !== null) services = Object.assign(table<number>(), WELL_KNOWN, parseServices(text));
    } catch (err) {
      problems.push(toProblem("/etc/services", err));
    }
    const sshdLogs: LogFile[] = [];
    const logpath = jailOption(ini, "sshd", "logpath");
    for (const line of (logpath?.value ?? "").split("\n")) {
      const pattern = line.trim().split(/\s+/)[0];
      if (!pattern) continue;
      sshdLogs.push({ pattern, found: await expandGlob(h, pattern).then((ps) => filterExisting(h, ps)) });
    }
    let journald = false;
    for (const j of JOURNALD) if (await h.stat(j)) journald = true;
    const [liveEnabled, liveActive] = await Promise.all([
      liveState(h, "is-enabled"),
      liveState(h, "is-active"),
    ]);
    return ok(
      {
        files,
        ini,
        wantsLink: (await h.lstat(F2B_WANTS)) !== null,
        liveEnabled,
        liveActive,
        journald,
        services,
        sshdLogs,
      },
      files,
      problems,
    );
  });
}

async function filterExisting(host: Host, paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) if ((await host.stat(p))?.type === "file") out.push(p);
  return out;
}
