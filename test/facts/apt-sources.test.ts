import { describe, expect, it } from "vitest";
import {
  parseDeb822Sources,
  parseOneLineSources,
  parseOsRelease,
  securityRepoFor,
  securitySources,
} from "../../src/facts/apt-sources.js";

describe("apt sources", () => {
  it("reads deb822 stanzas with continuation lines, comments and Enabled: no", () => {
    const s = parseDeb822Sources(
      "# mirror\nTypes: deb deb-src\nURIs: http://a/debian\n  http://b/debian\nSuites: trixie\nComponents: main\n\nTypes: deb\nURIs: http://s/debian-security\nSuites: trixie-security\nEnabled: no\n",
      "/x.sources",
    );
    expect(s.map((x) => [x.uris, x.suites, x.enabled, x.line])).toEqual([
      [["http://a/debian", "http://b/debian"], ["trixie"], true, 2],
      [["http://s/debian-security"], ["trixie-security"], false, 8],
    ]);
    expect(securitySources({ sources: s })).toEqual([]);
  });

  it("reads one-line entries with options and counts old /updates suites as security", () => {
    const s = parseOneLineSources(
      "deb [arch=amd64 signed-by=/k.gpg] http://security.debian.org/ buster/updates main # old style\n",
      "/etc/apt/sources.list",
    );
    expect(s[0]).toMatchObject({ types: ["deb"], suites: ["buster/updates"], components: ["main"], line: 1 });
    expect(securitySources({ sources: s })).toHaveLength(1);
  });

  it("names the security repository only for a release it can tell", () => {
    const debian = parseOsRelease(
      'ID=debian\nVERSION_CODENAME=bookworm\nPRETTY_NAME="Debian GNU/Linux 12"\n',
    );
    const main = parseOneLineSources("deb http://m/debian bookworm main non-free-firmware\n", "/l");
    expect(securityRepoFor({ sources: main, files: [], release: debian })).toMatchObject({
      uri: "http://security.debian.org/debian-security",
      suite: "bookworm-security",
      components: ["main", "non-free-firmware"],
    });
    const ubuntu = parseOsRelease("ID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n");
    expect(securityRepoFor({ sources: [], files: [], release: ubuntu })?.suite).toBe("noble-security");
    expect(
      securityRepoFor({ sources: [], files: [], release: parseOsRelease("ID=debian\n") }),
    ).toBeUndefined();
    expect(
      securityRepoFor({ sources: [], files: [], release: parseOsRelease("ID=arch\nVERSION_CODENAME=x\n") }),
    ).toBeUndefined();
    expect(securityRepoFor({ sources: [], files: [] })).toBeUndefined();
  });
});
