import assert from "node:assert/strict";
import { dirname } from "node:path";
import { type Config, loadConfig, parseConfig } from "../lib/config/config.ts";
import { UsageError } from "../lib/os/errors.ts";
import { readPluginArgs } from "../lib/config/plugstack.ts";
import { CONFIG_CASES } from "./config-cases.ts";
import { CLI, cli, ROOT, run, settings, tempDir } from "./helpers.ts";

Deno.test("parseConfig() applies the contract's defaults", () => {
  assert.deepEqual(parseConfig(["container_cache_data_path=/var/cache/pyxis/"], "test"), {
    dataPath: "/var/cache/pyxis",
    gcHigh: 85,
    gcLow: 80,
    runtime: "enroot",
    cli: "/usr/local/bin/pyxis-cache",
    registryInterval: 60,
    fuse: true,
    layerSize: "1g",
    answers: true,
    pyxis: {
      runtimePath: "/run/pyxis",
      executeEntrypoint: false,
      containerScope: "global",
      sbatchSupport: true,
      useEnrootLoad: false,
      useSquashfuse: false,
    },
  });
});

Deno.test("parseConfig() reads container_cache_fuse as pyxis reads its booleans", () => {
  const fuse = (value: string) =>
    parseConfig(["container_cache_data_path=/c", `container_cache_fuse=${value}`], "t").fuse;
  for (const value of ["1", "yes", "y", "true"]) assert.equal(fuse(value), true, value);
  for (const value of ["0", "no", "n", "false"]) assert.equal(fuse(value), false, value);
});

Deno.test("parseConfig() refuses bad values, naming the key", async (t) => {
  const base = "container_cache_data_path=/c";
  const cases: [string, string[], RegExp][] = [
    ["missing data path", [], /container_cache_data_path: required/],
    ["relative data path", ["container_cache_data_path=cache"], /container_cache_data_path: invalid value: cache/],
    ["unknown key", [base, "container_cache_colour=blue"], /container_cache_colour: unknown key/],
    ["low equal to high", [base, "container_cache_gc_high=80"], /container_cache_gc_low: invalid value: 80/],
    ["low above high", [base, "container_cache_gc_low=90"], /container_cache_gc_low: invalid value: 90/],
    ["high out of range", [base, "container_cache_gc_high=100"], /container_cache_gc_high: invalid value: 100/],
    ["low not a number", [base, "container_cache_gc_low=lots"], /container_cache_gc_low: invalid value: lots/],
    ["unknown runtime", [base, "container_cache_runtime=docker"], /container_cache_runtime: invalid value: docker/],
    ["relative cli", [base, "container_cache_cli=pyxis-cache"], /container_cache_cli: invalid value/],
    [
      "fuse not yes or no",
      [base, "container_cache_fuse=maybe"],
      /container_cache_fuse: invalid value: maybe \(must be yes or no/,
    ],
  ];
  for (const [name, args, message] of cases) {
    await t.step(
      name,
      () => assert.throws(() => parseConfig(args, "test"), (e) => e instanceof UsageError && message.test(e.message)),
    );
  }
});

Deno.test("loadConfig() reads our plugstack.conf line through include globs, --set winning", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  await Deno.mkdir(`${dir}/plugstack.conf.d`);
  await Deno.writeTextFile(
    `${dir}/plugstack.conf`,
    `# site plugins\noptional /usr/lib/slurm/spank_other.so container_cache_gc_high=1\ninclude ${dir}/plugstack.conf.d/*.conf\n`,
  );
  await Deno.writeTextFile(
    `${dir}/plugstack.conf.d/pyxis-cache.conf`,
    "required /usr/local/lib/slurm/spank_pyxis_cache.so container_cache_data_path=/cache  container_cache_gc_high=90 # comment\n",
  );
  await Deno.writeTextFile(`${dir}/plugstack.conf.d/ignored.txt`, "required spank_pyxis_cache.so bogus=1\n");
  const config = await loadConfig({ plugstack: `${dir}/plugstack.conf`, sets: ["container_cache_gc_low=70"] });
  assert.equal(config.dataPath, "/cache");
  assert.equal(config.gcHigh, 90);
  assert.equal(config.gcLow, 70);
});

