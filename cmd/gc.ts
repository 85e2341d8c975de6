import { shown } from "../lib/store/entries.ts";
import { collect, type Collection, STALE_AFTER_SECONDS, USER_SECONDS } from "../lib/cache/collect.ts";
import { type Level, Log } from "../lib/reports/journal.ts";
import { COMMON_HELP, CONFIG_HELP, CONFIG_OPTIONS, configFrom, formatBytes, parse, wholeNumber } from "./options.ts";
import { describe } from "../lib/os/errors.ts";

export const help = `pyxis-cache gc: keep the cache filesystem between its watermarks

Usage: pyxis-cache gc [--dry-run] [--json] [--uid N [--all]] [--stale-after SECS]
                      [--user-seconds SECS] [--prometheus FILE] [--journal] [--quiet]
                      [--fail-if-full]

When filesystem use is at or above container_cache_gc_high, evicts entries
least recently used first, skipping entries a running step holds, until use is
at or below container_cache_gc_low. Always removes what dead work left behind:
once --stale-after old, the temporary directories of killed unpacks and
imports (and root's <base>/.pyxis_cache_staging.*), the directories and mount
points (.pyxis_cache_mnt.*) of dead steps, the creation locks of failed
creates, and names in <base>/<uid> that are not the cache's (not changed for
that long); at any age, what killed evictions left; and registry records
(.pyxis_cache_ref.*) not rewritten for 30 days. With container_cache_user_limit,
each user above it then loses their own least recently used entries not in
use until they are not, whatever the watermarks. Removal in one user's
directory (their leftovers, their evicted entries) ends --user-seconds after
it began in the run: a tree not removed by then is one failure line and is
left for the next run, which goes on with it. One collector runs at a time:
a second one says it skipped and exits 0. Every run that is not a dry run adds
to counters kept in <base>/pyxis-cache-gc.state.json (runs, evictions, bytes
freed, last success) for --prometheus.

Exit status: 0 done (or skipped); 1 an eviction or removal failed, the
metrics file could not be written, or (with --fail-if-full) use is still at
or above the high watermark afterwards; 2 usage or configuration error.

  --dry-run            say what would be evicted, change nothing
  --json               print {evicted, skippedInUse, usageBefore, usageAfter, ...}
  --uid N              only this user's entries
  --all                evict every entry not in use, whatever the watermarks (with --uid: one user's)
  --stale-after SECS   remove a dead unpack's temporary directory, a dead step's directory or mount point, a
                       failed create's lock, or a name that is not the cache's, once this old
                       (default ${STALE_AFTER_SECONDS})
  --user-seconds SECS  how long removal in one user's directory may take of a run (default ${USER_SECONDS})
  --prometheus FILE    afterwards, write node_exporter textfile metrics to FILE (as status --prometheus)
  --journal            start each line with its syslog priority (<3> error, <4> warning, <5> notice,
                       <6> info) for the systemd journal; on by itself when $JOURNAL_STREAM is stdout/stderr
  --quiet              print only warnings and errors (cron mails any output)
  --fail-if-full       exit 1 when use is still at or above the high watermark after collecting
${CONFIG_HELP}
${COMMON_HELP}`;

function report(result: Collection): [Level, string][] {
  if (result.skipped) return [["notice", "gc: skipped: another collector is running"]];
  const verb = result.dryRun ? "would evict" : "evicted";
  const lines: [Level, string][] = result.evicted.map((e) => [
    "info",
    `${verb} ${e.name} (uid ${e.uid}, ${formatBytes(e.bytes)}, last used ${e.lastUsed})`,
  ]);
  for (const e of result.skippedInUse) lines.push(["info", `kept ${e.name} (uid ${e.uid}): in use`]);
  for (const path of result.removedLeftovers) {
    // A name that is not the cache's is the user's choice: shown on one line, whatever it holds.
    lines.push(["info", `${result.dryRun ? "would remove" : "removed"} leftover ${shown(path)}`]);
  }
  const bytes = result.evicted.reduce((sum, e) => sum + e.bytes, 0);
  const summary =
    `gc: use ${result.usageBefore}% -> ${result.usageAfter}% (high ${result.high}%, low ${result.low}%): ` +
    `${verb} ${result.evicted.length} entries (${formatBytes(bytes)}), ${result.skippedInUse.length} in use kept`;
  lines.push([result.evicted.length ? "notice" : "info", summary]);
  return lines;
}

/** Still at or above the high watermark after a real collection: the disk needs an operator. */
function stillFull(result: Collection): boolean {
  return !result.skipped && !result.dryRun && result.usageAfter >= result.high;
}

export async function run(args: string[]): Promise<number> {
  const values = await parse(args, {
    ...CONFIG_OPTIONS,
    "dry-run": { type: "boolean" },
    json: { type: "boolean" },
    uid: { type: "string" },
    all: { type: "boolean" },
    "stale-after": { type: "string" },
    "user-seconds": { type: "string" },
    prometheus: { type: "string" },
    journal: { type: "boolean" },
    quiet: { type: "boolean" },
    "fail-if-full": { type: "boolean" },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const log = await Log.create({
    journal: values.journal || undefined,
    quiet: values.quiet,
    prefix: "pyxis-cache: gc: ",
  });
  const config = await configFrom(values);
  const result = await collect(config, {
    dryRun: values["dry-run"],
    uid: wholeNumber("--uid", values.uid),
    all: values.all,
    staleAfterSeconds: wholeNumber("--stale-after", values["stale-after"]),
    userSeconds: wholeNumber("--user-seconds", values["user-seconds"]),
  });
  if (values.json) console.log(JSON.stringify(result));
  else for (const [level, text] of report(result)) log.line(level, text);
  let failed = result.failures.length > 0;
  for (const failure of result.failures) log.line("err", failure);
  for (const problem of result.problems) log.line("warning", problem);
  if (stillFull(result)) {
    log.line(
      values["fail-if-full"] ? "err" : "warning",
      `use ${result.usageAfter}% is still at or above the high watermark ${result.high}%` +
        (result.skippedInUse.length ? ` (${result.skippedInUse.length} entries in use kept)` : ""),
    );
    failed ||= values["fail-if-full"] ?? false;
  }
  if (values.prometheus !== undefined) {
    const { exportMetrics } = await import("../lib/reports/textfile.ts");
    try {
      await exportMetrics(config, values.prometheus);
    } catch (error) {
      log.line("err", `${values.prometheus}: cannot write metrics: ${describe(error)}`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}
