/**
 * What the differential tests share: a deterministic generator, so that a failure names an
 * input that can be replayed, and the mutation of HTTP/1.1 messages from valid ones.
 */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Framing header lines, valid and not, that parsers are known to read differently. */
export const FRAMING_HEADERS = [
  "Content-Length: 5",
  "Content-Length: 0",
  "Content-Length: 5, 5",
  "Content-Length: 5, 6",
  "Content-Length: +5",
  "Content-Length: 05",
  "Content-Length:5",
  "Content-Length: 5 ",
  "Content-Length: 99999999999999999999",
  "Transfer-Encoding: chunked",
  "Transfer-Encoding: gzip, chunked",
  "Transfer-Encoding: chunked, gzip",
  "Transfer-Encoding: xchunked",
  "Transfer-Encoding : chunked",
  " Transfer-Encoding: chunked",
  "Transfer-Encoding:\tchunked",
  "Transfer-Encoding: identity",
];

/** Header lines that are malformed, or odd but valid. */
export const ODD_HEADERS = ["X-Empty:", "X-Obs: a\r\n b", ": novalue", "NoColon", "X-Tab:\tv\t"];

export interface MutationSpec {
  bases: readonly string[];
  /** Header lines to insert. */
  headers: readonly string[];
  /** Where in `s` a header line goes: just after a start line's CRLF. */
  headerAt(s: string): number;
  /** Text a pattern may be replaced with (the version, the method, the status, ...). */
  swaps: ReadonlyArray<readonly [RegExp, readonly string[]]>;
  /** Bytes to append after the message. */
  tails: readonly string[];
  /** How often a byte is inserted or removed inside the head rather than anywhere. */
  headBias: number;
}

/** Bytes that parsers disagree about: line ends alone or together, blanks, NUL, DEL, high bytes. */
const BYTES = ["\r", "\n", "\r\n", " ", "\t", "\0", ":", "\x7f", "\x80", "\xff", "a", "0", ";"];

/** A base message with 1 to 3 mutations: a byte in or out, a header line, a swap, or a tail. */
export function mutant(rand: () => number, spec: MutationSpec): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  let s = pick(spec.bases);
  const n = 1 + Math.floor(rand() * 3);
  for (let k = 0; k < n; k++) {
    const headEnd = Math.max(1, s.indexOf("\r\n\r\n"));
    const at = Math.floor(rand() * (rand() < spec.headBias ? headEnd : s.length));
    const op = Math.floor(rand() * (4 + spec.swaps.length));
    if (op === 0) s = s.slice(0, at) + pick(BYTES) + s.slice(at);
    else if (op === 1) s = s.slice(0, at) + s.slice(at + 1);
    else if (op === 2) {
      const i = spec.headerAt(s);
      s = `${s.slice(0, i)}${pick(spec.headers)}\r\n${s.slice(i)}`;
    } else if (op < 3 + spec.swaps.length) {
      const [pattern, choices] = spec.swaps[op - 3]!;
      s = s.replace(pattern, pick(choices));
    } else s += pick(spec.tails);
  }
  return s;
}

/** Requests to mutate: a plain GET, bodies by length and chunked, CONNECT, Upgrade, HTTP/1.0. */
const REQUEST_BASES = [
  "GET http://a.test/p?q=1 HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n\r\n",
  "POST http://a.test/u HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello",
  "POST http://a.test/u HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\n\r\n",
  "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
  "GET http://a.test/ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
  "GET http://a.test/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
];

/** 1 to 3 mutations of a base request, sometimes followed by a second request. */
export const REQUESTS: MutationSpec = {
  bases: REQUEST_BASES,
  headers: [
    ...FRAMING_HEADERS,
    "Host: b.test",
    "Connection: close",
    "Connection: upgrade",
    "Upgrade: h2c",
    "Expect: 100-continue",
    ...ODD_HEADERS,
  ],
  // After the request line.
  headerAt: (s) => s.indexOf("\r\n") + 2,
  swaps: [
    [/HTTP\/1\.[01]/, ["HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "http/1.1", "HTTP/1.1 ", "HTTP/1"]],
    [/^[A-Z]+/, ["get", "GE T", "PUT", "CONNECT", "G\x01T", "HEAD", "OPTIONS"]],
  ],
  // Body bytes that look like a request, or a chunk size line.
  tails: ["GET http://b.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n", "0\r\n\r\n", "5\r\nworld\r\n0\r\n\r\n", "x"],
  headBias: 0.8,
};
