import { describe, expect, it } from "vitest";
import { parseNftRuleset, parseSsListen } from "../../src/facts/firewall-live.js";

describe("socket owners", () => {
  it("reads socket owners from ss", () => {
    const text =
      'LISTEN 0 128 0.0.0.0:2222 0.0.0.0:* users:(("sshd",pid=612,fd=3))\n' +
      'LISTEN 0 4096 [::]:8080 [::]:* users:(("docker-proxy",pid=900,fd=4))\n';
    expect(parseSsListen(text)).toEqual([
      { address: "0.0.0.0", port: 2222, processes: ["sshd"] },
      { address: "::", port: 8080, processes: ["docker-proxy"] },
    ]);
  });
});

describe("live ruleset through nft", () => {
  it("reads ufw's chains and the input policy per family", () => {
    const text = [
      "table ip filter {",
      "\tchain INPUT {",
      "\t\ttype filter hook input priority filter; policy drop;",
      "\t\tcounter packets 0 bytes 0 jump ufw-before-logging-input",
      "\t}",
      "\tchain ufw-user-input {",
      "\t\tmeta l4proto tcp tcp dport 2222 counter packets 3 bytes 180 accept",
      "\t}",
      "}",
      "table ip6 filter {",
      "\tchain INPUT {",
      "\t\ttype filter hook input priority filter; policy accept;",
      "\t}",
      "}",
      "table inet clawguard {",
      "\tchain output {",
      "\t\ttype filter hook output priority filter; policy drop;",
      "\t}",
      "}",
    ].join("\n");
    const { v4, v6 } = parseNftRuleset(text);
    expect(v4.chains).toEqual(["INPUT", "ufw-user-input", "output"]);
    expect(v4.policies.INPUT).toBe("DROP");
    expect(v6.policies.INPUT).toBe("ACCEPT");
    expect(v6.chains).not.toContain("ufw-user-input");
  });
});
