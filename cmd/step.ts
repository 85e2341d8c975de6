import { createStep } from "../lib/step.ts";
import { COMMON_HELP, CONFIG_HELP, CONFIG_OPTIONS, configFrom, parse, required, wholeNumber } from "./options.ts";

export const help = `pyxis-cache step: unpack an image for one job step, outside the cache

Usage: pyxis-cache step --image IMG --job N --step N

What the SPANK stub runs, as the job user, for --container-image without
--container-cache: unpacks IMG into a new directory <base>/<uid>/NAME/rootfs
(NAME is .pyxis_cache_step_<job>.<step>.<random>) and prints NAME, one line.
'pyxis-cache release --name NAME' removes it; the collector removes one whose
step died (it is unlocked).

  --image IMG          squashfs image (a relative path resolves against the cwd)
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
  const image = required("--image", values.image);
  const job = required("--job", wholeNumber("--job", values.job));
  const step = required("--step", wholeNumber("--step", values.step));
  const created = await createStep(await configFrom(values), { image, job, step });
  console.log(created.name);
  return 0;
}
