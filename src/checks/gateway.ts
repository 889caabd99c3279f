import { describeProblem } from "../facts/fact.js";
import type { Facts } from "../facts/keys.js";
import { bindIsLoopback, type OpenClawInstall } from "../facts/openclaw.js";
import { isLoopbackAddress, type Listener } from "../facts/sockets.js";
import { catalog, need, type FindingMaker } from "./catalog.js";
import type { Finding } from "./finding.js";
import { defineLayer } from "./layer.js";

export const MIN_TOKEN_LENGTH = 32;
export const MIN_PASSWORD_LENGTH = 16;

const C = catalog("gateway", {
  installed: {
    severity: "info",
    title: "OpenClaw is installed",
    remediation: "",
    fixable: false,
  },
  config_valid: {
    severity: "high",
    title: "openclaw.json parses",
    remediation: "fix the file at the line the evidence names (it is JSON5), or run: openclaw doctor",
    fixable: false,
  },
  bind_loopback: {
    severity: "critical",
    title: "The gateway is configured to listen on loopback only",
    remediation:
      "openclaw config set gateway.bind loopback (and use --bind loopback in the unit's ExecStart); reach it through an SSH tunnel: ssh -L 18789:127.0.0.1:18789 HOST",
    fixable: true,
  },
  listener_loopback: {
    severity: "critical",
    title: "The gateway's port is open on loopback only right now",
    remediation: "set gateway.bind to loopback, then: systemctl restart UNIT",
    fixable: true,
  },
  auth_enabled: {
    severity: "high",
    title: "The gateway requires authentication",
    remediation:
      'openclaw config set gateway.auth.mode token && openclaw config set gateway.auth.token "$(openssl rand -hex 32)"',
    fixable: true,
  },
  auth_secret_strength: {
    severity: "high",
    title: "The gateway's token or password is long enough",
    remediation: 'openclaw config set gateway.auth.token "$(openssl rand -hex 32)"',
    fixable: true,
  },
});

const DEPENDENT: FindingMaker[] = [
  C.config_valid,
  C.bind_loopback,
  C.listener_loopback,
  C.auth_enabled,
  C.auth_secret_strength,
];

/** The install, and the unit that runs it unless `source` already names that unit. */
function where(i: OpenClawInstall, source = ""): string {
  const unit = i.unit && !source.startsWith(i.unit.path) ? i.unit.path : undefined;
  return unit ? `${i.stateDir} (run by ${unit})` : i.stateDir;
}

function checkConfig(i: OpenClawInstall): Finding {
  const p = i.configProblem;
  if (!p) return C.config_valid.pass({ source: i.configPath, excerpt: "parsed as JSON5" });
  if (p.kind === "missing")
    return C.config_valid.pass({
      source: i.configPath,
      excerpt: "absent: OpenClaw's defaults apply (loopback, port 18789)",
    });
  return C.config_valid.error(p);
}

function checkBind(i: OpenClawInstall): Finding {
  const custom = i.config?.customBindHost;
  const shown = i.bind === "custom" ? `custom (customBindHost ${custom ?? "unset"})` : i.bind;
  const loop = bindIsLoopback(i.bind, custom);
  const extra =
    i.bind === "auto"
      ? "; auto binds 0.0.0.0 inside containers and on hosts without loopback-only routing"
      : "";
  return C.bind_loopback.verdict(
    loop,
    { source: i.bindSource, excerpt: `bind ${shown} for ${where(i, i.bindSource)}${extra}` },
    loop ? undefined : { detail: `The gateway is configured to listen beyond loopback (bind ${i.bind})` },
  );
}

function isWildcard(addr: string): boolean {
  return addr === "0.0.0.0" || addr === "::";
}

function checkListeners(i: OpenClawInstall, listeners: Listener[]): Finding {
  const onPort = listeners.filter((l) => l.port === i.port);
  if (onPort.length === 0)
    return C.listener_loopback.skip(
      `nothing listens on port ${i.port} now (gateway not running?)`,
      "/proc/net/tcp",
    );
  const exposed = onPort.filter((l) => !isLoopbackAddress(l.address));
  const excerpt = onPort
    .map((l) => `${l.family === 6 ? `[${l.address}]` : l.address}:${l.port} (${l.source})`)
    .join(", ");
  if (exposed.length === 0)
    return C.listener_loopback.pass({ source: "/proc/net/tcp, /proc/net/tcp6", excerpt });
  const wildcard = exposed.some((l) => isWildcard(l.address));
  return C.listener_loopback.fail(
    { source: exposed.map((l) => l.source).join(", "), excerpt },
    {
      detail: wildcard
        ? `Port ${i.port} is open on every interface (${exposed.map((l) => l.address).join(", ")})`
        : `Port ${i.port} is open on a non-loopback address (${exposed.map((l) => l.address).join(", ")})`,
      severity: wildcard ? "critical" : "high",
      remediation: i.unit
        ? `set gateway.bind to loopback, then: systemctl restart ${i.unit.name}`
        : "set gateway.bind to loopback, then restart the gateway",
    },
  );
}

