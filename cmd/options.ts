import type { parseArgs, ParseArgsOptionsConfig } from "node:util";
import { type Config, loadConfig, loadConfigIfAny } from "../lib/config/config.ts";
import { describe, UsageError } from "../lib/os/errors.ts";

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

const EXTRA_OPTIONS = { help: { type: "boolean", short: "h" }, verbose: { type: "boolean" } } as const;

/**
 * The plain `--name value` / `--flag` form, parsed without node:util (~25 ms of
 * start-up on every job step's warm reuse); `undefined` for anything else
 * (`--name=value`, short flags, a value that looks like an option, an unknown
 * or repeated option, positionals), which parseArgs then handles, errors included.
 */
function parseSimple(
  args: string[],
  options: ParseArgsOptionsConfig,
): Record<string, string | boolean | string[]> | undefined {
  const values: Record<string, string | boolean | string[]> = {};
  for (let i = 0; i < args.length; i++) {
    const name = args[i]!.startsWith("--") ? args[i]!.slice(2) : "";
    const option = Object.hasOwn(options, name) ? options[name] : undefined;
    if (!option || Object.hasOwn(values, name) && !option.multiple) return undefined;
    if (option.type === "boolean") {
      values[name] = true;
      continue;
    }
    const value = args[++i];
    if (value === undefined || value.startsWith("-")) return undefined;
    values[name] = option.multiple ? [...(values[name] as string[] | undefined ?? []), value] : value;
  }
  return values;
}

/** parseArgs with our conventions: strict, and its errors are usage errors. */
export async function parse<T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  const config = {
    args,
    options: { ...options, ...EXTRA_OPTIONS },
    strict: true,
    allowPositionals: false,
  } as const;
  type Values = ReturnType<typeof parseArgs<typeof config>>["values"];
  const simple = parseSimple(args, config.options);
  if (simple) return simple as Values;
  const { parseArgs } = await import("node:util");
  try {
    return parseArgs(config).values;
  } catch (error) {
    throw new UsageError(describe(error));
  }
}

type ConfigValues = { plugstack?: string; "no-plugstack"?: boolean; set?: string[] };

export function configFrom(values: ConfigValues): Promise<Config> {
  return loadConfig({ plugstack: values.plugstack, noPlugstack: values["no-plugstack"], sets: values.set });
}

/** configFrom, when there is a configuration to read (see loadConfigIfAny). */
export function configIfAny(values: ConfigValues): Promise<Config | undefined> {
  return loadConfigIfAny({ plugstack: values.plugstack, noPlugstack: values["no-plugstack"], sets: values.set });
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
