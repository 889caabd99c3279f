import path from "node:path";
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/*
 * The folders of src/ and what they may import. A pure folder decides from data and touches no
 * disk, socket or process; what does sits in host/, the shield's net/ and proxy/, and the CLI.
 * `npm run lint` fails when an import crosses a line, and test/lint/boundaries.test.ts checks
 * that each line still holds.
 */

/** Node modules that read or change the world outside the process's own memory. */
const IO_MODULES = [
  "fs",
  "fs/promises",
  "child_process",
  "net",
  "dgram",
  "dns",
  "dns/promises",
  "http",
  "https",
  "http2",
  "tls",
  "os",
  "process",
  "worker_threads",
  "cluster",
  "readline",
];

const PURE = "read and write in src/host/ (or the shield's net/ and proxy/) and pass the data in";

const BOUNDARIES = [
  {
    folder: "src/checks",
    why: `checks are pure functions of facts; ${PURE}`,
    forbidden: ["src/host", "src/harden", "src/audit", "src/change", "src/lockdown", "src/shield"],
  },
  {
    folder: "src/facts",
    why: `facts are plain data and pure parsers; ${PURE}`,
    forbidden: [
      "src/host",
      "src/checks",
      "src/audit",
      "src/harden",
      "src/change",
      "src/lockdown",
      "src/shield",
    ],
  },
  { folder: "src/render", why: `render writes text only; ${PURE}`, forbidden: ["src/host"] },
  {
    folder: "src/net",
    why: `addresses and host:port are pure; ${PURE}`,
    forbidden: ["src/host", "src/shield"],
  },
  {
    folder: "src/shield/policy",
    why: `the policy decides, it never resolves or dials; ${PURE}`,
    forbidden: ["src/shield/net", "src/shield/proxy"],
  },
];

/** Deepest folder below a boundary (or below src/) that the rules reach. */
const DEPTH = 4;

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The relative specifier from a file in `dir` to folder `target`, as the code writes it. */
function specifier(dir, target) {
  const rel = path.posix.relative(dir, target);
  return rel.startsWith(".") ? rel : `./${rel}`;
}

/** An import of `target` (or anything in it) from a file in `dir`. */
function folderPattern(dir, target, why) {
  return {
    regex: `^${escape(specifier(dir, target))}(/|$)`,
    message: `${target}/ is out of bounds here: ${why}.`,
  };
}

/** Nothing outside src/cli/ imports from it: the CLI wires the rest, never the other way round. */
const cliPattern = (dir) =>
  folderPattern(dir, "src/cli", "the CLI is wiring and output, and only it may depend on itself");

const ioPattern = (why) => ({
  regex: `^(node:)?(${IO_MODULES.map(escape).join("|")})(/.*)?$`,
  message: `no I/O module here: ${why}.`,
});

/** A config block per folder depth: relative specifiers to a folder change with the depth. */
function byDepth(folder, patternsFor) {
  return Array.from({ length: DEPTH + 1 }, (_, d) => ({
    files: [`${folder}/${"*/".repeat(d)}*.ts`],
    rules: {
      "no-restricted-imports": ["error", { patterns: patternsFor(folder + "/_".repeat(d)) }],
    },
  }));
}

const everywhereButCli = byDepth("src", (dir) => [cliPattern(dir)]).map((block) => ({
  ...block,
  ignores: ["src/cli/**"],
}));

// Later blocks replace the rule of earlier ones for the files they match, so each repeats the
// CLI line.
const boundaries = BOUNDARIES.flatMap((b) => [
  ...byDepth(b.folder, (dir) => [
    ioPattern(b.why),
    ...b.forbidden.map((t) => folderPattern(dir, t, b.why)),
    cliPattern(dir),
  ]),
  {
    files: [`${b.folder}/**/*.ts`],
    rules: {
      "no-restricted-globals": [
        "error",
        { name: "process", message: `the running process is out of bounds here: ${b.why}.` },
      ],
    },
  },
]);

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "test/fixtures/", ".cache/", "test-output/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["bin/**/*.js"],
    languageOptions: { globals: { process: "readonly" } },
  },
  ...everywhereButCli,
  ...boundaries,
);
