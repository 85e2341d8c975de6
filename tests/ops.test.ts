import assert from "node:assert/strict";
import { merge, parseReports, splitObjects } from "../lib/reports/merge.ts";
import { renderMetrics } from "../lib/reports/metrics.ts";
import { EMPTY_STATE, readGcState, recordGcRun } from "../lib/store/gcstate.ts";
import { UsageError } from "../lib/os/errors.ts";
import type { Status } from "../lib/reports/status.ts";

function report(node: string, images: string[] = [], user = "alice"): Status {
  return {
    node,
    base: "/cache",
    usage: 50,
    usedBytes: 50,
    availableBytes: 50,
    high: 85,
    low: 80,
    entries: images.map((image, i) => ({
      name: `pyxis_cache_u1000_${String(i).padStart(20, "0")}`,
      uid: 1000,
      user,
      path: `/cache/1000/x${i}`,
      bytes: 10,
      lastUsed: "2026-01-01T00:00:00.000Z",
      inUse: i === 0,
      image,
      createdAt: null,
    })),
    problems: [],
  };
}

Deno.test("splitObjects() finds concatenated reports, skipping srun --label prefixes and braces in strings", () => {
  const a = JSON.stringify(report("n1", ["/img/{a}.sqfs"]));
  const b = JSON.stringify(report("n2"));
  assert.deepEqual(splitObjects(`0: ${a}\n1: ${b}\n`), [a, b]);
  assert.deepEqual(splitObjects(`${a}${b}`), [a, b]);
  assert.deepEqual(splitObjects(`srun: warning: "node n3 not responding"\n${a}`), [a]);
});

Deno.test("parseReports() takes apart srun --label output whose reports' lines srun interleaved", () => {
  // What `status --json` prints: each element of a list on a line of its own (srun cuts longer lines).
  const lined = (r: ReturnType<typeof report>) =>
    `{"node":${JSON.stringify(r.node)},"usage":${r.usage},\n"entries":[\n` +
    r.entries.map((e) => JSON.stringify(e)).join(",\n") + `\n],\n"problems":[]}`;
  const a = lined(report("n1", ["/a", "/b"])).split("\n");
  const b = lined(report("n2", ["/b"])).split("\n");
  const interleaved: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < b.length) interleaved.push(`1: ${b[i]}`);
    if (i < a.length) interleaved.push(`0: ${a[i]}`);
  }
  const merged = merge(parseReports(interleaved.join("\n") + "\n", "stdin"));
  assert.deepEqual(merged.nodes.map((n) => n.node), ["n1", "n2"]);
  assert.deepEqual(merged.images, [{ image: "/a", nodes: ["n1"] }, { image: "/b", nodes: ["n1", "n2"] }]);
});

Deno.test("merge() keeps one report per node (the later one) and lists the nodes of each image", () => {
  const text = [report("n10", ["/i"]), report("n2", ["/i", "/j"]), report("n10", ["/j"])].map((r) => JSON.stringify(r))
    .join("\n");
  const merged = merge(parseReports(text, "stdin"));
  assert.deepEqual(merged.nodes.map((n) => n.node), ["n2", "n10"]);
  assert.deepEqual(merged.images, [{ image: "/i", nodes: ["n2"] }, { image: "/j", nodes: ["n2", "n10"] }]);
});

Deno.test("parseReports() refuses what is not a status report, as a usage error naming the source", () => {
  assert.throws(
    () => parseReports(`{"usage": 1, "entries": 3}`, "x.json"),
    (error) => error instanceof UsageError && error.message.startsWith("x.json: report 1"),
  );
  const unnamed = parseReports(JSON.stringify({ ...report("n1"), node: undefined }), "f");
  assert.deepEqual(unnamed[0]!.node, "f#1");
});

Deno.test("renderMetrics() escapes label values and counts entries and bytes per uid", () => {
  const text = renderMetrics(report("n1", ["/a", "/b"], 'we"ird\\name'), { ...EMPTY_STATE, runs: 3 });
  assert.match(text, /^pyxis_cache_entries\{base="\/cache",uid="1000",user="we\\"ird\\\\name"\} 2$/m);
  assert.match(text, /^pyxis_cache_entry_bytes\{.*\} 20$/m);
  assert.match(text, /^pyxis_cache_entries_in_use\{base="\/cache"\} 1$/m);
  assert.match(text, /^pyxis_cache_gc_runs_total\{base="\/cache"\} 3$/m);
  assert.equal(/last_success/.test(text), false); // never succeeded: no sample rather than a zero time
});

Deno.test("recordGcRun() adds to the counters across runs and keeps the last success of a failed run", async () => {
  const base = await Deno.makeTempDir();
  try {
    assert.deepEqual(await readGcState(base), EMPTY_STATE);
    await recordGcRun(base, { evictions: 2, bytesFreed: 100, ok: true, at: new Date(1_000_000) });
    const state = await recordGcRun(base, {
      evictions: 1,
      bytesFreed: 5,
      failures: 2,
      ok: false,
      at: new Date(2_000_000),
    });
    assert.deepEqual(state, {
      runs: 2,
      evictions: 3,
      bytesFreed: 105,
      failures: 2,
      lastRun: 2000,
      lastSuccess: 1000,
    });
    assert.deepEqual(await readGcState(base), state);
    assert.deepEqual([...Deno.readDirSync(base)].map((e) => e.name), ["pyxis-cache-gc.state.json"]);
    await Deno.writeTextFile(`${base}/pyxis-cache-gc.state.json`, "{not json");
    assert.deepEqual(await readGcState(base), EMPTY_STATE);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
