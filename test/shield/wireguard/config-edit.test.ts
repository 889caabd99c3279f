import { chmodSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isSeq, parse, parseDocument } from "yaml";
import { renderShieldConfigSkeleton } from "../../../src/render/shield-unit.js";
import { parseShieldConfigKept, readKept } from "../../../src/shield/config-cache.js";
import { parseShieldConfig } from "../../../src/shield/config.js";
import { enrolledEntryNode, enrolledEntryPlain } from "../../../src/shield/wireguard/agents-file.js";
import { enrollAgent, revokeAgent } from "../../../src/shield/wireguard/enroll.js";
import { generateKeyPair } from "../../../src/shield/wireguard/keys.js";
import { blockAppend, blockAppendOf, seqAppend } from "../../../src/yaml/edit.js";
import { tempDir } from "../../harden/tree.js";

const DAY = 86_400_000;

/** Whether the kept entry `name` is the one for `file`. */
const readKeptFile = (name: string, file: string) =>
  (JSON.parse(readFileSync(path.join(cache, name), "utf8")) as { file: string }).file === path.resolve(file);

/** A WireGuard shield with `n` agents enrolled by hand, a comment among them and a key after them. */
function shieldWith(n: number): { dir: string; file: string } {
  const dir = tempDir("config-edit");
  const keyFile = path.join(dir, "wireguard.key");
  writeFileSync(keyFile, generateKeyPair().privateKey + "\n", { mode: 0o600 });
  const skeleton = renderShieldConfigSkeleton({
    configDir: dir,
    wireguard: {
      iface: "cgtest8",
      listenPort: 51820,
      addresses: ["10.77.0.1/16", "fd77:77::1/64"],
      privateKeyFile: keyFile,
      endpoint: "203.0.113.5:51820",
    },
  }).replace(/path: \/var\/lib\/clawguard-shield\/shield.db/, "path: shield.db");
  const agents = [n === 0 ? "agents: []" : "agents:"];
  for (let i = 0; i < n; i++) {
    const h = 2 + i;
    agents.push(
      `  - id: a${i}`,
      `    sources: [10.77.0.${h}/32, "fd77:77::${h.toString(16)}/128"]`,
      `    wireguard: { public_key: "${generateKeyPair().publicKey}" }`,
      ...(i === 0 ? ["    # the first one, by hand"] : []),
    );
  }
  const text = skeleton.replace(/^agents:.*$/m, agents.join("\n")) + "strip_headers: [x-agent-secret]\n";
  const file = path.join(dir, "shield.yaml");
  writeFileSync(file, text, { mode: 0o600 });
  parseShieldConfig(text, file);
  return { dir, file };
}

const enroll = (file: string, id: string, more: Partial<Parameters<typeof enrollAgent>[0]> = {}) =>
  enrollAgent({
    configFile: file,
    id,
    expiresInMs: DAY,
    live: false,
    publicKey: generateKeyPair().publicKey,
    ...more,
  });

let cache: string;
beforeEach(() => {
  cache = path.join(tempDir("config-cache"), "kept");
  process.env.CLAWGUARD_CONFIG_CACHE = cache;
});
afterEach(() => {
  delete process.env.CLAWGUARD_CONFIG_CACHE;
});

