/**
 * `clawguard shield gateway --verify`: the table is loaded in the kernel as planned, it is
 * saved and loaded again at boot, and whether the shield's listeners answer. The table is what
 * keeps the agents in: with it loaded and the shield process down, the agents have no way out
 * at all, which is the state to be in; verify says so rather than fail.
 */
import net from "node:net";
import { defaultRunner, runStep, type Runner } from "../../change/ruleset.js";
import type { GatewaySpec } from "../../render/gateway-nftables.js";
import { GATEWAY_FAMILY, GATEWAY_TABLE } from "../../render/gateway-nftables.js";
import type { GatewayPlan } from "./plan.js";

export interface GatewayCheck {
  id: "loaded" | "current" | "persisted" | "listeners";
  ok: boolean;
  /** A check that only informs: it never fails the verify. */
  info?: boolean;
  detail: string;
}

export interface GatewayVerifyReport {
  schema: "clawguard.shield-gateway-verify/v1";
  ok: boolean;
  checks: GatewayCheck[];
  /** Packets dropped from the agents' networks so far: sent to the shield, or to be routed. */
  dropped: { input: number; forward: number } | null;
}

interface NftJson {
  nftables: Array<{
    rule?: { chain: string; expr: Array<Record<string, unknown>> };
    set?: { name: string; elem?: unknown[] };
  }>;
}

/** Rules per chain as the rendered file writes them (lines inside each chain, not its type line). */
function plannedRules(ruleset: string): Record<string, number> {
  const out: Record<string, number> = {};
  let chain: string | null = null;
  for (const line of ruleset.split("\n").map((l) => l.trim())) {
    const m = /^chain (\S+) \{$/.exec(line);
    if (m) {
      chain = m[1]!;
      out[chain] = 0;
    } else if (line === "}") chain = null;
    else if (chain !== null && line !== "" && !line.startsWith("type ")) out[chain]! += 1;
  }
  return out;
}

function elementsOf(set: { elem?: unknown[] } | undefined): string[] {
  return (set?.elem ?? []).map((e) => {
    const p = (e as { prefix?: { addr: string; len: number } }).prefix;
    return p ? `${p.addr}/${p.len}` : String(e);
  });
}

function dropCounter(rules: NftJson["nftables"], chain: string): number {
  let n = 0;
  for (const r of rules) {
    if (r.rule?.chain !== chain) continue;
    const expr = r.rule.expr;
    if (!expr.some((x) => "drop" in x)) continue;
    for (const x of expr) {
      const c = x.counter as { packets?: number } | undefined;
      if (c?.packets !== undefined) n += c.packets;
    }
  }
  return n;
}

function answers(host: string, port: number, ms = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(ms, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

export async function verifyGateway(
  plan: GatewayPlan,
  listen: readonly string[],
  run: Runner = defaultRunner,
): Promise<GatewayVerifyReport> {
  const checks: GatewayCheck[] = [];
  const listed = await runStep(run, ["nft", "-j", "list", "table", GATEWAY_FAMILY, GATEWAY_TABLE]);
  let dropped: GatewayVerifyReport["dropped"] = null;
  if (!listed.ok) {
    checks.push({
      id: "loaded",
      ok: false,
      detail: `table ${GATEWAY_FAMILY} ${GATEWAY_TABLE} is not loaded: ${listed.detail ?? ""}`,
    });
  } else {
    checks.push({ id: "loaded", ok: true, detail: `table ${GATEWAY_FAMILY} ${GATEWAY_TABLE} is loaded` });
    const json = JSON.parse(
      (await run(["nft", "-j", "list", "table", GATEWAY_FAMILY, GATEWAY_TABLE])).stdout,
    ) as NftJson;
    const items = json.nftables;
    const loadedRules: Record<string, number> = {};
    for (const i of items) if (i.rule) loadedRules[i.rule.chain] = (loadedRules[i.rule.chain] ?? 0) + 1;
    const want = plannedRules(plan.ruleset);
    const nets = [
      ...elementsOf(items.find((i) => i.set?.name === "agents4")?.set),
      ...elementsOf(items.find((i) => i.set?.name === "agents6")?.set),
    ];
    const differs = Object.entries(want).filter(([c, n]) => (loadedRules[c] ?? 0) !== n);
    const netsDiffer = JSON.stringify([...nets].sort()) !== JSON.stringify([...plan.spec.networks].sort());
    checks.push({
      id: "current",
      ok: differs.length === 0 && !netsDiffer,
      detail:
        differs.length === 0 && !netsDiffer
          ? `the loaded rules are the planned ones, for ${plan.spec.networks.join(", ")}`
          : `the loaded table differs from the plan (${[...differs.map(([c, n]) => `${c}: ${loadedRules[c] ?? 0} rules, planned ${n}`), ...(netsDiffer ? [`networks ${nets.join(", ")}, planned ${plan.spec.networks.join(", ")}`] : [])].join("; ")}); run clawguard shield gateway --apply`,
    });
    dropped = { input: dropCounter(items, "input"), forward: dropCounter(items, "forward") };
  }
  const stale = plan.files.filter((f) => f.before !== f.content).map((f) => f.path);
  const unlinked = plan.links.filter((l) => l.before !== l.target).map((l) => l.path);
  checks.push({
    id: "persisted",
    ok: stale.length === 0 && unlinked.length === 0,
    detail:
      stale.length + unlinked.length === 0
        ? "saved, and loaded again at every boot"
        : `not as planned: ${[...stale, ...unlinked].join(", ")}; run clawguard shield gateway --apply`,
  });
  checks.push(await listeners(plan.spec, listen));
  return {
    schema: "clawguard.shield-gateway-verify/v1",
    ok: checks.every((c) => c.ok || c.info),
    checks,
    dropped,
  };
}

async function listeners(spec: GatewaySpec, listen: readonly string[]): Promise<GatewayCheck> {
  const ports = [spec.http?.listener, spec.https?.listener, spec.dns ?? undefined].filter(
    (p): p is number => p !== undefined,
  );
  const silent: string[] = [];
  for (const host of listen)
    for (const port of ports)
      if (!(await answers(host, port))) silent.push(`${host.includes(":") ? `[${host}]` : host}:${port}`);
  return silent.length === 0
    ? { id: "listeners", ok: true, info: true, detail: `the shield answers on ${listen.join(", ")}` }
    : {
        id: "listeners",
        ok: false,
        info: true,
        detail: `nothing answers on ${silent.join(", ")}: the agents have no way out until the shield runs (the table holds them in)`,
      };
}
