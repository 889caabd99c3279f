/** A unified diff of two texts (line based, 3 lines of context), as `diff -u` prints it. */
export function unifiedDiff(a: string, b: string, fromName: string, toName: string, context = 3): string {
  if (a === b) return "";
  const x = splitLines(a);
  const y = splitLines(b);
  const ops = diffLines(x, y);
  const out = [`--- ${fromName}`, `+++ ${toName}`];
  // Group ops into hunks with `context` unchanged lines around each change.
  let i = 0;
  while (i < ops.length) {
    while (i < ops.length && ops[i]!.op === " ") i++;
    if (i >= ops.length) break;
    const start = Math.max(0, i - context);
    let end = i;
    for (;;) {
      while (end < ops.length && ops[end]!.op !== " ") end++;
      let run = end;
      while (run < ops.length && ops[run]!.op === " ") run++;
      if (run < ops.length && run - end <= 2 * context) end = run;
      else {
        end = Math.min(ops.length, end + context);
        break;
      }
    }
    const hunk = ops.slice(start, end);
    const aStart = hunk[0]!.ai;
    const bStart = hunk[0]!.bi;
    const aLen = hunk.filter((o) => o.op !== "+").length;
    const bLen = hunk.filter((o) => o.op !== "-").length;
    // diff -u leaves out a length of 1.
    const range = (start: number, len: number) => `${len ? start + 1 : start}${len === 1 ? "" : `,${len}`}`;
    out.push(`@@ -${range(aStart, aLen)} +${range(bStart, bLen)} @@`);
    for (const o of hunk) out.push(o.op + o.line);
    i = end;
  }
  return out.join("\n") + "\n";
}

function splitLines(s: string): string[] {
  if (s === "") return [];
  const lines = s.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

interface Op {
  op: " " | "-" | "+";
  line: string;
  ai: number;
  bi: number;
}

function diffLines(x: string[], y: string[]): Op[] {
  const n = x.length;
  const m = y.length;
  // Longest common subsequence table; config files are small.
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      ops.push({ op: " ", line: x[i]!, ai: i, bi: j });
      i++;
      j++;
    } else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      // Removals before additions, as diff -u prints them.
      ops.push({ op: "-", line: x[i]!, ai: i, bi: j });
      i++;
    } else {
      ops.push({ op: "+", line: y[j]!, ai: i, bi: j });
      j++;
    }
  }
  return ops;
}
