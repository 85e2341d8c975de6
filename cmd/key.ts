import { identify } from "../lib/identity.ts";
import { self } from "../lib/users.ts";
import { COMMON_HELP, parse, required, wholeNumber } from "./options.ts";

export const help = `pyxis-cache key: print the entry name an image has in the cache

Usage: pyxis-cache key --image IMG [--uid N]

The same file gives the same name across jobs and reboots; a replaced or
rewritten file gives a new one; a symlink and its target give the same one.

  --image IMG          squashfs image (a relative path resolves against the cwd)
  --uid N              whose entry (default: yourself); different users never share one
${COMMON_HELP}`;

export async function run(args: string[]): Promise<number> {
  const values = await parse(args, { image: { type: "string" }, uid: { type: "string" } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const image = required("--image", values.image);
  const uid = wholeNumber("--uid", values.uid) ?? self().uid;
  console.log((await identify(image, uid, Deno.cwd())).name);
  return 0;
}
