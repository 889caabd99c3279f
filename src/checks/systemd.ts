import type { Facts } from "../facts/keys.js";
import { bindIsLoopback, type GatewayUnit } from "../facts/openclaw.js";
import type { ExposureResult } from "../facts/systemd-analyze.js";
import { catalog, need, partialProblems, type FindingMaker } from "./catalog.js";
import type { Finding } from "./finding.js";
import { defineLayer } from "./layer.js";
import { checkSandbox, isYes, last, SANDBOX } from "./systemd-sandbox.js";

export const MAX_EXPOSURE = 1.5;

const C = catalog("systemd", {
  unit_present: {
    severity: "high",
    title: "A system unit runs the gateway",
    remediation:
      "install a hardened system unit: clawguard harden --apply (without --apply it shows the unit first)",
    fixable: true,
  },
  user_unit_conflict: {
    severity: "high",
    title: "No user unit runs a second gateway",
    remediation: "systemctl --user --machine=USER@ disable --now UNIT && rm ~USER/.config/systemd/user/UNIT",
    fixable: true,
  },
  unit_enabled: {
    severity: "medium",
    title: "The gateway's unit starts at boot",
    remediation: "systemctl enable UNIT",
    fixable: true,
  },
  memory_deny_write_execute: {
    severity: "high",
    title: "The unit does not set MemoryDenyWriteExecute=yes (it kills Node's V8)",
    remediation: "remove MemoryDenyWriteExecute=yes: V8's JIT needs writable and executable pages",
    fixable: true,
  },
  restrict_suid_sgid: {
    severity: "high",
    title: "The unit does not set RestrictSUIDSGID=yes (it stops the OpenClaw gateway at start)",
    remediation:
      "remove RestrictSUIDSGID=yes: systemd enforces it by failing openat2(), which OpenClaw's state lock needs (NoNewPrivileges=yes already keeps setuid files from raising privileges)",
    fixable: true,
  },
  system_call_filter: {
    severity: "medium",
    title: "The unit filters system calls and denied calls fail with EPERM",
    remediation: "add SystemCallFilter=@system-service and SystemCallErrorNumber=EPERM to [Service]",
    fixable: true,
  },
  exposure_score: {
    severity: "medium",
    title: `systemd-analyze rates the unit's exposure at ${MAX_EXPOSURE} or less`,
    remediation:
      "add the sandbox directives the systemd checks find missing, then: systemd-analyze security UNIT",
    fixable: true,
  },
  exec_loopback: {
    severity: "critical",
    title: "ExecStart binds the gateway to loopback",
    remediation: "end ExecStart with: gateway run --bind loopback --port 18789",
    fixable: true,
  },
  read_write_paths: {
    severity: "high",
    title: "ReadWritePaths does not undo the sandbox",
    remediation: "list only the state dir in ReadWritePaths, e.g. ReadWritePaths=/home/openclaw/.openclaw",
    fixable: true,
  },
});

const ALL: FindingMaker[] = [...Object.values(C), ...SANDBOX];

const BROAD_PATHS = ["/", "/etc", "/usr", "/home", "/root", "/boot", "/var", "/tmp"];

function at(u: GatewayUnit, key: string): string {
  return u.directiveAt[key] ?? u.path;
}

