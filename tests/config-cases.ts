/**
 * One table of configuration cases for the three readers of the plugin's
 * plugstack.conf line (tests/config.test.ts runs it against each):
 *
 * - lib/config/config.ts: `loadConfig` over the files, `parseConfig` over the words;
 * - spank-stub/config.c, through `make -C spank-stub config-check`, over the
 *   words lib/config/plugstack.ts found (slurmd hands the stub the same words);
 * - the launcher's scan in bin/pyxis-cache: the data path it lets the command
 *   write must be the one on the line lib/config/plugstack.ts found.
 */
export interface ConfigCase {
  name: string;
  /** The words after the plugin's path on its plugstack.conf line ... */
  words?: string[];
  /** ... or a plugstack.conf and the files it includes, relative to a temporary directory. */
  files?: Record<string, string>;
  /**
   * `ok data_path=... gc_high=... gc_low=... runtime=... cli=...`, or the one-line
   * message, without the "pyxis-cache: " the stub puts before it and without the
   * "(in FILE)" the command puts after it.
   */
  expect: string;
}

const PATH = "container_cache_data_path";
const ok = (
  path: string,
  rest = "gc_high=85 gc_low=80 runtime=enroot cli=/usr/local/bin/pyxis-cache",
  interval = 60,
  fuse = "yes",
  pyxis = PYXIS_DEFAULTS,
) => `ok data_path=${path} ${rest} registry_interval=${interval} fuse=${fuse} | ${pyxis}`;
const OUR_LINE = "required /usr/local/lib/slurm/spank_pyxis_cache.so";

// pyxis's own keys: the readers print them after ours, with pyxis 0.24's defaults.
const PYXIS_DEFAULTS = pyxisKeys({});
function pyxisKeys(
  {
    runtimePath = "/run/pyxis",
    entrypoint = "no",
    scope = "global",
    sbatch = "yes",
    enrootLoad = "no",
    squashfuse = "no",
  }: {
    runtimePath?: string;
    entrypoint?: string;
    scope?: string;
    sbatch?: string;
    enrootLoad?: string;
    squashfuse?: string;
  },
): string {
  return `runtime_path=${runtimePath} execute_entrypoint=${entrypoint} container_scope=${scope} ` +
    `sbatch_support=${sbatch} use_enroot_load=${enrootLoad} use_squashfuse=${squashfuse}`;
}
const okPyxis = (keys: Parameters<typeof pyxisKeys>[0]) => ok("/c", undefined, 60, "yes", pyxisKeys(keys));

