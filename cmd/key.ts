import { isReference } from "../lib/registry/reference.ts";
import { identifyImage } from "../lib/cache/source.ts";
import { isRoot, lookupUid, self } from "../lib/os/users.ts";
import { COMMON_HELP, CONFIG_HELP, CONFIG_OPTIONS, configIfAny, parse, required, wholeNumber } from "./options.ts";

export const help = `pyxis-cache key: print the entry name an image has in the cache

Usage: pyxis-cache key --image IMG [--uid N]

A squashfs file: the same file gives the same name across jobs and reboots; a
replaced or rewritten file gives a new one; a symlink and its target give the
same one. A registry reference: the name of the manifest digest its tag names,
as reuse finds it: from what this node knows of it, the registry asked once
container_cache_registry_interval has passed (a reference pinned by
@sha256:... never asks); without a configuration (no plugstack.conf here and
no --set), or for another user (but by root), the registry is asked every time. A moved tag gives a new name, and
two references to one digest give the same one.

  --image IMG          a squashfs file (a path starting with / or ., a bare name ending in
                       .sqsh, .sqfs or .squashfs, or a file in the cwd), or a registry
                       reference [docker://][USER@][REGISTRY#]IMAGE[:TAG|@DIGEST]
  --uid N              whose entry (default: yourself); different users never share one

${CONFIG_HELP}
${COMMON_HELP}`;

export async function run(args: string[]): Promise<number> {
  const values = await parse(args, { ...CONFIG_OPTIONS, image: { type: "string" }, uid: { type: "string" } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const image = required("--image", values.image);
  const me = self();
  const uid = wholeNumber("--uid", values.uid) ?? me.uid;
  const cwd = Deno.cwd();
  // A registry reference's name is the node's record's digest (the cache root's, from the
  // configuration). Another user's record is theirs (0700): anyone but root asks the registry.
  const recorded = isReference(image, cwd) && (uid === me.uid || isRoot());
  const config = recorded ? await configIfAny(values) : undefined;
  const owner = uid === me.uid ? me : { uid, gid: lookupUid(uid)?.gid ?? me.gid };
  const identified = await identifyImage(config, image, owner, cwd);
  if ("warning" in identified && identified.warning) console.error(`pyxis-cache: key: warning: ${identified.warning}`);
  console.log(identified.name);
  return 0;
}
