import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll } from "vitest";

const made: string[] = [];
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

export const GATEWAY_UNIT = `[Unit]
Description=OpenClaw gateway

[Service]
User=openclaw
ExecStart=/usr/bin/openclaw gateway run --bind loopback --port 18789

[Install]
WantedBy=multi-user.target
`;

/**
 * A small system root: users, sshd on port 2222, an OpenClaw gateway unit, and whatever
 * `extra` adds (path -> [content, mode]).
 */
export function makeTree(extra: Record<string, [string, number]> = {}): string {
  const root = mkdtempSync(path.join(tmpdir(), "clawguard-lockdown-"));
  made.push(root);
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const files: Record<string, [string, number]> = {
    "etc/passwd": [
      `root:x:0:0:root:/root:/bin/bash\nopenclaw:x:${uid}:${gid}::/home/openclaw:/usr/sbin/nologin\n`,
      0o644,
    ],
    "etc/group": [`root:x:0:\nopenclaw:x:${gid}:\n`, 0o644],
    "etc/ssh/sshd_config": ["Port 2222\nPermitRootLogin no\n", 0o644],
    "etc/systemd/system/openclaw-gateway.service": [GATEWAY_UNIT, 0o644],
    ...extra,
  };
  for (const [p, [content, mode]] of Object.entries(files)) {
    const abs = path.join(root, p);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, content);
    chmodSync(abs, mode);
  }
  return root;
}

export function read(root: string, p: string): string {
  return readFileSync(path.join(root, p), "utf8");
}
