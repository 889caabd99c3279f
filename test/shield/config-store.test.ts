import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { parseShieldConfig } from "../../src/shield/config.js";

const FILE = "/etc/clawguard/shield.yaml";
const BASE = "listen: 127.0.0.1:3128\nlog: { path: /var/lib/shield.db }\nnode: a\n";

function configError(text: string): ConfigError {
  try {
    parseShieldConfig(text, FILE);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("config was accepted");
}

describe("store: and node: in shield.yaml", () => {
  it("reads the URL, the password file beside shield.yaml, and the node's name", () => {
    const cfg = parseShieldConfig(
      `${BASE}store:\n  postgres: "postgresql://shield@db.internal:6543/fleet?sslmode=require"\n  password_file: pg.password\n`,
      FILE,
    );
    expect(cfg.node).toBe("a");
    expect(cfg.store).toMatchObject({
      host: "db.internal",
      port: 6543,
      database: "fleet",
      user: "shield",
      params: { sslmode: "require" },
      passwordFile: "/etc/clawguard/pg.password",
    });
    // A URL without user or port: the defaults.
    const plain = parseShieldConfig(`${BASE}store: { postgres: "postgres://db/clawguard" }\n`, FILE);
    expect(plain.store).toMatchObject({ port: 5432, user: "clawguard" });
  });

  it.each([
    ["a URL that is no URL", 'store: { postgres: "db.internal:5432/clawguard" }', "store.postgres", "is not"],
    ["another scheme", 'store: { postgres: "mysql://db/clawguard" }', "store.postgres", "not postgres:"],
    [
      "a password in the URL",
      'store: { postgres: "postgres://clawguard:hunter2@db/clawguard" }',
      "store.postgres",
      "holds a password",
    ],
    ["no database", 'store: { postgres: "postgres://db" }', "store.postgres", "needs a host and a database"],
    [
      "a key the store has not got",
      'store: { postgres: "postgres://db/x", pass: x }',
      "store.pass",
      "unknown",
    ],
  ])("refuses %s, naming the file, the line and the key", (_what, yaml, keyPath, reason) => {
    const err = configError(`${BASE}${yaml}\n`);
    const p = err.problems[0];
    expect(p?.keyPath).toBe(keyPath);
    expect(p?.line).toBe(4);
    expect(p?.reason).toContain(reason);
    expect(err.code).toBe("CG_CONFIG_INVALID");
    expect(err.message.split("\n")[0]).toBe(`${FILE}:4: ${keyPath}: ${p?.reason}`);
    // The password never shows in the error.
    expect(err.message).not.toContain("hunter2");
  });

  it("refuses a store without node:, and a node name other nodes could not tell apart", () => {
    const none = configError(
      `listen: 127.0.0.1:3128\nlog: { path: /x.db }\nstore: { postgres: "postgres://db/x" }\n`,
    );
    expect(none.problems[0]).toMatchObject({ keyPath: "store", line: 3 });
    expect(none.problems[0]?.reason).toContain("needs node: NAME");
    const bad = configError(
      `${BASE.replace("node: a", 'node: "a b"')}store: { postgres: "postgres://db/x" }\n`,
    );
    expect(bad.problems[0]).toMatchObject({ keyPath: "node", line: 3 });
  });
});