function checkAuth(i: OpenClawInstall, exposed: boolean): Finding[] {
  const a = i.auth;
  const mode = a.mode ?? "none";
  const ev = {
    source: a.source,
    excerpt: `auth.mode ${a.mode ?? "unset"}${a.tokenLength !== undefined ? `, token of ${a.tokenLength} chars` : ""}${a.passwordLength !== undefined ? `, password of ${a.passwordLength} chars` : ""}`,
  };
  const out: Finding[] = [];
  if (mode === "none") {
    out.push(
      C.auth_enabled.fail(ev, {
        detail: a.mode
          ? "The gateway accepts anyone: auth.mode is none"
          : "The gateway has no auth configured",
        severity: exposed ? "critical" : "high",
      }),
    );
    out.push(C.auth_secret_strength.skip("no token or password: auth is off"));
    return out;
  }
  out.push(C.auth_enabled.pass(ev));
  if (mode === "token") {
    const n = a.tokenLength ?? 0;
    out.push(
      C.auth_secret_strength.verdict(
        n >= MIN_TOKEN_LENGTH,
        ev,
        n >= MIN_TOKEN_LENGTH
          ? undefined
          : { detail: `The gateway token is ${n} chars, under ${MIN_TOKEN_LENGTH}` },
      ),
    );
  } else if (mode === "password") {
    const n = a.passwordLength ?? 0;
    out.push(
      C.auth_secret_strength.verdict(
        n >= MIN_PASSWORD_LENGTH,
        ev,
        n >= MIN_PASSWORD_LENGTH
          ? undefined
          : {
              detail: `The gateway password is ${n} chars, under ${MIN_PASSWORD_LENGTH}`,
              remediation: 'openclaw config set gateway.auth.password "$(openssl rand -base64 24)"',
            },
      ),
    );
  } else {
    out.push(
      C.auth_secret_strength.skip(`auth.mode ${mode}: identity comes from the proxy in front`, a.source),
    );
  }
  return out;
}

type GatewayFacts = Pick<Facts, "openclaw" | "listeners">;

export function checkGateway({ openclaw, listeners }: GatewayFacts): Finding[] {
  const out: Finding[] = [];
  const oc = need(openclaw, C.installed, out);
  if (!oc) {
    for (const m of DEPENDENT) out.push(m.skip("OpenClaw discovery failed: see gateway.installed"));
    return out;
  }
  // Homes a non-root audit cannot enter are one finding, not one per system account.
  const denied = openclaw.status === "ok" ? openclaw.problems.filter((p) => p.kind === "permission") : [];
  if (denied.length > 0)
    out.push(
      C.installed.error({
        kind: "permission",
        source: denied.map((p) => p.source).join(", "),
        message: `permission denied: OpenClaw installs there were not looked for (run as root)`,
      }),
    );
  if (openclaw.status === "ok")
    for (const p of openclaw.problems.filter((x) => x.kind !== "permission")) out.push(C.installed.error(p));
  if (oc.installs.length === 0) {
    out.push(
      C.installed.skip(
        "no OpenClaw state dir (~/.openclaw*) or openclaw*.service unit found",
        "/etc/passwd homes, systemd unit dirs",
      ),
    );
    for (const m of DEPENDENT) out.push(m.skip("OpenClaw is not installed"));
    return out;
  }
  out.push(
    C.installed.pass({
      source: oc.installs.map((i) => i.stateDir).join(", "),
      // One install is the source itself; several each say which one they are.
      excerpt: oc.installs
        .map((i) =>
          [
            ...(oc.installs.length > 1 ? [i.stateDir] : []),
            ...(i.unit ? [`run by ${i.unit.path}`] : []),
            `runs as ${i.runsAs ?? "unknown"}`,
            `port ${i.port}`,
          ].join(", "),
        )
        .join("; "),
    }),
  );
  let live: Listener[] | null = null;
  if (listeners.status === "ok") live = listeners.value;
  for (const i of oc.installs) {
    out.push(checkConfig(i));
    // With openclaw.json unreadable, what it sets is unknown: say so instead of assuming defaults.
    const broken = i.configProblem && i.configProblem.kind !== "missing";
    const unknown = `${i.configPath} could not be read: see gateway.config_valid`;
    const bind =
      broken && !i.bindSource.endsWith("--bind") ? C.bind_loopback.skip(unknown, i.configPath) : checkBind(i);
    out.push(bind);
    const lis: Finding[] = [];
    if (live) lis.push(checkListeners(i, live));
    else if (listeners.status === "skip") lis.push(C.listener_loopback.skip(listeners.reason));
    else for (const p of listeners.problems) lis.push(C.listener_loopback.error(p));
    out.push(...lis);
    const exposed = bind.status === "fail" || lis.some((f) => f.status === "fail");
    if (broken && !i.auth.source.includes("OPENCLAW_GATEWAY_")) {
      out.push(
        C.auth_enabled.skip(unknown, i.configPath),
        C.auth_secret_strength.skip(unknown, i.configPath),
      );
    } else out.push(...checkAuth(i, exposed));
  }
  if (listeners.status === "ok")
    for (const p of listeners.problems)
      out.push(C.listener_loopback.warn({ source: p.source, excerpt: describeProblem(p) }));
  return out;
}

export const gatewayLayer = defineLayer({
  layer: "gateway",
  needs: ["openclaw", "listeners"],
  check: checkGateway,
});
