import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { call, userTokenFile, type ApiFlags } from "../shield/admin/client.js";
import { ROLES, type Role } from "../shield/config-operators.js";
import { apiOptions, table } from "./shield-admin.js";

interface Operator {
  name: string;
  role: Role;
  fleets: string[] | null;
  from: string;
}

const print = (flags: ApiFlags, json: unknown, text: string) =>
  process.stdout.write(
    flags.json ? JSON.stringify(json, null, 2) + "\n" : text.endsWith("\n") ? text : text + "\n",
  );

/** `clawguard shield operators`: who may steer the shield, managed through its admin API (admins only). */
export function registerShieldOperatorsCommand(shield: Command): void {
  const ops = shield
    .command("operators")
    .description("the people who steer this shield: roles and fleet scopes");

  apiOptions(
    ops.command("list", { isDefault: true }).description("every operator, with role and scope"),
  ).action(async (flags: ApiFlags) => {
    const r = await call(flags, "GET", "/api/operators");
    const list = r.operators as Operator[];
    print(
      flags,
      r,
      table([
        ["NAME", "ROLE", "FLEETS", "FROM"],
        ...list.map((o) => [o.name, o.role, o.fleets === null ? "all" : o.fleets.join(","), o.from]),
      ]),
    );
  });

  apiOptions(
    ops
      .command("add <name>")
      .description("add an operator; the token is printed once and only its SHA-256 is kept")
      .requiredOption("--role <role>", `one of ${ROLES.join(", ")}`)
      .option("--fleet <fleet...>", "the fleets they see and steer (default: every fleet)"),
  ).action(async (name: string, flags: ApiFlags & { role: string; fleet?: string[] }) => {
    if (!(ROLES as readonly string[]).includes(flags.role))
      throw new UsageError(`--role must be one of ${ROLES.join(", ")}, not "${flags.role}"`);
    const r = await call(flags, "POST", "/api/operators", {
      name,
      role: flags.role,
      ...(flags.fleet ? { fleets: flags.fleet } : {}),
    });
    print(
      flags,
      r,
      [
        `operator ${name} added (${flags.role}${flags.fleet ? ` of ${flags.fleet.join(", ")}` : ", every fleet"}).`,
        `token (shown once; the shield keeps only its SHA-256):`,
        `  ${String(r.token)}`,
        `They keep it where the CLI finds it: umask 077; mkdir -p ${userTokenFile().replace(/\/[^/]+$/, "")}; printf %s TOKEN > ${userTokenFile()}`,
      ].join("\n"),
    );
  });

  apiOptions(
    ops.command("remove <name>").description("remove an operator: their token stops working at once"),
  ).action(async (name: string, flags: ApiFlags) => {
    const r = await call(flags, "DELETE", "/api/operators", { name });
    print(flags, r, `operator ${name} removed`);
  });
}
