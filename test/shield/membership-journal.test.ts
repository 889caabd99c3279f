/**
 * Who enrolled or revoked on the shield host: `shield enroll` and `shield revoke` note the local
 * user in the journal beside shield.yaml, bound to the hash of the text they write, and the
 * running shield names that user in the membership record; a change nobody noted reads "by
 * hand". A garbled or unreadable journal loses the name and nothing else: the reload applies.
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MEMBERSHIP_METHODS } from "../../src/shield/membership.js";
import { authorsIn, journalPath, localUser, textSha256 } from "../../src/shield/membership-journal.js";
import { enrollAgent, revokeAgent } from "../../src/shield/wireguard/enroll.js";
import { generateKeyPair } from "../../src/shield/wireguard/keys.js";
import { removeAgentText } from "../../src/shield/wireguard/agents-file.js";
import { freePort, startAdminShield, until, type AdminShield } from "./admin-harness.js";

let s: AdminShield;

beforeAll(async () => {
  s = await startAdminShield(
    `wireguard:
  interface: cgtest1
  listen_port: 51820
  address: [127.0.0.1/24]
  private_key_file: wg.key
  endpoint: 203.0.113.5:51820
agents: []
allow: ["*.test"]
`,
    { listen: `127.0.0.1:${await freePort()}` },
  );
  writeFileSync(path.join(s.dir, "wg.key"), generateKeyPair().privateKey + "\n", { mode: 0o600 });
});

afterAll(async () => {
  await s?.close();
});

/** The membership record the running shield logs for this agent and method, once it has. */
async function recordOf(agent: string, method: string) {
  return until(async () => {
    await s.managed.log.flush();
    return s.managed.log.query({ agent, limit: 100 }).find((r) => r.method === method);
  }, `${method} ${agent} in the log`);
}

const enroll = (id: string, user: string) =>
  enrollAgent({ configFile: s.file, id, expiresInMs: 86_400_000, live: false, user });

describe("the local user in the membership records", () => {
  it("names who ran shield enroll and shield revoke on the host", async () => {
    const r = await enroll("scout", "carol");
    expect(r.journal).toBeNull();
    const joined = await recordOf("scout", MEMBERSHIP_METHODS.joined);
    expect(joined.reason).toMatch(/\(file change; shield enroll by local user carol\)/);
    // A local user is no operator of the API: the record names them, the rule column does not.
    expect(joined.rule).toBeNull();
    const gone = await revokeAgent({ configFile: s.file, id: "scout", live: false, user: "dave" });
    expect(gone.shieldLogged).toBe(true);
    const left = await recordOf("scout", MEMBERSHIP_METHODS.left);
    expect(left.reason).toMatch(/\(file change; shield revoke by local user dave\)/);
    // Bound to the text: the journal line names the hash of the file as written.
    const lines = readFileSync(journalPath(s.file), "utf8").trim().split("\n");
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({
      agent: "scout",
      user: "dave",
      via: "shield revoke",
      sha256: textSha256(readFileSync(s.file, "utf8")),
    });
  });

  it("says by hand for an edit nobody noted, even with a journal that names the agent for another text", async () => {
    await enroll("mate", "carol");
    await recordOf("mate", MEMBERSHIP_METHODS.joined);
    // The same agent removed by hand (an editor's save): the journal's line for "mate" is for another text.
    writeFileSync(s.file, removeAgentText(readFileSync(s.file, "utf8"), s.file, "mate"));
    const left = await recordOf("mate", MEMBERSHIP_METHODS.left);
    expect(left.reason).toMatch(/\(file change; by hand\)/);
  });

  it("loses only the name when the journal is garbled or cannot be read", async () => {
    appendFileSync(journalPath(s.file), 'not json\n{"sha256": 7}\n\u0000\u0001\n');
    await enroll("third", "erin");
    expect((await recordOf("third", MEMBERSHIP_METHODS.joined)).reason).toMatch(/by local user erin/);
    // A journal that is a directory: the CLI says so and goes on, the shield applies the file.
    rmSync(journalPath(s.file));
    mkdirSync(journalPath(s.file));
    const r = await enroll("fourth", "erin");
    expect(r.journal).toMatch(/membership\.journal: EISDIR/);
    const joined = await recordOf("fourth", MEMBERSHIP_METHODS.joined);
    expect(joined.reason).toMatch(/\(file change; by hand\)/);
    expect(s.managed.control.policy.identify(r.addresses[0]!.split("/")[0]!)?.id).toBe("fourth");
    expect(s.warnings.filter((w) => /failed/.test(w))).toEqual([]);
  });
});

describe("the journal, read", () => {
  const line = (o: Record<string, unknown>) => JSON.stringify(o) + "\n";
  const entry = { sha256: "a".repeat(64), agent: "scout", via: "shield enroll", user: "carol", at: 1 };

  it("names the user of the entries for exactly this text, and nobody for anything else", () => {
    const j =
      line(entry) +
      line({ ...entry, sha256: "b".repeat(64), agent: "mate" }) +
      line({ ...entry, agent: "bad", user: "no spaces allowed" }) +
      "garbage\n";
    const who = authorsIn(j, "a".repeat(64));
    expect(who("scout")).toEqual({ user: "carol", via: "shield enroll" });
    expect(who("mate")).toBeNull();
    expect(authorsIn(j.replace("scout", "bad"), "a".repeat(64))("bad")).toEqual({
      user: "carol",
      via: "shield enroll",
    });
    expect(authorsIn(line({ ...entry, agent: "bad", user: "x y" }), "a".repeat(64))("bad")).toBeNull();
    expect(authorsIn("", "a".repeat(64))("scout")).toBeNull();
  });

  it("takes the user sudo ran the CLI for, else the process's own", () => {
    expect(localUser({ SUDO_USER: "carol" })).toBe("carol");
    expect(localUser({ SUDO_USER: "not a name" })).not.toBe("not a name");
    expect(localUser({})).toMatch(/^\S+$/);
  });
});
