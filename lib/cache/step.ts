/**
 * A directory of one job step's own: `pyxis-cache step` makes it under a
 * step's name in the user's directory (with an image, for a step without
 * --container-cache: the image unpacked into its rootfs; without, empty: where
 * enroot keeps its runtime, cache, config and temporary paths for the step),
 * and `pyxis-cache release` removes it when the step ends. Both run as the job
 * user, so every file belongs to them; the SPANK stub holds the directory
 * locked (LOCK_SH) in between, which is how the collector tells a running
 * step from the leftovers of one that died.
 */
import type { Config } from "../config/config.ts";
import { UsageError } from "../os/errors.ts";
import { STEP_NAME, stepName, userDir } from "../layout.ts";
import type { Image } from "../images/identity.ts";
import { ensureUserDir } from "../store/prepare.ts";
import { unsquashMakingRoom } from "./room.ts";
import { identifyToRun, importFailed, isRegistryImage, withSquashfs } from "./source.ts";
import { identify } from "../images/identity.ts";
import { isDaemonImage } from "../registry/reference.ts";
import type { Owner } from "../os/users.ts";
import { removeTree } from "../os/files.ts";
import type { UsageSource } from "../os/usage.ts";
import { self } from "../os/users.ts";

export interface StepOptions {
  /** Unpacked into `<path>/rootfs`; without one, the directory stays empty. */
  image?: string;
  /** Slurm's job and step ids: part of the name, for whoever looks at the directory. */
  job: number;
  step: number;
  /** Against which a relative image path resolves; the process's cwd by default. */
  cwd?: string;
  usage?: UsageSource;
}

export interface Step {
  /** `.pyxis_cache_step_<job>.<step>.<r>`, in `<base>/<uid>`. */
  name: string;
  path: string;
  /** `<path>/rootfs`: what the task runs in (with an image). */
  rootfs?: string;
  /** Said on stderr: a registry could not be asked, and the digest the node knew served. */
  warning?: string;
}

/**
 * Makes a new step directory as the calling user and unpacks `image` into it,
 * with the same checks and full-disk collection as an entry. The directory is held
 * LOCK_SH while it unpacks, as the stub holds it afterwards: the collector
 * removes a step directory only when it can lock it exclusively.
 */
export async function createStep(config: Config, options: StepOptions): Promise<Step> {
  const owner = self();
  const daemon = options.image !== undefined && isDaemonImage(options.image);
  const image = options.image === undefined || daemon
    ? undefined
    : await identifyToRun(config, options.image, owner, options.cwd ?? Deno.cwd());
  await ensureUserDir(config, owner);
  let name = stepName(options.job, options.step);
  let path = `${userDir(config.dataPath, owner.uid)}/${name}`;
  for (let attempt = 0;; attempt++) {
    try {
      await Deno.mkdir(path, { mode: 0o700 });
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists) || attempt > 8) throw error;
      name = stepName(options.job, options.step);
      path = `${userDir(config.dataPath, owner.uid)}/${name}`;
    }
  }
  if (image === undefined && !daemon) return { name, path };
  const held = await Deno.open(path, { read: true });
  try {
    await held.lock(false);
    const rootfs = `${path}/rootfs`;
    const { usage } = options;
    const unpack = (squashfs: Image) => unsquashMakingRoom(config, squashfs, rootfs, owner, usage);
    if (image === undefined) {
      await withDaemonImage(options.image!, path, owner, unpack);
      return { name, path, rootfs };
    }
    await withSquashfs(config, image, owner, unpack, { usage });
    const warning = isRegistryImage(image) && image.warning ? { warning: image.warning } : {};
    return { name, path, rootfs, ...warning };
  } catch (error) {
    await removeTree(path).catch(() => {});
    throw error;
  } finally {
    held.close();
  }
}

/**
 * `use` of a daemon's image (`dockerd://`, `podman://`) imported by `enroot import` into the
 * step's directory (gone with it; the collector removes a dead step's), as pyxis imports it
 * for every step: no entry, no record. A failure is pyxis's `failed to import docker image`.
 */
async function withDaemonImage(
  uri: string,
  stepPath: string,
  owner: Owner,
  use: (squashfs: Image) => Promise<void>,
): Promise<void> {
  const { enrootImport } = await import("../registry/enroot.ts");
  const work = `${stepPath}/import`;
  await Deno.mkdir(work, { mode: 0o700 });
  try {
    const squashfs = await enrootImport({ uri }, work, owner).catch((error) =>
      Promise.reject(importFailed(uri, error))
    );
    await use(await identify(squashfs, owner.uid, "/"));
  } finally {
    await removeTree(work).catch(() => {});
  }
}

/** Removes the calling user's step directory `name` (a step's name, nothing else). */
export async function releaseStep(config: Config, name: string): Promise<void> {
  if (!STEP_NAME.test(name)) throw new UsageError(`--name: invalid value: ${name} (not a step's name)`);
  await removeTree(`${userDir(config.dataPath, self().uid)}/${name}`);
}
