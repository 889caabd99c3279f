/**
 * harden --ssh-ca: the fleet's CA trusted with this agent's principals and a revocation list, on
 * sshd's own settings; a principals file per account (agent-<id> for the default accounts,
 * agent-<id>:<user> for each login account's own grants, none for root unless listed); the old
 * single file replaced, and put back by rollback; sshd -t before the reload; a KRL already there
 * is kept; a CA "key" that is not one public key line is refused before anything is planned.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runAudit } from "../../src/audit/audit.js";
import { rollbackRun } from "../../src/change/rollback.js";
import { gatherPlanFacts } from "../../src/harden/facts.js";
import { harden } from "../../src/harden/harden.js";
import { planHarden } from "../../src/harden/plan.js";
import { validateProfile } from "../../src/harden/profile.js";
import { FactContext } from "../../src/host/context.js";
import { LocalHost } from "../../src/host/host.js";
import { LocalWriter } from "../../src/host/writer.js";
import { classicGuide } from "./guide.js";
import { snapshot, tempDir } from "./tree.js";

const CA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOa3Z7kTJ0Wl0m2F2xq2cC8m3kqJd1QkXo0l3bqK9yQ3 fleet-ca";
const profile = validateProfile({ skip: ["user"], sshCa: { publicKey: CA, agent: "scout" } });
const PRINCIPALS = "etc/ssh/clawguard/principals";

/**
 * The principals each account's file lists, by account; openclaw aside (its uid in the fixture
 * is the test's own, which may be 0, and an account of uid 0 takes no certificate unless listed).
 */
function principalsOf(root: string, also: string[] = []): Record<string, string[]> {
  const dir = path.join(root, PRINCIPALS);
  return Object.fromEntries(
    readdirSync(dir)
      .filter((u) => u !== "openclaw" || also.includes(u))
      .map((u) => [
        u,
        readFileSync(path.join(dir, u), "utf8")
          .split("\n")
          .filter((l) => l && !l.startsWith("#")),
      ]),
  );
}

