/**
 * `clawguard shield install`: the shield's unit, a config skeleton and an admin token, under a
 * root tree. The unit is clawguard's own file and is rewritten; the config and the token are
 * the operator's and are never overwritten.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { UsageError } from "../errors.js";
import { SHIELD_UNIT_NAME, renderShieldConfigSkeleton, renderShieldUnit } from "../render/shield-unit.js";
import {
  checkWireguardInstall,
  installWireguard,
  keyFileOf,
  type WireguardInstall,
} from "./install-wireguard.js";

export interface InstallOptions {
  root: string;
  configDir: string;
  user: string;
  /** Defaults to the running node and this package's bin/clawguard.js. */
  node?: string;
  bin?: string;
  /** Also the WireGuard interface agents reach the proxy through. */
  wireguard?: WireguardInstall;
}

export interface InstalledFile {
  path: string;
  action: "created" | "updated" | "unchanged" | "kept";
  note?: string;
}

export interface InstallResult {
  files: InstalledFile[];
  /** Steps left to the operator, in order. */
  next: string[];
}

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export async function installShield(o: InstallOptions): Promise<InstallResult> {
  if (!USER_NAME.test(o.user)) throw new UsageError(`--user "${o.user}" is not a valid system user name`);
  if (!path.isAbsolute(o.configDir))
    throw new UsageError(`--config-dir must be absolute, not "${o.configDir}"`);
  const root = path.resolve(o.root);
  const at = (p: string) => path.join(root, p);
  const node = o.node ?? process.execPath;
  const bin = o.bin ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/clawguard.js");
  const files: InstalledFile[] = [];
  const next: string[] = [];
  const wg = o.wireguard ? checkWireguardInstall(o.wireguard) : undefined;

  const owner = await ensureUser(root, o.user, next);

  const unitPath = `/etc/systemd/system/${SHIELD_UNIT_NAME}`;
  const unit = renderShieldUnit({
    node,
    bin,
    configDir: o.configDir,
    user: o.user,
    ...(wg ? { wireguardInterface: wg.iface } : {}),
  });
  const old = await readFile(at(unitPath), "utf8").catch(() => null);
  await mkdir(path.dirname(at(unitPath)), { recursive: true });
  if (old !== unit) await writeFile(at(unitPath), unit, { mode: 0o644 });
  files.push({ path: unitPath, action: old === null ? "created" : old === unit ? "unchanged" : "updated" });
  if (/^\/(root|home)\//.test(bin) || /^\/(root|home)\//.test(node)) {
    next.push(`move clawguard out of /root or /home: the unit's ProtectHome=yes hides ${bin}`);
  }

  await mkdir(at(o.configDir), { recursive: true, mode: 0o700 });
  if (owner) await chown(at(o.configDir), owner.uid, owner.gid);
  const cfgPath = path.posix.join(o.configDir, "shield.yaml");
  const skeleton = renderShieldConfigSkeleton({
    configDir: o.configDir,
    ...(wg
      ? {
          wireguard: {
            iface: wg.iface,
            listenPort: wg.listenPort,
            addresses: wg.addresses,
            privateKeyFile: keyFileOf(o.configDir),
            endpoint: wg.endpoint,
          },
        }
      : {}),
  });
  const cfgFile = await writeOnce(at(cfgPath), cfgPath, skeleton, 0o600, owner);
  files.push(cfgFile);
  const tokenPath = path.posix.join(o.configDir, "admin.token");
  files.push(await writeOnce(at(tokenPath), tokenPath, randomBytes(32).toString("hex") + "\n", 0o600, owner));

  // Said last: the tunnel's steps come after the config is edited.
  const tunnelSteps: string[] = [];
  if (wg)
    files.push(
      ...(await installWireguard(
        wg,
        { root, configDir: o.configDir, node, bin, configKept: cfgFile.action === "kept" },
        tunnelSteps,
      )),
    );
  next.push(`edit ${cfgPath}: add your agents and the destinations they may reach`);
  next.push(
    `check it: clawguard shield check --config ${cfgPath}, then ask it: clawguard shield check --config ${cfgPath} --agent ID https://api.openai.com`,
  );
  if (!wg) next.push(`systemctl daemon-reload && systemctl enable --now ${SHIELD_UNIT_NAME}`);
  next.push(
    `from your machine: ssh -L 9090:127.0.0.1:9090 THIS-HOST, then clawguard shield status --admin http://127.0.0.1:9090 --token-file COPY-OF-${tokenPath}`,
  );
  return { files, next: [...next, ...tunnelSteps] };
}

async function writeOnce(
  file: string,
  shown: string,
  text: string,
  mode: number,
  owner: { uid: number; gid: number } | null,
): Promise<InstalledFile> {
  try {
    await writeFile(file, text, { mode, flag: "wx" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST")
      return { path: shown, action: "kept", note: "exists; left as it is" };
    throw e;
  }
  if (owner) await chown(file, owner.uid, owner.gid);
  return { path: shown, action: "created" };
}

/**
 * The service user's ids from the root tree's passwd. On the live system (root "/", run as
 * root) a missing user is created as a system user without a shell or home; in another root
 * tree it is left to the operator.
 */
async function ensureUser(
  root: string,
  user: string,
  next: string[],
): Promise<{ uid: number; gid: number } | null> {
  const find = async () => {
    const passwd = await readFile(path.join(root, "etc/passwd"), "utf8").catch(() => "");
    for (const line of passwd.split("\n")) {
      const f = line.split(":");
      if (f[0] === user && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
    return null;
  };
  let ids = await find();
  const isRoot = process.getuid?.() === 0;
  if (ids === null && root === "/" && isRoot) {
    await promisify(execFile)("useradd", [
      "--system",
      "--user-group",
      "--no-create-home",
      "--home-dir",
      "/nonexistent",
      "--shell",
      "/usr/sbin/nologin",
      user,
    ]);
    ids = await find();
  }
  if (ids === null) {
    next.push(
      `create the service user: useradd --system --user-group --no-create-home --shell /usr/sbin/nologin ${user}; then chown -R ${user}: the config directory`,
    );
    return null;
  }
  return isRoot ? ids : null;
}
