/**
 * Loading shield.yaml: YAML with line numbers, the strict schema, then the checks a schema cannot
 * express (rule syntax, CIDRs, token hashes, references between agents, tiers and fleets). Any
 * problem throws ConfigError; there is no partial config, so the shield never runs with
 * fewer rules than the operator wrote.
 */
import path from "node:path";
import type { BudgetLimit, Isolation, Mode } from "./types.js";
import { shieldSchema, type RawShieldConfig } from "./config-schema.js";
import { gatewayConfig, type GatewayConfig } from "./config-gateway.js";
import { NODE_NAME, storeConfig, type StoreConfig } from "./config-store.js";
import { operatorsConfig, TOKEN_FILE_OPERATOR, type OperatorConfig } from "./config-operators.js";
import { RuleError, parseRule } from "./policy/rules.js";
import { parseCidr, parseIP, formatIP, formatCidr } from "../net/addresses.js";
import { HostPortError, parseHostPort, type HostPort } from "../net/hostport.js";
import { parseDuration, parseSize } from "./units.js";
import {
  cleartextListenProblem,
  readAgentWireguard,
  readWireguard,
  type AgentWireguard,
  type WireguardConfig,
} from "./config-wireguard.js";
import { ConfigError, type ConfigProblem } from "../errors.js";
import type { Document, LineCounter } from "yaml";
import {
  documentAs,
  plainAs,
  formatKeyPath,
  readConfigText,
  readYamlDocument,
  type Locator,
  type Segment,
  type Shape,
} from "../yaml/read.js";

export interface RuleSet {
  allow: string[];
  deny: string[];
}

export interface Endpoint {
  host: string;
  port: number;
}

/** What each agent under a level may send per window: a BudgetLimit before its level is known. */
export type BudgetConfig = Omit<BudgetLimit, "scope">;

export interface TierConfig extends RuleSet {
  budget?: BudgetConfig;
}

export interface FleetConfig extends RuleSet {
  isolation: Isolation;
  mode?: Mode;
  budget?: BudgetConfig;
}

export interface AgentConfig extends RuleSet {
  id: string;
  fleet?: string;
  tier?: string;
  /** Lowercase hex sha256 of the agent's proxy password. */
  tokenSha256?: string;
  /** Canonical CIDRs the agent connects from. */
  sources?: string[];
  mode?: Mode;
  budget?: BudgetConfig;
  /** Enrolled over WireGuard: `sources` are its tunnel addresses. */
  wireguard?: AgentWireguard;
}

export interface ShieldLimits {
  maxHeaderBytes: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  maxTunnelsPerAgent: number;
}

export interface ShieldConfig extends RuleSet {
  /** The file this was read from (for messages). */
  file: string;
  listen: Endpoint;
  /** The operator accepts a public or wildcard `listen` (a private network of their own). */
  allowCleartext: boolean;
  /** The interface agents reach the proxy through. */
  wireguard?: WireguardConfig;
  /** `path` is absolute: a relative path in the file is taken from the file's directory. */
  log: { path: string; retentionDays?: number; maxBytes?: number };
  mode: Mode;
  tiers: Record<string, TierConfig>;
  fleets: Record<string, FleetConfig>;
  agents: AgentConfig[];
  budget?: BudgetConfig;
  limits: ShieldLimits;
  refusal: "403" | "reset";
  /** Extra request headers to remove, lowercase. */
  stripHeaders: string[];
  /** What reads agents' requests: the shield's own HTTP/1.1 server, or Node's `http` server. */
  httpServer: "clawguard" | "node";
  /** `tokenFile` is absolute, like `log.path`; the admin API refuses to start without it. */
  admin?: { listen: Endpoint; tokenFile?: string; stateFile: string };
  /** The shield as its agents' only way out of a private network (config-gateway.ts). */
  gateway?: GatewayConfig;
  /** This shield's name among those sharing a store (config-store.ts). */
  node?: string;
  /** PostgreSQL shared with other shields; absent, everything stays in files beside this one. */
  store?: StoreConfig;
  /** Who may steer the shield through the admin API, with what role and scope. */
  operators: OperatorConfig[];
  /**
   * SSH access grants: the longest one may last, in ms; where the KRL is served to enrolled
   * agents (null: not served).
   */
  sshAccess: { maxGrantMs: number; krlListen: Endpoint | null; jump: boolean };
}

const DEFAULT_MAX_GRANT_MS = 8 * 3_600_000;
/** The KRL's port on the shield's tunnel address, beside the proxy's. */
export const DEFAULT_KRL_PORT = 3129;
/** A grant is access for a task, not a standing key: a week is already long. */
const LONGEST_MAX_GRANT_MS = 7 * 24 * 3_600_000;

export async function loadShieldConfig(file: string): Promise<ShieldConfig> {
  return parseShieldConfig(await readConfigText(file, "pass --config PATH"), file);
}

