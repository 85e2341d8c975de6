import { UsageError } from "../os/errors.ts";

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
  /** Seconds a registry tag's digest is trusted before the registry is asked again (0: every start). */
  registryInterval: number;
  /**
   * A cold step starts from a squashfuse mount of the image while its entry is
   * unpacked in the background (where FUSE is available); off: it waits for the unpack.
   */
  fuse: boolean;
  /**
   * The share of the cache filesystem (percent, 1 to 100) one user may hold under
   * `<base>/<uid>`; `undefined`: no limit.
   */
  userLimit?: number;
  /**
   * The size of a cache-mode step's own tmpfs, which holds its writable layer over the
   * entry (tmpfs's `size=`: `512m`, `4g`, `10%` of memory); the stub mounts it.
   */
  layerSize: string;
  /**
   * A warm step of a squashfs file may be answered by the stub from root's record of the
   * command's last answer (spank-stub/answers.c), without starting the command.
   */
  answers: boolean;
  /** pyxis 0.24's own keys, accepted with pyxis's meaning (docs/pyxis.md, "plugstack keys"). */
  pyxis: PyxisKeys;
}

/**
 * pyxis's keys on the plugin's line, so that a site's pyxis line keeps working.
 * `importer` is not here: only its empty value (pyxis's default) is accepted.
 */
export interface PyxisKeys {
  /** pyxis's directory of per-user runtime files; unused (a step's files live in its directory under `<base>`). */
  runtimePath: string;
  /** The default of `--container-entrypoint`. */
  executeEntrypoint: boolean;
  /** Where a `--container-name` lives (named containers are not built yet). */
  containerScope: "job" | "global";
  /** The options in sbatch and salloc, and the batch script in the container. */
  sbatchSupport: boolean;
  /** pyxis imports with `enroot load`; the cache imports with `enroot import` either way. */
  useEnrootLoad: boolean;
  /** pyxis starts a squashfs from squashfuse; the cache's equivalent is `container_cache_fuse`. */
  useSquashfuse: boolean;
}

export const PYXIS_KEYS = [
  "runtime_path",
  "execute_entrypoint",
  "container_scope",
  "sbatch_support",
  "use_enroot_load",
  "importer",
  "use_squashfuse",
] as const;

export const KEYS = [
  "container_cache_data_path",
  "container_cache_gc_high",
  "container_cache_gc_low",
  "container_cache_runtime",
  "container_cache_cli",
  "container_cache_registry_interval",
  "container_cache_fuse",
  "container_cache_user_limit",
  "container_cache_layer_size",
  "container_cache_answers",
  // pyxis's own keys
  ...PYXIS_KEYS,
] as const;

/** The longest `container_cache_registry_interval`: a day. */
export const MAX_REGISTRY_INTERVAL = 86400;

/** A value that fails its check: the message names the key, the reason and where the value came from. */
function invalid(key: string, value: string, reason: string, source: string): UsageError {
  return new UsageError(`${key}: invalid value: ${value} (${reason}; in ${source})`);
}

function percent(key: string, value: string, source: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 99) throw invalid(key, value, "must be an integer from 1 to 99", source);
  return n;
}

function seconds(key: string, value: string, source: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > MAX_REGISTRY_INTERVAL) {
    throw invalid(key, value, `must be a whole number of seconds from 0 to ${MAX_REGISTRY_INTERVAL}`, source);
  }
  return n;
}

/** A percentage from 1 to 100, or `off` (no limit). */
function limit(key: string, value: string, source: string): number | undefined {
  if (value === "off") return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 100) {
    throw invalid(key, value, "must be an integer from 1 to 100, or off", source);
  }
  return n;
}

/** A tmpfs `size=`: a whole number (1 to 12 digits) with k, m or g, or 1% to 100% of memory. */
function size(key: string, value: string, source: string): string {
  const m = /^([1-9]\d{0,11})([kmg%])$/.exec(value);
  if (m === null || (m[2] === "%" && Number(m[1]) > 100)) {
    throw invalid(key, value, "must be a size such as 512m, 4g or 10% (of memory)", source);
  }
  return value;
}

/** A yes/no value, spelled as pyxis spells its booleans. */
function flag(key: string, value: string, source: string): boolean {
  if (["1", "yes", "y", "true"].includes(value)) return true;
  if (["0", "no", "n", "false"].includes(value)) return false;
  throw invalid(key, value, "must be yes or no", source);
}