function checkUnit(
  u: GatewayUnit,
  exposure: ExposureResult | undefined,
  exposureSkip: string | undefined,
): Finding[] {
  const out: Finding[] = checkSandbox(u);

  const mdwe = u.directives.MemoryDenyWriteExecute;
  out.push(
    isYes(mdwe)
      ? C.memory_deny_write_execute.fail(
          { source: at(u, "MemoryDenyWriteExecute"), excerpt: "MemoryDenyWriteExecute=yes" },
          { detail: "MemoryDenyWriteExecute=yes kills Node's V8: the gateway cannot start" },
        )
      : C.memory_deny_write_execute.pass({
          source: u.path,
          excerpt: mdwe ? `MemoryDenyWriteExecute=${mdwe.join(" ")}` : "not set",
        }),
  );

  const suid = u.directives.RestrictSUIDSGID;
  out.push(
    isYes(suid)
      ? C.restrict_suid_sgid.fail(
          { source: at(u, "RestrictSUIDSGID"), excerpt: "RestrictSUIDSGID=yes" },
          {
            detail:
              "RestrictSUIDSGID=yes makes openat2() fail: the OpenClaw gateway cannot take its state lock",
          },
        )
      : C.restrict_suid_sgid.pass({
          source: u.path,
          excerpt: suid ? `RestrictSUIDSGID=${suid.join(" ")}` : "not set",
        }),
  );

  const filter = u.directives.SystemCallFilter;
  const errno = last(u.directives.SystemCallErrorNumber);
  if (!filter || filter.length === 0)
    out.push(
      C.system_call_filter.fail(
        { source: u.path, excerpt: "SystemCallFilter not set" },
        { detail: "The unit does not filter system calls" },
      ),
    );
  else if (!errno || errno === "kill")
    out.push(
      C.system_call_filter.warn(
        {
          source: at(u, "SystemCallFilter"),
          excerpt: `SystemCallFilter=${filter.join(" ")}, SystemCallErrorNumber ${errno ?? "not set"}`,
        },
        {
          detail:
            "A denied system call kills the gateway (no SystemCallErrorNumber=EPERM): Node may die at start",
          remediation: "add SystemCallErrorNumber=EPERM to [Service]",
        },
      ),
    );
  else
    out.push(
      C.system_call_filter.pass({
        source: at(u, "SystemCallErrorNumber"),
        excerpt: `SystemCallFilter=${filter.join(" ")}, SystemCallErrorNumber=${errno}`,
      }),
    );

  if (exposureSkip) out.push(C.exposure_score.skip(exposureSkip, "systemd-analyze security --offline=yes"));
  else if (!exposure) out.push(C.exposure_score.skip("not scored", u.path));
  else if ("skip" in exposure)
    out.push(C.exposure_score.skip(exposure.skip, "systemd-analyze security --offline=yes"));
  else if ("problem" in exposure) out.push(C.exposure_score.error(exposure.problem));
  else {
    const s = exposure.ok;
    out.push(
      C.exposure_score.verdict(
        s.score <= MAX_EXPOSURE,
        { source: s.command, excerpt: s.line },
        s.score <= MAX_EXPOSURE
          ? undefined
          : {
              detail: `systemd-analyze rates ${u.name} ${s.score} ${s.rating} (want ${MAX_EXPOSURE} or less)`,
              severity: s.score > 5 ? "high" : "medium",
              remediation: `add the sandbox directives the systemd checks find missing, then: systemd-analyze security ${u.name}`,
            },
      ),
    );
  }

  const bind = u.flags.bind;
  const execSrc = at(u, "ExecStart");
  if (bind === undefined)
    out.push(
      C.exec_loopback.warn(
        { source: execSrc, excerpt: u.execStart || "no ExecStart" },
        {
          detail: "ExecStart does not pin --bind loopback: a config edit can expose the gateway",
          severity: "medium",
        },
      ),
    );
  else
    out.push(
      C.exec_loopback.verdict(
        bindIsLoopback(bind),
        { source: execSrc, excerpt: u.execStart },
        bindIsLoopback(bind)
          ? undefined
          : { detail: `ExecStart binds the gateway beyond loopback (--bind ${bind})` },
      ),
    );

  const rw = (u.directives.ReadWritePaths ?? [])
    .flatMap((v) => v.split(/\s+/))
    .map((p) => p.replace(/^[-+]+/, ""));
  const privateTmp = isYes(u.directives.PrivateTmp);
  const undo = rw.filter((p) => {
    const n = p.replace(/\/+$/, "") || "/";
    if (n === "/tmp" || n === "/var/tmp") return !privateTmp;
    return BROAD_PATHS.includes(n);
  });
  out.push(
    C.read_write_paths.verdict(
      undo.length === 0,
      {
        source: at(u, "ReadWritePaths"),
        excerpt: rw.length
          ? `ReadWritePaths=${rw.join(" ")}${privateTmp ? " (PrivateTmp=yes: /tmp is private)" : ""}`
          : "ReadWritePaths not set",
      },
      undo.length
        ? {
            detail: `ReadWritePaths opens ${undo.join(", ")} to the agent${undo.includes("/tmp") ? " (no PrivateTmp: the host's shared /tmp)" : ""}`,
          }
        : undefined,
    ),
  );
  return out;
}

