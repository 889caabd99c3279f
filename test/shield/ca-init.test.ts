/**
 * `shield ca init` run as root, as an operator does on the shield: the CA belongs to the user
 * the shield runs as (the owner of shield.yaml's directory, as `shield install` leaves it),
 * since that process signs grants and serves the KRL; in a directory of root's, to root.
 */
import { chownSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "./cli-harness.js";

const isRoot = process.getuid?.() === 0;
const dirs: string[] = [];
const fresh = () => {
  const d = mkdtempSync(path.join(tmpdir(), "clawguard-ca-init-"));
  dirs.push(d);
  return d;
};

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.runIf(isRoot)("shield ca init as root", () => {
  it("gives the CA to the user the shield runs as, its key still readable by that user alone", async () => {
    const dir = fresh();
    chownSync(dir, 4242, 4343);
    const r = await cli("shield", "ca", "init", "--config", path.join(dir, "shield.yaml"), "--json");
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ ok: true, owner: 4242 });
    const ca = path.join(dir, "ssh-ca");
    const files = readdirSync(ca);
    expect(files).toEqual(expect.arrayContaining(["ca", "ca.pub", "krl", "grants.json"]));
    for (const f of [".", ...files]) {
      const st = statSync(path.join(ca, f));
      expect([st.uid, st.gid], f).toEqual([4242, 4343]);
    }
    expect(statSync(path.join(ca, "ca")).mode & 0o777).toBe(0o600);
    expect(statSync(ca).mode & 0o777).toBe(0o700);
  });

  it("keeps it root's in a directory of root's", async () => {
    const dir = fresh();
    const r = await cli("shield", "ca", "init", "--config", path.join(dir, "shield.yaml"), "--json");
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).owner).toBeUndefined();
    expect(statSync(path.join(dir, "ssh-ca", "ca")).uid).toBe(0);
  });

  it("says which directory it cannot read, and makes nothing", async () => {
    const dir = fresh();
    const r = await cli("shield", "ca", "init", "--config", path.join(dir, "gone", "shield.yaml"));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/cannot read .*gone, the directory of --config/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
