import { describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runCommand } from "../../src/host/host.js";
import { summarizeNft } from "../../src/facts/lockdown.js";

const FIXTURE = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../fixtures/openclaw-good/etc/clawguard/lockdown.nft",
);
const canNft = process.getuid?.() === 0 && ["/usr/sbin/nft", "/sbin/nft"].some((p) => existsSync(p));

describe("lockdown table summary", () => {
  it("reads the saved ruleset", () => {
    expect(summarizeNft(readFileSync(FIXTURE, "utf8"))).toEqual({ hasTable: true, dropsOutput: true });
    expect(
      summarizeNft(
        "table inet other {\n chain output { type filter hook output priority 0; policy drop; }\n}",
      ),
    ).toEqual({
      hasTable: false,
      dropsOutput: true,
    });
  });

  it.runIf(canNft)(
    "reads what the real nft prints after loading it (in a private network namespace)",
    async () => {
      const r = await runCommand(
        ["unshare", "--net", "sh", "-c", `nft -f '${FIXTURE}' && nft list table inet clawguard_egress`],
        { timeoutMs: 10_000 },
      );
      expect(r.stderr).toBe("");
      expect(r.stdout).toContain("policy drop");
      expect(summarizeNft(r.stdout)).toEqual({ hasTable: true, dropsOutput: true });
    },
  );
});