type SystemdFacts = Pick<Facts, "openclaw" | "exposure">;

export function checkSystemd({ openclaw, exposure }: SystemdFacts): Finding[] {
  const out: Finding[] = [];
  const oc = need(openclaw, C.unit_present, out);
  if (!oc) return out;
  if (oc.installs.length === 0 && oc.units.length === 0) {
    for (const m of ALL) out.push(m.skip("OpenClaw is not installed"));
    return out;
  }
  const exposureSkip = exposure.status === "skip" ? exposure.reason : undefined;
  out.push(...partialProblems(exposure, C.exposure_score));
  if (exposure.status === "error") for (const p of exposure.problems) out.push(C.exposure_score.error(p));
  const scores = exposure.status === "ok" ? exposure.value : {};

  const userUnits = oc.units.filter((u) => u.scope === "user");
  const systemUnits = oc.units.filter((u) => u.scope === "system");
  const list = (us: GatewayUnit[]) => us.map((u) => `${u.path}${u.enabled ? " (enabled)" : ""}`).join(", ");
  if (systemUnits.length > 0)
    out.push(
      C.unit_present.pass({
        source: systemUnits.map((u) => u.path).join(", "),
        excerpt: `runs as ${systemUnits.map((u) => u.runsAs).join(", ")}`,
      }),
    );
  else
    out.push(
      C.unit_present.fail(
        {
          source: "/etc/systemd/system",
          excerpt: userUnits.length
            ? `only user units: ${list(userUnits)}`
            : "no openclaw*.service unit: the gateway is started by hand or not at all",
        },
        {
          detail: userUnits.length
            ? "Only a user unit runs the gateway: outside the system's control and hardening"
            : "No systemd unit runs the gateway",
        },
      ),
    );
  if (userUnits.length === 0)
    out.push(
      C.user_unit_conflict.pass({ source: "~/.config/systemd/user", excerpt: "no openclaw user units" }),
    );
  else if (systemUnits.length > 0)
    out.push(
      C.user_unit_conflict.fail(
        {
          source: userUnits.map((u) => u.path).join(", "),
          // The source names the user units; the excerpt says only what they are next to.
          excerpt: `${userUnits.map((u) => (u.enabled ? "enabled" : "installed")).join(", ")} user unit${userUnits.length > 1 ? "s" : ""} next to system unit ${list(systemUnits)}: two gateways fight for the port`,
        },
        {
          remediation: userUnits
            .map(
              (u) =>
                `systemctl --user --machine=${u.owner ?? "USER"}@ disable --now ${u.name}; rm '${u.path}'`,
            )
            .join("; "),
        },
      ),
    );
  else
    out.push(
      C.user_unit_conflict.warn(
        {
          source: list(userUnits),
          excerpt: "the gateway runs from a user unit (openclaw gateway install); move it to a system unit",
        },
        {
          remediation: `move it to a system unit: clawguard harden --apply; then ${userUnits
            .map((u) => `systemctl --user --machine=${u.owner ?? "USER"}@ disable --now ${u.name}`)
            .join("; ")}`,
        },
      ),
    );

  // Sandbox checks apply to the unit that actually runs each install.
  const checked = new Set<string>();
  for (const u of oc.installs.map((i) => i.unit).filter((u): u is GatewayUnit => u !== undefined)) {
    if (checked.has(u.path)) continue;
    checked.add(u.path);
    out.push(
      u.enabled
        ? C.unit_enabled.pass({ source: u.path, excerpt: "enabled" })
        : C.unit_enabled.warn(
            { source: u.path, excerpt: "not enabled: the gateway does not come back after a reboot" },
            { remediation: `systemctl enable ${u.name}` },
          ),
    );
    out.push(...checkUnit(u, scores[u.path], exposureSkip));
  }
  if (checked.size === 0)
    for (const m of [
      C.unit_enabled,
      ...SANDBOX,
      C.memory_deny_write_execute,
      C.system_call_filter,
      C.exposure_score,
      C.exec_loopback,
      C.read_write_paths,
    ])
      out.push(m.skip("no unit runs the gateway"));
  return out;
}

export const systemdLayer = defineLayer({
  layer: "systemd",
  needs: ["openclaw", "exposure"],
  check: checkSystemd,
});
