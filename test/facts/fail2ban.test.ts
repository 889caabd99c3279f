import { describe, expect, it } from "vitest";
import { jailOption, parseFail2banTime, parseIni, parseServices } from "../../src/facts/fail2ban.js";

describe("fail2ban config", () => {
  it("parses fail2ban's time units", () => {
    expect(parseFail2banTime("600")).toBe(600);
    expect(parseFail2banTime("10m")).toBe(600);
    expect(parseFail2banTime("1h")).toBe(3600);
    expect(parseFail2banTime("1d12h")).toBe(129600);
    expect(parseFail2banTime("1h 30m")).toBe(5400);
    expect(parseFail2banTime("2w")).toBe(1209600);
    expect(parseFail2banTime("1mo")).toBe(2592000);
    expect(parseFail2banTime("-1")).toBe(-1);
    expect(parseFail2banTime("soon")).toBeNull();
    expect(parseFail2banTime("")).toBeNull();
  });

  it("merges files in order, inherits [DEFAULT] and interpolates, with continuation lines", () => {
    const ini = parseIni(
      "[DEFAULT]\nlogdir = /var/log\nbantime = 10m\n[sshd]\nlogpath = %(logdir)s/auth.log\n   %(logdir)s/secure\nport = ssh\n",
      "/etc/fail2ban/jail.conf",
    );
    parseIni("[sshd]\nport = 2222 # moved\n", "/etc/fail2ban/jail.local", ini);
    expect(jailOption(ini, "sshd", "logpath")?.value).toBe("/var/log/auth.log\n/var/log/secure");
    expect(jailOption(ini, "sshd", "port")).toMatchObject({
      value: "2222",
      source: "/etc/fail2ban/jail.local",
      line: 2,
    });
    expect(jailOption(ini, "sshd", "bantime")).toMatchObject({ value: "10m", section: "DEFAULT" });
  });

  it("reads /etc/services names and aliases", () => {
    const s = parseServices("ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol\nwww 80/tcp http\n");
    expect(s.ssh).toBe(22);
    expect(s.http).toBe(80);
  });
});
