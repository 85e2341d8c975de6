/**
 * One table of configuration cases for the three readers of the plugin's
 * plugstack.conf line (tests/config.test.ts runs it against each):
 *
 * - lib/config.ts: `loadConfig` over the files, `parseConfig` over the words;
 * - spank-stub/config.c, through `make -C spank-stub config-check`, over the
 *   words lib/plugstack.ts found (slurmd hands the stub the same words);
 * - the launcher's scan in bin/pyxis-cache: the data path it lets the command
 *   write must be the one on the line lib/plugstack.ts found.
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
) => `ok data_path=${path} ${rest} registry_interval=${interval} fuse=${fuse}`;
const OUR_LINE = "required /usr/local/lib/slurm/spank_pyxis_cache.so";

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
];
