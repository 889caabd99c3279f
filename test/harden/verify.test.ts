import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { waitHealthy } from "../../src/harden/verify.js";

describe("waiting for the gateway's /healthz", () => {
  it("is ok once the gateway answers, even when it comes up late", async () => {
    let up = false;
    const server = createServer((req, res) => {
      if (!up || req.url !== "/healthz") {
        res.statusCode = 503;
        res.end("starting");
        return;
      }
      res.end('{"ok":true,"status":"live"}');
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    setTimeout(() => (up = true), 1_500);
    try {
      const h = await waitHealthy(port, 10_000);
      expect(h).toMatchObject({ port, ok: true });
      expect(h.detail).toContain('"status":"live"');
    } finally {
      server.close();
    }
  });

  it("says why when nothing answers in time", async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    server.close();
    const h = await waitHealthy(port, 2_000);
    expect(h.ok).toBe(false);
    expect(h.detail).toMatch(/after 2 s: .*ECONNREFUSED/);
  });
});
