import { afterAll, beforeAll } from "vitest";
import { Container, type BootOptions } from "./container.js";
import { installClawguard } from "./install.js";

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
