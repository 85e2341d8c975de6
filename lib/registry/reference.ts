/**
 * Registry references as pyxis and enroot 4.1.2 accept them for `--container-image`
 * (enroot's `docker::_parse_uri`), with or without `docker://`:
 *
 *   [USER@]REGISTRY#IMAGE[:TAG|@DIGEST]     enroot's form
 *   [USER@][REGISTRY/]IMAGE[:TAG|@DIGEST]   Docker's form: the first component is a registry
 *                                           when it holds a '.' or a ':', else Docker Hub's
 *
 * Which `--container-image` values are files: see `isReference`.
 */
import { CacheError } from "../os/errors.ts";
import { hashedName, MANIFEST_DIGEST } from "../layout.ts";

export interface Reference {
  /** As given (without `docker://`): what `status` shows. */
  text: string;
  /** What `enroot import` is given. */
  uri: string;
  user?: string;
  /** `host[:port]`; Docker Hub's is registry-1.docker.io. */
  registry: string;
  /** The repository, e.g. `library/ubuntu`. */
  repository: string;
  /** `latest` when neither a tag nor a digest is given. */
  tag: string;
  /** `sha256:<64 hex>` when the reference pins one; then the tag is ignored, as enroot does. */
  digest?: string;
}

const DOCKER_HUB = "registry-1.docker.io";
const REPOSITORY = /^[a-z0-9._-]+(\/[a-z0-9._-]+)*$/;
const TAG = /^[A-Za-z0-9._:-]+$/;
const DIGEST = /@(sha256:[A-Za-z0-9]+)$/;

function invalid(text: string, why: string): CacheError {
  return new CacheError(`invalid image reference: ${text} (${why})`);
}

/** Parses a registry reference; a one-line error says what is wrong with one that is not. */
export function parseReference(given: string): Reference {
  const text = given.startsWith("docker://") ? given.slice("docker://".length) : given;
  let rest = text;
  const pinned = DIGEST.exec(rest);
  if (pinned) {
    if (!MANIFEST_DIGEST.test(pinned[1]!)) throw invalid(text, "a digest is sha256: and 64 lowercase hex digits");
    rest = rest.slice(0, pinned.index);
  }
  let user: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (user === "") throw invalid(text, "empty user");
  }
  let registry: string;
  let path: string;
  const hash = rest.indexOf("#");
  if (hash >= 0) {
    registry = rest.slice(0, hash);
    path = rest.slice(hash + 1);
    if (registry === "" || registry.includes("/")) throw invalid(text, "bad registry before '#'");
  } else {
    const slash = rest.indexOf("/");
    const first = slash < 0 ? "" : rest.slice(0, slash);
    if (/[.:]/.test(first)) {
      registry = first;
      path = rest.slice(slash + 1);
    } else {
      registry = DOCKER_HUB;
      path = slash < 0 ? `library/${rest}` : rest;
    }
  }
  const colon = path.indexOf(":");
  const repository = colon < 0 ? path : path.slice(0, colon);
  const tag = colon < 0 ? "latest" : path.slice(colon + 1);
  if (!REPOSITORY.test(repository)) {
    throw invalid(text, "the image name is lowercase letters, digits and . _ - /");
  }
  if (!TAG.test(tag)) throw invalid(text, "bad tag");
  return { text, uri: `docker://${text}`, user, registry, repository, tag, digest: pinned?.[1] };
}

/**
 * Whether `--container-image` names a registry reference rather than a squashfs file.
 * pyxis's rule first: a value starting with '/' or '.' is a file, anything else a
 * reference; `docker://` is always a reference. One addition, so that `--image img.sqfs`
 * keeps working as it always has here: a bare name of a regular file that exists in
 * `cwd` is that file (pyxis would ask a registry for `library/img.sqfs`), and so is a
 * bare name ending in .sqsh, .sqfs or .squashfs, so that a missing one says so.
 */
export function isReference(image: string, cwd: string): boolean {
  if (image.startsWith("docker://")) return true;
  if (isDaemonImage(image)) {
    throw new CacheError(
      `${image}: an image of a local Docker or Podman daemon has no digest to cache it by (its steps run without the cache)`,
    );
  }
  if (/^[a-z]+:\/\//.test(image)) {
    throw new CacheError(`unsupported image scheme: ${image} (a squashfs file, or a registry reference)`);
  }
  if (image.startsWith("/") || image.startsWith(".") || image === "") return false;
  if (/\.(sqsh|sqfs|squashfs)$/.test(image)) return false;
  try {
    return !Deno.statSync(`${cwd}/${image}`).isFile;
  } catch {
    return true;
  }
}

/**
 * An image of a local Docker or Podman daemon (`dockerd://IMAGE`, `podman://IMAGE`), which
 * `enroot import` takes from the daemon as pyxis has it do: no registry, no digest to key an
 * entry on, so only a step of its own (`step`) runs it, imported for that step.
 */
export function isDaemonImage(image: string): boolean {
  return /^(dockerd|podman):\/\//.test(image);
}

/**
 * The entry name of a manifest digest for `uid`: identity is the digest, never the
 * text, so a moved tag gets a new name and two references to one digest share one.
 */
export function digestName(uid: number, digest: string): Promise<string> {
  return hashedName(uid, `registry\0${uid}\0${digest}`);
}
