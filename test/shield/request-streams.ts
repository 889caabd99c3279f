/**
 * fast-check generators of what an agent might send on one connection: one to three requests
 * back to back, mostly well formed (so that what is read gets compared, not only what is
 * refused), with the framing fields parsers are known to read differently, bodies that match
 * their framing or not, and now and then a byte put in, taken out or changed anywhere. With
 * them, plans to split a stream into pieces the way a network might.
 */
import fc from "fast-check";
import { FRAMING_HEADERS, ODD_HEADERS } from "./differential.js";
import { BODY_MODES, type BodyMode } from "./parser-servers.js";

const TOKEN = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}$/);
/** Field values: visible ASCII and spaces inside, now and then a tab or a high byte. */
const VALUE = fc.stringMatching(/^[!-~]([ !-~\t\x80-\xff]{0,14}[!-~])?$/);

const METHOD = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS") },
  { weight: 2, arbitrary: fc.constant("CONNECT") },
  { weight: 1, arbitrary: fc.constantFrom("get", "G T", "FOO", "PRI", "M-SEARCH", "SOURCE", "QUERY", "") },
);

const TARGET = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("http://a.test/p?q=1", "http://a.test:8080/", "http://a.test") },
  { weight: 3, arbitrary: fc.constantFrom("/", "/p?q=1", "/a%20b") },
  { weight: 2, arbitrary: fc.constantFrom("a.test:443", "[::1]:443", "*") },
  { weight: 1, arbitrary: fc.constantFrom("", "/a b", "/\x01", "http://a.test/\xff", "a.test") },
);

const VERSION = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom("HTTP/1.1", "HTTP/1.0") },
  {
    weight: 1,
    arbitrary: fc.constantFrom("HTTP/2.0", "HTTP/0.9", "http/1.1", "HTTP/1.1 ", "HTTP/1.", "RTSP/1.0"),
  },
);

const HOSTS = fc.oneof(
  { weight: 10, arbitrary: fc.constant(["Host: a.test"]) },
  { weight: 1, arbitrary: fc.constantFrom([], ["Host: a.test", "Host: b.test"], ["Host:"], ["host:a.test"]) },
);

const OTHER_HEADER = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(TOKEN, VALUE).map(([n, v]) => `${n}: ${v}`) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "Connection: close",
      "Connection: keep-alive",
      "Connection: Upgrade",
      "Upgrade: websocket",
      "Expect: 100-continue",
      "Expect: something",
      "Accept: */*",
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom(...ODD_HEADERS, ...FRAMING_HEADERS) },
  // About as long as the harness's 8 KiB head limit, on either side of it.
  { weight: 1, arbitrary: fc.integer({ min: 7900, max: 8300 }).map((n) => `X-Long: ${"v".repeat(n)}`) },
);

/** A chunk: its data, and an extension on its size line now and then. */
const CHUNK = fc.record({
  data: fc.string({ minLength: 1, maxLength: 12 }),
  ext: fc.oneof(
    { weight: 6, arbitrary: fc.constant("") },
    { weight: 2, arbitrary: fc.constantFrom(";x=y", ";a", ';q="v"', ";a=b;c") },
    { weight: 1, arbitrary: fc.constantFrom(" ;x=y", ";=y", "; x", ";x =y") },
  ),
});

