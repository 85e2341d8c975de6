import { shown } from "../lib/store/entries.ts";
import { describe } from "../lib/os/errors.ts";
import { type Status, status } from "../lib/reports/status.ts";
import { COMMON_HELP, CONFIG_HELP, CONFIG_OPTIONS, configFrom, formatBytes, parse } from "./options.ts";

export const help = `pyxis-cache status: filesystem use against the watermarks, and every entry

Usage: pyxis-cache status [--json] [--prometheus FILE]
       pyxis-cache status --merge [FILE... | -] [--json]

One row per entry you may see (root sees every user's): user, name, image,
size, last used, and whether a running step holds it; then one row per entry
being unpacked now (since when, and how many running steps started from a
FUSE mount of its image meanwhile); then one row per user: every byte under
<base>/<uid> (entries as recorded, everything else as it takes on disk), and
the container_cache_user_limit it is held to. A registry image shows its reference and
the start of its manifest digest (the whole one in --json).

  --json               print {node, usage, high, low, entries: [{name, uid, path, bytes, lastUsed, inUse, image, digest}],
                       unpacking: [{name, uid, path, image, startedAt, mountedSteps}], mounted: [{name, uid, path}],
                       users: [{uid, user, bytes, entries, entryBytes, otherBytes, limitBytes}], userLimit}
  --prometheus FILE    also write node_exporter textfile metrics to FILE, atomically (a temporary file
                       in FILE's directory, then rename): filesystem bytes, watermarks, entries and
                       bytes per user, every byte each user holds, entries in use, and gc's counters;
                       FILE should end in .prom
  --merge FILE...      merge the --json reports of many nodes (concatenated, srun --label prefixes
                       allowed; '-' or no FILE reads stdin) into one summary row per node and one
                       table per node; with --json print {nodes: [...], images: [{image, nodes}]}.
                       Reads no configuration. E.g.:
                       srun -N8 --ntasks-per-node=1 -l pyxis-cache status --json | pyxis-cache status --merge
                       (--label: srun interleaves longer output of many nodes; merge takes it apart)
${CONFIG_HELP}
${COMMON_HELP}`;

function table(s: Status): string {
  const total = s.entries.reduce((sum, e) => sum + (e.bytes ?? 0), 0);
  const head = `${s.base}: ${s.usage}% used (gc starts at ${s.high}%, stops at ${s.low}%), ` +
    `${s.entries.length} entries, ${formatBytes(total)}`;
  const rows = [["USER", "UID", "SIZE", "LAST USED", "IN USE", "NAME", "IMAGE"]];
  for (const e of s.entries) {
    rows.push([
      e.user,
      String(e.uid),
      formatBytes(e.bytes),
      e.lastUsed.replace(/\.\d+Z$/, "Z"),
      e.inUse ? "yes" : "no",
      e.name,
      // A user writes their entry's record: its image must not forge rows or drive root's terminal.
      (e.image === null ? "?" : shown(e.image)) + (e.digest ? ` (${shown(e.digest.slice(0, 19))})` : ""),
    ]);
  }
  for (const u of s.unpacking ?? []) {
    const served = u.mountedSteps ? `unpacking, ${u.mountedSteps} step(s) on a mount` : "unpacking";
    rows.push([
      u.user,
      String(u.uid),
      "-",
      (u.startedAt ?? "?").replace(/\.\d+Z$/, "Z"),
      served,
      u.name,
      u.image === null ? "?" : shown(u.image),
    ]);
  }
  return `${head}\n${columns(rows)}${s.users?.length ? `\n\n${userTable(s)}` : ""}`;
}

