/**
 * Build the cached Debian 12 root before the e2e suite runs, so the first test's setup does not
 * spend its time budget on debootstrap. CI runs this; tests call ensureRootfs() themselves too.
 */
import { ensureRootfs } from "./rootfs.js";

const started = Date.now();
const dir = await ensureRootfs((s) => process.stderr.write(`${s}\n`));
process.stdout.write(`Debian 12 root ready: ${dir} (${Math.round((Date.now() - started) / 1000)} s)\n`);