describe("harden --ssh-ca", () => {
  it("trusts the CA for this agent's principals, one file per account, root none, and leaves key logins alone", async () => {
    const root = classicGuide();
    const host = new LocalHost(root, { isRoot: false });
    const report = await harden(host, new LocalWriter(host), {
      profile,
      apply: true,
      stateDir: tempDir("state"),
    });
    expect(report.error).toBeUndefined();
    const at = (p: string) => path.join(root, p);
    expect(readFileSync(at("etc/ssh/clawguard/fleet-ca.pub"), "utf8")).toBe(CA + "\n");
    // admin has an authorized_keys file: a default account. root takes none.
    expect(principalsOf(root)).toEqual({ admin: ["agent-scout", "agent-scout:admin"] });
    expect(statSync(at(PRINCIPALS)).mode & 0o7777).toBe(0o755);
    expect(statSync(at(`${PRINCIPALS}/admin`)).mode & 0o7777).toBe(0o644);
    expect(existsSync(at("etc/ssh/clawguard/revoked.krl"))).toBe(true);
    const dropIn = readFileSync(at("etc/ssh/sshd_config.d/40-clawguard-ca.conf"), "utf8");
    expect(dropIn).toMatch(/^TrustedUserCAKeys \/etc\/ssh\/clawguard\/fleet-ca.pub$/m);
    expect(dropIn).toMatch(/^AuthorizedPrincipalsFile \/etc\/ssh\/clawguard\/principals\/%u$/m);
    expect(dropIn).toMatch(/^RevokedKeys \/etc\/ssh\/clawguard\/revoked.krl$/m);
    expect(dropIn).not.toMatch(/AuthorizedKeysFile|PubkeyAuthentication no/);
    expect(report.changes.find((c) => c.action.includes("40-clawguard-ca.conf"))?.note).toBe(
      "a grant without --as opens admin; a grant --as USER opens USER only",
    );
  });

  it("replaces the old single principals file with the directory, and rollback puts the file back", async () => {
    const root = classicGuide();
    mkdirSync(path.join(root, "etc/ssh/clawguard"), { recursive: true });
    writeFileSync(path.join(root, PRINCIPALS), "# The one principal\nagent-scout\n");
    const before = snapshot(root);
    const host = new LocalHost(root, { isRoot: false });
    const writer = new LocalWriter(host);
    const stateDir = tempDir("state");
    const report = await harden(host, writer, { profile, apply: true, stateDir });
    expect(report.error).toBeUndefined();
    const steps = report.changes.map((c) => c.action);
    expect(steps).toContain(`rm /${PRINCIPALS}`);
    expect(principalsOf(root)).toEqual({ admin: ["agent-scout", "agent-scout:admin"] });
    // A second run has nothing to change in the CA's files.
    const again = await harden(host, writer, { profile, apply: false });
    expect(again.changes.filter((c) => c.action.includes("/etc/ssh/clawguard"))).toEqual([]);
    await rollbackRun(host, writer, stateDir);
    expect(snapshot(root)).toEqual(before);
  });

  it("opens root only when listed, and removes the file of an account no longer listed", async () => {
    const root = classicGuide();
    const host = new LocalHost(root, { isRoot: false });
    const writer = new LocalWriter(host);
    const withRoot = validateProfile({
      skip: ["user"],
      sshCa: { publicKey: CA, agent: "scout", users: ["root", "admin"] },
    });
    expect(
      (await harden(host, writer, { profile: withRoot, apply: true, stateDir: tempDir("s") })).error,
    ).toBe(undefined);
    expect(principalsOf(root)).toEqual({
      admin: ["agent-scout", "agent-scout:admin"],
      root: ["agent-scout", "agent-scout:root"],
    });
    const onlyOpenclaw = validateProfile({
      skip: ["user"],
      sshCa: { publicKey: CA, agent: "scout", users: ["openclaw"] },
    });
    expect(
      (await harden(host, writer, { profile: onlyOpenclaw, apply: true, stateDir: tempDir("s") })).error,
    ).toBe(undefined);
    expect(principalsOf(root, ["openclaw"])).toEqual({
      admin: ["agent-scout:admin"],
      openclaw: ["agent-scout", "agent-scout:openclaw"],
    });
  });

  it("refuses a listed account the agent does not have, or a malformed name, changing nothing", async () => {
    const root = classicGuide();
    const before = snapshot(root);
    const host = new LocalHost(root, { isRoot: false });
    const typo = validateProfile({
      skip: ["user"],
      sshCa: { publicKey: CA, agent: "scout", users: ["admn"] },
    });
    await expect(
      harden(host, new LocalWriter(host), { profile: typo, apply: true, stateDir: tempDir("s") }),
    ).rejects.toThrow(/--ssh-ca-users\) names admn, not an account of this agent/);
    expect(snapshot(root)).toEqual(before);
    for (const users of [["Root"], ["a,b"], ["admin", "admin"], ["x:y"]])
      expect(
        () => validateProfile({ sshCa: { publicKey: CA, agent: "scout", users } }),
        users.join(),
      ).toThrow(/sshCa.users/);
  });

  it("validates with sshd -t before reloading, and keeps a KRL the shield already sent", async () => {
    const root = classicGuide();
    mkdirSync(path.join(root, "etc/ssh/clawguard"), { recursive: true });
    writeFileSync(path.join(root, "etc/ssh/clawguard/revoked.krl"), "KRL from the shield");
    const host = new LocalHost(root, { isRoot: false });
    const audit = await runAudit(host);
    const live = planHarden({
      profile,
      findings: audit.findings,
      facts: { ...(await gatherPlanFacts(new FactContext(host))), live: true },
    }).changes;
    const steps = live.map((c) =>
      c.kind === "command" ? c.argv.join(" ") : `${c.kind} ${"path" in c ? c.path : ""}`,
    );
    const dropIn = steps.indexOf("file /etc/ssh/sshd_config.d/40-clawguard-ca.conf");
    const check = steps.lastIndexOf("sshd -t");
    const reload = steps.lastIndexOf("systemctl reload ssh.service");
    expect(dropIn).toBeGreaterThanOrEqual(0);
    expect(check).toBeGreaterThan(dropIn);
    expect(reload).toBeGreaterThan(check);
    expect(steps).not.toContain("file /etc/ssh/clawguard/revoked.krl");
    expect(steps).not.toContain("mkdir /etc/ssh/clawguard");
  });

  it("refuses a CA that is not one public key line", () => {
    const priv =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n";
    for (const publicKey of [priv, "", "ssh-ed25519-cert-v01@openssh.com AAAA", `${CA}\n${CA}`])
      expect(() => validateProfile({ sshCa: { publicKey, agent: "scout" } }), publicKey.slice(0, 20)).toThrow(
        /sshCa.publicKey|one SSH public key/,
      );
    expect(() => validateProfile({ sshCa: { publicKey: CA, agent: "../x" } })).toThrow(/agent's id/);
  });

  it("with --krl-from, installs a timer that fetches the shield's KRL every 15 s, after sshd reads RevokedKeys", async () => {
    const root = classicGuide();
    const host = new LocalHost(root, { isRoot: false });
    const url = "http://10.77.0.1:3129/ssh/krl";
    const withKrl = validateProfile({
      skip: ["user"],
      sshCa: {
        publicKey: CA,
        agent: "scout",
        krlUrl: url,
        launcher: ["/usr/bin/node", "/opt/cg/bin/clawguard.js"],
      },
    });
    const audit = await runAudit(host);
    const changes = planHarden({
      profile: withKrl,
      findings: audit.findings,
      facts: { ...(await gatherPlanFacts(new FactContext(host))), live: true },
    }).changes;
    const steps = changes.map((c) =>
      c.kind === "command"
        ? c.argv.join(" ")
        : c.kind === "service"
          ? `service ${c.unit}`
          : `${c.kind} ${"path" in c ? c.path : ""}`,
    );
    const service = changes.find((c) => c.kind === "file" && c.path.endsWith("clawguard-krl-fetch.service"));
    const timer = changes.find((c) => c.kind === "file" && c.path.endsWith("clawguard-krl-fetch.timer"));
    expect(service && "content" in service && service.content).toMatch(
      /^ExecStart=\/usr\/bin\/node \/opt\/cg\/bin\/clawguard.js ssh-ca fetch-krl --from http:\/\/10.77.0.1:3129\/ssh\/krl$/m,
    );
    const every = /^OnUnitActiveSec=(\d+)s$/m.exec(timer && "content" in timer ? timer.content : "");
    // With a fetch's own time, a revocation reaches the agent within a minute.
    expect(Number(every?.[1])).toBeLessThanOrEqual(30);
    expect(steps).toContain("symlink /etc/systemd/system/timers.target.wants/clawguard-krl-fetch.timer");
    expect(steps.indexOf("service clawguard-krl-fetch.timer")).toBeGreaterThan(
      steps.lastIndexOf("systemctl reload ssh.service"),
    );
    // Without --krl-from, no timer.
    const plain = planHarden({
      profile,
      findings: audit.findings,
      facts: { ...(await gatherPlanFacts(new FactContext(host))), live: true },
    }).changes;
    expect(plain.some((c) => c.kind === "service" && c.unit.includes("krl"))).toBe(false);
  });

  it("refuses a KRL URL the unit could not name safely, and a launcher that is not absolute", () => {
    for (const krlUrl of ["ftp://x/krl", "http://a b/krl", "http://x/%2e", "http://u:p@x/krl", "x:3129"])
      expect(() => validateProfile({ sshCa: { publicKey: CA, agent: "scout", krlUrl } }), krlUrl).toThrow(
        /http:\/\/ URL of the shield's KRL/,
      );
    expect(() =>
      validateProfile({ sshCa: { publicKey: CA, agent: "scout", krlUrl: "http://x/k", launcher: ["node"] } }),
    ).toThrow(/absolute path/);
  });
});
