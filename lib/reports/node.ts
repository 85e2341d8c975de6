/**
 * The name of this node as status reports it, so that reports gathered from
 * many nodes (`srun ... pyxis-cache status --json`) can be told apart.
 * gethostname(2) needs `--allow-sys=hostname`; without it, /etc/hostname.
 */
let cached: string | undefined;

export function nodeName(): string {
  if (cached !== undefined) return cached;
  try {
    cached = Deno.hostname();
  } catch {
    try {
      cached = Deno.readTextFileSync("/etc/hostname").trim();
    } catch {
      cached = "";
    }
  }
  if (cached === "") cached = "unknown";
  return cached;
}
