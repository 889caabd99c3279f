/**
 * The admin API's token file, read once at start: an admin API with a guessable or shared token
 * would be worse than none.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { ClawguardError, FileUnreadableError } from "../../errors.js";

const MIN_TOKEN_CHARS = 16;

/**
 * Read the admin token: the file must exist, be readable by the owner only and hold at least
 * 16 characters. Anything else stops the shield; an admin API with a guessable or shared
 * token would be worse than none.
 */
export async function readAdminToken(file: string | undefined): Promise<Buffer> {
  if (file === undefined) {
    throw new ClawguardError(
      "CG_ADMIN_TOKEN_INVALID",
      "admin.token_file is not set: the admin API never runs without a token. Add admin.token_file to the config (clawguard shield install writes one), or remove the admin section",
    );
  }
  let text: string;
  try {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0) {
      throw new ClawguardError(
        "CG_ADMIN_TOKEN_INVALID",
        `${file}: the admin token file is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${file}`,
      );
    }
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === undefined || e instanceof ClawguardError) throw e;
    throw new FileUnreadableError(
      file,
      `cannot read the admin token file (${code}); create it with: umask 077; openssl rand -hex 32 > ${file}`,
    );
  }
  const token = text.trim();
  if (token.length < MIN_TOKEN_CHARS || /\s/.test(token)) {
    throw new ClawguardError(
      "CG_ADMIN_TOKEN_INVALID",
      `${file}: the admin token must be one word of at least ${MIN_TOKEN_CHARS} characters; write a new one with: openssl rand -hex 32 > ${file}`,
    );
  }
  return createHash("sha256").update(token).digest();
}
