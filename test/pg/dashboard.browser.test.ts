/**
 * The dashboard of a node sharing PostgreSQL, in a real headless Chromium (Debian's chromium
 * package): it names the node and the policy revision, and says so when PostgreSQL stops
 * answering. Skipped, saying why, without PostgreSQL or Chromium.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ADMIN_TOKEN } from "../shield/admin-harness.js";
import { sha256 } from "../shield/proxy-harness.js";
import { describePg, NO_POSTGRES, PG_TIMEOUT, TestPostgres } from "./pg-harness.js";
import { removeNodeDirs, startNode, type Node } from "./nodes-harness.js";

const CHROMIUM = "/usr/bin/chromium";
const NO_CHROMIUM = existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing: apt-get install chromium`;
if (NO_CHROMIUM !== null && NO_POSTGRES === null)
  process.stderr.write(`skipping the store's dashboard test: ${NO_CHROMIUM}\n`);
const policy = `agents:
  - { id: scout, token_sha256: "${sha256("scout-proxy-password")}", allow: [127.0.0.3/32] }
`;

let pgd: TestPostgres;
let node: Node;
let profile: string;
let context: BrowserContext;
beforeAll(async () => {
  if (NO_POSTGRES !== null || NO_CHROMIUM !== null) return;
  pgd = await TestPostgres.start();
  node = await startNode("a", pgd.url(await pgd.database()), policy, { resolver: async () => [] });
  profile = mkdtempSync(path.join(tmpdir(), "clawguard-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
    ],
  });
}, PG_TIMEOUT);
afterAll(async () => {
  await context?.close();
  await node?.close();
  removeNodeDirs();
  await pgd?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describePg("the dashboard of a node sharing a store", () => {
  it.skipIf(NO_CHROMIUM !== null)(
    `says which node it is, and when PostgreSQL stops answering${NO_CHROMIUM ? ` (skipped: ${NO_CHROMIUM})` : ""}`,
    async () => {
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(node.admin + "/");
      await page.fill("#token", ADMIN_TOKEN);
      await page.click("#connect");
      await page.waitForSelector("#store:has-text('node a · store: PostgreSQL, policy revision')");
      expect(await page.getAttribute("#store", "class")).toBe("muted");
      pgd.stopServer();
      // The page reads the status every 2 s; the node notices within its next poll.
      await page.waitForSelector("#store:has-text('STORE UNREACHABLE')", { timeout: 15_000 });
      expect(await page.textContent("#store")).toMatch(
        /^node a · STORE UNREACHABLE since .+: enforcing the last policy this node had \(revision \d+\); \d+ record\(s\) wait in its own log$/,
      );
      expect(await page.getAttribute("#store", "class")).toBe("error");
      pgd.startServer();
      await page.waitForSelector("#store:has-text('store: PostgreSQL')", { timeout: 15_000 });
    },
  );
});
