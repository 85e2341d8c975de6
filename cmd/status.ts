import { type Status, status } from "../lib/status.ts";
import { COMMON_HELP, CONFIG_HELP, CONFIG_OPTIONS, configFrom, formatBytes, parse } from "./options.ts";

export const help = `pyxis-cache status: filesystem use against the watermarks, and every entry

Usage: pyxis-cache status [--json]

One row per entry you may see (root sees every user's): user, name, image,
size, last used, and whether a running step holds it.

  --json               print {usage, high, low, entries: [{name, uid, path, bytes, lastUsed, inUse, image}]}
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
      e.image ?? "?",
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return [head, ...rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd())].join("\n");
}

export async function run(args: string[]): Promise<number> {
  const values = parse(args, { ...CONFIG_OPTIONS, json: { type: "boolean" } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const result = await status(await configFrom(values));
  console.log(values.json ? JSON.stringify(result) : table(result));
  for (const problem of result.problems) console.error(`pyxis-cache: status: ${problem}`);
  return 0;
}
