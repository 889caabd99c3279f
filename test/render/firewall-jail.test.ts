import { describe, expect, it } from "vitest";
import { chooseJailBackend, renderJailLocal } from "../../src/render/jail.js";
import { renderUfwCommands, ufwDefaultsWithIpv6 } from "../../src/render/ufw.js";

describe("ufw commands", () => {
  const base = {
    sshPorts: [2222],
    ports: [80, 443],
    gatewayPort: 18789,
    previousIncoming: "allow" as const,
    wasEnabled: false,
    existing: [],
  };

  it("allows SSH's real port first, then the profile's, then denies, then enables", () => {
    expect(renderUfwCommands(base).map((c) => c.argv.join(" "))).toEqual([
      "ufw allow 2222/tcp",
      "ufw allow 80/tcp",
      "ufw allow 443/tcp",
      "ufw default deny incoming",
      "ufw --force enable",
    ]);
  });

  it("never opens the gateway port, even when asked", () => {
    const cmds = renderUfwCommands({ ...base, ports: [80, 18789] });
    expect(cmds.some((c) => c.argv.includes("18789/tcp"))).toBe(false);
  });

  it("undoes each step back to what it was, and skips what is already so", () => {
    const cmds = renderUfwCommands({ ...base, previousIncoming: "reject", existing: ["80/tcp"] });
    expect(cmds.map((c) => c.undo?.join(" "))).toEqual([
      "ufw delete allow 2222/tcp",
      "ufw delete allow 443/tcp",
      "ufw default reject incoming",
      "ufw disable",
    ]);
    expect(
      renderUfwCommands({
        ...base,
        previousIncoming: "deny",
        wasEnabled: true,
        existing: ["2222/tcp", "80/tcp", "443/tcp"],
      }),
    ).toEqual([]);
  });

  it("turns IPv6 on in /etc/default/ufw and keeps the rest", () => {
    expect(ufwDefaultsWithIpv6('# comment\nIPV6=no\nDEFAULT_INPUT_POLICY="DROP"\n')).toBe(
      '# comment\nIPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\n',
    );
    expect(ufwDefaultsWithIpv6("A=1\n")).toBe("A=1\nIPV6=yes\n");
  });
});

describe("jail.local", () => {
  it("uses the journal where there is no auth.log (Debian 12 without rsyslog)", () => {
    expect(chooseJailBackend({ authLog: false, secureLog: false, journald: true })).toEqual({
      kind: "systemd",
    });
    expect(chooseJailBackend({ authLog: true, secureLog: false, journald: true })).toEqual({
      kind: "file",
      logpath: "/var/log/auth.log",
    });
    const text = renderJailLocal({ sshPorts: [2222, 22, 2222], backend: { kind: "systemd" } });
    expect(text).toContain("[sshd]\nenabled = true\nport = 22,2222\nbackend = systemd\n");
    expect(text).toMatch(/bantime = 3600\nfindtime = 600\nmaxretry = 5/);
    expect(text).not.toContain("logpath");
    // Debian 12's sshd logs a refused key only as a [preauth] close, which normal mode ignores.
    expect(text).toContain("mode = aggressive");
  });

  it("names the log file when the log is a file", () => {
    expect(
      renderJailLocal({ sshPorts: [22], backend: { kind: "file", logpath: "/var/log/auth.log" } }),
    ).toContain("logpath = /var/log/auth.log");
  });
});
