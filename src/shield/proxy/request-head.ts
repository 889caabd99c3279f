/**
 * What a request head must say, whichever parser took it apart (front.ts reads the bytes itself,
 * node-front.ts gets them from Node's): the request line's method, target and version, exactly
 * one Host in HTTP/1.1, no expectation but 100-continue, and one way to frame the body. Each
 * server refuses the same heads for the same reasons, and frames a body the same way.
 */
import { METHODS } from "node:http";
import { RequestError } from "./front-api.js";
import { DIGITS } from "./http1.js";

/** A request target: visible ASCII only. */
const NOT_IN_TARGET = /[^\x21-\x7e]/;
/** Where a request other than CONNECT may point: a path, or an absolute URL (RFC 9112 §3.2). */
const PATH_OR_URL = /^(?:\/|[A-Za-z]+:\/\/)/;
/** The methods Node's own parser knows, all upper case: a destination reads no other as one of them. */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);

export const enum BodyKind {
  None,
  Length,
  Chunked,
}

/** Which framing field a header field is, for a parser that checks their syntax further. */
export const enum Framing {
  None,
  ContentLength,
  TransferEncoding,
}

/** What a head says about the request it starts. */
export interface HeadFacts {
  kind: "plain" | "connect" | "upgrade";
  /** Why the body's end cannot be known (or its framing is refused), or null. */
  ambiguous: string | null;
  bodyKind: BodyKind;
  bodyLength: number;
  /** The client asked for (or did not refuse) another request on this connection. */
  keepAlive: boolean;
}

/**
 * A request line's parts checked: `version` as written ("HTTP/1.1"). Returns whether it is
 * HTTP/1.1; throws a RequestError for a version, method or target the shield refuses.
 */
export function checkRequestLine(method: string, url: string, version: string): boolean {
  const http11 = version === "HTTP/1.1";
  if (!http11 && version !== "HTTP/1.0") throw new RequestError(400, "unsupported HTTP version");
  if (!KNOWN_METHODS.has(method)) throw new RequestError(400, "unknown method");
  if (url.length === 0 || NOT_IN_TARGET.test(url)) throw new RequestError(400, "malformed request target");
  if (
    method === "CONNECT" ? url[0] === "/" : !(PATH_OR_URL.test(url) || (url === "*" && method === "OPTIONS"))
  )
    throw new RequestError(400, "request target of the wrong form for its method");
  return http11;
}

/**
 * The header fields of one head, taken in one at a time as a parser reads them; `finish` says
 * what they mean together. Names are compared by length first: most fields are none of these.
 */
export class HeadFields {
  private lengths: string[] | null = null;
  private te: string | null = null;
  private hosts = 0;
  private close = false;
  private keepAlive = false;
  private upgradeToken = false;
  private upgradeHeader = false;

  constructor(private readonly http11: boolean) {}

  /** One field; throws for an expectation the shield cannot meet. */
  add(name: string, value: string): Framing {
    const n = name.length;
    if (n === 4) {
      if (name.toLowerCase() === "host") this.hosts++;
    } else if (n === 14) {
      if (name.toLowerCase() === "content-length") {
        (this.lengths ??= []).push(value);
        return Framing.ContentLength;
      }
    } else if (n === 17) {
      if (name.toLowerCase() === "transfer-encoding") {
        this.te = this.te === null ? value : `${this.te}, ${value}`;
        return Framing.TransferEncoding;
      }
    } else if (n === 10) {
      if (name.toLowerCase() === "connection") {
        for (const token of value.toLowerCase().split(",")) {
          const t = token.trim();
          if (t === "close") this.close = true;
          else if (t === "keep-alive") this.keepAlive = true;
          else if (t === "upgrade") this.upgradeToken = true;
        }
      }
    } else if (n === 7) {
      if (name.toLowerCase() === "upgrade") this.upgradeHeader = true;
    } else if (n === 6) {
      // RFC 9110 §10.1.1: 100-continue is the one expectation defined; any other is refused.
      if (name.toLowerCase() === "expect" && value.toLowerCase() !== "100-continue")
        throw new RequestError(417, "an expectation other than 100-continue");
    }
    return Framing.None;
  }

  /** What the fields say together; throws when Host is missing or repeated in HTTP/1.1. */
  finish(method: string): HeadFacts {
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1 (the target, not Host, says where to go).
    if (this.http11 && this.hosts !== 1)
      throw new RequestError(400, this.hosts === 0 ? "no Host header" : "more than one Host header");
    const kind: HeadFacts["kind"] =
      method === "CONNECT" ? "connect" : this.upgradeToken && this.upgradeHeader ? "upgrade" : "plain";
    const { lengths, te } = this;
    let ambiguous: string | null = null;
    let bodyKind = BodyKind.None;
    let bodyLength = 0;
    // Stricter than RFC 9112 allows, as strict as Node's parser: one Content-Length of digits
    // only, and no transfer coding but chunked (another one would reach the destination undone).
    if (lengths !== null && te !== null) ambiguous = "both Content-Length and Transfer-Encoding";
    else if (te !== null) {
      if (te.trim().toLowerCase() === "chunked") bodyKind = BodyKind.Chunked;
      else ambiguous = "Transfer-Encoding other than chunked";
    } else if (lengths !== null) {
      if (lengths.length > 1) ambiguous = "more than one Content-Length";
      else if (!DIGITS.test(lengths[0]!)) ambiguous = "invalid Content-Length";
      else if (Number(lengths[0]) > 0) {
        bodyKind = BodyKind.Length;
        bodyLength = Number(lengths[0]);
      }
    }
    if (ambiguous) bodyKind = BodyKind.Length;
    // RFC 9112 §9.3: close wins, wherever it is listed; HTTP/1.0 persists only when asked to.
    const keepAlive = !this.close && (this.http11 || this.keepAlive);
    return { kind, ambiguous, bodyKind, bodyLength, keepAlive };
  }
}
