/**
 * enroot as the job user sees it: where its configuration (and so `.credentials`) lives,
 * whether plain http is allowed, and `enroot import` of a registry image into a squashfs
 * file, run as the job user with every path enroot writes (cache, data, runtime, temp)
 * inside one work directory that is removed afterwards.
 */
import { CacheError, NoSpaceError } from "../os/errors.ts";
import { SAFE_PATH } from "../layout.ts";
import { noSpace, runAsOwner } from "../os/spawn.ts";
import { lookupUid, type Owner } from "../os/users.ts";
import { readSmall } from "../os/files.ts";
import type { Reference } from "./reference.ts";
import type { AskOptions } from "./registry.ts";

/** An environment variable, or `undefined` when it is unset or not ours to read. */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** `ENROOT_ALLOW_HTTP` set (non-empty): enroot, and so the digest lookup, use http://. */
export function allowHttp(): boolean {
  return (env("ENROOT_ALLOW_HTTP") ?? "") !== "";
}

/** enroot's configuration directory for the user: `ENROOT_CONFIG_PATH`, else enroot's default under their home. */
export function configPath(owner: Owner): string {
  return env("ENROOT_CONFIG_PATH") ?? `${lookupUid(owner.uid)?.home ?? "/nonexistent"}/.config/enroot`;
}

/**
 * What the digest lookup needs from enroot's settings: http or https, and the user's
 * `.credentials` (netrc, its first 64 KiB) when there is one. Root reads it only as a regular
 * file the user owns: a symlink to a file of root's would otherwise be sent to a registry.
 */
export function registryOptions(owner: Owner): AskOptions {
  const path = `${configPath(owner)}/.credentials`;
  return {
    allowHttp: allowHttp(),
    credentials: readSmall(path, CREDENTIALS_LIMIT, { owner: owner.uid }),
    credentialsFile: path,
  };
}

const CREDENTIALS_LIMIT = 64 * 1024;

/** The intermediate squashfs is unpacked at once and removed: compressing it would only cost time. */
const SQUASH_OPTIONS = "-noI -noD -noF -noX";

/** enroot colours its [ERROR] and [INFO] tags when it thinks it has a terminal. */
const COLOUR = new RegExp("\u001b\\[[0-9;]*m", "g");

/**
 * `enroot import` of `ref` (a registry reference, or a daemon's `dockerd://`/`podman://` image)
 * into `<work>/image.sqsh`, as `owner`. `work` exists and is the
 * owner's. enroot's script dies with us (runAsOwner: spawn.ts); what it started (a download,
 * a tar) may run to its end, into a directory nothing trusts.
 */
export async function enrootImport(ref: Pick<Reference, "uri">, work: string, owner: Owner): Promise<string> {
  const output = `${work}/image.sqsh`;
  const environment: Record<string, string> = {
    PATH: env("PATH") ?? SAFE_PATH,
    HOME: lookupUid(owner.uid)?.home ?? work,
    LC_ALL: "C",
    TMPDIR: work,
    ENROOT_CONFIG_PATH: configPath(owner),
    ENROOT_CACHE_PATH: `${work}/cache`,
    ENROOT_DATA_PATH: `${work}/data`,
    ENROOT_RUNTIME_PATH: `${work}/run`,
    ENROOT_TEMP_PATH: work,
    ENROOT_SQUASH_OPTIONS: SQUASH_OPTIONS,
  };
  if (allowHttp()) environment.ENROOT_ALLOW_HTTP = "y";
  const argv = ["enroot", "import", "--output", output, "--", ref.uri];
  const result = await runAsOwner(argv, { env: environment, cwd: work }, owner);
  if (result.success) return output;
  if (result.code === 127 && result.stderrLines.some((l) => /failed to execute enroot/.test(l))) {
    throw new CacheError(`enroot not found in PATH=${environment.PATH} (it imports registry images)`);
  }
  const lines = result.stderrLines.map((l) => l.replace(COLOUR, "").trim()).filter(Boolean);
  const why = lines.findLast((l) => /^\[ERROR\]/.test(l))?.replace(/^\[ERROR\]\s*/, "") ??
    lines.findLast((l) => !/^\[INFO\]/.test(l)) ?? `exit status ${result.code}`;
  const message = `enroot import ${ref.uri} failed: ${why}`;
  throw noSpace(lines) ? new NoSpaceError(message) : new CacheError(message);
}
