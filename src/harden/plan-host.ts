import { COREDUMP_DROP_IN, LIMITS_DROP_IN, SYSCTL_DROP_IN } from "../checks/kernel.js";
import { MODPROBE_DROP_IN } from "../checks/kernel-modules.js";
import type { Change } from "../change/change.js";
import { securityRepoFor, SOURCES_DIR } from "../facts/apt-sources.js";
import { LOGIN_DEFS, parseLoginDefs, setLoginDef } from "../facts/login-defs.js";
import { isInstalled } from "../facts/packages.js";
import { HARDENED_SYSCTLS, liveValue } from "../facts/sysctl.js";
import { NEEDRESTART_CONF_D } from "../facts/updates.js";
import {
  renderCoredumpDropIn,
  renderModprobeDropIn,
  renderNeedrestartConf,
  renderSecuritySources,
  renderSysctlDropIn,
} from "../render/kernel.js";
import type { PlanFacts } from "./facts.js";
import { failing, type LayerPlan, type PlanInput } from "./plan.js";

const root = { owner: "root", group: "root" };

export const SECURITY_SOURCES = `${SOURCES_DIR}/clawguard-security.sources`;
export const NEEDRESTART_DROP_IN = `${NEEDRESTART_CONF_D}/50-clawguard.conf`;

/**
 * The sysctl drop-in applied live with `sysctl -p`, and systemd-coredump told to keep nothing.
 * Rollback sets back the live values that `sysctl -p` changed; the files go with the run.
 */
export function planKernel(input: PlanInput): LayerPlan {
  return { changes: [...planSysctl(input), ...planModules(input)] };
}

/** The modprobe drop-in. Modules loaded already stay until reboot; none of them is loaded on a VPS. */
function planModules({ findings }: PlanInput): Change[] {
  const ids = failing(findings, "kernel", ["unused_modules"]);
  if (!ids.length) return [];
  return [
    {
      kind: "file",
      path: MODPROBE_DROP_IN,
      content: renderModprobeDropIn(),
      mode: 0o644,
      ...root,
      fixes: ids,
    },
  ];
}

function planSysctl({ findings, facts }: PlanInput): Change[] {
  const ids = failing(findings, "kernel", [
    "pointer_leaks",
    "rp_filter",
    "icmp_redirects",
    "source_routes",
    "syncookies",
    "core_dumps",
  ]);
  if (!ids.length) return [];
  const changes: Change[] = [
    { kind: "file", path: SYSCTL_DROP_IN, content: renderSysctlDropIn(), mode: 0o644, ...root, fixes: ids },
  ];
  const undo = previousLive(facts);
  changes.push({
    kind: "command",
    argv: ["sysctl", "-p", SYSCTL_DROP_IN],
    ...(undo.length ? { undo: ["sysctl", "-w", ...undo] } : {}),
    live: true,
    fixes: ids,
  });
  const dumps = failing(findings, "kernel", ["core_dumps"]);
  if (dumps.length) {
    changes.push({
      kind: "file",
      path: LIMITS_DROP_IN,
      content: "# Written by clawguard harden: no login session writes a core dump.\n* hard core 0\n",
      mode: 0o644,
      ...root,
      fixes: dumps,
    });
    changes.push({
      kind: "file",
      path: COREDUMP_DROP_IN,
      content: renderCoredumpDropIn(),
      mode: 0o644,
      ...root,
      fixes: dumps,
    });
  }
  return changes;
}

/** `key=value` for each live value the drop-in changes and this system can set back. */
function previousLive(facts: PlanFacts): string[] {
  if (facts.sysctl.status !== "ok") return [];
  const f = facts.sysctl.value;
  return Object.values(HARDENED_SYSCTLS)
    .flat()
    .flatMap((s) => {
      const now = liveValue(f, s.key);
      return now === undefined || now === s.value || f.readOnly.includes(s.key) ? [] : [`${s.key}=${now}`];
    });
}

/** The release's security suite, when the audit found none and the release is one we can name. */
export function planSecurityRepo({ findings, facts }: PlanInput): LayerPlan {
  const ids = failing(findings, "updates", ["security_repo"]);
  if (!ids.length) return { changes: [] };
  const repo = facts.aptSources.status === "ok" ? securityRepoFor(facts.aptSources.value) : undefined;
  if (!repo)
    return {
      changes: [],
      blocked: "the distribution or its release is unknown, so its security repository is too",
    };
  return {
    changes: [
      {
        kind: "file",
        path: SECURITY_SOURCES,
        content: renderSecuritySources(repo),
        mode: 0o644,
        ...root,
        fixes: ids,
        note: "apt fetches the new suite's package lists at its next daily run",
      },
    ],
  };
}

export function planNeedrestart({ findings, facts }: PlanInput): LayerPlan {
  const ids = failing(findings, "updates", ["needrestart"]);
  if (!ids.length) return { changes: [] };
  const pk = facts.packages.status === "ok" ? facts.packages.value : undefined;
  const changes: Change[] = [];
  if (!pk || !isInstalled(pk, "needrestart"))
    changes.push({ kind: "package", names: ["needrestart"], fixes: ids });
  changes.push({
    kind: "file",
    path: NEEDRESTART_DROP_IN,
    content: renderNeedrestartConf(),
    mode: 0o644,
    ...root,
    fixes: ids,
  });
  return { changes };
}

/**
 * login.defs with a private default for new homes: HOME_MODE 0750 where the file sets HOME_MODE
 * (it wins over UMASK for homes), else UMASK 027. The rest of the file is kept; rollback puts
 * the old one back.
 */
export function planHomeUmask({ findings, facts }: PlanInput): LayerPlan {
  const ids = failing(findings, "user", ["home_umask"]);
  if (!ids.length) return { changes: [] };
  const text = facts.files.get(LOGIN_DEFS)?.text;
  if (text === undefined) return { changes: [], blocked: `${LOGIN_DEFS} could not be read` };
  const content = parseLoginDefs(text).values.HOME_MODE
    ? setLoginDef(text, "HOME_MODE", "0750")
    : setLoginDef(text, "UMASK", "027");
  return {
    changes: [{ kind: "file", path: LOGIN_DEFS, content, mode: 0o644, ...root, fixes: ids }],
  };
}
