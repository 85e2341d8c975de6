import { UsageError } from "../os/errors.ts";

/** The plugin whose plugstack.conf line holds our configuration. */
export const PLUGIN_FILE = "spank_pyxis_cache.so";
export const DEFAULT_PLUGSTACK = "/etc/slurm/plugstack.conf";

async function expandInclude(pattern: string): Promise<string[]> {
  if (!/[*?[]/.test(pattern)) return [pattern];
  // Globs are rare enough on this path to pay for node:path only when present.
  const { matchesGlob, dirname } = await import("node:path");
  const dir = dirname(pattern);
  if (/[*?[]/.test(dir)) {
    throw new UsageError(`include ${pattern}: wildcards are supported in the file name only`);
  }
  const files: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (matchesGlob(path, pattern)) files.push(path);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return files.sort();
}

/**
 * Returns the arguments of our plugin's line in a plugstack.conf (following
 * `include` lines as slurmd does), or `undefined` when no line names it.
 */
export async function readPluginArgs(file: string, depth = 0): Promise<string[] | undefined> {
  if (depth > 8) throw new UsageError(`${file}: include nested too deeply`);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "no such file" : (error as Error).message;
    throw new UsageError(`plugstack ${file}: cannot read: ${why}`);
  }
  let found: string[] | undefined;
  for (const raw of text.split("\n")) {
    const words = raw.replace(/#.*/, "").trim().split(/\s+/).filter((w) => w !== "");
    const [first, second, ...rest] = words;
    if (first === undefined) continue;
    if (first === "include" && second !== undefined) {
      const base = second.startsWith("/") ? second : `${file.replace(/[^/]*$/, "")}${second}`;
      for (const included of await expandInclude(base)) {
        found = (await readPluginArgs(included, depth + 1)) ?? found;
      }
    } else if ((first === "required" || first === "optional") && second !== undefined) {
      if (second === PLUGIN_FILE || second.endsWith(`/${PLUGIN_FILE}`)) found = rest;
    }
  }
  return found;
}
