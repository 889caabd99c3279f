/**
 * Node flags the shield must be started with; `clawguard` itself (its shebang), the installed
 * unit and the benchmark all pass them.
 *
 * `--no-memory-reducer`: V8's memory reducer shrinks the heap of a process it believes has gone
 * quiet. A bulk tunnel sets it off (its read buffers are external memory, and young collections
 * become rare while bytes stream), and from then on young collections promote the short-lived
 * objects of every plain HTTP request: measured here, scavenges went from about 1.5 ms to 8 ms
 * and CPU per request rose by a third, until the process restarted. A proxy's heap is busy or
 * small, never worth that. Set from inside the process (`v8.setFlagsFromString`) it did not hold
 * (two of three runs still had slow collections), so it belongs on the command line.
 */
export const SHIELD_NODE_FLAGS: readonly string[] = ["--no-memory-reducer"];

/** The flags above that this process was not started with. */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return SHIELD_NODE_FLAGS.filter((f) => !execArgv.includes(f));
}

/**
 * The command line that starts `clawguard shield run` from `bin` (the clawguard script) with
 * this Node and the flags above, followed by `args`.
 */
export function shieldRunArgv(bin: string, args: readonly string[]): string[] {
  return [process.execPath, ...SHIELD_NODE_FLAGS, bin, "shield", "run", ...args];
}
