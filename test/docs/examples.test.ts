/**
 * The docs cannot go stale: every clawguard command line in a code block parses against the real
 * command line, every YAML example is marked with what it is an example of and passes that
 * file's own validation, every `log.x`-style key the shield docs name is a key of shield.yaml,
 * every local link leads to a file, and the README stays short enough to read.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { z } from "zod";
import { parseWaivers } from "../../src/audit/waivers.js";
import { validateProfile } from "../../src/harden/profile.js";
import { parseShieldConfig } from "../../src/shield/config.js";
import { shieldSchema } from "../../src/shield/config-schema.js";
import { parseCommandLine, shellWords } from "../helpers/cli-parse.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PAGES = [
  "README.md",
  "bench/README.md",
  ...readdirSync(path.join(REPO, "docs"))
    .filter((n) => n.endsWith(".md"))
    .map((n) => `docs/${n}`),
];
const text = (page: string) => readFileSync(path.join(REPO, page), "utf8");

interface Block {
  page: string;
  line: number;
  lang: string;
  body: string;
  /** `<!-- example: KIND -->` just above the block. */
  example?: string;
}

/** Fenced blocks (```lang) and indented ones (four spaces after a blank line). */
export function codeBlocks(page: string, md: string): Block[] {
  const lines = md.split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(\s*)```(\w*)\s*$/.exec(lines[i]!);
    if (fence) {
      const indent = fence[1]!.length;
      const start = i;
      const body: string[] = [];
      for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++) body.push(lines[i]!.slice(indent));
      const above = lines.slice(Math.max(0, start - 2), start).join("\n");
      const example = /<!-- example: ([\w.-]+) -->/.exec(above)?.[1];
      out.push({ page, line: start + 1, lang: fence[2]!, body: body.join("\n"), example });
    } else if (/^ {4}\S/.test(lines[i]!) && (i === 0 || lines[i - 1]!.trim() === "")) {
      const start = i;
      const body: string[] = [];
      for (; i < lines.length && (/^ {4}/.test(lines[i]!) || lines[i]!.trim() === ""); i++)
        body.push(lines[i]!.slice(4));
      i--;
      out.push({ page, line: start + 1, lang: "indented", body: body.join("\n").trimEnd() });
    }
  }
  return out;
}

/** `clawguard ...` lines of a shell block: comments, redirections and pipes cut off. */
function commandLines(b: Block): Array<{ line: number; words: string[] }> {
  if (!["", "sh", "indented", "console"].includes(b.lang)) return [];
  return b.body.split("\n").flatMap((raw, i) => {
    const line = raw.replace(/^\$ /, "").trim();
    if (!/^(sudo |npx )*clawguard\s/.test(line)) return [];
    // A synopsis ([--flag X] [...]) shows a shape, not a line to type.
    if (/ \[-|\[[A-Z]+(\.\.\.)?\]/.test(line)) return [];
    const cut = line.replace(/\s+#.*$/, "").replace(/\s+(\||>|&&).*$/, "");
    const words = shellWords(cut).filter(
      (w, j, all) => !(w === "sudo" || (w === "npx" && all[j + 1] === "clawguard")),
    );
    return [{ line: b.line + i + 1, words: words.slice(1) }];
  });
}

const blocks = PAGES.flatMap((p) => codeBlocks(p, text(p)));

describe("the docs' examples", () => {
  it("are found: command lines and YAML in every page that has them", () => {
    expect(blocks.flatMap(commandLines).length).toBeGreaterThan(30);
    expect(blocks.filter((b) => b.lang === "yaml").length).toBeGreaterThanOrEqual(4);
  });

  it("every clawguard command line parses, its flags and values included", async () => {
    const bad: string[] = [];
    for (const b of blocks)
      for (const c of commandLines(b)) {
        const r = await parseCommandLine(c.words);
        if (!r.ok) bad.push(`${b.page}:${c.line}: clawguard ${c.words.join(" ")}: ${r.error}`);
      }
    expect(bad).toEqual([]);
  });

  it("every YAML example says what it is an example of, and that file's validation accepts it", () => {
    const bad: string[] = [];
    for (const b of blocks.filter((x) => x.lang === "yaml")) {
      const where = `${b.page}:${b.line}`;
      try {
        if (b.example === "shield.yaml") parseShieldConfig(b.body, where);
        else if (b.example === "profile") validateProfile(parse(b.body));
        else if (b.example === "waivers") parseWaivers(b.body, where);
        else bad.push(`${where}: no <!-- example: shield.yaml|profile|waivers --> above it`);
      } catch (e) {
        bad.push(`${where}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("every shield.yaml key the shield docs name in `a.b` form is one", () => {
    const shape = shieldSchema.shape as Record<string, z.ZodType>;
    const keysOf = (t: z.ZodType): string[] | undefined => {
      let cur: unknown = t;
      for (let n = 0; n < 5 && cur; n++) {
        const def = (cur as { _zod?: { def?: { shape?: object; innerType?: unknown } } })._zod?.def;
        if (def?.shape) return Object.keys(def.shape);
        cur = def?.innerType;
      }
      return undefined;
    };
    const bad: string[] = [];
    for (const page of ["docs/shield.md", "docs/gateway.md"])
      for (const m of text(page).matchAll(/`([a-z_]+)\.([a-z_]+)`/g)) {
        const inner = shape[m[1]!] ? keysOf(shape[m[1]!]!) : undefined;
        if (inner && !inner.includes(m[2]!)) bad.push(`${page}: ${m[0]} (${m[1]} has ${inner.join(", ")})`);
      }
    expect(keysOf(shape.log!)).toContain("retention_days");
    expect(bad).toEqual([]);
  });

  it("every local link leads to a file", () => {
    const bad: string[] = [];
    for (const page of PAGES)
      for (const m of text(page).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        if (!existsSync(path.resolve(REPO, path.dirname(page), target))) bad.push(`${page}: ${target}`);
      }
    expect(bad).toEqual([]);
  });

  it("the README stays under 300 lines and links every reference page", () => {
    const readme = text("README.md");
    expect(readme.split("\n").length).toBeLessThan(300);
    for (const page of PAGES.filter((p) => p !== "README.md")) expect(readme).toContain(`](${page})`);
  });
});
