import { describe, expect, it } from "vitest";
import { checkHomeUmask } from "../../src/checks/user-umask.js";
import type { Change } from "../../src/change/change.js";
import { ok } from "../../src/facts/fact.js";
import { parseLoginDefs, setLoginDef } from "../../src/facts/login-defs.js";
import { planFor } from "../../src/harden/harden.js";
import { validateProfile } from "../../src/harden/profile.js";
import { LocalHost } from "../../src/host/host.js";
import { auditFixture, loadFixture, one } from "../helpers/fixture.js";

const judge = (text: string) =>
  one(checkHomeUmask({ loginDefs: ok(parseLoginDefs(text), []) }), "user.home_umask");

describe("user.home_umask", () => {
  it("fails Debian's UMASK 022, naming the line, and passes 027 or 077", async () => {
    const { report } = await auditFixture("classic-guide", ["user"]);
    const f = one(report.findings, "user.home_umask");
    expect(f.status).toBe("fail");
    expect(f.fixable).toBe(true);
    expect(f.evidence).toEqual({ source: "/etc/login.defs line 14", excerpt: "UMASK 022, no HOME_MODE" });
    expect(judge("UMASK 027\n").status).toBe("pass");
    expect(judge("UMASK\t0077 # private\n").status).toBe("pass");
    expect(judge("UMASK 007\n").status).toBe("fail");
  });

  it("judges HOME_MODE when it is set, since useradd then ignores UMASK for homes", async () => {
    const { report } = await auditFixture("openclaw-good", ["user"]);
    expect(one(report.findings, "user.home_umask").evidence.excerpt).toBe("HOME_MODE 0700");
    expect(one(report.findings, "user.home_umask").status).toBe("pass");
    const wide = judge("UMASK 027\nHOME_MODE 0755\n");
    expect(wide.status).toBe("fail");
    expect(wide.remediation).toContain("HOME_MODE\\t0750");
  });

  it("fails a file that sets neither, since useradd then uses 022; the last definition wins", () => {
    expect(judge("# nothing\n").evidence.excerpt).toBe("neither UMASK nor HOME_MODE: useradd uses 022");
    expect(judge("UMASK 027\nUMASK 022\n").status).toBe("fail");
  });
});

describe("login.defs edits", () => {
  it("rewrites the last definition in place and keeps the rest, or adds one", () => {
    expect(setLoginDef("# c\nUMASK 022\nX 1\nUMASK 002\n", "UMASK", "027")).toBe(
      "# c\nUMASK 022\nX 1\nUMASK\t\t027\n",
    );
    expect(setLoginDef("X 1\n", "UMASK", "027")).toBe("X 1\nUMASK\t\t027\n");
  });

  it("harden sets UMASK 027 in login.defs and changes nothing else in it", async () => {
    const root = loadFixture("classic-guide");
    const { plan } = await planFor(new LocalHost(root, { isRoot: false }), validateProfile({}));
    const defs = plan.changes.filter(
      (c): c is Extract<Change, { kind: "file" }> => c.kind === "file" && c.path === "/etc/login.defs",
    );
    expect(defs).toHaveLength(1);
    expect(defs[0]!.fixes).toEqual(["user.home_umask"]);
    const before = (await import("node:fs")).readFileSync(`${root}/etc/login.defs`, "utf8");
    expect(defs[0]!.content).toBe(before.replace("UMASK\t\t022\n", "UMASK\t\t027\n"));
  });
});
