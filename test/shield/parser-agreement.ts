/**
 * When the shield's parser may read a stream otherwise than Node's. Never the dangerous way: a
 * request, or a body, it reads must be one Node reads the same. The other way, refusing what Node
 * reads, only for a reason written down: the shared rules of request-head.ts (which Node's server
 * under the shield applies too), or syntax the shield refuses and llhttp tolerates, as listed at
 * the top of node-front.ts. Any other difference is a finding.
 */
import { checkRequestLine, HeadFields } from "../../src/shield/proxy/request-head.js";
import { RequestError } from "../../src/shield/proxy/front-api.js";
import type { Outcome, Read } from "./parser-servers.js";

/** Syntax llhttp reads and the shield refuses: the shield's reason, and what in the stream shows it. */
export const LAXITIES: ReadonlyArray<{ what: string; reason: RegExp; shows: RegExp }> = [
  {
    what: "a run of spaces between the parts of the request line",
    reason: /^malformed request line$/,
    shows: /(^|\n)[^\r\n]*[^ \r\n] {2,}[^\r\n]*HTTP\//,
  },
  {
    what: "a lone CR or LF before the request line (whole empty lines are ignored by both)",
    reason: /^(unknown method|malformed request line)$/,
    shows: /(^|\n)(\r\n)*(\r(?!\n)|\n)/,
  },
  {
    what: "an RTSP/1.0 or ICE/1.0 request line, which Node reports as HTTP/1.0",
    reason: /^unsupported HTTP version$/,
    shows: /(RTSP|ICE)\/1\.0\r\n/,
  },
  {
    what: "a head near the size limit: Node counts only the target and the field names and values",
    reason: /^request head too large$/,
    shows: /[^\r\n]{4096}/,
  },
  {
    what: "a tab before or after a Content-Length or Transfer-Encoding value",
    reason: /^tab in (Content-Length|Transfer-Encoding)$/,
    shows: /(content-length|transfer-encoding):[^\r\n]*\t/i,
  },
  {
    what: "an empty name or value in a chunk extension",
    reason: /^malformed chunk size$/,
    shows: /\r\n[0-9A-Fa-f]+(;[^\r\n]*)?;(=|[^\r\n;=]*=(;|\r\n))/,
  },
];

/** What the shared rules make of a head Node read: why they refuse it, or whether it is the last. */
export function judged(r: Read): { refusal: string | null; last: boolean } {
  try {
    const fields = new HeadFields(checkRequestLine(r.method, r.url, `HTTP/${r.version}`));
    for (let i = 0; i < r.rawHeaders.length; i += 2) fields.add(r.rawHeaders[i]!, r.rawHeaders[i + 1]!);
    const facts = fields.finish(r.method);
    if (facts.kind !== r.kind) return { refusal: `read as ${r.kind}, framed as ${facts.kind}`, last: true };
    return { refusal: facts.ambiguous, last: !facts.keepAlive || facts.kind !== "plain" };
  } catch (err) {
    if (err instanceof RequestError) return { refusal: err.message, last: true };
    throw err;
  }
}

const head = (r: Read) => JSON.stringify({ ...r, body: null });

/**
 * llhttp's own inconsistency: a `Connection: upgrade` token followed by a tab is an upgrade when
 * the head arrives in one piece and a plain request when it arrives cut up, so no reading agrees
 * with Node's every time. The shield reads the field as RFC 9110 does (the tab is whitespace
 * around the token), and an upgrade is still bytes only after the destination answers 101.
 */
function upgradeTokenTab(o: Read, n: Read, stream: string): boolean {
  return (
    o.kind === "upgrade" &&
    n.kind === "plain" &&
    head({ ...o, kind: "plain" }) === head(n) &&
    /\r\nConnection:[^\r\n]*upgrade[ \t]*\t/i.test(stream)
  );
}

function explained(reason: string, stream: string): boolean {
  return LAXITIES.some((l) => l.reason.test(reason) && l.shows.test(stream));
}

/**
 * Where the shield's reading of `stream` (`ours`) departs from Node's (`theirs`) in a way no
 * rule or documented laxity explains, or null.
 */
export function departure(ours: Outcome, theirs: Outcome, stream: string): string | null {
  for (let k = 0; ; k++) {
    const o = ours.ambiguous[k] ? undefined : ours.reads[k];
    const n = theirs.reads[k];
    if (o) {
      if (!n) return `the shield read request ${k}, Node none`;
      if (head(o) !== head(n) && !upgradeTokenTab(o, n, stream))
        return `request ${k} read as ${head(o)}, by Node as ${head(n)}`;
      if (o.body !== null && o.body !== n.body)
        return `request ${k}'s body read as ${JSON.stringify(o.body)}, by Node as ${JSON.stringify(n.body)}`;
      const failure = ours.failures[k];
      // A body the shield could not read ends the connection: nothing after it is read.
      if (o.body === null && n.body !== null && failure)
        return explained(failure, stream) ? null : `request ${k}'s body refused (${failure}), read by Node`;
      continue;
    }
    // The shield read no request k: refused, or waiting for more bytes, or closed.
    if (!n) return null;
    // The rules refuse it, or the one before was the connection's last: Node's server under
    // the shield serves it no more than the shield's own does.
    if (judged(n).refusal !== null) return null;
    const previous = theirs.reads[k - 1];
    if (previous && judged(previous).last) return null;
    const reason = ours.ambiguous[k] ?? ours.refused?.reason ?? null;
    if (reason !== null && explained(reason, stream)) return null;
    return `request ${k} ${reason === null ? "not read" : `refused (${reason})`} by the shield, read by Node as ${head(n)} and taken by the rules`;
  }
}
