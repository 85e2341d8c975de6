import { createStep } from "../lib/cache/step.ts";
import { COMMON_HELP, CONFIG_HELP, CONFIG_OPTIONS, configFrom, parse, required, wholeNumber } from "./options.ts";

export const help = `pyxis-cache step: a directory of one job step's own, outside the cache

Usage: pyxis-cache step --job N --step N [--image IMG]

What the SPANK stub runs, as the job user: makes a new directory
<base>/<uid>/NAME (NAME is .pyxis_cache_step_<job>.<step>.<random>) and prints
NAME, one line. With --image (--container-image without --container-cache) it
unpacks IMG into NAME/rootfs (a registry reference is imported with 'enroot
import' as the job user first); without (the enroot runtime in cache mode) the
directory stays empty, for enroot's own paths of the step.
'pyxis-cache release --name NAME' removes it; the collector removes one whose
step died (it is unlocked).

  --image IMG          a squashfs file (a path starting with / or ., a bare name ending in
                       .sqsh, .sqfs or .squashfs, or a file in the cwd), or a registry
                       reference [docker://][USER@][REGISTRY#]IMAGE[:TAG|@DIGEST]
  --job N, --step N    Slurm's job and step ids (part of the name)

${CONFIG_HELP}
${COMMON_HELP}`;

export async function run(args: string[]): Promise<number> {
  const values = await parse(args, {
    ...CONFIG_OPTIONS,
    image: { type: "string" },
    job: { type: "string" },
    step: { type: "string" },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const image = values.image;
  const job = required("--job", wholeNumber("--job", values.job));
  const step = required("--step", wholeNumber("--step", values.step));
  const created = await createStep(await configFrom(values), { image, job, step });
  if (created.warning) console.error(`pyxis-cache: step: warning: ${created.warning}`);
  console.log(created.name);
  return 0;
}
