import { DPKG_STATUS, parseDpkgStatus, type PackagesFact } from "../facts/packages.js";
import { parseGroup, parsePasswd } from "../facts/users.js";
import { HostError, isMissing } from "../host/errors.js";
import { realNoFollow, type Host } from "../host/host.js";
import { confinedTo, type Writer } from "../host/writer.js";
import type { Change } from "./change.js";
import { chownTree } from "./owners.js";
import { loadRuleset, type Ruleset, type Step } from "./ruleset.js";
import { missingAncestors } from "./saved.js";

const APT_ENV = { DEBIAN_FRONTEND: "noninteractive", NEEDRESTART_MODE: "a" };
const APT_TIMEOUT = 15 * 60_000;
const UNREACHABLE =
  /Temporary failure resolving|Could not resolve|Could not connect|Failed to fetch|Unable to fetch|Network is unreachable|Connection timed out/i;

/** Owner and group names (or numbers) as the target system knows them, read fresh each time. */
export async function resolveIds(
  host: Host,
  owner: string,
  group: string,
): Promise<{ uid: number; gid: number }> {
  const num = (s: string) => (/^\d+$/.test(s) ? Number(s) : undefined);
  let uid = num(owner);
  let gid = num(group);
  if (uid === undefined) {
    const u = parsePasswd(await host.readFile("/etc/passwd")).find((x) => x.name === owner);
    if (!u) throw new Error(`user "${owner}" does not exist in /etc/passwd`);
    uid = u.uid;
  }
  if (gid === undefined) {
    const g = parseGroup(await host.readFile("/etc/group")).find((x) => x.name === group);
    if (!g) throw new Error(`group "${group}" does not exist in /etc/group`);
    gid = g.gid;
  }
  return { uid, gid };
}

export async function installedPackages(host: Host): Promise<PackagesFact> {
  try {
    return { installed: parseDpkgStatus(await host.readFile(DPKG_STATUS)) };
  } catch (err) {
    if (isMissing(err)) return { installed: {} };
    throw err;
  }
}

/** Make one change; what it ran on the live system comes back as steps. */
export async function perform(host: Host, writer: Writer, c: Change): Promise<Step[]> {
  switch (c.kind) {
    case "file": {
      const ids = await resolveIds(host, c.owner, c.group);
      for (const d of await missingAncestors(host, c.path)) await writer.mkdir(d, { mode: 0o755, ...ids });
      await confinedTo(writer, c.within).writeFile(c.path, c.content, { mode: c.mode, ...ids });
      return [];
    }
    case "mkdir": {
      const ids = await resolveIds(host, c.owner, c.group);
      for (const d of await missingAncestors(host, c.path)) await writer.mkdir(d, { mode: 0o755, ...ids });
      await writer.mkdir(c.path, { mode: c.mode, ...ids });
      return [];
    }
    case "chmod":
      await optional(c.optional, () => confinedTo(writer, c.within).chmod(c.path, c.mode));
      return [];
    case "chown": {
      const ids = await resolveIds(host, c.owner, c.group);
      await optional(c.optional, () => confinedTo(writer, c.within).chown(c.path, ids.uid, ids.gid));
      return [];
    }
    case "chown-tree": {
      const ids = await resolveIds(host, c.owner, c.group);
      await chownTree(host, writer, c.path, ids.uid, ids.gid);
      return [];
    }
    case "move":
      if (await host.lstat(c.to)) throw new Error(`${c.to} already exists; refusing to overwrite it`);
      await writer.rename(c.from, c.to);
      return [];
    case "remove":
      await writer.remove(c.path);
      return [];
    case "command":
      return [await runOrThrow(host, c.argv)];
    case "package":
      await installPackages(host, c.names);
      return [];
    case "symlink": {
      const ids = await resolveIds(host, c.owner, c.group);
      for (const d of await missingAncestors(host, c.path)) await writer.mkdir(d, { mode: 0o755, ...ids });
      if (await host.lstat(c.path)) await writer.remove(c.path);
      await writer.symlink(c.target, c.path);
      await writer.chown(c.path, ids.uid, ids.gid);
      return [];
    }
    case "service":
      return [await runOrThrow(host, ["systemctl", "restart", c.unit])];
    case "ruleset":
      return loadRuleset(c.ruleset, await rulesetFiles(host, c.ruleset));
  }
}

/** Run a command in the host's root; a non-zero exit is an error with its last lines. */
async function runOrThrow(host: Host, argv: string[]): Promise<Step> {
  const [cmd, ...args] = argv;
  const r = await host.run(cmd!, args, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${lastLines(r.stderr || r.stdout)}`);
  return { command: argv.join(" "), ok: true };
}

/** The ruleset's files as paths on this machine, where the kernel's tools read them. */
export async function rulesetFiles(
  host: Host,
  r: Ruleset,
): Promise<{ nft?: string; 4?: string; 6?: string }> {
  if (r.backend === "nft") return { nft: await realNoFollow(host, r.file) };
  return { 4: await realNoFollow(host, r.files[4]), 6: await realNoFollow(host, r.files[6]) };
}

/** Run `fn`; when `skipMissing`, a path that no longer exists is not an error. */
async function optional(skipMissing: boolean | undefined, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(skipMissing && err instanceof HostError && err.problem.kind === "missing")) throw err;
  }
}

async function installPackages(host: Host, names: string[]): Promise<void> {
  const install = () =>
    host.run(
      "apt-get",
      [
        "install",
        "-y",
        "-q",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        "Dpkg::Options::=--force-confdef",
        ...names,
      ],
      { env: APT_ENV, timeoutMs: APT_TIMEOUT },
    );
  let r = await install();
  if (
    r.code !== 0 &&
    /Unable to locate package|404\s+Not Found|has no installation candidate/i.test(r.stderr + r.stdout)
  ) {
    // Stale package lists: refresh once and try again.
    const u = await host.run("apt-get", ["update", "-q"], { env: APT_ENV, timeoutMs: APT_TIMEOUT });
    if (u.code !== 0 && UNREACHABLE.test(u.stderr + u.stdout)) {
      throw new Error(
        `apt cannot reach its mirror (${firstMatch(u.stderr + u.stdout)}); check the network or the apt proxy, then run harden again`,
      );
    }
    r = await install();
  }
  if (r.code === 0) return;
  const out = r.stderr + r.stdout;
  if (UNREACHABLE.test(out)) {
    throw new Error(
      `apt cannot reach its mirror (${firstMatch(out)}); check the network or the apt proxy, then run harden again`,
    );
  }
  throw new Error(`apt-get install ${names.join(" ")} exited ${r.code}: ${lastLines(out)}`);
}

function firstMatch(out: string): string {
  return (
    out
      .split("\n")
      .find((l) => UNREACHABLE.test(l))
      ?.trim() ?? "no route to the mirror"
  );
}

function lastLines(s: string): string {
  return s.trim().split("\n").slice(-3).join(" | ") || "no output";
}