const SHAPE: Shape = { list: false, reason: "expected a mapping with listen, log, agents, ... at the top" };

export function parseShieldConfig(text: string, file: string): ShieldConfig {
  const { doc, lines } = readShieldDocument(text, file);
  return shieldConfigOf(doc, lines, file);
}

/** shield.yaml's text as a document to edit, refused as parseShieldConfig refuses bad YAML. */
export function readShieldDocument(text: string, file: string): { doc: Document; lines: LineCounter } {
  return readYamlDocument(text, file, SHAPE);
}

/**
 * The config a parsed (and perhaps since edited) document holds, checked as parseShieldConfig
 * checks text: a program that edits shield.yaml validates its edit without parsing it again.
 */
export function shieldConfigOf(doc: Document, lines: LineCounter, file: string): ShieldConfig {
  return shieldConfigAndPlain(doc, lines, file).cfg;
}

/** shieldConfigOf, and the document's plain data it was read from (for shieldConfigOfPlain). */
export function shieldConfigAndPlain(
  doc: Document,
  lines: LineCounter,
  file: string,
): { cfg: ShieldConfig; plain: unknown } {
  const { data, loc, plain } = documentAs(doc, lines, file, shieldSchema, SHAPE);
  return { cfg: finish(data, file, loc), plain };
}

/**
 * The config of a document's plain data, checked as shieldConfigOf checks the document (the same
 * schema and rules), without the document: its errors name no lines.
 */
