import { releaseNamed } from "../lib/store/named.ts";
import { releaseStep } from "../lib/cache/step.ts";
import { UsageError } from "../lib/os/errors.ts";
import { COMMON_HELP, CONFIG_HELP, CONFIG_OPTIONS, configFrom, parse } from "./options.ts";

export const help = `pyxis-cache release: remove a job step's own rootfs, or a job's named containers

Usage: pyxis-cache release --name NAME
       pyxis-cache release --job JOB

What the SPANK stub runs, as the job user: when a step started with
'pyxis-cache step' ends, --name removes <base>/<uid>/NAME, where NAME is the
line 'step' printed; at the end of a job (its epilog, container_scope=job),
--job removes the job's named containers (--container-name),
<base>/<uid>/.pyxis_cache_named.JOB.*, except one a step still holds. Never
follows a symlink. What is already gone is fine.

  --name NAME          .pyxis_cache_step_<job>.<step>.<random>
  --job JOB            a job id

${CONFIG_HELP}
${COMMON_HELP}`;

export async function run(args: string[]): Promise<number> {
  const values = await parse(args, { ...CONFIG_OPTIONS, name: { type: "string" }, job: { type: "string" } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if ((values.name === undefined) === (values.job === undefined)) {
    throw new UsageError("one of --name and --job is required");
  }
  const config = await configFrom(values);
  if (values.job !== undefined) {
    const problems = await releaseNamed(config, values.job);
    for (const line of problems) console.error(`pyxis-cache: release: ${line}`);
    return 0;
  }
  await releaseStep(config, values.name!);
  return 0;
}
