/**
 * One line on a terminal while hosts run: how many are done of how many, and how many failed so
 * far, rewritten in place. Nothing at all when the stream is not a terminal (a pipe, a CI log)
 * or the output is JSON.
 */
export class Progress {
  private done = 0;
  private failed = 0;
  private shown = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly total: number,
    private readonly label: string,
    private readonly enabled: boolean,
  ) {
    this.draw();
  }

  static for(stream: NodeJS.WriteStream, total: number, label: string, json: boolean | undefined): Progress {
    return new Progress(stream, total, label, Boolean(stream.isTTY) && !json);
  }

  tick(ok: boolean): void {
    this.done++;
    if (!ok) this.failed++;
    this.draw();
  }

  /** Write `text` to `out` with the line out of its way, then draw the line again. */
  above(out: NodeJS.WritableStream, text: string): void {
    this.end();
    out.write(text);
    this.draw();
  }

  /** Clear the line, so that what is printed next starts clean. */
  end(): void {
    if (this.enabled && this.shown) this.stream.write("\r\x1b[K");
    this.shown = false;
  }

  private draw(): void {
    if (!this.enabled) return;
    const failed = this.failed ? `, ${this.failed} failed` : "";
    this.stream.write(`\r\x1b[K${this.label}: ${this.done}/${this.total} done${failed}`);
    this.shown = true;
  }
}
