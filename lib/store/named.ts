/**
 * Named containers (--container-name): the SPANK stub keeps each one's overlay layer in
 * `<base>/<uid>/.pyxis_cache_named.<job>.<hex>/` (layout.ts's NAMED_NAME) and holds it locked
 * while a step uses it. At the job's end (container_scope=job) the stub's epilog runs
 * `pyxis-cache release --job J` as the job user: this removes the job's ones.
 */

import type { Config } from "../config/config.ts";
import { UsageError } from "../os/errors.ts";
import { removeTree } from "../os/files.ts";
import { NAMED_NAME, userDir } from "../layout.ts";
import { tryLockExclusive } from "./lock.ts";
import { self } from "../os/users.ts";

/**
 * Removes the calling user's named containers of job `job`; one a step still holds is left
 * (and said), for the collector. Returns the lines to say on stderr.
 */
export async function releaseNamed(config: Config, job: string): Promise<string[]> {
  if (!/^\d+$/.test(job)) throw new UsageError(`--job: invalid value: ${job} (not a job id)`);
  const dir = userDir(config.dataPath, self().uid);
  const problems: string[] = [];
  let names: string[];
  try {
    names = Array.from(Deno.readDirSync(dir), (entry) => entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return problems;
    throw error;
  }
  for (const name of names) {
    if (NAMED_NAME.exec(name)?.[1] !== job) continue;
    const path = `${dir}/${name}`;
    const lock = tryLockExclusive(path, "directory");
    if (lock === "missing") continue;
    if (lock === "busy") {
      problems.push(`${name}: in use by a step: left to the collector`);
      continue;
    }
    try {
      await removeTree(path);
    } finally {
      lock.close();
    }
  }
  return problems;
}
