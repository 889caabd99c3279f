import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, UsageError } from "../../src/errors.js";
import { allHosts, hostVars } from "../../src/fleet/inventory/graph.js";
import { expandHostPattern, expandRanges } from "../../src/fleet/inventory/hostpattern.js";
import { detectFormat, loadInventory, parseInventory } from "../../src/fleet/inventory/load.js";
import { pythonLiteral } from "../../src/fleet/inventory/pyliteral.js";
import { selectHosts } from "../../src/fleet/limit.js";
import { shlexSplit, shQuote } from "../../src/fleet/shell.js";

const dir = mkdtempSync(path.join(tmpdir(), "clawguard-inventory-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function refusal(text: string, file = "inv.ini"): ConfigError {
  try {
    parseInventory(text, file);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`parsed without an error:\n${text}`);
}

describe("INI inventory errors name the file and line", () => {
  it.each([
    ["[web]\nh1\n[a b]\nh2\n", 3, /invalid section "\[a b\]"/],
    ["[web]\nh1\nh2 novalue\n", 3, /expected key=value after the host name, got "novalue"/],
    ["[web:vars]\nx\n", 2, /expected key=value in \[web:vars\], got "x"/],
    ["[web:bogus]\nx=1\n", 1, /unknown type "bogus"/],
    ["[prod:children]\nweb\n\n[db]\nd1\n", 2, /\[prod:children\] names group "web", which is never declared/],
    ["[x:vars]\na=1\n", 1, /\[x:vars\] is for a group that is never declared/],
    ["[a]\nh1\n[b:children]\na\n[a:children]\nb\n", 6, /makes a loop/],
    ['[a]\nh1 note="open\n', 2, /cannot read the host line: a double quote is never closed/],
    ["[a]\nnode[1:x]\n", 2, /a host range is numbers or single letters/],
    ["[a]\nnode[01:9]\n", 2, /equal length/],
    ["[a]\nweb:\n", 2, /may not end in ":"/],
  ])("%j is refused at line %i", (text, line, reason) => {
    const e = refusal(text);
    expect(e.code).toBe("CG_CONFIG_INVALID");
    expect(e.where).toBe(`inv.ini:${line}`);
    expect(e.reason).toMatch(reason);
  });
});

describe("YAML inventory errors name the file, line and key", () => {
  it("a syntax error", () => {
    const e = refusal("all:\n  hosts:\n    a:\n  bad: [\n", "inv.yml");
    expect(e.where).toMatch(/^inv\.yml:\d+$/);
    expect(e.reason).toMatch(/invalid YAML/);
  });

  it("hosts given as a list", () => {
    const e = refusal("all:\n  children:\n    web:\n      hosts: [a, b]\n", "inv.yml");
    expect(e.where).toBe("inv.yml:4");
    expect(e.message).toMatch(/all\.children\.web\.hosts: "hosts" of group "web" must be a mapping/);
  });

  it("a host whose value is not its vars", () => {
    const e = refusal("all:\n  hosts:\n    a: 5\n", "inv.yml");
    expect(e.where).toBe("inv.yml:3");
    expect(e.reason).toMatch(/host "a" must map to its vars/);
  });

  it("a key given twice", () => {
    const e = refusal("all:\n  hosts:\n    a: {}\n    a: {}\n", "inv.yml");
    expect(e.where).toBe("inv.yml:4");
    expect(e.reason).toMatch(/duplicate key "a"/);
  });

  it("keys Ansible skips are skipped with a warning", () => {
    const inv = parseInventory("all:\n  hots:\n    a:\n  hosts:\n    b:\n", "inv.yml");
    expect(allHosts(inv)).toEqual(["b"]);
    expect(inv.warnings).toEqual([expect.stringMatching(/^inv\.yml:2: skipping key "hots" of group "all"/)]);
  });
});

describe("formats", () => {
  it("are told apart by extension, then by the first line", () => {
    expect(detectFormat("x.yml", "[web]\n")).toBe("yaml");
    expect(detectFormat("hosts", "# c\nall:\n  hosts:\n")).toBe("yaml");
    expect(detectFormat("hosts", "---\nall: {}\n")).toBe("yaml");
    expect(detectFormat("hosts", "web01:2222\n[web]\n")).toBe("ini");
    expect(detectFormat("hosts", "root@10.0.0.1\nweb2\n")).toBe("plain");
    expect(detectFormat("hosts", "web1\nweb2\n")).toBe("ini");
  });

  it("a plain list gives each host its user and port", () => {
    const inv = parseInventory(
      "# lab\nroot@10.0.0.1\ndeploy@web.example.com:2222\n10.0.0.3\nadmin@[2001:db8::1]:22\n",
      "hosts",
    );
    expect(allHosts(inv)).toEqual(["10.0.0.1", "web.example.com", "10.0.0.3", "2001:db8::1"]);
    expect(hostVars(inv, "web.example.com")).toEqual({ ansible_user: "deploy", ansible_port: 2222 });
    expect(hostVars(inv, "2001:db8::1")).toEqual({ ansible_user: "admin", ansible_port: 22 });
    expect(hostVars(inv, "10.0.0.3")).toEqual({});
  });

  it("a plain list that names a host twice is refused at the second line", () => {
    const e = refusal("root@10.0.0.1\nroot@10.0.0.1:2222\n", "hosts");
    expect(e.where).toBe("hosts:2");
    expect(e.reason).toMatch(/already listed on line 1/);
  });

  it("group_vars and host_vars next to the file override it; a broken one is named", async () => {
    const d = path.join(dir, "vars");
    mkdirSync(path.join(d, "group_vars"), { recursive: true });
    writeFileSync(path.join(d, "hosts"), "[web]\nw1 a=1\n[web:vars]\nb=1\n");
    writeFileSync(path.join(d, "group_vars", "web.yml"), "b: 2\nc: 2\n");
    expect(hostVars(await loadInventory(path.join(d, "hosts")), "w1")).toEqual({ a: 1, b: 2, c: 2 });
    writeFileSync(path.join(d, "group_vars", "web.yml"), "b: [\n");
    await expect(loadInventory(path.join(d, "hosts"))).rejects.toThrow(
      /group_vars\/web\.yml:\d+: invalid YAML/,
    );
  });

  it("a missing file says so", async () => {
    await expect(loadInventory(path.join(dir, "nope"))).rejects.toMatchObject({
      code: "CG_FILE_UNREADABLE",
      reason: "file does not exist",
    });
  });
});

describe("values, ranges and words", () => {
  it.each([
    ["42", 42],
    ["-7", -7],
    ["1_000", 1000],
    ["0x1F", 31],
    ["1.5", 1.5],
    ["1e3", 1000],
    ["007", "007"],
    ["True", true],
    ["true", "true"],
    ["None", null],
    ["'single'", "single"],
    ['"a\\tb"', "a\tb"],
    ["[1, 'two', None]", [1, "two", null]],
    ["{'a': 1, 'b': [2]}", { a: 1, b: [2] }],
    ["(1, 2)", [1, 2]],
    ["1 # comment", 1],
    ["prod # comment", "prod # comment"],
    ["1a", "1a"],
    ["yes", "yes"],
  ])("%s reads as %j", (text, value) => expect(pythonLiteral(text)).toEqual(value));

  it("host ranges expand as Ansible's do", () => {
    expect(expandRanges("web[01:03]")).toEqual(["web01", "web02", "web03"]);
    expect(expandRanges("n[1:9:4]")).toEqual(["n1", "n5", "n9"]);
    expect(expandRanges("r-[a:b]-[1:2]")).toEqual(["r-a-1", "r-a-2", "r-b-1", "r-b-2"]);
    expect(expandHostPattern("web[1:2].lab:2222")).toEqual({ names: ["web1.lab", "web2.lab"], port: 2222 });
    expect(expandHostPattern("[2001:db8::1]:22")).toEqual({ names: ["2001:db8::1"], port: 22 });
    // Not a host with a port: the whole text is the name, as Ansible keeps it.
    expect(expandHostPattern("deploy@web:2222")).toEqual({ names: ["deploy@web:2222"], port: undefined });
  });

  it("words split and quote back", () => {
    expect(shlexSplit(`a b="c d" 'e f'\\ g # h`, { comments: true })).toEqual(["a", "b=c d", "e f g"]);
    expect(shlexSplit(`-o "ProxyJump=a b"`)).toEqual(["-o", "ProxyJump=a b"]);
    for (const s of ["plain", "it's", "a b", "$(x)", "", "--"])
      expect(shlexSplit(shQuote(s)).join(" ") || "", s).toBe(s);
  });
});

describe("--limit", () => {
  const inv = parseInventory(
    "[web]\nw1\nw2\n[db]\nd1\n[prod:children]\nweb\ndb\n[canary]\nw2\n",
    "hosts.ini",
  );

  it("an unknown group is an error that lists the groups", () => {
    const e = (() => {
      try {
        selectHosts(inv, "web:nosuch");
      } catch (err) {
        return err as UsageError;
      }
      throw new Error("no error");
    })();
    expect(e.code).toBe("CG_USAGE");
    expect(e.message).toBe('--limit: no host or group matches "nosuch"');
    expect(e.hint).toBe("the inventory's groups: web, db, prod, canary");
  });

  it("an exclusion of an unknown group is an error too", () => {
    expect(() => selectHosts(inv, "prod:!cannary")).toThrow(/no host or group matches "cannary"/);
  });

  it("a limit that leaves nothing is an error", () => {
    expect(() => selectHosts(inv, "web:&db")).toThrow(/leaves no host to work on/);
  });

  it("selects in inventory order whatever the order of terms", () => {
    expect(selectHosts(inv, "!canary,d1,w*")).toEqual(["w1", "d1"]);
    // canary sits right under all, so its host comes before the hosts of prod's children.
    expect(selectHosts(inv)).toEqual(["w2", "w1", "d1"]);
  });
});