export function shieldConfigOfPlain(plain: unknown, file: string): ShieldConfig {
  const { data, loc } = plainAs(plain, file, shieldSchema, SHAPE);
  return finish(data, file, loc);
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HEADER = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function finish(raw: RawShieldConfig, file: string, loc: Locator): ShieldConfig {
  const problems: ConfigProblem[] = [];
  const fail = (segs: Segment[], reason: string) =>
    problems.push({ keyPath: formatKeyPath(segs), line: loc.line(segs), reason });

  const rules = (segs: Segment[], set: { allow: string[]; deny: string[] }): RuleSet => {
    for (const verdict of ["allow", "deny"] as const) {
      set[verdict].forEach((r, i) => {
        try {
          parseRule(r);
        } catch (e) {
          fail([...segs, verdict, i], e instanceof RuleError ? e.message : String(e));
        }
      });
    }
    return { allow: set.allow, deny: set.deny };
  };

  const budgetAt = (segs: Segment[], b: RawBudget | undefined) => {
    const bad = (key: string, reason: string) => fail([...segs, "budget", ...(key ? [key] : [])], reason);
    if (b?.shared && segs[0] === "agents") {
      bad("shared", "an agent's budget is its own; shared is for global, tier and fleet budgets");
    }
    const out = budget(b, bad);
    return out ? { budget: out } : {};
  };

  const listen = endpoint(raw.listen, ["listen"], fail);
  const wireguard = readWireguard(raw.wireguard, file, fail);
  const cleartext = cleartextListenProblem(listen.host, raw.allow_cleartext, wireguard);
  if (cleartext) fail(["listen"], cleartext);
  const admin = raw.admin
    ? {
        listen: endpoint(raw.admin.listen, ["admin", "listen"], fail),
        ...(raw.admin.token_file !== undefined
          ? { tokenFile: path.resolve(path.dirname(path.resolve(file)), raw.admin.token_file) }
          : {}),
        stateFile:
          raw.admin.state_file !== undefined
            ? path.resolve(path.dirname(path.resolve(file)), raw.admin.state_file)
            : path.join(
                path.dirname(path.resolve(path.dirname(path.resolve(file)), raw.log.path)),
                "shield-modes.json",
              ),
      }
    : undefined;
  if (admin && listen.port !== 0 && listen.port === admin.listen.port && listen.host === admin.listen.host) {
    fail(["admin", "listen"], "the admin API must not share the proxy's address and port");
  }

  const gateway = raw.gateway ? gatewayConfig(raw.gateway, listen.port, fail) : undefined;
  const store = raw.store ? storeConfig(raw.store, file, fail) : undefined;
  if (raw.node !== undefined && !NODE_NAME.test(raw.node))
    fail(["node"], `node name "${raw.node}" must match ${NODE_NAME.source}`);
  if (raw.store && raw.node === undefined)
    fail(["store"], "a shield sharing a store needs node: NAME, unique among the shields that share it");

  const tiers: Record<string, TierConfig> = {};
  for (const [name, t] of Object.entries(raw.tiers)) {
    if (!NAME.test(name)) fail(["tiers", name], `tier name "${name}" must match ${NAME.source}`);
    tiers[name] = { ...rules(["tiers", name], t), ...budgetAt(["tiers", name], t.budget) };
  }
  const fleets: Record<string, FleetConfig> = {};
  for (const [name, f] of Object.entries(raw.fleets)) {
    if (!NAME.test(name)) fail(["fleets", name], `fleet name "${name}" must match ${NAME.source}`);
    fleets[name] = {
      ...rules(["fleets", name], f),
      isolation: f.isolation,
      ...(f.mode ? { mode: f.mode } : {}),
      ...budgetAt(["fleets", name], f.budget),
    };
  }

  const seen = new Map<string, number>();
  const keyOwners = new Map<string, string>();
  const sourceOwners = new Map<string, number>();
  const agents: AgentConfig[] = raw.agents.map((a, i) => {
    const at = (...k: Segment[]) => ["agents", i, ...k];
    if (!NAME.test(a.id)) fail(at("id"), `agent id "${a.id}" must match ${NAME.source}`);
    const first = seen.get(a.id);
    if (first !== undefined)
      fail(at("id"), `duplicate agent id "${a.id}" (first defined at agents[${first}])`);
    else seen.set(a.id, i);
    if (a.tier !== undefined && !Object.hasOwn(raw.tiers, a.tier)) {
      fail(at("tier"), `tier "${a.tier}" is not defined under tiers`);
    }
    if (a.fleet !== undefined && !Object.hasOwn(raw.fleets, a.fleet)) {
      fail(at("fleet"), `fleet "${a.fleet}" is not defined under fleets`);
    }
    let token: string | undefined;
    if (a.token_sha256 !== undefined) {
      token = a.token_sha256.toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(token)) {
        fail(
          at("token_sha256"),
          "must be 64 hex characters: the sha256 of the token (printf %s TOKEN | sha256sum), never the token",
        );
      }
    }
    let sources: string[] | undefined;
    if (a.sources !== undefined) {
      if (a.sources.length === 0) fail(at("sources"), "an empty list would match no address; remove it");
      sources = [];
      a.sources.forEach((s, j) => {
        const c = parseCidr(s.trim());
        if (typeof c === "string") {
          fail(at("sources", j), `bad CIDR: ${c}`);
          return;
        }
        const text = formatCidr(c);
        sources?.push(text);
        if (token === undefined) {
          // Two agents identified by the very same range alone could not be told apart.
          const owner = sourceOwners.get(text);
          if (owner !== undefined && owner !== i) {
            fail(
              at("sources", j),
              `${text} already identifies agents[${owner}]; source-only agents need distinct ranges`,
            );
          } else sourceOwners.set(text, i);
        }
      });
    }
    if (a.token_sha256 === undefined && a.sources === undefined && a.wireguard === undefined) {
      fail(
        at(),
        `agent "${a.id}" needs token_sha256, sources, or both; otherwise nobody can be identified as it`,
      );
    }
    const wg = readAgentWireguard(a, at, wireguard, keyOwners, file, fail);
    return {
      ...rules(at(), a),
      id: a.id,
      ...(a.fleet !== undefined ? { fleet: a.fleet } : {}),
      ...(a.tier !== undefined ? { tier: a.tier } : {}),
      ...(token !== undefined ? { tokenSha256: token } : {}),
      ...(sources !== undefined ? { sources } : {}),
      ...(a.mode !== undefined ? { mode: a.mode } : {}),
      ...budgetAt(at(), a.budget),
      ...(wg ? { wireguard: wg } : {}),
    };
  });

  const operators = operatorsConfig(raw.operators, new Set(Object.keys(raw.fleets)), fail);
  let maxGrantMs = DEFAULT_MAX_GRANT_MS;
  if (raw.ssh_access?.max_grant !== undefined) {
    const ms = parseDuration(raw.ssh_access.max_grant);
    if (ms === null || ms < 60_000 || ms > LONGEST_MAX_GRANT_MS)
      fail(
        ["ssh_access", "max_grant"],
        `must be a duration from 1m to 7d (30m, 8h, 2d), not "${raw.ssh_access.max_grant}"`,
      );
    else maxGrantMs = ms;
  }
  // Served where only enrolled agents reach: the tunnel, unless the config names a place (or "off").
  const krlText = raw.ssh_access?.krl_listen;
  const krlListen =
    krlText === "off"
      ? null
      : krlText !== undefined
        ? endpoint(krlText, ["ssh_access", "krl_listen"], fail)
        : wireguard
          ? { host: listen.host, port: DEFAULT_KRL_PORT }
          : null;
  if (operators.length > 0 && !raw.admin)
    fail(["operators"], "operators steer the shield through its admin API: add an admin section");
  if (raw.admin?.token_file !== undefined)
    operators.forEach((o, i) => {
      if (o.name === TOKEN_FILE_OPERATOR)
        fail(
          ["operators", i, "name"],
          `"${TOKEN_FILE_OPERATOR}" is the holder of admin.token_file; choose another name`,
        );
    });

  const global = rules([], raw);
  const globalBudget = budgetAt([], raw.budget);
  const stripHeaders = raw.strip_headers.map((h, i) => {
    if (!HEADER.test(h)) fail(["strip_headers", i], `"${h}" is not a header name`);
    return h.toLowerCase();
  });

  if (problems.length > 0) throw new ConfigError(file, problems);

  const l = raw.limits;
  return {
    file,
    listen,
    allowCleartext: raw.allow_cleartext,
    ...(wireguard ? { wireguard } : {}),
    log: {
      path: path.resolve(path.dirname(path.resolve(file)), raw.log.path),
      ...(raw.log.retention_days !== undefined ? { retentionDays: raw.log.retention_days } : {}),
      ...(raw.log.max_bytes !== undefined ? { maxBytes: raw.log.max_bytes } : {}),
    },
    mode: raw.mode,
    tiers,
    fleets,
    agents,
    allow: global.allow,
    deny: global.deny,
    ...globalBudget,
    limits: {
      maxHeaderBytes: l.max_header_bytes,
      headerTimeoutMs: l.header_timeout_ms,
      idleTimeoutMs: l.idle_timeout_ms,
      connectTimeoutMs: l.connect_timeout_ms,
      maxTunnelsPerAgent: l.max_tunnels_per_agent,
    },
    refusal: raw.refusal,
    stripHeaders,
    httpServer: raw.http_server,
    ...(admin ? { admin } : {}),
    ...(gateway ? { gateway } : {}),
    ...(raw.node !== undefined ? { node: raw.node } : {}),
    ...(store ? { store } : {}),
    operators,
    sshAccess: { maxGrantMs, krlListen, jump: raw.ssh_access?.jump ?? false },
  };
}

