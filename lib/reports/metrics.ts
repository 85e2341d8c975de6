/**
 * Metrics in the Prometheus text format, for node_exporter's textfile
 * collector: a status report and the collector's counters, written
 * atomically so that a scrape never reads half a file.
 */
import type { GcState } from "../store/gcstate.ts";
import { writeAtomically } from "../os/files.ts";
import type { Status } from "./status.ts";

/** A label value as the text format wants it. */
function label(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

function number(value: number): string {
  return Number.isFinite(value) ? String(value) : "NaN";
}

class Family {
  readonly lines: string[];
  constructor(name: string, type: "gauge" | "counter", help: string, readonly metric = name) {
    this.lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  }
  add(value: number, labels: Record<string, string> = {}): this {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`);
    this.lines.push(`${this.metric}${pairs.length ? `{${pairs.join(",")}}` : ""} ${number(value)}`);
    return this;
  }
}

/** The metrics text for one node's status and its collector's counters. */
export function renderMetrics(s: Status, gc: GcState): string {
  const labels = { base: s.base };
  const perUser = new Map<number, { user: string; entries: number; bytes: number; inUse: number }>();
  for (const e of s.entries) {
    const row = perUser.get(e.uid) ?? { user: e.user, entries: 0, bytes: 0, inUse: 0 };
    row.entries++;
    row.bytes += e.bytes ?? 0;
    if (e.inUse) row.inUse++;
    perUser.set(e.uid, row);
  }
  const entries = new Family("pyxis_cache_entries", "gauge", "Cache entries per user.");
  const bytes = new Family(
    "pyxis_cache_entry_bytes",
    "gauge",
    "Bytes of cache entries per user, as recorded at creation.",
  );
  for (const [uid, row] of [...perUser].sort((a, b) => a[0] - b[0])) {
    entries.add(row.entries, { ...labels, uid: String(uid), user: row.user });
    bytes.add(row.bytes, { ...labels, uid: String(uid), user: row.user });
  }
  const held = new Family(
    "pyxis_cache_user_bytes",
    "gauge",
    "Every byte under <base>/<uid>, per user: entries as recorded, everything else as it takes on disk.",
  );
  for (const u of s.users ?? []) held.add(u.bytes, { ...labels, uid: String(u.uid), user: u.user });
  const families = [
    new Family("pyxis_cache_filesystem_used_bytes", "gauge", "Bytes used on the cache filesystem.")
      .add(s.usedBytes, labels),
    new Family(
      "pyxis_cache_filesystem_avail_bytes",
      "gauge",
      "Bytes available to unprivileged users on the cache filesystem.",
    )
      .add(s.availableBytes, labels),
    new Family(
      "pyxis_cache_filesystem_usage_ratio",
      "gauge",
      "Used share of the cache filesystem, as gc compares it with the watermarks.",
    )
      .add(s.usage / 100, labels),
    new Family(
      "pyxis_cache_gc_high_watermark_ratio",
      "gauge",
      "gc starts when usage reaches this (container_cache_gc_high).",
    )
      .add(s.high / 100, labels),
    new Family(
      "pyxis_cache_gc_low_watermark_ratio",
      "gauge",
      "gc evicts until usage is at or below this (container_cache_gc_low).",
    )
      .add(s.low / 100, labels),
    entries,
    bytes,
    held,
    new Family("pyxis_cache_entries_in_use", "gauge", "Cache entries a running job step holds.")
      .add(s.entries.filter((e) => e.inUse).length, labels),
    new Family("pyxis_cache_problems", "gauge", "Things status found on disk and did not trust.")
      .add(s.problems.length, labels),
    new Family("pyxis_cache_gc_runs_total", "counter", "Collections that ran (dry runs and skipped ones not counted).")
      .add(gc.runs, labels),
    new Family("pyxis_cache_gc_evictions_total", "counter", "Entries gc evicted.")
      .add(gc.evictions, labels),
    new Family(
      "pyxis_cache_gc_freed_bytes_total",
      "counter",
      "Bytes of the entries gc evicted, as recorded at creation.",
    )
      .add(gc.bytesFreed, labels),
    new Family(
      "pyxis_cache_gc_failures_total",
      "counter",
      "Evictions and removals gc could not finish (one per failure line), trees cut short at a user's share of a run included.",
    )
      .add(gc.failures, labels),
  ];
  const limit = s.users?.find((u) => u.limitBytes !== null)?.limitBytes;
  if (s.userLimit != null) {
    families.push(
      new Family(
        "pyxis_cache_user_limit_bytes",
        "gauge",
        "What one user may hold under <base>/<uid> (container_cache_user_limit).",
      ).add(limit ?? Math.floor(((s.usedBytes + s.availableBytes) * s.userLimit) / 100), labels),
    );
  }
  if (gc.lastRun !== null) {
    families.push(
      new Family("pyxis_cache_gc_last_run_timestamp_seconds", "gauge", "When gc last ran.").add(gc.lastRun, labels),
    );
  }
  if (gc.lastSuccess !== null) {
    families.push(
      new Family(
        "pyxis_cache_gc_last_success_timestamp_seconds",
        "gauge",
        "When gc last ran without a failed eviction.",
      )
        .add(gc.lastSuccess, labels),
    );
  }
  return families.map((f) => f.lines.join("\n")).join("\n") + "\n";
}

/** Writes the metrics file atomically (a temporary file in the same directory, then rename). */
export async function writeMetrics(path: string, s: Status, gc: GcState): Promise<void> {
  await writeAtomically(path, renderMetrics(s, gc));
}
