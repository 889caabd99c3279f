import JSON5 from "json5";

export interface ConfigEdit {
  /** Set gateway.bind to loopback. */
  loopback: boolean;
  /** Switch gateway.auth to this token (when auth was none). */
  token?: string;
}

export interface EditedConfig {
  content: string;
  /** The file had comments or JSON5 syntax that a rewrite drops: say so in the plan. */
  commentsLost: boolean;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isObj(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

function wanted(doc: unknown, e: ConfigEdit): Obj {
  const root: Obj = isObj(doc) ? structuredClone(doc) : {};
  const gw: Obj = isObj(root.gateway) ? root.gateway : {};
  root.gateway = gw;
  if (e.loopback) gw.bind = "loopback";
  if (e.token !== undefined) gw.auth = { ...(isObj(gw.auth) ? gw.auth : {}), mode: "token", token: e.token };
  return root;
}

const KEY = (k: string) => `(?:"${k}"|'${k}'|\\b${k}\\b)\\s*:\\s*`;
const STRING = `("(?:[^"\\\\]|\\\\.)*"|'(?:[^'\\\\]|\\\\.)*')`;

/** Edit the text in place, so comments and layout survive; null when it cannot be done safely. */
function editInPlace(text: string, e: ConfigEdit): string | null {
  let out = text;
  if (e.loopback) {
    const re = new RegExp(`(${KEY("bind")})${STRING}`, "g");
    const hits = [...out.matchAll(re)];
    if (hits.length === 1) out = out.replace(re, `$1"loopback"`);
    else if (hits.length === 0) {
      const gw = new RegExp(`(${KEY("gateway")}\\{)`, "g");
      if ([...out.matchAll(gw)].length !== 1) return null;
      out = out.replace(gw, `$1\n    "bind": "loopback",`);
    } else return null;
  }
  if (e.token !== undefined) {
    const mode = new RegExp(`(${KEY("mode")})${STRING}`, "g");
    const auth = new RegExp(`(${KEY("auth")}\\{)`, "g");
    if ([...out.matchAll(auth)].length !== 1 || [...out.matchAll(mode)].length > 1) return null;
    out = out.replace(mode, '$1"token"');
    out = out.replace(
      auth,
      `$1\n      "token": ${JSON.stringify(e.token)},${[...out.matchAll(mode)].length ? "" : '\n      "mode": "token",'}`,
    );
  }
  return out;
}

/**
 * openclaw.json with the gateway on loopback and, when it had no auth, a token. The file is
 * edited in place when the result re-parses to exactly the wanted settings; otherwise it is
 * rewritten as plain JSON, and `commentsLost` says whether that drops anything.
 */
export function editOpenClawConfig(text: string, e: ConfigEdit): EditedConfig {
  const doc: unknown = text.trim() ? JSON5.parse(text) : {};
  const target = wanted(doc, e);
  const inPlace = text.trim() ? editInPlace(text, e) : null;
  if (inPlace !== null) {
    try {
      if (canonical(JSON5.parse(inPlace)) === canonical(target))
        return { content: inPlace, commentsLost: false };
    } catch {
      // Fall through to a rewrite: a rewrite from the parsed document is always valid.
    }
  }
  let plainJson = true;
  try {
    JSON.parse(text);
  } catch {
    plainJson = !text.trim();
  }
  return { content: JSON.stringify(target, null, 2) + "\n", commentsLost: !plainJson };
}
