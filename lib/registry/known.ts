/**
 * What this node knows about a registry reference, per user: the digest its tag named
 * when the registry last answered, and when it was last asked. One small JSON file,
 * `<base>/<uid>/.pyxis_cache_ref.<hash of the reference>`, replaced whole by rename(2).
 * Read on every warm start of a tag; the registry is asked again only once the
 * configured interval has passed since `asked`.
 */
import type { Config } from "../config/config.ts";
import { readSmall } from "../os/files.ts";
import { placeAsOwner } from "../store/place.ts";
import { MANIFEST_DIGEST } from "../layout.ts";
import type { Owner } from "../os/users.ts";

export interface Known {
  reference: string;
  digest: string;
  /** When the registry last named this digest (ISO 8601). */
  confirmed: string;
  /** When the registry was last asked, answering or not. */
  asked: string;
}

const LIMIT = 4096;

/** The record at `path`, when it is a regular file (never a symlink, for root) about `reference`. */
export function readKnown(path: string, reference: string): Known | undefined {
  try {
    const known = JSON.parse(readSmall(path, LIMIT) ?? "");
    const valid = known?.reference === reference && MANIFEST_DIGEST.test(known?.digest) &&
      !Number.isNaN(Date.parse(known?.confirmed)) && !Number.isNaN(Date.parse(known?.asked));
    return valid ? known as Known : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `known` was asked within the interval (a time in the future does not count). */
export function isFresh(known: Known, intervalSeconds: number, now = Date.now()): boolean {
  const asked = Date.parse(known.asked);
  return asked <= now && now - asked < intervalSeconds * 1000;
}

export function writeKnown(config: Config, owner: Owner, path: string, known: Known): Promise<void> {
  return placeAsOwner(config, path, JSON.stringify(known) + "\n", owner);
}
