import { UsageError } from "../lib/os/errors.ts";
import { reuse } from "../lib/cache/reuse.ts";
import { COMMON_HELP, CONFIG_HELP, CONFIG_OPTIONS, configFrom, parse, required, wholeNumber } from "./options.ts";

export const help = `pyxis-cache reuse: make sure an image's rootfs is in the cache, and print where

Usage: pyxis-cache reuse --image IMG [--uid N --gid N] [--json | --name-only] [--no-wait | --unless-busy]

Unpacks the squashfs image IMG into the cache the first time (once, however
many callers ask at the same moment), refreshes the entry's last-used time on
every call, and prints the rootfs path. A cold create above the high watermark
collects first.

A registry reference is imported with 'enroot import' as the job user, then
unpacked the same way; its entry is that of the manifest digest its tag names.
The registry is asked at most once per container_cache_registry_interval
seconds; when it cannot be reached, the digest this node knows serves (with a
warning on stderr). enroot reads ENROOT_CONFIG_PATH (default
~/.config/enroot, with its .credentials) and ENROOT_ALLOW_HTTP from here.

  --image IMG          a squashfs file (a path starting with / or ., a bare name ending in
                       .sqsh, .sqfs or .squashfs, or a file in the cwd), or a registry
                       reference [docker://][USER@][REGISTRY#]IMAGE[:TAG|@DIGEST]
  --uid N, --gid N     the job user (root only may name another user; default: yourself)
  --json               print {name, path, lock, created, state, kind, seconds, image, uid} (and
                       digest, warning for a registry image; device, inode for a file)
  --name-only          print only the entry's name (what the SPANK stub reads: it
                       builds <base>/<uid>/NAME itself)
  --no-wait            create nothing and wait for nothing: print the path (the name with
                       --name-only), the entry's state, one of ready, unpacking (a creator
                       is at work) or absent, and what IMG is, file or registry (what the
                       stub asks before it mounts the image for a cold step); for a file,
                       then the device and inode of the file identified (the stub's FUSE
                       daemon reads only that file)
  --unless-busy        create the entry unless a creator is at work already; then exit
                       at once, state unpacking (the stub's background creator)

${CONFIG_HELP}
${COMMON_HELP}`;

export async function run(args: string[]): Promise<number> {
  const values = await parse(args, {
    ...CONFIG_OPTIONS,
    image: { type: "string" },
    uid: { type: "string" },
    gid: { type: "string" },
    json: { type: "boolean" },
    "no-wait": { type: "boolean" },
    "unless-busy": { type: "boolean" },
    "name-only": { type: "boolean" },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const image = required("--image", values.image);
  const uid = wholeNumber("--uid", values.uid);
  const gid = wholeNumber("--gid", values.gid);
  if (values["no-wait"] && values["unless-busy"]) {
    throw new UsageError("--no-wait and --unless-busy exclude each other");
  }
  const mode = values["no-wait"] ? "no-wait" : values["unless-busy"] ? "unless-busy" : "wait";
  const config = await configFrom(values);
  const reused = await reuse(config, { image, uid, gid, mode });
  if (reused.warning) console.error(`pyxis-cache: reuse: warning: ${reused.warning}`);
  const shown = values["name-only"] ? reused.name : reused.path;
  const file = reused.inode === undefined ? "" : ` ${reused.device} ${reused.inode}`;
  const reply = mode === "wait" ? shown : `${shown} ${reused.state} ${reused.kind}${file}`;
  console.log(values.json ? JSON.stringify(reused) : reply);
  return 0;
}
