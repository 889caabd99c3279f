/**
 * The fleet's HTML report in a real headless Chromium (Debian's chromium package), at a phone's
 * size: it must show the matrix, each host's findings and the diff, fetch nothing, run nothing
 * a host sent, and not make the page scroll sideways.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fleetAuditDocument, type HostAudit } from "../../src/fleet/audit.js";
import { diffRuns } from "../../src/fleet/diff.js";
import { renderHtml } from "../../src/fleet/render/html.js";
import { target } from "./fake-hosts.js";
import { finding, report } from "./reports-fixture.js";

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../test-output/fleet-report.png",
);
const HOSTILE = `<img src="http://198.51.100.7/x.png" onerror="document.title='owned'"><script>document.title='owned'</script>`;

const dir = mkdtempSync(path.join(tmpdir(), "clawguard-fleet-html-"));
const file = path.join(dir, "fleet.html");
let context: BrowserContext;
let page: Page;
const requests: string[] = [];
const problems: string[] = [];

function host(name: string, findings: ReturnType<typeof finding>[] | null): HostAudit {
  return {
    host: name,
    target: { ...target(name), address: `10.0.0.${name.length}` },
    status: findings ? "ok" : "unreachable",
    ...(findings
      ? { result: { report: report(findings) } }
      : {
          error: {
            code: "CG_SSH_UNREACHABLE",
            message: "connect to host 10.0.0.9 port 22: No route to host",
          },
        }),
    startedAt: "2026-01-01T00:00:00.000Z",
    durationMs: 900,
  };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  const layers = [
    "gateway",
    "user",
    "systemd",
    "firewall",
    "fail2ban",
    "ssh",
    "tmp",
    "credentials",
    "updates",
    "egress",
  ];
  const all = (status: "pass" | "fail") => layers.map((l) => finding(`${l}.check`, status, "high"));
  const hostile = finding("gateway.check", "fail", "critical");
  hostile.evidence = { source: "/root/.openclaw/openclaw.json", excerpt: HOSTILE };
  const before = [host("agent-web-01.eu.example.com", all("pass")), host("db1", all("pass"))];
  const now = [
    host("agent-web-01.eu.example.com", [hostile, ...all("pass").slice(1)]),
    host("db1", all("pass")),
    host("gone", null),
  ];
  const run = {
    id: "20260101T000000Z-abcdef",
    kind: "audit" as const,
    startedAt: "2026-01-01T00:00:00.000Z",
    params: {},
    inventory: "/etc/fleet/hosts.ini",
  };
  const doc = fleetAuditDocument(run, now, "high");
  const diff = diffRuns(
    { id: "20251231T000000Z-000000", startedAt: "2025-12-31" },
    fleetAuditDocument(run, before, "high").hosts,
    run,
    doc.hosts,
  );
  writeFileSync(file, renderHtml(doc, diff, "0.1.0"));

  context = await chromium.launchPersistentContext(path.join(dir, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("request", (r) => requests.push(r.url()));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(pathToFileURL(file).href);
}, 60_000);

afterAll(async () => {
  await context?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the fleet report in a browser", { timeout: 60_000 }, () => {
  it("fetches nothing and runs nothing a host sent", async () => {
    expect(requests).toEqual([pathToFileURL(file).href]);
    expect(await page.title()).toBe("clawguard fleet audit 20260101T000000Z-abcdef");
    await expect(page.locator("script, img").count()).resolves.toBe(0);
    await expect(page.getByText(HOSTILE).count()).resolves.toBe(1);
  });

  it("shows the matrix worst first, the unreachable host and the regression", async () => {
    const rows = await page.locator("table tr td:first-child").allInnerTexts();
    expect(rows).toEqual(["gone", "agent-web-01.eu.example.com", "db1"]);
    await expect(page.locator("td.down").innerText()).resolves.toMatch(
      /unreachable: connect to host .* No route to host/,
    );
    await expect(page.locator("td.bad").first().innerText()).resolves.toBe("1✗ critical");
    await expect(page.locator("ul.diff li.reg").first().innerText()).resolves.toMatch(
      /agent-web-01\.eu\.example\.com regressed: gateway\.check \(critical\)/,
    );
    // The failing host's findings are open; the clean one's are folded away.
    await expect(page.locator("details.host[open]").count()).resolves.toBe(2);
  });

  it("fits a phone: only the matrix's own box scrolls sideways", async () => {
    const width = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    expect(width[0]).toBeLessThanOrEqual(width[1]!);
    const box = await page.locator(".scroll").evaluate((e) => [e.scrollWidth, e.clientWidth]);
    expect(box[0]).toBeGreaterThan(box[1]!);
    const fontPx = await page.locator("body").evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
    expect(fontPx).toBeGreaterThanOrEqual(14);
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    expect(problems).toEqual([]);
  });
});
