import { MalformedError } from "./fact.js";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface UsersFact {
  users: PasswdEntry[];
  groups: GroupEntry[];
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim() || line.startsWith("#")) return;
    const f = line.split(":");
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (f.length < 7 || !Number.isInteger(uid) || !Number.isInteger(gid)) {
      throw new MalformedError(`expected name:x:uid:gid:gecos:home:shell, got "${line.slice(0, 80)}"`, i + 1);
    }
    out.push({ name: f[0]!, uid, gid, home: f[5]!, shell: f[6]! });
  });
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim() || line.startsWith("#")) return;
    const f = line.split(":");
    const gid = Number(f[2]);
    if (f.length < 4 || !Number.isInteger(gid)) {
      throw new MalformedError(`expected name:x:gid:members, got "${line.slice(0, 80)}"`, i + 1);
    }
    out.push({ name: f[0]!, gid, members: f[3]!.split(",").filter(Boolean) });
  });
  return out;
}

const NO_LOGIN = /(?:^|\/)(?:nologin|false|sync|halt|shutdown)$/;

/** Whether an account's shell lets it log in (an empty shell is /bin/sh). */
export function canLogIn(user: Pick<PasswdEntry, "shell">): boolean {
  return !NO_LOGIN.test(user.shell.trim());
}

export function userByName(f: UsersFact, name: string): PasswdEntry | undefined {
  return f.users.find((u) => u.name === name);
}

export function userByUid(f: UsersFact, uid: number): PasswdEntry | undefined {
  return f.users.find((u) => u.uid === uid);
}

/** Groups a user is in: its primary group and every group that lists it. */
export function groupsOf(f: UsersFact, user: PasswdEntry): string[] {
  return f.groups.filter((g) => g.gid === user.gid || g.members.includes(user.name)).map((g) => g.name);
}