export const CONFIG_CASES: ConfigCase[] = [
  { name: "the contract's defaults", words: [`${PATH}=/var/cache/pyxis/`], expect: ok("/var/cache/pyxis") },
  {
    name: "every key",
    words: [
      `${PATH}=/c`,
      "container_cache_gc_high=90",
      "container_cache_gc_low=10",
      "container_cache_runtime=bwrap",
      "container_cache_cli=/opt/pc/bin/pyxis-cache",
      "container_cache_registry_interval=0",
    ],
    expect: ok("/c", "gc_high=90 gc_low=10 runtime=bwrap cli=/opt/pc/bin/pyxis-cache", 0),
  },
  {
    name: "a later word wins",
    words: [`${PATH}=/a`, "container_cache_gc_high=50", `${PATH}=/b`, "container_cache_gc_high=95"],
    expect: ok("/b", "gc_high=95 gc_low=80 runtime=enroot cli=/usr/local/bin/pyxis-cache"),
  },
  { name: "/ as the root", words: [`${PATH}=/`], expect: ok("/") },
  { name: "FUSE off", words: [`${PATH}=/c`, "container_cache_fuse=no"], expect: ok("/c", undefined, 60, "no") },
  {
    name: "FUSE off, pyxis's spelling",
    words: [`${PATH}=/c`, "container_cache_fuse=0"],
    expect: ok("/c", undefined, 60, "no"),
  },
  { name: "FUSE on", words: [`${PATH}=/c`, "container_cache_fuse=true"], expect: ok("/c") },
  {
    name: "FUSE neither yes nor no",
    words: [`${PATH}=/c`, "container_cache_fuse=maybe"],
    expect: "container_cache_fuse: invalid value: maybe (must be yes or no)",
  },
  {
    name: "leading zeros",
    words: [`${PATH}=/c`, "container_cache_gc_high=090"],
    expect: ok("/c", "gc_high=90 gc_low=80 runtime=enroot cli=/usr/local/bin/pyxis-cache"),
  },
  { name: "no data path", words: [], expect: `${PATH}: required but not set` },
  { name: "an empty data path", words: [`${PATH}=`], expect: `${PATH}: required but not set` },
  {
    name: "a relative data path",
    words: [`${PATH}=cache`],
    expect: `${PATH}: invalid value: cache (must be an absolute path)`,
  },
  {
    name: "'..' in the data path",
    words: [`${PATH}=/var/../etc`],
    expect: `${PATH}: invalid value: /var/../etc (must not contain '..')`,
  },
  { name: "'..' as a name's part is fine", words: [`${PATH}=/var/a..b`], expect: ok("/var/a..b") },
  {
    name: "an unknown key",
    words: [`${PATH}=/c`, "container_cache_colour=blue"],
    expect: "container_cache_colour: unknown key",
  },
  {
    name: "a key without '='",
    words: [`${PATH}=/c`, "container_cache_gc_high"],
    expect: "container_cache_gc_high: missing value",
  },
  {
    name: "high above 99",
    words: [`${PATH}=/c`, "container_cache_gc_high=100"],
    expect: "container_cache_gc_high: invalid value: 100 (must be an integer from 1 to 99)",
  },
  {
    name: "high 0",
    words: [`${PATH}=/c`, "container_cache_gc_high=0"],
    expect: "container_cache_gc_high: invalid value: 0 (must be an integer from 1 to 99)",
  },
  {
    name: "a signed number",
    words: [`${PATH}=/c`, "container_cache_gc_high=+90"],
    expect: "container_cache_gc_high: invalid value: +90 (must be an integer from 1 to 99)",
  },
  {
    name: "a fraction",
    words: [`${PATH}=/c`, "container_cache_gc_low=9.5"],
    expect: "container_cache_gc_low: invalid value: 9.5 (must be an integer from 1 to 99)",
  },
  {
    name: "not a number",
    words: [`${PATH}=/c`, "container_cache_gc_low=lots"],
    expect: "container_cache_gc_low: invalid value: lots (must be an integer from 1 to 99)",
  },
  {
    name: "an empty number",
    words: [`${PATH}=/c`, "container_cache_gc_high="],
    expect: "container_cache_gc_high: invalid value:  (must be an integer from 1 to 99)",
  },
  {
    name: "low equal to high",
    words: [`${PATH}=/c`, "container_cache_gc_high=80"],
    expect: "container_cache_gc_low: invalid value: 80 (must be below container_cache_gc_high=80)",
  },
  {
    name: "low above high",
    words: [`${PATH}=/c`, "container_cache_gc_low=90"],
    expect: "container_cache_gc_low: invalid value: 90 (must be below container_cache_gc_high=85)",
  },
  {
    name: "an unknown runtime",
    words: [`${PATH}=/c`, "container_cache_runtime=docker"],
    expect: "container_cache_runtime: invalid value: docker (must be enroot or bwrap)",
  },
  {
    name: "a relative cli",
    words: [`${PATH}=/c`, "container_cache_cli=pyxis-cache"],
    expect: "container_cache_cli: invalid value: pyxis-cache (must be an absolute path)",
  },
  {
    name: "a registry interval of a day",
    words: [`${PATH}=/c`, "container_cache_registry_interval=86400"],
    expect: ok("/c", undefined, 86400),
  },
  {
    name: "a registry interval over a day",
    words: [`${PATH}=/c`, "container_cache_registry_interval=86401"],
    expect:
      "container_cache_registry_interval: invalid value: 86401 (must be a whole number of seconds from 0 to 86400)",
  },
  {
    name: "a registry interval with a unit",
    words: [`${PATH}=/c`, "container_cache_registry_interval=1m"],
    expect: "container_cache_registry_interval: invalid value: 1m (must be a whole number of seconds from 0 to 86400)",
  },
  {
    name: "an empty registry interval",
    words: [`${PATH}=/c`, "container_cache_registry_interval="],
    expect: "container_cache_registry_interval: invalid value:  (must be a whole number of seconds from 0 to 86400)",
  },
  {
    name: "a user limit",
    words: [`${PATH}=/c`, "container_cache_user_limit=40"],
    expect: `${ok("/c")} user_limit=40`,
  },
  {
    name: "a user limit of the whole filesystem",
    words: [`${PATH}=/c`, "container_cache_user_limit=100"],
    expect: `${ok("/c")} user_limit=100`,
  },
  {
    name: "a user limit set back to off by a later word",
    words: [`${PATH}=/c`, "container_cache_user_limit=40", "container_cache_user_limit=off"],
    expect: ok("/c"),
  },
  {
    name: "a user limit of 0",
    words: [`${PATH}=/c`, "container_cache_user_limit=0"],
    expect: "container_cache_user_limit: invalid value: 0 (must be an integer from 1 to 100, or off)",
  },
  {
    name: "a user limit above 100",
    words: [`${PATH}=/c`, "container_cache_user_limit=101"],
    expect: "container_cache_user_limit: invalid value: 101 (must be an integer from 1 to 100, or off)",
  },
  {
    name: "a user limit as a fraction",
    words: [`${PATH}=/c`, "container_cache_user_limit=12.5"],
    expect: "container_cache_user_limit: invalid value: 12.5 (must be an integer from 1 to 100, or off)",
  },
  {
    name: "a layer size in gigabytes",
    words: [`${PATH}=/c`, "container_cache_layer_size=4g"],
    expect: `${ok("/c")} layer_size=4g`,
  },
  {
    name: "a layer size as a share of memory",
    words: [`${PATH}=/c`, "container_cache_layer_size=100%"],
    expect: `${ok("/c")} layer_size=100%`,
  },
  {
    name: "a layer size without a unit",
    words: [`${PATH}=/c`, "container_cache_layer_size=4096"],
    expect: "container_cache_layer_size: invalid value: 4096 (must be a size such as 512m, 4g or 10% (of memory))",
  },
  {
    name: "a layer size of 0",
    words: [`${PATH}=/c`, "container_cache_layer_size=0m"],
    expect: "container_cache_layer_size: invalid value: 0m (must be a size such as 512m, 4g or 10% (of memory))",
  },
  {
    name: "a layer size above all memory",
    words: [`${PATH}=/c`, "container_cache_layer_size=101%"],
    expect: "container_cache_layer_size: invalid value: 101% (must be a size such as 512m, 4g or 10% (of memory))",
  },
  {
    name: "a layer size with a mount option after it",
    words: [`${PATH}=/c`, "container_cache_layer_size=1g,exec"],
    expect: "container_cache_layer_size: invalid value: 1g,exec (must be a size such as 512m, 4g or 10% (of memory))",
  },
  {
    name: "answers off",
    words: [`${PATH}=/c`, "container_cache_answers=no"],
    expect: `${ok("/c")} answers=no`,
  },
  {
    name: "answers on",
    words: [`${PATH}=/c`, "container_cache_answers=1"],
    expect: ok("/c"),
  },
  {
    name: "answers neither yes nor no",
    words: [`${PATH}=/c`, "container_cache_answers=sometimes"],
    expect: "container_cache_answers: invalid value: sometimes (must be yes or no)",
  },
  {
    name: "a user limit with a percent sign",
    words: [`${PATH}=/c`, "container_cache_user_limit=40%"],
    expect: "container_cache_user_limit: invalid value: 40% (must be an integer from 1 to 100, or off)",
  },
  {
    name: "a user limit on the plugstack line, through an include",
    files: {
      "plugstack.conf": "include conf.d/*.conf\n",
      "conf.d/pyxis-cache.conf": `${OUR_LINE} ${PATH}=/c container_cache_user_limit=25\n`,
    },
    expect: `${ok("/c")} user_limit=25`,
  },
  {
    name: "the first check that fails is the data path's",
    words: ["container_cache_gc_high=100", "container_cache_runtime=docker", `${PATH}=cache`],
    expect: `${PATH}: invalid value: cache (must be an absolute path)`,
  },
  {
    name: "then high, low, cli, low below high, runtime",
    words: [`${PATH}=/c`, "container_cache_runtime=docker", "container_cache_gc_low=90", "container_cache_cli=x"],
    expect: "container_cache_cli: invalid value: x (must be an absolute path)",
  },
  {
    name: "commented lines and comments are not read",
    files: {
      "plugstack.conf": `# ${OUR_LINE} ${PATH}=/old\n${OUR_LINE} ${PATH}=/new # ${PATH}=/comment\n`,
    },
    expect: ok("/new"),
  },
  {
    name: "another plugin's line is not ours",
    files: {
      "plugstack.conf":
        `optional /usr/lib/slurm/spank_other.so ${PATH}=/other\nrequired spank_pyxis_cache.so ${PATH}=/c\n`,
    },
    expect: ok("/c"),
  },
  {
    name: "a relative include glob resolves against the including file's directory",
    files: {
      "plugstack.conf": "include plugstack.conf.d/*.conf\n",
      "plugstack.conf.d/pyxis-cache.conf": `${OUR_LINE} ${PATH}=/c container_cache_gc_high=90\n`,
      "plugstack.conf.d/ignored.txt": `${OUR_LINE} ${PATH}=/wrong\n`,
    },
    expect: ok("/c", "gc_high=90 gc_low=80 runtime=enroot cli=/usr/local/bin/pyxis-cache"),
  },
  {
    name: "includes nest, each relative to its own file",
    files: {
      "plugstack.conf": "include a/first.conf\n",
      "a/first.conf": "include second.conf\n",
      "a/second.conf": `${OUR_LINE} ${PATH}=/nested\n`,
    },
    expect: ok("/nested"),
  },
  {
    name: "the last line naming the plugin wins, whole",
    files: {
      "plugstack.conf": `${OUR_LINE} ${PATH}=/first container_cache_gc_high=90\ninclude b.conf\n`,
      "b.conf": `${OUR_LINE} ${PATH}=/second\n`,
    },
    expect: ok("/second"),
  },
  {
    name: "a bad value in an included file",
    files: {
      "plugstack.conf": "include conf.d/*.conf\n",
      "conf.d/pyxis-cache.conf": `${OUR_LINE} ${PATH}=/c container_cache_gc_low=85\n`,
    },
    expect: "container_cache_gc_low: invalid value: 85 (must be below container_cache_gc_high=85)",
  },
  // pyxis's own keys (pyxis 0.24's config.c): each accepted with pyxis's meaning, or refused by name.
  {
    name: "a pyxis line: every pyxis key, with pyxis's spellings",
    words: [
      `${PATH}=/c`,
      "runtime_path=/run/pyxis-site",
      "execute_entrypoint=1",
      "container_scope=job",
      "sbatch_support=0",
      "use_enroot_load=true",
      "importer=",
      "use_squashfuse=y",
    ],
    expect: okPyxis({
      runtimePath: "/run/pyxis-site",
      entrypoint: "yes",
      scope: "job",
      sbatch: "no",
      enrootLoad: "yes",
      squashfuse: "yes",
    }),
  },
  {
    name: "pyxis's keys at their defaults, spelled out",
    words: [
      `${PATH}=/c`,
      "runtime_path=/run/pyxis",
      "execute_entrypoint=false",
      "container_scope=global",
      "sbatch_support=yes",
      "use_enroot_load=n",
      "use_squashfuse=0",
    ],
    expect: ok("/c"),
  },
  {
    name: "runtime_path: any path pyxis takes (pyxis does not ask for an absolute one)",
    words: [`${PATH}=/c`, "runtime_path=run/pyxis"],
    expect: okPyxis({ runtimePath: "run/pyxis" }),
  },
  {
    name: "runtime_path: as long as pyxis takes",
    words: [`${PATH}=/c`, `runtime_path=/${"r".repeat(4094)}`],
    expect: okPyxis({ runtimePath: `/${"r".repeat(4094)}` }),
  },
  {
    name: "runtime_path: longer than pyxis takes",
    words: [`${PATH}=/c`, `runtime_path=/${"r".repeat(4095)}`],
    expect: "runtime_path: invalid value: path too long (4096 bytes, at most 4095)",
  },
  {
    name: "execute_entrypoint: on",
    words: [`${PATH}=/c`, "execute_entrypoint=yes"],
    expect: okPyxis({ entrypoint: "yes" }),
  },
  {
    name: "execute_entrypoint: neither yes nor no",
    words: [`${PATH}=/c`, "execute_entrypoint=always"],
    expect: "execute_entrypoint: invalid value: always (must be yes or no)",
  },
  {
    name: "execute_entrypoint: empty",
    words: [`${PATH}=/c`, "execute_entrypoint="],
    expect: "execute_entrypoint: invalid value:  (must be yes or no)",
  },
  { name: "container_scope: job", words: [`${PATH}=/c`, "container_scope=job"], expect: okPyxis({ scope: "job" }) },
  {
    name: "container_scope: neither job nor global",
    words: [`${PATH}=/c`, "container_scope=node"],
    expect: "container_scope: invalid value: node (must be job or global)",
  },
  {
    name: "container_scope: pyxis's words are case-sensitive",
    words: [`${PATH}=/c`, "container_scope=Job"],
    expect: "container_scope: invalid value: Job (must be job or global)",
  },
  { name: "sbatch_support: off", words: [`${PATH}=/c`, "sbatch_support=no"], expect: okPyxis({ sbatch: "no" }) },
  {
    name: "sbatch_support: neither yes nor no",
    words: [`${PATH}=/c`, "sbatch_support=2"],
    expect: "sbatch_support: invalid value: 2 (must be yes or no)",
  },
  {
    name: "use_enroot_load: on",
    words: [`${PATH}=/c`, "use_enroot_load=1"],
    expect: okPyxis({ enrootLoad: "yes" }),
  },
  {
    name: "use_enroot_load: neither yes nor no",
    words: [`${PATH}=/c`, "use_enroot_load=on"],
    expect: "use_enroot_load: invalid value: on (must be yes or no)",
  },
  {
    name: "use_squashfuse: on",
    words: [`${PATH}=/c`, "use_squashfuse=true"],
    expect: okPyxis({ squashfuse: "yes" }),
  },
  {
    name: "use_squashfuse: neither yes nor no",
    words: [`${PATH}=/c`, "use_squashfuse=YES"],
    expect: "use_squashfuse: invalid value: YES (must be yes or no)",
  },
  { name: "importer: empty is pyxis's default (no importer)", words: [`${PATH}=/c`, "importer="], expect: ok("/c") },
  {
    name: "importer: a path is refused by name (another import mechanism)",
    words: [`${PATH}=/c`, "importer=/usr/share/pyxis/importers/caching_importer.sh"],
    expect: "importer: invalid value: /usr/share/pyxis/importers/caching_importer.sh (pyxis's importers are " +
      "not supported: pyxis-cache imports registry images itself; remove the key)",
  },
  {
    name: "a pyxis key without '='",
    words: [`${PATH}=/c`, "sbatch_support"],
    expect: "sbatch_support: missing value",
  },
  {
    name: "pyxis's keys are checked after ours, in pyxis's order",
    words: [`${PATH}=/c`, "use_squashfuse=x", "container_scope=x", "container_cache_runtime=docker"],
    expect: "container_cache_runtime: invalid value: docker (must be enroot or bwrap)",
  },
  {
    name:
      "then runtime_path, execute_entrypoint, container_scope, sbatch_support, use_enroot_load, importer, use_squashfuse",
    words: [`${PATH}=/c`, "use_squashfuse=x", "importer=/i", "use_enroot_load=x", "container_scope=x"],
    expect: "container_scope: invalid value: x (must be job or global)",
  },
  {
    name: "a site's pyxis keys on our line, included from plugstack.conf.d",
    files: {
      "plugstack.conf": "include plugstack.conf.d/*.conf\n",
      "plugstack.conf.d/pyxis.conf":
        `${OUR_LINE} ${PATH}=/c runtime_path=/run/pyxis execute_entrypoint=0 container_scope=global sbatch_support=1\n`,
    },
    expect: ok("/c"),
  },
];
