/**
 * HTTP/1.1 syntax shared by the shield's two parsers, the agent side (front.ts) and the
 * destination side (upstream.ts): header fields and chunked bodies, both read strictly. A
 * message that could be taken apart two ways is an error, never a guess.
 */

// Control characters are exactly what these patterns refuse (HTAB aside).
/* eslint-disable no-control-regex */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Control characters other than tab: never inside a field value (a bare CR or LF included). */
const NOT_IN_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
/**
 * A chunk-size line: hex digits, then extensions `;name` or `;name=value`, the value a token or
 * a quoted string. No whitespace anywhere: RFC 9112 §7.1.1 allows it around ";" and "=", but
 * Node's parser, like many, refuses it, and what one parser refuses another must not read.
 */
const CHUNK_SIZE =
  /^([0-9A-Fa-f]{1,13})(?:;[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:=(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*$/;
/* eslint-enable no-control-regex */
export const DIGITS = /^\d{1,15}$/;

/** Longest chunk-size line (size, extensions) accepted. */
const MAX_CHUNK_LINE = 4096;

/**
 * The field `name ":" OWS value OWS` in text[from, end), appended to `out` as name and value;
 * false when malformed: obsolete line folding (a line starting with whitespace), a space before
 * the colon, a control character in the value (a bare CR or LF included). Taken apart by hand:
 * no match arrays for every field of every message.
 */
export function pushField(text: string, from: number, end: number, out: string[]): boolean {
  const colon = text.indexOf(":", from);
  if (colon < 0 || colon >= end) return false;
  const name = text.slice(from, colon);
  let start = colon + 1;
  let stop = end;
  while (start < stop && isBlank(text.charCodeAt(start))) start++;
  while (stop > start && isBlank(text.charCodeAt(stop - 1))) stop--;
  const value = text.slice(start, stop);
  if (!FIELD_NAME.test(name) || NOT_IN_VALUE.test(value)) return false;
  out.push(name, value);
  return true;
}

/**
 * Whether text[from, end) holds a tab: framing fields (Content-Length, Transfer-Encoding) allow
 * none around their value (Node's parser refuses one after it, takes one before it). Bounded by
 * the line, however long the head.
 */
export function hasTab(text: string, from: number, end: number): boolean {
  for (let i = from; i < end; i++) if (text.charCodeAt(i) === 9) return true;
  return false;
}

/** Optional whitespace around a field value: space or tab. */
function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

/**
 * The one value a list of Content-Length field values stands for ("3", "3, 3" and two fields
 * of 3 all mean 3), or a reason it stands for none: values that disagree, or one not a number.
 */
export function contentLength(values: readonly string[]): number | string {
  let length: string | null = null;
  for (const value of values) {
    // Usually one plain number; a list must repeat one value.
    const parts = DIGITS.test(value) ? [value] : value.split(",");
    for (const part of parts) {
      const v = part.trim();
      if (!DIGITS.test(v)) return "invalid Content-Length";
      if (length !== null && length !== v) return "conflicting Content-Length values";
      length = v;
    }
  }
  return length === null ? "invalid Content-Length" : Number(length);
}

/** Whether a Transfer-Encoding value (all fields joined by commas) ends in chunked. */
export function endsInChunked(te: string): boolean {
  const codings = te.split(",");
  return codings[codings.length - 1]!.trim().toLowerCase() === "chunked";
}

const enum Chunk {
  Size,
  Data,
  DataEnd,
  Trailers,
  Done,
}

/**
 * Decoder of a chunked body (RFC 9112 §7.1), one step at a time so that its owner can stop
 * between pieces. Trailer fields are checked and dropped: the message they belonged to is
 * forwarded with its own framing.
 */
export class ChunkedBody {
  /** The data the last step produced, or null. */
  data: Buffer | null = null;
  private state = Chunk.Size;
  /** Data bytes left in this chunk (Data), or CRLF bytes left after it (DataEnd). */
  private remaining = 0;
  private trailerBytes = 0;

  constructor(
    /** Largest trailer section accepted, in bytes. */
    private readonly maxTrailerBytes: number,
    private readonly error: (message: string) => Error,
  ) {}

  get done(): boolean {
    return this.state === Chunk.Done;
  }

  /**
   * Consume from b[i]: returns the index after what was consumed (the data, if any, is in
   * `data`), or -1 when b[i..] is the start of a line not yet complete: keep it and call again
   * with more bytes after it. Throws on anything malformed.
   */
  step(b: Buffer, i: number): number {
    this.data = null;
    switch (this.state) {
      case Chunk.Size: {
        const lf = b.indexOf(10, i);
        if (lf < 0) {
          if (b.length - i > MAX_CHUNK_LINE) throw this.error("chunk size line too long");
          return -1;
        }
        if (lf === i || b[lf - 1] !== 13 || lf - i > MAX_CHUNK_LINE)
          throw this.error("malformed chunk size line");
        const m = CHUNK_SIZE.exec(b.toString("latin1", i, lf - 1));
        if (!m) throw this.error("malformed chunk size");
        const size = parseInt(m[1]!, 16);
        if (size === 0) {
          this.state = Chunk.Trailers;
          this.trailerBytes = 0;
        } else {
          this.state = Chunk.Data;
          this.remaining = size;
        }
        return lf + 1;
      }
      case Chunk.Data: {
        const n = Math.min(this.remaining, b.length - i);
        this.remaining -= n;
        if (this.remaining === 0) {
          this.state = Chunk.DataEnd;
          this.remaining = 2;
        }
        if (n > 0) this.data = b.subarray(i, i + n);
        return i + n;
      }
      case Chunk.DataEnd: {
        // Exactly CRLF after the chunk's data, possibly split across reads.
        const want = this.remaining === 2 ? 13 : 10;
        if (b[i] !== want) throw this.error("chunk data not followed by CRLF");
        this.remaining -= 1;
        if (this.remaining === 0) this.state = Chunk.Size;
        return i + 1;
      }
      case Chunk.Trailers: {
        const lf = b.indexOf(10, i);
        if (lf < 0) {
          if (this.trailerBytes + b.length - i > this.maxTrailerBytes)
            throw this.error("trailer section too large");
          return -1;
        }
        if (b[lf - 1] !== 13 || lf === i) throw this.error("malformed trailer line");
        this.trailerBytes += lf + 1 - i;
        if (this.trailerBytes > this.maxTrailerBytes) throw this.error("trailer section too large");
        if (lf - 1 === i) this.state = Chunk.Done;
        else if (!pushField(b.toString("latin1", i, lf - 1), 0, lf - 1 - i, []))
          throw this.error("malformed trailer field");
        return lf + 1;
      }
      case Chunk.Done:
        return i;
    }
  }
}
