import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openTunnel, startAdminShield, until, type AdminShield } from "./admin-harness.js";
import { curl, sha256, TableResolver, Upstream, v4 } from "./proxy-harness.js";

const SCOUT = "scout-proxy-password";
const resolver = new TableResolver({ "web.test": v4("127.0.0.3"), "new.test": v4("127.0.0.3") });

const rules = (allow: string) => `agents:
  - id: scout
    token_sha256: "${sha256(SCOUT)}"
    allow: [${allow}]
`;

let web: Upstream;
let s: AdminShield;
let original: string;

beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
});

afterAll(async () => {
  await web?.stop();
});

afterEach(async () => {
  await s?.close();
}, 60_000);

const scout = (host: string) =>
  curl(["-x", s.proxyUrl, "--proxy-user", `scout:${SCOUT}`, `http://${host}:${web.port}/`]);

async function start(allow = "web.test, 127.0.0.3/32") {
  s = await startAdminShield(rules(allow), { resolver: resolver.resolve });
  original = readFileSync(s.file, "utf8");
}

const lastReload = async () => (await s.api("GET", "/api/status")).json.lastReload;

describe("reload on change", () => {
  it("applies a valid edit written in place, and one renamed over the file", async () => {
    await start();
    expect((await scout("new.test")).status).toBe(403);
    writeFileSync(s.file, original.replace("allow: [web.test,", "allow: [new.test, web.test,"));
    await until(
      async () => ((await scout("new.test")).status === 200 ? true : undefined),
      "new.test allowed",
    );
    expect(await lastReload()).toMatchObject({ ok: true, trigger: "file change", error: null });

    // Editors and atomic writers replace the file: the watch is on the directory, not the inode.
    writeFileSync(`${s.file}.new`, original);
    renameSync(`${s.file}.new`, s.file);
    await until(
      async () => ((await scout("new.test")).status === 403 ? true : undefined),
      "new.test denied again",
    );
  });

  it("keeps the running policy when the new file fails validation, and says why", async () => {
    await start();
    expect((await scout("web.test")).status).toBe(200);
    const broken: Array<[string, RegExp]> = [
      [original.replace("127.0.0.3/32]", "127.0.0.3/32"), /shield\.yaml:\d+: invalid YAML/],
      [
        original.replace("allow: [web.test,", "allow: [web.test"),
        /shield\.yaml:10: agents\[0\]\.allow\[0\]: rule/,
      ],
      [original + "alow: [everything.test]\n", /shield\.yaml:\d+: alow: unknown key/],
      [original.replace(/token_sha256: .*/, 'token_sha256: "not-a-hash"'), /agents\[0\]\.token_sha256/],
      ["", /expected a mapping/],
    ];
    for (const [text, error] of broken) {
      const before = (await lastReload())?.at ?? 0;
      writeFileSync(s.file, text);
      const r = await until(
        async () => {
          const x = await lastReload();
          return x && x.at > before ? x : undefined;
        },
        `reload of ${text.slice(0, 30)}`,
      );
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(error);
      expect(r.error).toContain("the running policy stays in force");
      // What was allowed before still is, and what was denied still is.
      expect((await scout("web.test")).status).toBe(200);
      expect((await scout("new.test")).status).toBe(403);
    }
    expect(s.warnings.some((w) => /reload \(file change\) failed/.test(w))).toBe(true);
    writeFileSync(s.file, original.replace("allow: [web.test,", "allow: [new.test, web.test,"));
    await until(async () => ((await lastReload())?.ok ? true : undefined), "a good reload");
    expect((await scout("new.test")).status).toBe(200);
  });

  it("says a change of HTTP server waits for a restart, and keeps serving with the one it has", async () => {
    await start();
    writeFileSync(s.file, `${original}http_server: node\n`);
    const r = await until(async () => (await lastReload()) ?? undefined, "a reload");
    expect(r).toMatchObject({ ok: true, restartNeeded: ["http_server"] });
    expect(s.warnings.some((w) => /changes to http_server apply after a restart/.test(w))).toBe(true);
    expect((await scout("web.test")).status).toBe(200);
  });

  it("keeps the policy when the file disappears", async () => {
    await start();
    renameSync(s.file, `${s.file}.moved`);
    const r = await s.managed.reload("test", true);
    expect(r.ok).toBe(false);
    expect((await lastReload()).error).toMatch(/cannot read the config \(ENOENT\)/);
    expect((await scout("web.test")).status).toBe(200);
    renameSync(`${s.file}.moved`, s.file);
  });

  it("closes tunnels the new file no longer allows, and keeps API mode switches across reloads", async () => {
    await start();
    const t = await openTunnel(s.proxyPort, `web.test:${web.port}`, "scout", SCOUT);
    expect(t.head).toMatch(/^HTTP\/1\.1 200/);
    await s.api("PUT", "/api/mode", { scope: "global", mode: "audit" });
    writeFileSync(s.file, original.replace("allow: [web.test, 127.0.0.3/32]", "allow: [127.0.0.3/32]"));
    // Audit mode (from the API) lets the name through: the tunnel stays.
    await until(async () => ((await lastReload())?.ok ? true : undefined), "reload");
    expect((await s.api("GET", "/api/status")).json.modes.global).toBe("audit");
    expect(t.socket.destroyed).toBe(false);
    expect(await t.get("web.test")).toMatch(/ok$/);
    const r = await s.api("PUT", "/api/mode", { scope: "global", mode: null });
    expect(r.json.tunnelsClosed).toBe(1);
    expect(
      await Promise.race([t.closed, new Promise<number>((x) => setTimeout(() => x(-1), 1000))]),
    ).toBeGreaterThan(0);
  });

  it("does nothing for a write of identical bytes, and reapplies on a forced reload (SIGHUP)", async () => {
    await start();
    writeFileSync(s.file, original);
    await new Promise((r) => setTimeout(r, 300));
    expect(await lastReload()).toBeNull();
    const r = await s.managed.reload("SIGHUP", true);
    expect(r.ok).toBe(true);
    expect(await lastReload()).toMatchObject({ ok: true, trigger: "SIGHUP" });
  });
});