/** What each user holds under <base>/<uid>: every byte there, entries or not, against the per-user limit. */
function userTable(s: Status): string {
  const rows = [["USER", "UID", "HOLDS", "ENTRIES", "OTHER", "LIMIT"]];
  for (const u of s.users ?? []) {
    rows.push([
      u.user,
      String(u.uid),
      formatBytes(u.bytes),
      `${u.entries} (${formatBytes(u.entryBytes)})`,
      formatBytes(u.otherBytes),
      u.limitBytes === null
        ? "-"
        : `${formatBytes(u.limitBytes)} (${s.userLimit}%)${u.bytes > u.limitBytes ? " exceeded" : ""}`,
    ]);
  }
  return columns(rows);
}

/**
 * The report as JSON, each element of its lists on a line of its own. srun carries a task's
 * output in messages of at most 1024 bytes, and a longer line from one node is cut and
 * interleaved with the others' (with --label, each piece labelled): lines this short reach
 * `status --merge` whole, and with --label it takes each node's lines apart (lib/reports/merge.ts).
 */
function linedJson(report: Status): string {
  const fields = Object.entries(report).map(([key, value]) =>
    Array.isArray(value) && value.length > 0
      ? `${JSON.stringify(key)}:[\n${value.map((item) => JSON.stringify(item)).join(",\n")}\n]`
      : `${JSON.stringify(key)}:${JSON.stringify(value)}`
  );
  return `{${fields.join(",\n")}}`;
}

function percent(n: number): string {
  return `${n}%`;
}

function columns(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

/** One summary row per node, then each node's table. */
function mergedTables(nodes: Status[]): string {
  const rows = [["NODE", "USE", "HIGH", "LOW", "ENTRIES", "SIZE", "IN USE", "BASE"]];
  for (const s of nodes) {
    rows.push([
      s.node,
      percent(s.usage),
      percent(s.high),
      percent(s.low),
      String(s.entries.length),
      formatBytes(s.entries.reduce((sum, e) => sum + (e.bytes ?? 0), 0)),
      String(s.entries.filter((e) => e.inUse).length),
      s.base,
    ]);
  }
  const parts = [columns(rows)];
  for (const s of nodes) parts.push(`\n== ${s.node}\n${table(s)}`);
  return parts.join("\n");
}

/** Takes `--merge [FILE...]` out of the arguments: every following argument up to the next option. */
function takeMerge(args: string[]): { files: string[] | undefined; rest: string[] } {
  let files: string[] | undefined;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--merge") {
      files ??= [];
      while (i + 1 < args.length && (args[i + 1] === "-" || !args[i + 1]!.startsWith("-"))) files.push(args[++i]!);
    } else if (arg.startsWith("--merge=")) {
      (files ??= []).push(arg.slice("--merge=".length));
    } else {
      rest.push(arg);
    }
  }
  return { files, rest };
}

async function runMerge(files: string[], json: boolean): Promise<number> {
  const { merge, parseReports } = await import("../lib/reports/merge.ts");
  const reports: Status[] = [];
  for (const file of files.length ? files : ["-"]) {
    const text = file === "-" ? await new Response(Deno.stdin.readable).text() : await Deno.readTextFile(file);
    reports.push(...parseReports(text, file === "-" ? "stdin" : file));
  }
  const merged = merge(reports);
  console.log(json ? JSON.stringify(merged) : mergedTables(merged.nodes));
  return 0;
}

export async function run(args: string[]): Promise<number> {
  const { files, rest } = takeMerge(args);
  const values = await parse(rest, { ...CONFIG_OPTIONS, json: { type: "boolean" }, prometheus: { type: "string" } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (files !== undefined) return await runMerge(files, values.json ?? false);
  const config = await configFrom(values);
  const result = await status(config);
  console.log(values.json ? linedJson(result) : table(result));
  for (const problem of result.problems) console.error(`pyxis-cache: status: ${problem}`);
  if (values.prometheus !== undefined) {
    try {
      const { exportMetrics } = await import("../lib/reports/textfile.ts");
      await exportMetrics(config, values.prometheus, result);
    } catch (error) {
      console.error(`pyxis-cache: status: ${values.prometheus}: cannot write metrics: ${describe(error)}`);
      return 1;
    }
  }
  return 0;
}
