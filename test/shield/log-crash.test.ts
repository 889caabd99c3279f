import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { openLogReader, openLogStore } from "../../src/shield/log/index.js";
import { tempDb } from "./log-helpers.js";

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "log-crash-child.ts");

describe("shield log durability", () => {
  it("keeps every record a flush reported committed when the writer is SIGKILLed mid-load", async () => {
    const db = tempDb();
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, db], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let reported = 0;
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.on("exit", (code, signal) => resolve(signal ?? code)),
    );
    await new Promise<void>((resolve, reject) => {
      let buf = "";
      child.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split("\n");
        buf = lines.pop()!;
        for (const l of lines) reported = Math.max(reported, Number(/^committed (\d+)$/.exec(l)?.[1] ?? 0));
        // Kill while it is still appending and committing, well into the load.
        if (reported >= 5000) {
          child.kill("SIGKILL");
          resolve();
        }
      });
      child.on("exit", () => reject(new Error(`child exited before the kill: ${stderr}`)));
    });
    expect(await exited).toBe("SIGKILL");
    expect(reported).toBeGreaterThanOrEqual(5000);

    const reader = openLogReader(db);
    const v = reader.verify();
    expect(v.ok).toBe(true);
    expect(v.ok && v.count).toBeGreaterThanOrEqual(reported);
    const rows = reader.query({ limit: reported });
    expect(rows).toHaveLength(reported);
    expect(rows.every((r, k) => r.id === k + 1 && r.reason === `seq ${k}`)).toBe(true);
    await reader.close();

    // The shield restarting on the same file goes on with the chain where the killed one stopped.
    const store = openLogStore(db);
    const before = store.stats().headId;
    store.append({ ...rows[0]!, reason: "after restart" });
    await store.flush();
    expect(store.query({ afterId: before }).map((r) => [r.id, r.reason])).toEqual([
      [before + 1, "after restart"],
    ]);
    expect(store.verify()).toMatchObject({ ok: true, headId: before + 1 });
    await store.close();
  }, 60_000);
});
