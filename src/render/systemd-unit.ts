export interface GatewayUnitInput {
  user: string;
  group: string;
  home: string;
  stateDir: string;
  /** Where the agent writes its work; inside the state dir by default. */
  workspace: string;
  port: number;
  /** Absolute path of the openclaw launcher. */
  openclaw: string;
  /** The agent publishes a website: group www-data and write access to /var/www. */
  www: boolean;
  /** The egress shield every outbound connection goes through. */
  shield?: { host: string; port: number };
  /** OPENCLAW_CONFIG_PATH, when the config is not `<stateDir>/openclaw.json`. */
  configPath?: string;
  /** Environment= and EnvironmentFile= values carried over from the unit this one replaces. */
  carried?: { environment: string[]; environmentFiles: string[] };
}

function inside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.replace(/\/$/, "") + "/");
}

/** A value systemd reads as one path even with spaces in it. */
function unitPath(p: string): string {
  return /\s/.test(p) ? `"${p}"` : p;
}

/**
 * The gateway as a sandboxed system service. Every setting below was seen to keep a Node.js
 * gateway working; the ones left out break it: MemoryDenyWriteExecute (V8 needs W+X pages),
 * RestrictSUIDSGID (OpenClaw's state lock needs openat2) and a SystemCallFilter that kills (a
 * denied call fails with EPERM instead).
 */
export function renderGatewayUnit(u: GatewayUnitInput): string {
  const writable = [u.stateDir];
  if (!inside(u.workspace, u.stateDir)) writable.push(u.workspace);
  if (u.www) writable.push("/var/www");
  const underHome = writable.filter((p) => inside(p, "/home") || inside(p, "/root"));
  const proxy = u.shield
    ? `http://${u.shield.host.includes(":") ? `[${u.shield.host}]` : u.shield.host}:${u.shield.port}`
    : undefined;
  const lines = [
    "# Written by clawguard harden; clawguard rollback restores what was here before.",
    "[Unit]",
    "Description=OpenClaw gateway (sandboxed)",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `User=${u.user}`,
    `Group=${u.group}`,
    ...(u.www ? ["SupplementaryGroups=www-data"] : []),
    ...(u.carried?.environmentFiles ?? []).map((f) => `EnvironmentFile=${f}`),
    ...(u.carried?.environment ?? []).map((e) => `Environment=${e}`),
    `Environment=HOME=${unitPath(u.home)}`,
    `Environment=OPENCLAW_STATE_DIR=${unitPath(u.stateDir)}`,
    ...(u.configPath ? [`Environment=OPENCLAW_CONFIG_PATH=${unitPath(u.configPath)}`] : []),
    ...(proxy
      ? [
          `Environment=OPENCLAW_PROXY_URL=${proxy}`,
          `Environment=HTTPS_PROXY=${proxy}`,
          `Environment=HTTP_PROXY=${proxy}`,
          "Environment=NO_PROXY=localhost,127.0.0.1,::1",
        ]
      : []),
    // OpenClaw stages copies of its SQLite state under $XDG_CACHE_HOME, else ~/.cache, which
    // ProtectHome=tmpfs leaves read-only: the gateway then exits 78 ("shared state database is
    // unreadable ... EACCES ... ~/.cache/openclaw-<uid>"). systemd makes this one, owner-only.
    `CacheDirectory=openclaw/${u.user}`,
    "CacheDirectoryMode=0700",
    `Environment=XDG_CACHE_HOME=/var/cache/openclaw/${u.user}`,
    `WorkingDirectory=${unitPath(u.stateDir)}`,
    `ExecStart=${unitPath(u.openclaw)} gateway run --bind loopback --port ${u.port}`,
    "Restart=on-failure",
    "RestartSec=5",
    "",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=tmpfs",
    ...underHome.map((p) => `BindPaths=${unitPath(p)}`),
    ...writable.map((p) => `ReadWritePaths=${unitPath(p)}`),
    "PrivateTmp=yes",
    "PrivateMounts=yes",
    "PrivateDevices=yes",
    "DevicePolicy=closed",
    // Only the service user is mapped: group access to www-data's files would be lost.
    `PrivateUsers=${u.www ? "no" : "yes"}`,
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectControlGroups=yes",
    "ProtectProc=invisible",
    "ProcSubset=pid",
    // No AF_NETLINK: the gateway bound to loopback has no need to list interfaces.
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    // RestrictSUIDSGID is left out: systemd enforces it by failing openat2() with ENOSYS, and
    // OpenClaw takes its state lock with openat2(RESOLVE_BENEATH) and no fallback, so the gateway
    // exits at start ("failed to acquire gateway lock ... openat2 beneath root ... ENOSYS").
    // With no capabilities and NoNewPrivileges, a SUID file it made could only be its own user.
    "LockPersonality=yes",
    "RemoveIPC=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged @mount @swap @reboot @raw-io @module @obsolete @debug @cpu-emulation @clock",
    "SystemCallErrorNumber=EPERM",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "UMask=0077",
    // A core dump of the gateway would hold its tokens and API keys.
    "LimitCORE=0",
    ...(u.shield
      ? [
          // Only loopback and the shield: anything else is refused by the kernel, not by trust.
          "IPAddressDeny=any",
          "IPAddressAllow=localhost",
          ...(isIpLiteral(u.shield.host) ? [`IPAddressAllow=${u.shield.host}`] : []),
        ]
      : []),
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ];
  return lines.join("\n");
}

export function isIpLiteral(h: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || /^[0-9a-fA-F:]+$/.test(h);
}
