/**
 * Counters the collector keeps across runs, for metrics: one small JSON file
 * under `<base>`, read and rewritten only while the collector lock is held,
 * and replaced atomically (temporary file beside it, then rename(2)).
 */
import { gcStatePath } from "../layout.ts";
import { openRegular, writeAtomically } from "../os/files.ts";

export interface GcState {
  /** Collections that ran (not skipped, not dry runs). */
  runs: number;
  evictions: number;
  bytesFreed: number;
  /** Evictions and removals that failed (or were cut short at a user's share of a run), one per failure line. */
  failures: number;
  /** Unix seconds of the last run, and of the last run without a failed eviction or removal. */
  lastRun: number | null;
  lastSuccess: number | null;
}

export const EMPTY_STATE: GcState = {
  runs: 0,
  evictions: 0,
  bytesFreed: 0,
  failures: 0,
  lastRun: null,
  lastSuccess: null,
};

const STATE_LIMIT = 64 * 1024;

function count(value: unknown): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

/** A counter plus a run's count (checked too): it saturates rather than becoming unreadable and resetting. */
function add(total: number, more: number): number {
  return Math.min(total + count(more), Number.MAX_SAFE_INTEGER);
}

function time(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : null;
}

/** The counters, or zeros when the file is missing, not a regular file or not ours. */
export async function readGcState(base: string): Promise<GcState> {
  const file = await openRegular(gcStatePath(base));
  if (!file) return { ...EMPTY_STATE };
  try {
    const buffer = new Uint8Array(STATE_LIMIT);
    const n = (await file.read(buffer)) ?? 0;
    const raw = JSON.parse(new TextDecoder().decode(buffer.subarray(0, n)));
    return {
      runs: count(raw?.runs),
      evictions: count(raw?.evictions),
      bytesFreed: count(raw?.bytesFreed),
      failures: count(raw?.failures),
      lastRun: time(raw?.lastRun),
      lastSuccess: time(raw?.lastSuccess),
    };
  } catch {
    return { ...EMPTY_STATE };
  } finally {
    file.close();
  }
}

/** Adds one run to the counters. Call only while holding the collector lock. */
export async function recordGcRun(
  base: string,
  run: { evictions: number; bytesFreed: number; failures?: number; ok: boolean; at?: Date },
): Promise<GcState> {
  const state = await readGcState(base);
  const now = Math.floor((run.at ?? new Date()).getTime() / 1000);
  const next: GcState = {
    runs: state.runs + 1,
    evictions: add(state.evictions, run.evictions),
    bytesFreed: add(state.bytesFreed, run.bytesFreed),
    failures: add(state.failures, run.failures ?? 0),
    lastRun: now,
    lastSuccess: run.ok ? now : state.lastSuccess,
  };
  await writeAtomically(gcStatePath(base), JSON.stringify(next) + "\n");
  return next;
}
