// Free of vitest, so benchmarks and scripts can use the harness too; suite.ts has the hooks.
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
export { Topology, type Node } from "./topology.js";
export { runLynis, type LynisRun } from "./lynis.js";
