import { ok, skipped, type Fact, type Problem } from "../../facts/fact.js";
import { table } from "../../facts/record.js";
import {
  addSshdSetting,
  configuredPorts,
  parsePrincipals,
  parseSshdT,
  sshdPathFor,
  SSHD_CONFIG,
  sshdDirectives,
  sshdValue,
  type AuthorizedKeys,
  type RootPrincipals,
  type SshdConfigParse,
  type SshdFact,
} from "../../facts/sshd.js";
import { canLogIn } from "../../facts/users.js";
import { KRL_STATE_FILE, parseKrlFetchState, type RevocationFact } from "../../facts/krl.js";
import type { FactContext } from "../context.js";
import { HostError, isMissing, toProblem } from "../errors.js";
import type { Host } from "../host.js";
import { expandGlob } from "./glob.js";
import { gather } from "./guard.js";

/**
 * Read sshd_config the way sshd does: `Include` expanded in place (globs, paths relative to
 * /etc/ssh), the first value of a keyword wins, and a `Match` block (which ends at the next
 * Match or at the end of the file that opened it) does not set global values.
 */
export async function parseSshdConfig(host: Host, path = SSHD_CONFIG): Promise<SshdConfigParse> {
  const out: SshdConfigParse = { settings: table(), matches: [], files: [], problems: [] };
  const visit = async (file: string, inherited: string | null, depth: number): Promise<void> => {
    if (depth > 16) {
      out.problems.push({ kind: "malformed", source: file, message: "Include nested more than 16 deep" });
      return;
    }
    const text = await host.readFile(file);
    out.files.push(file);
    let match = inherited;
    for (const d of sshdDirectives(text)) {
      const key = d.key;
      if (key === "match") {
        match = /^all$/i.test(d.args) ? null : d.args;
        continue;
      }
      if (key === "include") {
        for (const pat of d.args.split(/\s+/).filter(Boolean)) {
          const abs = pat.startsWith("/") ? pat : `/etc/ssh/${pat}`;
          for (const inc of await expandGlob(host, abs)) {
            try {
              await visit(inc, match, depth + 1);
            } catch (err) {
              // sshd skips an Include that matches nothing, so a missing file is no problem.
              const p = toProblem(inc, err);
              if (p.kind !== "missing") out.problems.push(p);
            }
          }
        }
        continue;
      }
      if (match !== null)
        out.matches.push({ criteria: match, key, value: d.args, source: file, line: d.line });
      else addSshdSetting(out.settings, key, { value: d.args, source: file, line: d.line });
    }
  };
  await visit(path, null, 0);
  return out;
}

async function readAuthorizedKeys(
  ctx: FactContext,
  files: string,
): Promise<{ users: string[]; keys: AuthorizedKeys[]; unknown: Problem[]; problems: Problem[] }> {
  const users = await ctx.get("users");
  if (users.status !== "ok")
    return { users: [], keys: [], unknown: [], problems: users.status === "error" ? users.problems : [] };
  const loginUsers = users.value.users.filter((u) => u.uid === 0 || canLogIn(u));
  const patterns = files.split(/\s+/).filter((p) => p && p !== "none");
  const keys: AuthorizedKeys[] = [];
  const unknown: Problem[] = [];
  for (const u of loginUsers) {
    for (const pat of patterns) {
      const path = sshdPathFor(pat, u);
      try {
        const text = await ctx.host.readFile(path);
        const n = text.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#")).length;
        if (n > 0) keys.push({ user: u.name, path, keys: n });
      } catch (err) {
        if (isMissing(err)) continue;
        if (err instanceof HostError) unknown.push(err.problem);
        else throw err;
      }
    }
  }
  return { users: loginUsers.map((u) => u.name), keys, unknown, problems: [] };
}

async function tryInstalledSshdT(host: Host): Promise<{ text?: string; reason: string }> {
  try {
    const r = await host.run("sshd", ["-T"]);
    if (r.code === 0 && r.stdout.includes("permitrootlogin")) return { text: r.stdout, reason: "" };
    return { reason: `sshd -T exited ${r.code}: ${r.stderr.trim().split("\n")[0] ?? ""}` };
  } catch (err) {
    if (err instanceof HostError) return { reason: err.problem.message };
    throw err;
  }
}

/**
 * With a CA trusted and RevokedKeys set: that file's size (or its absence), and the KRL
 * fetcher's record with how long ago it last got a list. Unreadable reads as absent: audit
 * then says what it could not see.
 */
