import { z } from "zod";
import { LAYERS } from "../checks/finding.js";
import { ConfigError, UsageError } from "../errors.js";
import { DEFAULT_GATEWAY_PORT } from "../facts/openclaw.js";
import { ACCOUNT_NAME, AGENT_ID, CA_PUBLIC_KEY } from "../render/sshd-ca.js";
import { KRL_URL, LAUNCHER_PATH } from "../render/krl-fetch-unit.js";
import { HostPortError, parseHostPort, type HostPort } from "../net/hostport.js";
import { formatKeyPath, parseYaml, readConfigText, schemaProblems, type Locator } from "../yaml/read.js";

const port = z.number().int().min(1).max(65535);

export const ProfileSchema = z
  .object({
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Linux user name (lowercase, at most 32 characters)")
      .default("openclaw"),
    gatewayPort: port.default(DEFAULT_GATEWAY_PORT),
    ports: z.array(port).default([80, 443]),
    www: z.boolean().default(false),
    shield: z
      .string()
      .superRefine((s, ctx) => {
        try {
          parseHostPort(s);
        } catch (e) {
          if (!(e instanceof HostPortError)) throw e;
          ctx.addIssue({ code: "custom", message: `must be HOST:PORT: ${e.reason}` });
        }
      })
      .optional(),
    skip: z.array(z.enum(LAYERS)).default([]),
    /** The fleet's SSH user CA to trust, for this agent's principal (`harden --ssh-ca FILE --agent-id ID`). */
    sshCa: z
      .strictObject({
        publicKey: z
          .string()
          .regex(CA_PUBLIC_KEY, "must be one SSH public key line (the CA's .pub, not its private key)"),
        agent: z.string().regex(AGENT_ID, "must be the agent's id in shield.yaml"),
        /**
         * The accounts a grant without `--as` opens (`--ssh-ca-users a,b`). Default: the login
         * accounts with an authorized_keys file, root never; root only when listed here.
         */
        users: z
          .array(
            z.string().regex(ACCOUNT_NAME, "must be Linux user names (lowercase, at most 32 characters)"),
          )
          .max(64)
          .refine((u) => new Set(u).size === u.length, "names an account twice")
          .optional(),
        /** Where the shield serves its KRL: a timer fetches it from there every 15 s. */
        krlUrl: z
          .string()
          .regex(KRL_URL, "must be an http:// URL of the shield's KRL, e.g. http://10.77.0.1:3129/ssh/krl")
          .optional(),
        /** How the timer runs clawguard: node and its bin, absolute (default /usr/local/bin/clawguard). */
        launcher: z
          .array(z.string().regex(LAUNCHER_PATH, "must be an absolute path"))
          .min(1)
          .max(2)
          .optional(),
      })
      .optional(),
  })
  .strict()
  .refine((p) => !p.ports.includes(p.gatewayPort), {
    message: "the gateway port may never be opened in the firewall; reach it through ssh -L",
    path: ["ports"],
  });

export type Profile = z.infer<typeof ProfileSchema>;

export function parseShield(s: string): HostPort {
  return parseHostPort(s);
}

/** A profile file as written, with the lines of its settings. */
export interface ProfileFile {
  path: string;
  settings: Record<string, unknown>;
  loc: Locator;
}

/**
 * Where a profile's settings came from, so that a problem names its source: a line of the
 * profile file, or the flag that set it (`flags` maps a setting, or `setting.key`, to its flag).
 */
export interface ProfileSources {
  file?: ProfileFile;
  flags?: ReadonlyMap<string, string>;
}

/**
 * Validate a profile. A problem with a setting the file gave is a ConfigError naming its line
 * and key; with a setting a flag gave, a UsageError naming the flag.
 */
export function validateProfile(raw: unknown, sources: ProfileSources = {}): Profile {
  const r = ProfileSchema.safeParse(raw ?? {});
  if (r.success) return r.data;
  // A flag may set one key inside a setting (sshCa.users): the deeper key names it first.
  const fromFlag = (i: z.core.$ZodIssue) => {
    const key = i.path[0];
    if (typeof key !== "string") return undefined;
    return sources.flags?.get(`${key}.${String(i.path[1])}`) ?? sources.flags?.get(key);
  };
  const ofFile = r.error.issues.filter((i) => fromFlag(i) === undefined);
  if (ofFile.length > 0) {
    const file = sources.file;
    throw new ConfigError(
      file?.path ?? "profile",
      file
        ? schemaProblems(ofFile, raw, file.loc)
        : ofFile.map((i) => ({
            keyPath: formatKeyPath(i.path as Array<string | number>),
            reason: i.message,
          })),
    );
  }
  // Every problem left came from a flag; the first names the error's place, the rest follow.
  const [first, ...rest] = r.error.issues;
  throw new UsageError([first!.message, ...rest.map((i) => `${fromFlag(i)}: ${i.message}`)].join("\n"), {
    where: fromFlag(first!),
  });
}

export async function loadProfile(file: string): Promise<ProfileFile> {
  const { data, loc } = parseYaml(await readConfigText(file, "pass --profile PATH"), file, {
    list: false,
    reason: "expected a mapping of settings (user, gatewayPort, ports, www, shield, skip)",
    empty: {},
  });
  return { path: file, settings: data as Record<string, unknown>, loc };
}
