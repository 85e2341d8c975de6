import { collect, type Collection, STALE_AFTER_SECONDS } from "../lib/collect.ts";
import { COMMON_HELP, CONFIG_HELP, CONFIG_OPTIONS, configFrom, formatBytes, parse, wholeNumber } from "./options.ts";

export const help = `pyxis-cache gc: keep the cache filesystem between its watermarks

Usage: pyxis-cache gc [--dry-run] [--json] [--uid N [--all]]

When filesystem use is at or above container_cache_gc_high, evicts entries
least recently used first, skipping entries a running step holds, until use
is at or below container_cache_gc_low. Always removes what killed unpacks and
evictions left behind. One collector runs at a time: a second one says it
skipped and exits 0. Exit 1 when an eviction failed.

  --dry-run            say what would be evicted, change nothing
  --json               print {evicted, skippedInUse, usageBefore, usageAfter, ...}
  --uid N              only this user's entries
  --all                evict every entry not in use, whatever the watermarks (with --uid: one user's)
  --stale-after SECS   remove a dead unpack's temporary directory once this old (default ${STALE_AFTER_SECONDS})
${CONFIG_HELP}
${COMMON_HELP}`;

function report(result: Collection): string {
  if (result.skipped) return "gc: skipped: another collector is running";
  const verb = result.dryRun ? "would evict" : "evicted";
  const lines = result.evicted.map((e) =>
    `${verb} ${e.name} (uid ${e.uid}, ${formatBytes(e.bytes)}, last used ${e.lastUsed})`
  );
  for (const e of result.skippedInUse) lines.push(`kept ${e.name} (uid ${e.uid}): in use`);
  for (const path of result.removedLeftovers) {
    lines.push(`${result.dryRun ? "would remove" : "removed"} leftover ${path}`);
  }
  const bytes = result.evicted.reduce((sum, e) => sum + e.bytes, 0);
  lines.push(
    `gc: use ${result.usageBefore}% -> ${result.usageAfter}% (high ${result.high}%, low ${result.low}%): ` +
      `${verb} ${result.evicted.length} entries (${formatBytes(bytes)}), ${result.skippedInUse.length} in use kept`,
  );
  return lines.join("\n");
}

export async function run(args: string[]): Promise<number> {
  const values = parse(args, {
    ...CONFIG_OPTIONS,
    "dry-run": { type: "boolean" },
    json: { type: "boolean" },
    uid: { type: "string" },
    all: { type: "boolean" },
    "stale-after": { type: "string" },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const config = await configFrom(values);
  const result = await collect(config, {
    dryRun: values["dry-run"],
    uid: wholeNumber("--uid", values.uid),
    all: values.all,
    staleAfterSeconds: wholeNumber("--stale-after", values["stale-after"]),
  });
  console.log(values.json ? JSON.stringify(result) : report(result));
  for (const problem of result.problems) console.error(`pyxis-cache: gc: ${problem}`);
  return result.problems.some((p) => /cannot (evict|remove)/.test(p)) ? 1 : 0;
}
