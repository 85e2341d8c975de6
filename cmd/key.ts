import { identify } from "../lib/identity.ts";
import { isReference } from "../lib/reference.ts";
import { self } from "../lib/users.ts";
import { COMMON_HELP, parse, required, wholeNumber } from "./options.ts";

export const help = `pyxis-cache key: print the entry name an image has in the cache

Usage: pyxis-cache key --image IMG [--uid N]

A squashfs file: the same file gives the same name across jobs and reboots; a
replaced or rewritten file gives a new one; a symlink and its target give the
same one. A registry reference: the name of the manifest digest its tag names
now (the registry is asked; a reference pinned by @sha256:... is not), so a
moved tag gives a new name and two references to one digest give the same one.

  --image IMG          a squashfs file (a path starting with / or ., or a file in the
                       cwd), or a registry reference [docker://][USER@][REGISTRY#]IMAGE[:TAG|@DIGEST]
  --uid N              whose entry (default: yourself); different users never share one
${COMMON_HELP}`;

/** The name a registry reference has now: its digest, asked of the registry unless pinned. */
async function referenceName(image: string, uid: number): Promise<string> {
  const [{ parseReference, digestName }, { askDigest }, { registryOptions }] = await Promise.all([
    import("../lib/reference.ts"),
    import("../lib/registry.ts"),
    import("../lib/enroot.ts"),
  ]);
  const reference = parseReference(image);
  const owner = { uid, gid: self().gid };
  const digest = reference.digest ?? await askDigest(reference, registryOptions(owner));
  return await digestName(uid, digest);
}

export async function run(args: string[]): Promise<number> {
  const values = await parse(args, { image: { type: "string" }, uid: { type: "string" } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const image = required("--image", values.image);
  const uid = wholeNumber("--uid", values.uid) ?? self().uid;
  const cwd = Deno.cwd();
  console.log(isReference(image, cwd) ? await referenceName(image, uid) : (await identify(image, uid, cwd)).name);
  return 0;
}
