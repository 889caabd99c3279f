import { MalformedError } from "./fact.js";

export const SOURCES_LIST = "/etc/apt/sources.list";
export const SOURCES_DIR = "/etc/apt/sources.list.d";
export const OS_RELEASE = "/etc/os-release";

/** One repository apt reads, from either format, with the file and line that declared it. */
export interface AptSource {
  /** `deb`, `deb-src`: only `deb` entries install anything. */
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  enabled: boolean;
  source: string;
  line: number;
}

/** The fields of /etc/os-release that say which distribution and release this is. */
export interface OsRelease {
  id: string;
  idLike: string[];
  versionCodename?: string;
}

export interface AptSourcesFact {
  sources: AptSource[];
  /** The files read, in apt's order. */
  files: string[];
  /** Undefined when /etc/os-release could not be read. */
  release?: OsRelease;
}

const words = (s: string | undefined) => (s ?? "").split(/\s+/).filter(Boolean);

/** deb822 `.sources`: stanzas of `Field: value` separated by blank lines; `#` lines are comments. */
export function parseDeb822Sources(text: string, source: string): AptSource[] {
  const out: AptSource[] = [];
  let fields = new Map<string, string>();
  let start = 0;
  let last: string | undefined;
  const flush = () => {
    if (fields.size > 0) {
      out.push({
        types: words(fields.get("types")),
        uris: words(fields.get("uris")),
        suites: words(fields.get("suites")),
        components: words(fields.get("components")),
        enabled: !/^(no|false|0)$/i.test(fields.get("enabled")?.trim() ?? ""),
        source,
        line: start,
      });
    }
    fields = new Map();
    last = undefined;
  };
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === "") return flush();
    if (raw.startsWith("#")) return;
    if (/^\s/.test(raw)) {
      // A continuation line belongs to the field above it.
      if (last === undefined) throw new MalformedError("continuation line before any field", i + 1);
      fields.set(last, `${fields.get(last)} ${raw.trim()}`);
      return;
    }
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
    if (!m) throw new MalformedError(`expected "Field: value", found "${raw.trim()}"`, i + 1);
    if (fields.size === 0) start = i + 1;
    last = m[1]!.toLowerCase();
    fields.set(last, m[2]!.trim());
  });
  flush();
  return out;
}

/** One-line `.list` format: `deb [options] URI SUITE [COMPONENT...]`, `#` starting a comment. */
export function parseOneLineSources(text: string, source: string): AptSource[] {
  const out: AptSource[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const m = /^(deb|deb-src)\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)(.*)$/.exec(line);
    if (!m) throw new MalformedError(`expected "deb URI SUITE COMPONENTS", found "${line}"`, i + 1);
    out.push({
      types: [m[1]!],
      uris: [m[2]!],
      suites: [m[3]!],
      components: words(m[4]),
      enabled: true,
      source,
      line: i + 1,
    });
  });
  return out;
}

export function parseOsRelease(text: string): OsRelease {
  const v = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(raw.trim());
    if (m) v.set(m[1]!, m[2]!.replace(/^(["'])(.*)\1$/, "$2"));
  }
  return {
    id: (v.get("ID") ?? "linux").toLowerCase(),
    idLike: words(v.get("ID_LIKE")?.toLowerCase()),
    versionCodename: v.get("VERSION_CODENAME") || undefined,
  };
}

/** A security suite's name in any release: `bookworm-security`, `jammy-security`, `buster/updates`. */
export function isSecuritySuite(suite: string): boolean {
  return /-security$|^[a-z]+\/updates$/.test(suite);
}

/** Enabled binary (`deb`) entries that fetch a security suite. */
export function securitySources(f: Pick<AptSourcesFact, "sources">): AptSource[] {
  return f.sources.filter((s) => s.enabled && s.types.includes("deb") && s.suites.some(isSecuritySuite));
}

/** The repository a release's security updates come from, as its vendor documents it. */
export interface SecurityRepo {
  distribution: string;
  uri: string;
  suite: string;
  components: string[];
  signedBy: string;
}

/**
 * The security repository for this release, or undefined when the distribution or its release
 * is not one we can name with certainty (Debian before 11 used `/updates`, sid has none).
 * Components follow the release's own main entry, so non-free-firmware stays if it was there.
 */
export function securityRepoFor(f: AptSourcesFact): SecurityRepo | undefined {
  const r = f.release;
  const codename = r?.versionCodename;
  if (!r || !codename || codename === "sid") return undefined;
  const main = f.sources.find((s) => s.enabled && s.types.includes("deb") && s.suites.includes(codename));
  const components = main?.components.length ? main.components : ["main"];
  if (r.id === "debian" && !["stretch", "buster", "jessie"].includes(codename))
    return {
      distribution: "Debian",
      uri: "http://security.debian.org/debian-security",
      suite: `${codename}-security`,
      components,
      signedBy: "/usr/share/keyrings/debian-archive-keyring.gpg",
    };
  if (r.id === "ubuntu")
    return {
      distribution: "Ubuntu",
      uri: "http://security.ubuntu.com/ubuntu",
      suite: `${codename}-security`,
      components,
      signedBy: "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
    };
  return undefined;
}
