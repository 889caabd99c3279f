/**
 * `clawguard audit | head` closes the pipe while clawguard still writes. That is the reader's
 * choice, not a failure: end quietly, as the shell's own tools do, instead of a stack trace.
 */
export function endQuietlyWhenPipeCloses(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]) {
  for (const s of streams)
    s.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(typeof process.exitCode === "number" ? process.exitCode : 0);
      throw err;
    });
}
