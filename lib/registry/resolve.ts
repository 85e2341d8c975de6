/**
 * The identity of a registry reference: the manifest digest its tag names, never its text.
 * A warm start reads what the node knows (known.ts) and asks the registry only once the
 * configured interval has passed; one caller at a time asks, the others read its answer.
 * A registry that cannot be reached leaves a reference the node knows on its known digest
 * (with a warning); a reference pinned by digest never asks at all. `key` without a
 * configuration (no cache root, so no record) asks the registry every time.
 */
import type { Config } from "../config/config.ts";
import { CacheError, describe } from "../os/errors.ts";
import { isFresh, type Known, readKnown, writeKnown } from "./known.ts";
import { knownPath } from "../layout.ts";
import { digestName, parseReference, type Reference } from "./reference.ts";
import type { Owner } from "../os/users.ts";

/** The registry could not tell the digest (unreachable with none known, refused, not found): an import failure. */
export class RegistryError extends CacheError {
  override name = "RegistryError";
}

export interface RegistryImage {
  reference: Reference;
  digest: string;
  /** Its entry name for the owner. */
  name: string;
  /** Said on stderr: the registry could not be asked and a known digest serves. */
  warning?: string;
}

export async function identifyReference(
  config: Config | undefined,
  text: string,
  owner: Owner,
): Promise<RegistryImage> {
  const reference = parseReference(text);
  const { digest, warning } = reference.digest
    ? { digest: reference.digest }
    : config
    ? await throughRecord(config, reference, owner)
    : { digest: await askRegistry(reference, owner) };
  return { reference, digest, name: await digestName(owner.uid, digest), warning };
}

/** The digest the node knows, asked again of the registry once the interval has passed. */
async function throughRecord(
  config: Config,
  reference: Reference,
  owner: Owner,
): Promise<{ digest: string; warning?: string }> {
  const path = await knownPath(config.dataPath, owner.uid, reference.text);
  const known = readKnown(path, reference.text);
  if (known && isFresh(known, config.registryInterval)) return { digest: known.digest };
  const asked = await ask(config, reference, owner, path);
  return { digest: asked.known.digest, warning: asked.warning };
}

/** Asks the registry, one caller per reference at a time; the rest take its answer. */
async function ask(
  config: Config,
  reference: Reference,
  owner: Owner,
  path: string,
): Promise<{ known: Known; warning?: string }> {
  const { lockInUserDir } = await import("../store/prepare.ts");
  const asking = await lockInUserDir(config, owner, `${path}.lock`);
  try {
    const before = readKnown(path, reference.text);
    if (before && isFresh(before, config.registryInterval)) return { known: before };
    const { UnreachableError } = await import("./registry.ts");
    const now = new Date().toISOString();
    let digest: string;
    try {
      digest = await askRegistry(reference, owner);
    } catch (error) {
      if (!(error instanceof UnreachableError)) throw new RegistryError(describe(error));
      if (!before) throw new RegistryError(`${describe(error)}; no digest of ${reference.text} is known on this node`);
      // Start from what the node knows, and let the next steps do so without waiting for an interval.
      const known = { ...before, asked: now };
      await writeKnown(config, owner, path, known);
      return { known, warning: `${describe(error)}: using ${before.digest}, confirmed ${before.confirmed}` };
    }
    const known = { reference: reference.text, digest, confirmed: now, asked: now };
    await writeKnown(config, owner, path, known);
    return { known };
  } finally {
    asking.close();
  }
}

/** What the registry says the reference's tag names now, with the owner's credentials. */
async function askRegistry(reference: Reference, owner: Owner): Promise<string> {
  const [{ askDigest }, { registryOptions }] = await Promise.all([import("./registry.ts"), import("./enroot.ts")]);
  return await askDigest(reference, registryOptions(owner));
}
