/** The notices shown before login: the console's /etc/issue and the file sshd's Banner names. */
export const ISSUE = "/etc/issue";
export const ISSUE_NET = "/etc/issue.net";

export interface BannersFact {
  /** Text of each file read, by path; null for one that does not exist. */
  texts: Record<string, string | null>;
}

/** What a notice must not show: getty's OS, release, version and machine escapes, or the OS by name. */
const REVEALS = /\\[mrsv]|debian|ubuntu|gnu\/linux/i;

/** Why a notice falls short, or undefined when it warns off whoever is not authorized and names no OS. */
export function noticeProblem(text: string | null | undefined): string | undefined {
  if (text == null) return "missing";
  if (!text.trim()) return "empty";
  const shown = REVEALS.exec(text);
  if (shown) return `shows the system (${JSON.stringify(shown[0])})`;
  if (!/authori[sz]ed/i.test(text)) return "does not say access is for authorized users only";
  return undefined;
}
