// A shield node as a process of its own, for the tests that kill one: runs until killed.
import { loadShieldConfig } from "../../src/shield/config.js";
import { startManagedShield } from "../../src/shield/daemon.js";

const managed = await startManagedShield(await loadShieldConfig(process.argv[2]!), {
  watch: false,
  warn: () => undefined,
});
process.stdout.write(`ready ${managed.shield.address.port}\n`);
