/** The job user as the commands see them. */
export interface Owner {
  uid: number;
  gid: number;
}

let passwd: Map<number, { name: string; gid: number }> | undefined;

/** Local accounts from /etc/passwd (names for `status`, default gids for root's `--uid`). */
export function lookupUid(uid: number): { name: string; gid: number } | undefined {
  if (!passwd) {
    passwd = new Map();
    let text = "";
    try {
      text = Deno.readTextFileSync("/etc/passwd");
    } catch { /* no local accounts: callers fall back to numbers */ }
    for (const line of text.split("\n")) {
      const [name, , uid, gid] = line.split(":");
      if (name && uid && gid && !passwd.has(Number(uid))) {
        passwd.set(Number(uid), { name, gid: Number(gid) });
      }
    }
  }
  return passwd.get(uid);
}

/** The calling process's user (Deno returns null only on Windows). */
export function self(): Owner {
  return { uid: Deno.uid()!, gid: Deno.gid()! };
}

export function isRoot(): boolean {
  return Deno.uid() === 0;
}
