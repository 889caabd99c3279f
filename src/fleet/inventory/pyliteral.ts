/**
 * The value of an INI inventory variable as Ansible reads it: Python's `ast.literal_eval` of the
 * text when that succeeds (so `42` is a number, `True` a boolean, `'x'` the string x and
 * `[1, 2]` a list), the text itself when it does not (`yes`, `007` and `true` stay strings).
 * This covers the literals JSON can hold; sets, bytes and complex numbers stay text.
 */

class NotLiteral extends Error {}

const INT = /^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|[1-9](?:_?[0-9])*|0+(?:_?0)*)/;
const FLOAT =
  /^(?:(?:[0-9](?:_?[0-9])*)?\.[0-9](?:_?[0-9])*(?:[eE][+-]?[0-9](?:_?[0-9])*)?|[0-9](?:_?[0-9])*\.?(?:[eE][+-]?[0-9](?:_?[0-9])*)?)/;

class Reader {
  i = 0;
  constructor(readonly s: string) {}

  skip(): void {
    for (;;) {
      while (this.i < this.s.length && /[ \t\n\r\f\v]/.test(this.s[this.i]!)) this.i++;
      if (this.s[this.i] !== "#") return;
      while (this.i < this.s.length && this.s[this.i] !== "\n") this.i++;
    }
  }

  eat(c: string): boolean {
    this.skip();
    if (this.s[this.i] !== c) return false;
    this.i++;
    return true;
  }

  value(): unknown {
    this.skip();
    const c = this.s[this.i];
    if (c === "[") return this.seq("]");
    if (c === "(") return this.seq(")");
    if (c === "{") return this.dict();
    if (c === "'" || c === '"') return this.str();
    if (c === "+" || c === "-") {
      this.i++;
      const n = this.value();
      if (typeof n !== "number") throw new NotLiteral();
      return c === "-" ? -n : n;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.i))?.[0];
    if (word !== undefined) {
      this.i += word.length;
      if (word === "True") return true;
      if (word === "False") return false;
      if (word === "None") return null;
      throw new NotLiteral();
    }
    return this.number();
  }

  number(): number {
    const rest = this.s.slice(this.i);
    const f = FLOAT.exec(rest)?.[0] ?? "";
    const n = INT.exec(rest)?.[0] ?? "";
    const isFloat = /[.eE]/.test(f) && f.length >= n.length;
    const text = isFloat ? f : n;
    if (!text) throw new NotLiteral();
    this.i += text.length;
    // "007" is a syntax error in Python 3, and so are names glued to a number ("1a", "2j").
    if (/^[A-Za-z0-9_.]/.test(this.s.slice(this.i))) throw new NotLiteral();
    const plain = text.replace(/_/g, "");
    if (isFloat) return Number(plain);
    if (/^0[xXoObB]/.test(plain)) return Number(plain.toLowerCase());
    return Number(plain);
  }

  str(): string {
    const q = this.s[this.i]!;
    this.i++;
    let out = "";
    while (this.i < this.s.length) {
      const c = this.s[this.i++]!;
      if (c === q) return out;
      if (c === "\n") throw new NotLiteral();
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = this.s[this.i++];
      const simple: Record<string, string> = {
        n: "\n",
        t: "\t",
        r: "\r",
        "\\": "\\",
        "'": "'",
        '"': '"',
        "0": "\0",
      };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === "x" && /^[0-9a-fA-F]{2}$/.test(this.s.slice(this.i, this.i + 2))) {
        out += String.fromCharCode(parseInt(this.s.slice(this.i, this.i + 2), 16));
        this.i += 2;
      } else out += `\\${e ?? ""}`;
    }
    throw new NotLiteral();
  }

  seq(close: string): unknown[] {
    this.i++;
    const out: unknown[] = [];
    for (;;) {
      if (this.eat(close)) return out;
      out.push(this.value());
      if (this.eat(",")) continue;
      if (this.eat(close)) return out;
      throw new NotLiteral();
    }
  }

  dict(): Record<string, unknown> {
    this.i++;
    const out: Record<string, unknown> = {};
    for (;;) {
      if (this.eat("}")) return out;
      const k = this.value();
      if (!this.eat(":")) throw new NotLiteral();
      if (typeof k !== "string" && typeof k !== "number" && typeof k !== "boolean") throw new NotLiteral();
      out[String(k)] = this.value();
      if (this.eat(",")) continue;
      if (this.eat("}")) return out;
      throw new NotLiteral();
    }
  }
}

/** `text` as Python's literal_eval reads it, or `text` unchanged when it is not a literal. */
export function pythonLiteral(text: string): unknown {
  const r = new Reader(text.replace(/^[ \t]+/, ""));
  try {
    const v = r.value();
    r.skip();
    if (r.i !== r.s.length) return text;
    return v;
  } catch (e) {
    if (e instanceof NotLiteral) return text;
    throw e;
  }
}
