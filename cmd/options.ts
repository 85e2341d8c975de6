import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { type Config, loadConfig } from "../lib/config.ts";
import { UsageError } from "../lib/errors.ts";

/** Options every command that reads the configuration takes. */
export const CONFIG_OPTIONS = {
  plugstack: { type: "string" },
  "no-plugstack": { type: "boolean" },
  set: { type: "string", multiple: true },
} as const satisfies ParseArgsOptionsConfig;

export const CONFIG_HELP = `Configuration (the keys of the plugin's plugstack.conf line):
  --plugstack FILE     read FILE instead of $PYXIS_CACHE_PLUGSTACK or /etc/slurm/plugstack.conf
  --no-plugstack       read no plugstack.conf; every key comes from --set
  --set KEY=VALUE      override one key (repeatable), e.g. --set container_cache_gc_high=90`;

export const COMMON_HELP = `  --verbose            show the stack of an unexpected error
  -h, --help           show this help`;

/** parseArgs with our conventions: strict, and its errors are usage errors. */
export function parse<T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  try {
    return parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" }, verbose: { type: "boolean" } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message.split("\n")[0]!);
  }
}

export function configFrom(values: { plugstack?: string; "no-plugstack"?: boolean; set?: string[] }): Promise<Config> {
  return loadConfig({ plugstack: values.plugstack, noPlugstack: values["no-plugstack"], sets: values.set });
}

/** A uid, gid or count: a whole number, or a usage error naming the option. */
export function wholeNumber(option: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`${option}: invalid value: ${value} (must be a whole number)`);
  }
  return Number(value);
}

export function required<T>(option: string, value: T | undefined): T {
  if (value === undefined) throw new UsageError(`${option} is required`);
  return value;
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
