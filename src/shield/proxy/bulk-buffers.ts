/**
 * The large read buffers of tunnels that stream in bulk, shared by one proxy. Lent buffers are
 * returned and reused rather than allocated for every bulk stretch of every tunnel (each was
 * external memory, which sets off garbage collections of its own), and at most `maxLent` are out
 * at once: a thousand parallel downloads then hold `maxLent` MiB, not a GiB. A tunnel that finds
 * none left keeps reading in smaller pieces. Up to `maxIdle` returned buffers are kept for reuse;
 * the rest are let go.
 */
export class BulkBuffers {
  private readonly idle: Buffer[] = [];
  private lent = 0;

  constructor(
    readonly size: number,
    readonly maxLent: number,
    readonly maxIdle = 4,
  ) {}

  /** A buffer of `size` bytes, or null when `maxLent` are already out. */
  take(): Buffer | null {
    if (this.lent >= this.maxLent) return null;
    this.lent += 1;
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Return a buffer from `take`, once nothing reads into it or writes from it any more. */
  give(buf: Buffer): void {
    this.lent -= 1;
    if (this.idle.length < this.maxIdle) this.idle.push(buf);
  }

  get inUse(): number {
    return this.lent;
  }
}
