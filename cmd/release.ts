import { releaseStep } from "../lib/cache/step.ts";
import { COMMON_HELP, CONFIG_HELP, CONFIG_OPTIONS, configFrom, parse, required } from "./options.ts";

export const help = `pyxis-cache release: remove a job step's own rootfs

Usage: pyxis-cache release --name NAME

What the SPANK stub runs, as the job user, when a step started with
'pyxis-cache step' ends: removes <base>/<uid>/NAME, where NAME is the line
'step' printed. Never follows a symlink. A NAME that is already gone is fine.

  --name NAME          .pyxis_cache_step_<job>.<step>.<random>

${CONFIG_HELP}
${COMMON_HELP}`;

export async function run(args: string[]): Promise<number> {
  const values = await parse(args, { ...CONFIG_OPTIONS, name: { type: "string" } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const name = required("--name", values.name);
  await releaseStep(await configFrom(values), name);
  return 0;
}
