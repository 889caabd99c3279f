import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { listRuns } from "../../src/change/journal.js";
import { LocalHost, runCommand } from "../../src/host/host.js";
import { LocalWriter } from "../../src/host/writer.js";
import { recordedShield, rollbackLockdown } from "../../src/lockdown/apply.js";
import { makeTree } from "./tree.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/clawguard.js");
const NFT = "etc/clawguard/lockdown.nft";
const UNIT = "etc/systemd/system/clawguard-lockdown.service";
const WANTS = "etc/systemd/system/multi-user.target.wants/clawguard-lockdown.service";
const DROPIN = "etc/systemd/system/openclaw-gateway.service.d/50-clawguard-egress.conf";
const OPERATORS = "# the operator's own rules\nflush ruleset\n";

/**
 * A tree as the lockdown of an earlier version left it: its files written, the operator's
 * ruleset backed up beside state.json, which records what each path was before.
 */
function legacyTree(): string {
  const root = makeTree({ [NFT]: ["table inet clawguard_egress {}\n", 0o644] });
  const put = (p: string, text: string, mode = 0o644) => {
    mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    writeFileSync(path.join(root, p), text);
    chmodSync(path.join(root, p), mode);
  };
  put(UNIT, "[Service]\nExecStart=/usr/sbin/nft -f /etc/clawguard/lockdown.nft\n");
  put(DROPIN, "[Service]\nEnvironment=HTTPS_PROXY=http://10.0.0.2:3128\n");
  mkdirSync(path.dirname(path.join(root, WANTS)), { recursive: true });
  symlinkSync(`/${UNIT}`, path.join(root, WANTS));
  const blob = "/var/lib/clawguard/lockdown/backup/0-lockdown.nft";
  put(blob.slice(1), OPERATORS, 0o600);
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const state = {
    schema: "clawguard.lockdown-state/v1",
    appliedAt: "2026-03-01T10:00:00.000Z",
    backend: "nft",
    shield: {
      host: "shield.example",
      port: 3128,
      addresses: ["10.0.0.2"],
      pinned: true,
      proxyUrl: "http://10.0.0.2:3128",
    },
    gatewayUnits: ["openclaw-gateway.service"],
    entries: [
      {
        path: `/${NFT}`,
        before: {
          state: "file",
          mode: 0o640,
          uid,
          gid,
          blob,
          sha256: createHash("sha256").update(OPERATORS).digest("hex"),
        },
      },
      { path: `/${UNIT}`, before: { state: "absent" } },
      { path: `/${DROPIN}`, before: { state: "absent" } },
      { path: `/${WANTS}`, before: { state: "absent" } },
    ],
    dirs: ["/etc/systemd/system/multi-user.target.wants", "/etc/systemd/system/openclaw-gateway.service.d"],
  };
  put("var/lib/clawguard/lockdown/state.json", JSON.stringify(state, null, 2), 0o600);
  return root;
}

const netnsWorks =
  (
    await runCommand(["unshare", "--user", "--map-root-user", "--net", "nft", "--version"]).catch(() => ({
      code: 1,
    }))
  ).code === 0;

describe("a lockdown recorded by an earlier version", () => {
  it("rolls back through the engine: every file as it was, its record gone", async () => {
    const root = legacyTree();
    const host = new LocalHost(root);
    expect(await recordedShield(host)).toMatchObject({ host: "shield.example", addresses: ["10.0.0.2"] });
    const rb = await rollbackLockdown(host, new LocalWriter(host), { live: false, systemd: false });
    expect(rb.problems).toEqual([]);
    expect(rb.runs).toEqual(["20260301T100000Z-lockdown-v1"]);
    expect(readFileSync(path.join(root, NFT), "utf8")).toBe(OPERATORS);
    expect(statSync(path.join(root, NFT)).mode & 0o777).toBe(0o640);
    for (const p of [UNIT, DROPIN, "etc/systemd/system/multi-user.target.wants"])
      expect(existsSync(path.join(root, p)), p).toBe(false);
    expect(() => lstatSync(path.join(root, WANTS))).toThrow();
    expect(existsSync(path.join(root, "var/lib/clawguard/lockdown"))).toBe(false);
    expect(rb.restored.map((r) => `${r.to} ${r.path}`)).toEqual([
      "absent /etc/systemd/system/multi-user.target.wants",
      "absent /etc/systemd/system/openclaw-gateway.service.d",
      `file /${NFT}`,
      `absent /${UNIT}`,
      `absent /${DROPIN}`,
      `absent /${WANTS}`,
    ]);
    const [run] = await listRuns(path.join(root, "var/lib/clawguard"));
    expect(run).toMatchObject({ kind: "lockdown", status: "ok", rolledBack: true });
  });

  it.runIf(netnsWorks)(
    "is listed by clawguard rollback --list as a lockdown run, and clawguard rollback undoes it",
    async () => {
      const root = legacyTree();
      const cg = `'${process.execPath}' '${BIN}'`;
      const script = [
        `${cg} rollback --list --json --root '${root}' > '${root}/list.json'`,
        `${cg} rollback --root '${root}' > /dev/null`,
        "echo rollback=$?",
      ].join("; ");
      const r = await runCommand(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script], {
        timeoutMs: 80_000,
      });
      expect(r.stdout.trim(), r.stderr).toBe("rollback=0");
      const list = JSON.parse(readFileSync(path.join(root, "list.json"), "utf8")) as {
        runs: Array<{ id: string; kind: string; status: string; rolledBack: boolean }>;
      };
      expect(list.runs).toEqual([
        expect.objectContaining({ id: "20260301T100000Z-lockdown-v1", kind: "lockdown", rolledBack: false }),
      ]);
      expect(readFileSync(path.join(root, NFT), "utf8")).toBe(OPERATORS);
      expect(existsSync(path.join(root, UNIT))).toBe(false);
    },
    90_000,
  );
});
