/**
 * The request target of a proxied request, split as the agent wrote it. A plain request and an
 * Upgrade name an absolute-form URL (`http://host:port/path?query`); a CONNECT names an
 * authority only.
 */

export interface AbsoluteForm {
  authority: string;
  /** Path without the query, "/" when the URL had none. */
  path: string;
  /** "?..." or "". */
  query: string;
}

/** `http://authority/path?query` split by hand: `new URL` would "fix" the authority first. */
export function splitAbsoluteForm(url: string): AbsoluteForm | null {
  const m = /^(http|ws):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?/i.exec(url);
  if (!m || !m[2]) return null;
  return { authority: m[2], path: m[3] || "/", query: m[4] ?? "" };
}
