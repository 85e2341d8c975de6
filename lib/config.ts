import { UsageError } from "./errors.ts";

/** The plugin's settings: the keys of its plugstack.conf line. */
export interface Config {
  /** Absolute cache root `<base>`, without a trailing slash. */
  dataPath: string;
  /** Collect when filesystem use (percent) is at or above this. */
  gcHigh: number;
  /** Collect until filesystem use (percent) is at or below this. */
  gcLow: number;
  runtime: "enroot" | "bwrap";
  /** The command the SPANK stub calls. */
  cli: string;
}

export const KEYS = [
  "container_cache_data_path",
  "container_cache_gc_high",
  "container_cache_gc_low",
  "container_cache_runtime",
  "container_cache_cli",
] as const;

function percent(key: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 99) {
    throw new UsageError(`${key}: invalid value: ${value} (must be an integer from 1 to 99)`);
  }
  return n;
}

function absolute(key: string, value: string): string {
  if (!value.startsWith("/")) {
    throw new UsageError(`${key}: invalid value: ${value} (must be an absolute path)`);
  }
  if (value.split("/").some((part) => part === "..")) {
    throw new UsageError(`${key}: invalid value: ${value} (must not contain '..')`);
  }
  return value.length > 1 ? value.replace(/\/+$/, "") : value;
}

/**
 * Builds a validated Config from `key=value` arguments, later ones winning.
 * `source` names where they came from, for error messages.
 */
export function parseConfig(args: string[], source: string): Config {
  const values = new Map<string, string>();
  for (const arg of args) {
    const eq = arg.indexOf("=");
    const key = eq < 0 ? arg : arg.slice(0, eq);
    if (!(KEYS as readonly string[]).includes(key)) {
      throw new UsageError(`${key}: unknown key (in ${source})`);
    }
    if (eq < 0) throw new UsageError(`${key}: missing value (in ${source})`);
    values.set(key, arg.slice(eq + 1));
  }
  const dataPath = values.get("container_cache_data_path");
  if (dataPath === undefined || dataPath === "") {
    throw new UsageError(`container_cache_data_path: required but not set (in ${source})`);
  }
  const config: Config = {
    dataPath: absolute("container_cache_data_path", dataPath),
    gcHigh: percent("container_cache_gc_high", values.get("container_cache_gc_high") ?? "85"),
    gcLow: percent("container_cache_gc_low", values.get("container_cache_gc_low") ?? "80"),
    runtime: "enroot",
    cli: absolute("container_cache_cli", values.get("container_cache_cli") ?? "/usr/local/bin/pyxis-cache"),
  };
  if (config.gcLow >= config.gcHigh) {
    throw new UsageError(
      `container_cache_gc_low: invalid value: ${config.gcLow} (must be below container_cache_gc_high=${config.gcHigh})`,
    );
  }
  const runtime = values.get("container_cache_runtime") ?? "enroot";
  if (runtime !== "enroot" && runtime !== "bwrap") {
    throw new UsageError(`container_cache_runtime: invalid value: ${runtime} (must be enroot or bwrap)`);
  }
  config.runtime = runtime;
  return config;
}

export interface ConfigSource {
  /** A plugstack.conf to read; `undefined` means `PYXIS_CACHE_PLUGSTACK` or the default. */
  plugstack?: string;
  /** Read no plugstack.conf at all: every key comes from `sets` (the SPANK stub does this). */
  noPlugstack?: boolean;
  /** `key=value` overrides, applied last. */
  sets?: string[];
}

/** The one way every command gets its configuration. */
export async function loadConfig(source: ConfigSource = {}): Promise<Config> {
  const sets = source.sets ?? [];
  if (source.noPlugstack) return parseConfig(sets, "--set");
  const { readPluginArgs, DEFAULT_PLUGSTACK, PLUGIN_FILE } = await import("./plugstack.ts");
  const chosen = source.plugstack ?? Deno.env.get("PYXIS_CACHE_PLUGSTACK");
  const file = chosen ?? DEFAULT_PLUGSTACK;
  let args: string[] | undefined;
  if (chosen !== undefined || (await Deno.lstat(file).then(() => true, () => false))) {
    args = await readPluginArgs(file);
    if (args === undefined && sets.length === 0) {
      throw new UsageError(`plugstack ${file}: no line for ${PLUGIN_FILE}`);
    }
  }
  return parseConfig([...(args ?? []), ...sets], sets.length ? `${file} and --set` : file);
}
