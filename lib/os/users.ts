/** The job user as the commands see them. */
export interface Owner {
  uid: number;
  gid: number;
}

let passwd: Map<number, { name: string; gid: number; home: string }> | undefined;

/** Local accounts from /etc/passwd (names for `status`, default gids for root's `--uid`, homes for enroot). */
export function lookupUid(uid: number): { name: string; gid: number; home: string } | undefined {
  if (!passwd) {
    passwd = new Map();
    let text = "";
    try {
      text = Deno.readTextFileSync("/etc/passwd");
    } catch { /* no local accounts: callers fall back to numbers */ }
    for (const line of text.split("\n")) {
      const [name, , uid, gid, , home] = line.split(":");
      if (name && uid && gid && !passwd.has(Number(uid))) {
        passwd.set(Number(uid), { name, gid: Number(gid), home: home ?? "" });
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