/** A body and the framing fields that announce it, sometimes at odds with each other. */
const BODY = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ fields: [] as string[], bytes: "" }) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.string({ maxLength: 20 }),
        fc.constantFrom(
          "Content-Length: N",
          "Content-Length:N",
          "Content-Length: N ",
          "Content-Length: N, N",
        ),
        fc.integer({ min: -2, max: 2 }),
        fc.nat({ max: 9 }),
      )
      .map(([data, field, off, odd]) => {
        // Mostly the right length; now and then one off, either way.
        const n = Math.max(0, data.length + (odd === 0 ? off : 0));
        return { fields: [field.replaceAll("N", String(n))], bytes: data };
      }),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.array(CHUNK, { maxLength: 3 }),
        fc.constantFrom("", "X-Trailer: t\r\n", "Bad Trailer\r\n"),
        fc.oneof(
          { weight: 8, arbitrary: fc.constant(["Transfer-Encoding: chunked"]) },
          {
            weight: 1,
            arbitrary: fc.constantFrom(
              ["Transfer-Encoding: gzip, chunked"],
              ["Transfer-Encoding: chunked", "Content-Length: 3"],
              ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
              ["transfer-encoding: CHUNKED"],
              ["Transfer-Encoding:\tchunked"],
            ),
          },
        ),
      )
      .map(([chunks, trailer, fields]) => ({
        fields,
        bytes:
          chunks
            .map((c) => `${Buffer.byteLength(c.data, "latin1").toString(16)}${c.ext}\r\n${c.data}\r\n`)
            .join("") + `0\r\n${trailer}\r\n`,
      })),
  },
);

/** One request: request line, fields in a random order, and its body. */
const REQUEST = fc
  .record({
    method: METHOD,
    target: TARGET,
    version: VERSION,
    hosts: HOSTS,
    others: fc.array(OTHER_HEADER, { maxLength: 4 }),
    body: BODY,
    order: fc.nat(),
  })
  .map(({ method, target, version, hosts, others, body, order }) => {
    const fields = [...hosts, ...others, ...body.fields];
    // Rotate, so that Host and the framing fields are not always first or last.
    const k = fields.length > 0 ? order % fields.length : 0;
    const head = [...fields.slice(k), ...fields.slice(0, k)].map((f) => `${f}\r\n`).join("");
    return `${method} ${target} ${version}\r\n${head}\r\n${body.bytes}`;
  });

/** Bytes that parsers disagree about: line ends alone or together, blanks, NUL, DEL, high bytes. */
const ODD_BYTE = fc.constantFrom("\r", "\n", "\r\n", " ", "\t", "\0", ":", ";", "\x7f", "\xff", "a", "0");

const MUTATION = fc.record({
  op: fc.constantFrom("insert", "delete", "replace"),
  at: fc.nat(),
  byte: ODD_BYTE,
});

/**
 * A stream of requests, its bytes as a latin1 string (a failing one prints readably): mostly as
 * written, now and then with a byte changed somewhere.
 */
export const requestStream = fc
  .record({
    lead: fc.oneof(
      { weight: 9, arbitrary: fc.constant("") },
      { weight: 1, arbitrary: fc.constantFrom("\r\n", "\r", "\n") },
    ),
    requests: fc.array(REQUEST, { minLength: 1, maxLength: 3 }),
    mutations: fc.oneof(
      { weight: 3, arbitrary: fc.constant([]) },
      { weight: 2, arbitrary: fc.array(MUTATION, { minLength: 1, maxLength: 2 }) },
    ),
  })
  .map(({ lead, requests, mutations }) => {
    let s = lead + requests.join("");
    for (const m of mutations) {
      const at = m.at % (s.length + 1);
      if (m.op === "insert") s = s.slice(0, at) + m.byte + s.slice(at);
      else if (m.op === "delete") s = s.slice(0, at) + s.slice(at + 1);
      else s = s.slice(0, at) + m.byte + s.slice(at + 1);
    }
    return s;
  });

/** How a stream reaches the parser: where it is cut, where the network pauses, how its bodies are taken. */
export interface SplitPlan {
  cuts: number[];
  gaps: boolean[];
  mode: BodyMode;
}

export const splitPlan = (length: number): fc.Arbitrary<SplitPlan> => {
  const anywhere = fc.array(fc.nat({ max: length }), { maxLength: 10 }).map((c) => c.sort((a, b) => a - b));
  const byteByByte = fc.constant(Array.from({ length }, (_, i) => i + 1));
  return fc.record({
    // Byte by byte only where that is not thousands of pieces.
    cuts:
      length <= 2048
        ? fc.oneof({ weight: 3, arbitrary: anywhere }, { weight: 1, arbitrary: byteByByte })
        : anywhere,
    gaps: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
    mode: fc.constantFrom(...BODY_MODES),
  });
};
