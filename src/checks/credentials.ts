import type { SecretPath } from "../facts/credentials.js";
import type { Facts } from "../facts/keys.js";
import { catalog, need, type FindingMaker } from "./catalog.js";
import type { Finding } from "./finding.js";
import { defineLayer } from "./layer.js";

/** How many paths a finding lists before it only counts. */
export const LIST_CAP = 10;

const C = catalog("credentials", {
  walk: {
    severity: "high",
    title: "Every secret dir is read and checked in full",
    remediation: "run the audit as root so it can read every state dir: sudo clawguard audit",
    fixable: false,
  },
  world_readable: {
    severity: "critical",
    title: "No secret file or dir is accessible to every user",
    remediation: "chmod 600 for files and 700 for dirs",
    fixable: true,
  },
  group_readable: {
    severity: "high",
    title: "No secret file or dir is accessible to its group",
    remediation: "chmod 600 for files and 700 for dirs",
    fixable: true,
  },
  owner: {
    severity: "high",
    title: "Every secret belongs to the gateway's user",
    remediation: "chown USER PATH for each path listed in the evidence",
    fixable: true,
  },
});

const ALL: FindingMaker[] = [C.walk, C.world_readable, C.group_readable, C.owner];

/** Quote for a POSIX shell, so names with spaces or quotes survive copy and paste. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}

function listing(items: SecretPath[], describe: (s: SecretPath) => string): string {
  const shown = items.slice(0, LIST_CAP).map(describe);
  if (items.length > LIST_CAP) shown.push(`... and ${items.length - LIST_CAP} more (${items.length} in all)`);
  return shown.join("\n");
}

function chmodFix(items: SecretPath[]): string {
  const files = items
    .filter((s) => s.type === "file")
    .slice(0, LIST_CAP)
    .map((s) => shellQuote(s.path));
  const dirs = items
    .filter((s) => s.type === "dir")
    .slice(0, LIST_CAP)
    .map((s) => shellQuote(s.path));
  const cmds: string[] = [];
  if (files.length) cmds.push(`chmod 600 ${files.join(" ")}`);
  if (dirs.length) cmds.push(`chmod 700 ${dirs.join(" ")}`);
  if (items.length > LIST_CAP) cmds.push("clawguard harden --apply (for all of them)");
  return cmds.join(" && ");
}

function okOwner(s: SecretPath): boolean {
  if (s.expectedUid === undefined) return true;
  return s.uid === s.expectedUid || (s.rootMayOwn && s.uid === 0);
}

export function checkCredentials({ credentials }: Pick<Facts, "credentials">): Finding[] {
  const out: Finding[] = [];
  const f = need(credentials, C.walk, out);
  if (!f) {
    if (credentials.status === "skip") for (const m of ALL.slice(1)) out.push(m.skip(credentials.reason));
    return out;
  }
  if (f.roots.length === 0) {
    for (const m of ALL) out.push(m.skip("no OpenClaw state dir found"));
    return out;
  }
  const source = f.roots.join(", ");
  for (const p of f.unreadable) out.push(C.walk.error(p));
  if (f.truncated)
    out.push(
      C.walk.warn(
        { source, excerpt: `stopped after ${f.visited} entries: the rest was not checked` },
        { detail: "The secret walk hit its cap" },
      ),
    );
  if (f.unreadable.length === 0 && !f.truncated)
    out.push(C.walk.pass({ source, excerpt: `${f.secrets.length} secret paths among ${f.visited} entries` }));

  const world = f.secrets.filter((s) => (s.mode & 0o007) !== 0);
  const group = f.secrets.filter((s) => (s.mode & 0o007) === 0 && (s.mode & 0o070) !== 0);
  const describe = (s: SecretPath) => `${octal(s.mode)} ${s.type} ${s.path}`;
  const fine = { source, excerpt: `${f.secrets.length} secret paths checked` };
  out.push(
    world.length
      ? C.world_readable.fail(
          { source, excerpt: listing(world, describe) },
          {
            detail: `${world.length} secret ${world.length === 1 ? "path is" : "paths are"} open to every user`,
            remediation: chmodFix(world),
          },
        )
      : C.world_readable.pass(fine),
  );
  out.push(
    group.length
      ? C.group_readable.fail(
          { source, excerpt: listing(group, describe) },
          {
            detail: `${group.length} secret ${group.length === 1 ? "path is" : "paths are"} open to their group`,
            remediation: chmodFix(group),
          },
        )
      : C.group_readable.pass(fine),
  );
  const wrongOwner = f.secrets.filter((s) => !okOwner(s));
  out.push(
    wrongOwner.length
      ? C.owner.fail(
          {
            source,
            excerpt: listing(
              wrongOwner,
              (s) => `uid ${s.uid} ${s.path} (want ${s.expectedUser ?? "?"}, uid ${s.expectedUid})`,
            ),
          },
          {
            detail: `${wrongOwner.length} secret ${wrongOwner.length === 1 ? "path does" : "paths do"} not belong to the gateway's user`,
            remediation: wrongOwner
              .slice(0, LIST_CAP)
              .map((s) => `chown ${s.expectedUser ?? "USER"}: ${shellQuote(s.path)}`)
              .join(" && "),
          },
        )
      : C.owner.pass(fine),
  );
  return out;
}

export const credentialsLayer = defineLayer({
  layer: "credentials",
  needs: ["credentials"],
  check: checkCredentials,
});