function absolute(key: string, value: string, source: string): string {
  if (!value.startsWith("/")) throw invalid(key, value, "must be an absolute path", source);
  if (value.split("/").some((part) => part === "..")) throw invalid(key, value, "must not contain '..'", source);
  return value.length > 1 ? value.replace(/\/+$/, "") : value;
}

/** pyxis's PATH_MAX, NUL included: the longest runtime_path pyxis takes is one byte shorter. */
const PATH_MAX = 4096;

/** pyxis's own keys, checked after ours, in pyxis's order, with pyxis's messages. */
function pyxisKeys(values: Map<string, string>, source: string): PyxisKeys {
  const runtimePath = values.get("runtime_path") ?? "/run/pyxis";
  const bytes = new TextEncoder().encode(runtimePath).length;
  if (bytes >= PATH_MAX) {
    throw new UsageError(
      `runtime_path: invalid value: path too long (${bytes} bytes, at most ${PATH_MAX - 1}; in ${source})`,
    );
  }
  const executeEntrypoint = flag("execute_entrypoint", values.get("execute_entrypoint") ?? "no", source);
  const containerScope = values.get("container_scope") ?? "global";
  if (containerScope !== "job" && containerScope !== "global") {
    throw invalid("container_scope", containerScope, "must be job or global", source);
  }
  const sbatchSupport = flag("sbatch_support", values.get("sbatch_support") ?? "yes", source);
  const useEnrootLoad = flag("use_enroot_load", values.get("use_enroot_load") ?? "no", source);
  const importer = values.get("importer") ?? "";
  if (importer !== "") {
    const reason = "pyxis's importers are not supported: pyxis-cache imports registry images itself; remove the key";
    throw invalid("importer", importer, reason, source);
  }
  const useSquashfuse = flag("use_squashfuse", values.get("use_squashfuse") ?? "no", source);
  return { runtimePath, executeEntrypoint, containerScope, sbatchSupport, useEnrootLoad, useSquashfuse };
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
  const config: Omit<Config, "pyxis" | "layerSize" | "answers"> = {
    dataPath: absolute("container_cache_data_path", dataPath, source),
    gcHigh: percent("container_cache_gc_high", values.get("container_cache_gc_high") ?? "85", source),
    gcLow: percent("container_cache_gc_low", values.get("container_cache_gc_low") ?? "80", source),
    runtime: "enroot",
    cli: absolute("container_cache_cli", values.get("container_cache_cli") ?? "/usr/local/bin/pyxis-cache", source),
    registryInterval: seconds(
      "container_cache_registry_interval",
      values.get("container_cache_registry_interval") ?? "60",
      source,
    ),
    fuse: flag("container_cache_fuse", values.get("container_cache_fuse") ?? "yes", source),
  };
  const userLimit = limit("container_cache_user_limit", values.get("container_cache_user_limit") ?? "off", source);
  if (userLimit !== undefined) config.userLimit = userLimit;
  const layerSize = size("container_cache_layer_size", values.get("container_cache_layer_size") ?? "1g", source);
  const answers = flag("container_cache_answers", values.get("container_cache_answers") ?? "yes", source);
  if (config.gcLow >= config.gcHigh) {
    const reason = `must be below container_cache_gc_high=${config.gcHigh}`;
    throw invalid("container_cache_gc_low", String(config.gcLow), reason, source);
  }
  const runtime = values.get("container_cache_runtime") ?? "enroot";
  if (runtime !== "enroot" && runtime !== "bwrap") {
    throw invalid("container_cache_runtime", runtime, "must be enroot or bwrap", source);
  }
  config.runtime = runtime;
  return { ...config, layerSize, answers, pyxis: pyxisKeys(values, source) };
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

/**
 * The configuration when there is one to read (a --set, --no-plugstack, a plugstack named,
 * or one on this node with the plugin's line), else undefined: `key` works without one.
 */
export async function loadConfigIfAny(source: ConfigSource = {}): Promise<Config | undefined> {
  if ((source.sets ?? []).length || source.noPlugstack || source.plugstack !== undefined) return loadConfig(source);
  const { readPluginArgs, DEFAULT_PLUGSTACK } = await import("./plugstack.ts");
  const file = Deno.env.get("PYXIS_CACHE_PLUGSTACK") ?? DEFAULT_PLUGSTACK;
  const present = await Deno.lstat(file).then(() => true, () => false);
  return present && (await readPluginArgs(file)) !== undefined ? loadConfig(source) : undefined;
}
