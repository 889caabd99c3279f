import { runCli } from "../helpers/run-cli.js";

/** `clawguard ARGS` in this process: its exit code and what it wrote to stdout and stderr. */
export const cli = (...args: string[]) => runCli(args);
