import { prepare } from "../lib/store/prepare.ts";
import { COMMON_HELP, CONFIG_HELP, CONFIG_OPTIONS, configFrom, parse, required, wholeNumber } from "./options.ts";

export const help = `pyxis-cache prepare: create or repair a user's cache directory (root only)

Usage: pyxis-cache prepare --uid N --gid N

Makes <base>/<uid> a directory of mode 0700 owned by N:GID (creating <base> and
its collector lock when missing). A file, a symlink, or a directory owned by
another user in its place is refused.

  --uid N, --gid N     the job user
${CONFIG_HELP}
${COMMON_HELP}`;

export async function run(args: string[]): Promise<number> {
  const values = await parse(args, { ...CONFIG_OPTIONS, uid: { type: "string" }, gid: { type: "string" } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const uid = required("--uid", wholeNumber("--uid", values.uid));
  const gid = required("--gid", wholeNumber("--gid", values.gid));
  const prepared = await prepare(await configFrom(values), { uid, gid });
  const what = prepared.created
    ? "created"
    : prepared.repaired.length
    ? `repaired (${prepared.repaired.join(", ")})`
    : "ok";
  console.log(`${prepared.path}: ${what}`);
  return 0;
}