async function readRevocation(
  host: Host,
  settings: SshdFact["settings"],
): Promise<RevocationFact | undefined> {
  const ca = sshdValue({ settings }, "trustedusercakeys")?.value ?? "none";
  const krl = sshdValue({ settings }, "revokedkeys")?.value ?? "none";
  if (ca.toLowerCase() === "none" || krl.toLowerCase() === "none") return undefined;
  const st = await host.stat(krl).catch(() => null);
  const fetch = parseKrlFetchState((await host.readFile(KRL_STATE_FILE).catch(() => null)) ?? "");
  const since =
    fetch?.lastSuccess != null ? Math.max(0, Math.round((Date.now() - fetch.lastSuccess) / 1000)) : null;
  return { path: krl, bytes: st ? st.size : null, fetch, sinceSuccessS: since };
}

/**
 * With a CA trusted and an AuthorizedPrincipalsFile: the file sshd reads for root and the
 * principals it lists. root's home comes from /etc/passwd (/root when it is not there).
 */
async function readRootPrincipals(
  ctx: FactContext,
  settings: SshdFact["settings"],
): Promise<RootPrincipals | undefined> {
  const ca = sshdValue({ settings }, "trustedusercakeys")?.value ?? "none";
  const file = sshdValue({ settings }, "authorizedprincipalsfile")?.value ?? "none";
  if (ca.toLowerCase() === "none" || file.toLowerCase() === "none") return undefined;
  const users = await ctx.get("users");
  const root = (users.status === "ok" ? users.value.users.find((u) => u.name === "root") : undefined) ?? {
    name: "root",
    uid: 0,
    home: "/root",
  };
  const path = sshdPathFor(file, root);
  try {
    return { path, principals: parsePrincipals(await ctx.host.readFile(path)) };
  } catch (err) {
    if (isMissing(err)) return { path, principals: [] };
    if (err instanceof HostError) return { path, principals: [], problem: err.problem.message };
    throw err;
  }
}

/**
 * sshd's effective settings, its real ports and who can log in with a key. Shared by the ssh,
 * firewall and fail2ban layers (and harden): they must all agree on which port is SSH.
 */
export function gatherSshd(ctx: FactContext): Promise<Fact<SshdFact>> {
  return gather(SSHD_CONFIG, async () => {
    const problems: Problem[] = [];
    let parsed: SshdConfigParse | undefined;
    try {
      parsed = await parseSshdConfig(ctx.host);
      problems.push(...parsed.problems);
    } catch (err) {
      const p = toProblem(SSHD_CONFIG, err);
      if (p.kind !== "missing") problems.push(p);
    }
    const t = await tryInstalledSshdT(ctx.host);
    if (!parsed && !t.text) {
      if (problems.length > 0) return { status: "error", problems };
      return skipped(`sshd is not installed (no ${SSHD_CONFIG})`);
    }
    const settings = t.text ? parseSshdT(t.text) : parsed!.settings;
    const configured = configuredPorts(settings);
    const [owners, listeners] = await Promise.all([ctx.get("socketOwners"), ctx.get("listeners")]);
    const liveOwned =
      owners.status === "ok"
        ? owners.value
            .filter((s) => s.processes.includes("sshd"))
            .map((s) => ({ port: s.port, source: `ss -Hltnp ${s.address}:${s.port} sshd` }))
        : undefined;
    const wanted = new Set(configured.map((p) => p.port));
    const listening =
      listeners.status === "ok"
        ? listeners.value
            .filter((l) => wanted.has(l.port))
            .map((l) => ({ port: l.port, source: `${l.source} ${l.address}:${l.port}` }))
        : [];
    const ports = [
      ...new Set([...configured.map((p) => p.port), ...(liveOwned ?? []).map((p) => p.port)]),
    ].sort((a, b) => a - b);
    const keyFiles = sshdValue({ settings }, "authorizedkeysfile")!.value;
    const keys = await readAuthorizedKeys(ctx, keyFiles);
    const files = parsed?.files ?? [];
    const revocation = await readRevocation(ctx.host, settings);
    const rootPrincipals = await readRootPrincipals(ctx, settings);
    return ok(
      {
        via: t.text ? "sshd -T" : "config",
        viaReason: t.text ? undefined : t.reason,
        settings,
        matches: parsed?.matches ?? [],
        files,
        configured,
        liveOwned,
        listening,
        ports,
        keyUsers: keys.users,
        authorizedKeys: keys.keys,
        keysUnknown: keys.unknown,
        keysProblems: keys.problems,
        ...(revocation ? { revocation } : {}),
        ...(rootPrincipals ? { rootPrincipals } : {}),
      },
      t.text ? ["sshd -T", ...files] : files,
      problems,
    );
  });
}