type RawBudget = NonNullable<RawShieldConfig["budget"]>;

/** Windows from a second (tests, bursts) to a week. */
const MIN_WINDOW_MS = 1000;
const MAX_WINDOW_MS = 7 * 86_400_000;

/** A level's `budget:` read, or undefined (and `fail` told, with the key) when it is absent or bad. */
function budget(
  raw: RawBudget | undefined,
  fail: (key: string, reason: string) => void,
): BudgetConfig | undefined {
  if (raw === undefined) return undefined;
  let ok = true;
  const bad = (key: string, reason: string) => {
    ok = false;
    fail(key, reason);
  };
  const windowMs = parseDuration(raw.window);
  if (windowMs === null || windowMs < MIN_WINDOW_MS || windowMs > MAX_WINDOW_MS) {
    bad("window", `"${raw.window}" is not a window from 1s to 7d (e.g. 30s, 10m, 1h, 1d)`);
  }
  let uploadBytes: number | undefined;
  if (raw.upload !== undefined) {
    const n = parseSize(raw.upload);
    if (n === null) {
      bad("upload", `"${raw.upload}" is not a size in bytes above zero (e.g. 65536, 500KB, 50MB, 2GiB)`);
    } else uploadBytes = n;
  }
  if (raw.upload === undefined && raw.requests === undefined) {
    bad("", "a budget needs upload, requests or both; remove it to set none");
  }
  if (!ok) return undefined;
  const parts = [
    ...(raw.upload !== undefined ? [`upload ${String(raw.upload).replace(/\s+/g, "")}`] : []),
    ...(raw.requests !== undefined ? [`${raw.requests} requests`] : []),
  ];
  return {
    ...(uploadBytes !== undefined ? { uploadBytes } : {}),
    ...(raw.requests !== undefined ? { requests: raw.requests } : {}),
    windowMs: windowMs as number,
    ...(raw.shared ? { shared: true } : {}),
    text: `${parts.join(", ")} per ${raw.window.trim()}${raw.shared ? ", shared" : ""}`,
  };
}

/** "127.0.0.1:3128" or "[::1]:3128". The host must be an IP address: the shield binds it. */
export function parseEndpoint(text: string): Endpoint | string {
  let hp: HostPort;
  try {
    // Port 0 asks the OS for a free port (tests, and running several shields side by side).
    hp = parseHostPort(text, { allowZero: true });
  } catch (e) {
    if (!(e instanceof HostPortError)) throw e;
    return `${e.message} (write e.g. 127.0.0.1:3128 or [::1]:3128)`;
  }
  const ip = parseIP(hp.host);
  if (ip === null) return `"${hp.host}" is not an IP address; write e.g. 127.0.0.1:3128`;
  return { host: formatIP(ip), port: hp.port };
}

function endpoint(text: string, segs: Segment[], fail: (s: Segment[], r: string) => void): Endpoint {
  const e = parseEndpoint(text);
  if (typeof e === "string") {
    fail(segs, e);
    return { host: "127.0.0.1", port: 1 };
  }
  return e;
}
