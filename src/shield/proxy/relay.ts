/**
 * A tunnel's download path: each read of the destination's socket written straight to the
 * agent's, into buffers that grow while a transfer streams in bulk and go back when it does not.
 */
import type net from "node:net";
import type { BulkBuffers } from "./bulk-buffers.js";

/** Read buffer of a tunnel's upstream: small to start with and for light traffic. */
const FIRST_READ_BYTES = 1024;
const MEDIUM_READ_BYTES = 64 * 1024;
/**
 * Read buffer while a tunnel streams in bulk (each read filled the one before): a read of 1 MiB
 * and one write of it cost half the CPU per MB of 64 KiB pieces, whose syscalls and callbacks
 * dominate the copy itself.
 */
export const BULK_READ_BYTES = 1024 * 1024;
/** Bulk buffers lent at once: parallel bulk downloads hold at most 64 MiB of them. */
export const MAX_BULK_BUFFERS = 64;
/**
 * Read buffer while 1 MiB reads keep coming back full: the destination sends faster than the
 * shield reads. On loopback, with reads and writes of 8 MiB a tunnel moved 1.5x what it moved
 * at 1 MiB (fewer system calls and wake-ups per MB, and the two cores less often idle between
 * them); 4 MiB did less, 16 MiB no better.
 */
export const LARGE_READ_BYTES = 8 * 1024 * 1024;
/** Large buffers lent at once: at most 64 MiB more. */
export const MAX_LARGE_BUFFERS = 8;

/** A tunnel's download path: read options for the upstream socket, and what to do at its end. */
export interface Relay {
  onread: net.OnReadOpts;
  /** Both sockets are closed: hand the lent buffers still held back to their pools. */
  release(): void;
}

/**
 * Read options for a tunnel's upstream socket that write every read straight to `client`.
 * Reads land in a buffer of the tunnel's own instead of a fresh allocation each (whose page
 * faults and collection cost several times the copy itself). The buffer grows while reads fill
 * it: 1 KiB, 64 KiB, then one lent by each pool of `tiers` in turn (1 MiB, 8 MiB) if it has
 * one free. A lent buffer goes back as soon as a read does not need it, so an idle or
 * interactive tunnel holds at most 64 KiB. While any of the last read waits in the client's
 * queue (the kernel took less than all), reading stops, so a buffer is never overwritten, nor
 * returned, under a pending write; the write's callback starts reading again.
 */
export function relayTo(
  client: net.Socket,
  upstream: () => net.Socket | null,
  tiers: readonly BulkBuffers[],
): Relay {
  let current: Buffer | null = null;
  let medium: Buffer | null = null;
  /** The buffer read into now, when a pool lent it, and that pool's place in `tiers`. */
  let lent: Buffer | null = null;
  let tier = -1;
  /** Lent buffers no longer read into; each goes back once no write from it is pending. */
  const retired: Array<{ buf: Buffer; pool: BulkBuffers }> = [];
  let paused = false;
  const retire = () => {
    if (lent) retired.push({ buf: lent, pool: tiers[tier]! });
    lent = null;
    tier = -1;
  };
  const giveBackRetired = () => {
    for (const r of retired) r.pool.give(r.buf);
    retired.length = 0;
  };
  const written = () => {
    // An earlier write's callback can run after a later write was queued: wait for that one too.
    if (client.writableLength > 0) return;
    if (retired.length > 0) giveBackRetired();
    if (!paused) return;
    paused = false;
    upstream()?.resume();
  };
  const onread: net.OnReadOpts = {
    // Called once at connect and again after each read: the buffer for the next read.
    buffer: () => current ?? (current = Buffer.allocUnsafe(FIRST_READ_BYTES)),
    callback: (n: number, buf: Uint8Array) => {
      if (client.destroyed) return false;
      // The next read's buffer: larger if this one was filled, back to 64 KiB if bulk is over.
      if (n === buf.length) {
        if (buf.length < MEDIUM_READ_BYTES) current = medium ??= Buffer.allocUnsafe(MEDIUM_READ_BYTES);
        else if (tier + 1 < tiers.length) {
          // None free: stay at this size.
          const next = tiers[tier + 1]!.take();
          if (next) {
            const up = tier + 1;
            retire();
            lent = current = next;
            tier = up;
          }
        }
      } else if (n < MEDIUM_READ_BYTES && lent !== null) {
        retire();
        current = medium;
      }
      client.write(buf.subarray(0, n), written);
      if (client.writableLength === 0) {
        if (retired.length > 0) giveBackRetired();
        return true;
      }
      paused = true;
      return false;
    },
  };
  return {
    onread,
    release: () => {
      retire();
      giveBackRetired();
    },
  };
}