describe("enrolment from the kept config", () => {
  it("writes the same bytes as an enrolment that parses the file, and keeps what the next one needs", async () => {
    const kept = shieldWith(3);
    const parsed = shieldWith(0);
    writeFileSync(parsed.file, readFileSync(kept.file));
    const keys = Array.from({ length: 4 }, () => generateKeyPair().publicKey);
    for (const [i, key] of keys.entries()) {
      process.env.CLAWGUARD_CONFIG_CACHE = cache;
      const a = await enroll(kept.file, `n${i}`, { publicKey: key });
      // Each enrolment but the first started from what the one before kept.
      expect(readKept(kept.file, readFileSync(kept.file, "utf8"))).not.toBeNull();
      process.env.CLAWGUARD_CONFIG_CACHE = "off";
      const b = await enroll(parsed.file, `n${i}`, { publicKey: key });
      expect(a.addresses).toEqual(b.addresses);
      expect(readFileSync(kept.file, "utf8")).toBe(readFileSync(parsed.file, "utf8"));
    }
    const text = readFileSync(kept.file, "utf8");
    expect(text).toContain("    # the first one, by hand\n");
    expect(text.trimEnd().endsWith("strip_headers: [x-agent-secret]")).toBe(true);
    expect(parseShieldConfig(text, kept.file).agents.map((a) => a.id)).toEqual([
      "a0",
      "a1",
      "a2",
      "n0",
      "n1",
      "n2",
      "n3",
    ]);
    const entries = readdirSync(cache);
    expect(entries).toHaveLength(1);
  });

  it("is taken only for the very text it was kept for, and from a directory only root may write", async () => {
    /** A shield whose kept entry was forged to forget agent a1 (and so a1's addresses). */
    const forged = () => {
      const s = shieldWith(2);
      const text = readFileSync(s.file, "utf8");
      parseShieldConfigKept(text, s.file);
      const entry = path.join(
        cache,
        readdirSync(cache).find((f) => readKeptFile(f, s.file))!,
      );
      const e = JSON.parse(readFileSync(entry, "utf8")) as { plain: { agents: unknown[] } };
      e.plain.agents = e.plain.agents.slice(0, 1);
      writeFileSync(entry, JSON.stringify(e), { mode: 0o600 });
      return { ...s, text };
    };
    // In root's own directory the entry is what the enrolment goes by: a1's address is handed
    // out again (the shield would refuse the file on reload). So nobody else may write there.
    const trusted = forged();
    expect(readKept(trusted.file, trusted.text)).not.toBeNull();
    expect((await enroll(trusted.file, "later")).addresses).toEqual(["10.77.0.3/32", "fd77:77::3/128"]);

    // Group-writable: ignored, and the file is parsed.
    const ignored = forged();
    chmodSync(cache, 0o770);
    expect(readKept(ignored.file, ignored.text)).toBeNull();
    expect((await enroll(ignored.file, "later")).addresses).toEqual(["10.77.0.4/32", "fd77:77::4/128"]);

    // A file changed in one byte misses as well.
    chmodSync(cache, 0o700);
    const again = forged();
    const changed = again.text.replace("x-agent-secret", "x-agent-secreT");
    writeFileSync(again.file, changed);
    expect(readKept(again.file, changed)).toBeNull();
    expect((await enroll(again.file, "later")).addresses).toEqual(["10.77.0.4/32", "fd77:77::4/128"]);
  });

  it("checks kept data as a parse would: an entry that no longer passes is read from the file", async () => {
    const s = shieldWith(1);
    parseShieldConfigKept(readFileSync(s.file, "utf8"), s.file);
    const entry = path.join(cache, readdirSync(cache)[0]!);
    const e = JSON.parse(readFileSync(entry, "utf8")) as { plain: Record<string, unknown> };
    e.plain.listen = "not an endpoint";
    writeFileSync(entry, JSON.stringify(e), { mode: 0o600 });
    const a = await enroll(s.file, "next");
    expect(a.addresses).toEqual(["10.77.0.3/32", "fd77:77::3/128"]);
    expect(parseShieldConfig(readFileSync(s.file, "utf8"), s.file).listen.host).toBe("10.77.0.1");
  });

  it("refuses an enrolment the config's rules refuse, naming the new entry's line, and writes nothing", async () => {
    const s = shieldWith(2);
    parseShieldConfigKept(readFileSync(s.file, "utf8"), s.file);
    const before = readFileSync(s.file, "utf8");
    const err = await enroll(s.file, "stray", { fleet: "nowhere" }).catch((x: unknown) => x);
    expect(err).toMatchObject({ code: "CG_CONFIG_INVALID" });
    // The line is the new entry's, in the text that was not written: just below the last agent's.
    const lines = before.split("\n");
    const last =
      lines.length -
      lines
        .slice()
        .reverse()
        .findIndex((l) => l.startsWith("    wireguard:"));
    const [problem] = (err as { problems: Array<{ keyPath: string; line?: number }> }).problems;
    expect(problem!.keyPath).toBe("agents[2].fleet");
    expect(problem!.line).toBe(last + 2);
    expect(readFileSync(s.file, "utf8")).toBe(before);
  });

  it("revokes from a kept file and keeps the next enrolment right", async () => {
    const s = shieldWith(3);
    parseShieldConfigKept(readFileSync(s.file, "utf8"), s.file);
    await revokeAgent({ configFile: s.file, id: "a1", live: false, waitForShieldMs: 0 });
    const a = await enroll(s.file, "after");
    const cfg = parseShieldConfig(readFileSync(s.file, "utf8"), s.file);
    expect(cfg.agents.map((x) => x.id)).toEqual(["a0", "a2", "after"]);
    expect(a.addresses).toEqual(["10.77.0.3/32", "fd77:77::3/128"]);
  });
});

describe("appending with a kept plan", () => {
  const id = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/);
  const entry = fc.record({
    id,
    fleet: fc.option(id, { nil: undefined }),
    sources: fc.array(
      fc.ipV4().map((ip) => `${ip}/32`),
      { minLength: 1, maxLength: 2 },
    ),
    publicKey: fc.constant(generateKeyPair().publicKey),
  });

  it("gives, item after item, the text a parse and append gives each time, which reads back as the data", () => {
    fc.assert(
      fc.property(
        fc.array(entry, { minLength: 1, maxLength: 6 }),
        fc.constantFrom("", "\n# after\nmode: enforce\n", "\nother: [1]"),
        (entries, tail) => {
          const start = `agents:\n  - id: first\n    sources: [10.0.0.1/32]\n${tail}`;
          let plan = blockAppendOf(start, parseDocument(start).get("agents", true) as never)!;
          let chained = start;
          let fresh = start;
          for (const e of entries) {
            const clean = Object.fromEntries(
              Object.entries(e).filter(([, v]) => v !== undefined),
            ) as typeof e;
            const r = blockAppend(chained, plan, enrolledEntryNode(clean));
            chained = r.text;
            plan = r.next;
            const seq = parseDocument(fresh).get("agents", true);
            if (!isSeq(seq)) throw new Error("no list");
            fresh = seqAppend(fresh, seq, enrolledEntryNode(clean))!;
            expect(chained).toBe(fresh);
          }
          const agents = (parse(chained) as { agents: unknown[] }).agents;
          expect(agents.slice(1)).toEqual(
            entries.map((e) =>
              enrolledEntryPlain(
                Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)) as typeof e,
              ),
            ),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
