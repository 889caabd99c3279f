import { afterAll, beforeAll } from "vitest";
import { Container, type BootOptions } from "./container.js";
import { installClawguard } from "./install.js";

export { Container, RUN_DIR, type BootOptions, type ExecOptions } from "./container.js";
export { auditIn, installClawguard, INSTALL_DIR, PROJECT_DIR, type AuditRun } from "./install.js";
export {
  createNetwork,
  destroyNetwork,
  netnsArgv,
  CONTAINER_ADDR,
  PEER_ADDR,
  type TestNetwork,
} from "./netns.js";
export { ensureRootfs, configuredMirror, BASE_PACKAGES, OFFLINE_PACKAGES, CACHE_DIR } from "./rootfs.js";
export { cmd, CmdError, isRoot, sleep, type CmdResult, type CmdOptions } from "./run.js";
export { generateKey, sshFrom, type SshOptions, type SshTarget } from "./ssh.js";

export interface SuiteContainerOptions extends BootOptions {
  /** Install this checkout's clawguard inside before the tests run (default true). */
  clawguard?: boolean;
}

/**
 * Boot a container in `beforeAll` and destroy it in `afterAll` (which vitest runs even when
 * tests or the boot fail). Returns a getter for the tests of the enclosing suite.
 */
export function useContainer(opts: SuiteContainerOptions = {}): () => Container {
  let ct: Container | undefined;
  beforeAll(async () => {
    ct = await Container.boot(opts);
    if (opts.clawguard !== false) await installClawguard(ct);
  });
  afterAll(async () => {
    await ct?.destroy();
  });
  return () => {
    if (!ct) throw new Error("the suite's container did not boot (see the beforeAll error)");
    return ct;
  };
}