Deno.test("a bad configuration is a one-line error naming the key, exit 2, and creates nothing", async (t) => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const cases: [string, string[], RegExp][] = [
    [
      "low >= high",
      settings(`${dir}/cache`, { container_cache_gc_low: 85 }),
      /container_cache_gc_low: invalid value: 85/,
    ],
    ["relative data path", settings("cache"), /container_cache_data_path: invalid value: cache/],
    [
      "unknown key",
      [...settings(`${dir}/cache`), "--set", "container_cache_speed=max"],
      /container_cache_speed: unknown key/,
    ],
  ];
  for (const [name, config, message] of cases) {
    await t.step(name, async () => {
      const result = await cli(["gc", ...config]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trimEnd().split("\n").length, 1);
      assert.equal(result.stdout, "");
      await assert.rejects(Deno.lstat(`${dir}/cache`), Deno.errors.NotFound);
    });
  }
  await t.step("the same errors from a plugstack.conf", async () => {
    await Deno.writeTextFile(
      `${dir}/plugstack.conf`,
      `required spank_pyxis_cache.so container_cache_data_path=${dir}/cache container_cache_gc_high=70\n`,
    );
    const result = await cli(["status", "--plugstack", `${dir}/plugstack.conf`]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^pyxis-cache: status: container_cache_gc_low: invalid value: 80 .*plugstack\.conf/);
  });
});

/** What a reader made of a case, in the table's words. */
function describeConfig(config: Config): string {
  const { dataPath, gcHigh, gcLow, runtime, cli, registryInterval, fuse, userLimit, layerSize, answers } = config;
  return `ok data_path=${dataPath} gc_high=${gcHigh} gc_low=${gcLow} runtime=${runtime} cli=${cli} ` +
    `registry_interval=${registryInterval} fuse=${fuse ? "yes" : "no"}` +
    describePyxisKeys(config) + (userLimit === undefined ? "" : ` user_limit=${userLimit}`) +
    (layerSize === "1g" ? "" : ` layer_size=${layerSize}`) + (answers ? "" : " answers=no");
}

/** pyxis's own keys, as config-check prints them after ours. */
function describePyxisKeys({ pyxis }: Config): string {
  const yn = (b: boolean) => (b ? "yes" : "no");
  return ` | runtime_path=${pyxis.runtimePath} execute_entrypoint=${yn(pyxis.executeEntrypoint)} ` +
    `container_scope=${pyxis.containerScope} sbatch_support=${yn(pyxis.sbatchSupport)} ` +
    `use_enroot_load=${yn(pyxis.useEnrootLoad)} use_squashfuse=${yn(pyxis.useSquashfuse)}`;
}

/** lib/config/config.ts's message without where the value came from ("; in FILE)" or " (in FILE)"). */
function withoutSource(message: string): string {
  return message.replace(/; in [^)]*\)$/, ")").replace(/ \(in [^)]*\)$/, "");
}

async function deno(fn: () => Promise<Config> | Config): Promise<string> {
  try {
    return describeConfig(await fn());
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return withoutSource(error.message);
  }
}

Deno.test("one table of configuration cases: lib/config/config.ts, the stub's config.c and the launcher agree", async (t) => {
  const make = await run("make", ["-s", "-C", `${ROOT}/spank-stub`, "config-check"]);
  assert.equal(make.code, 0, make.stderr);
  for (const c of CONFIG_CASES) {
    await t.step(c.name, async () => {
      await using tmp = await tempDir();
      const files = c.files ?? { "plugstack.conf": `required spank_pyxis_cache.so ${c.words!.join(" ")}\n` };
      for (const [name, text] of Object.entries(files)) {
        await Deno.mkdir(dirname(`${tmp.path}/${name}`), { recursive: true });
        await Deno.writeTextFile(`${tmp.path}/${name}`, text);
      }
      const plugstack = `${tmp.path}/plugstack.conf`;
      const words = c.words ?? (await readPluginArgs(plugstack))!;
      assert.ok(words, "lib/config/plugstack.ts found no line");

      assert.equal(await deno(() => parseConfig(words, "test")), c.expect, "lib/config/config.ts parseConfig");
      assert.equal(await deno(() => loadConfig({ plugstack })), c.expect, "lib/config/config.ts loadConfig");

      const stub = await run(`${ROOT}/spank-stub/config-check`, words);
      assert.equal(stub.stdout.trimEnd(), c.expect.startsWith("ok ") ? c.expect : `pyxis-cache: ${c.expect}`);
      assert.equal(stub.code, c.expect.startsWith("ok ") ? 0 : 1, "config-check's exit status");

      // The launcher, from another directory: the data path it lets the command write.
      const launcher = await run(
        "bash",
        ["-c", 'source "$1" status --plugstack "$2"; printf "%s\\n" "${writable[@]}"', "-", CLI, plugstack],
        { cwd: "/", clearEnv: true, env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" } },
      );
      assert.equal(launcher.code, 0, launcher.stderr);
      const raw = words.findLast((w) => w.startsWith("container_cache_data_path="))?.slice(26);
      assert.equal(launcher.stdout, raw ? `${raw}\n` : "\n", "bin/pyxis-cache's --allow-write");
    });
  }
});
