/**
 * Python's `shlex.split` in POSIX mode, which Ansible uses on INI host lines and on
 * `ansible_ssh_common_args`: words split on whitespace, single quotes literal, double quotes
 * with `\"` and `\\`, a backslash outside quotes taking the next character as it is, and with
 * `comments` a `#` outside quotes ending the line.
 */

export class ShlexError extends Error {}

export function shlexSplit(line: string, opts: { comments?: boolean } = {}): string[] {
  const out: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (/\s/.test(c)) {
      if (inWord) out.push(word);
      word = "";
      inWord = false;
      continue;
    }
    if (c === "#" && opts.comments) break;
    inWord = true;
    if (c === "\\") {
      if (i + 1 >= line.length) throw new ShlexError("a backslash at the end of the line escapes nothing");
      word += line[++i];
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new ShlexError("a single quote is never closed");
      word += line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === "\\" && (line[j + 1] === '"' || line[j + 1] === "\\")) j++;
        word += line[j];
      }
      if (j >= line.length) throw new ShlexError("a double quote is never closed");
      i = j;
    } else word += c;
  }
  if (inWord) out.push(word);
  return out;
}

/** `s` quoted for a POSIX shell: as it is when it is plainly safe, else in single quotes. */
export function shQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
