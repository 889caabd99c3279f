import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { z } from "zod";
import { LAYERS } from "../checks/finding.js";
import { DEFAULT_GATEWAY_PORT } from "../facts/openclaw.js";
import { HostPortError, parseHostPort, type HostPort } from "../net/hostport.js";

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

/** Validate a profile; errors name the key path, and the file's line when there is one. */
export function validateProfile(raw: unknown, source: string): Profile {
  const r = ProfileSchema.safeParse(raw ?? {});
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `${source}: ${i.path.join(".") || "(top level)"}: ${i.message}`);
  throw new Error(lines.join("\n"));
}

export async function loadProfile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(`cannot read profile ${file}: ${(err as Error).message}`);
  }
  try {
    const doc: unknown = parse(text);
    if (doc !== null && doc !== undefined && (typeof doc !== "object" || Array.isArray(doc)))
      throw new Error("expected a mapping of settings");
    return (doc ?? {}) as Record<string, unknown>;
  } catch (err) {
    const e = err as Error & { linePos?: Array<{ line: number }> };
    const line = e.linePos?.[0]?.line;
    throw new Error(`${file}${line ? `:${line}` : ""}: not a valid profile: ${e.message.split("\n")[0]}`);
  }
}
