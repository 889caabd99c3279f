/**
 * A line on a terminal that says a slow step is running and for how long so far, rewritten in
 * place each second and wiped when the step ends. Nothing is written where no person watches
 * (a pipe, a file, CI), so output meant for programs stays clean.
 */
export function terminalProgress(
  stream: NodeJS.WriteStream = process.stderr,
): ((event: "start" | "end", what: string, limitMs: number) => void) | undefined {
  if (!stream.isTTY) return undefined;
  let timer: NodeJS.Timeout | undefined;
  return (event, what, limitMs) => {
    if (event === "start") {
      const started = Date.now();
      const draw = () =>
        stream.write(
          `\r\x1b[2K${what}: running, ${Math.round((Date.now() - started) / 1000)} s (limit ${Math.round(limitMs / 1000)} s)`,
        );
      draw();
      timer = setInterval(draw, 1000);
      timer.unref();
    } else {
      if (timer) clearInterval(timer);
      timer = undefined;
      stream.write("\r\x1b[2K");
    }
  };
}
