#!/usr/bin/env bash
# `make bench`: pyxis-cache's performance figures, each a ratio measured side by
# side in one run. Run as root on an otherwise idle node.
#   BENCH_QUICK=1   a 40 MB image and fewer repetitions (a smoke test)
#   BENCH_ONLY=P1,P4  only these figures
#   BENCH_REPS=N    repetitions per side (default 5, 3 when quick; P1 takes 4×)
#   BENCH_DIR=DIR   work directory; the test image is cached here (default /var/tmp/pyxis-cache-bench)
#   BENCH_FS=disk   put the cache roots on BENCH_DIR's filesystem instead of a private tmpfs
#   BENCH_PLUGIN_B=SO  P11: every round again with this build of the stub (two builds side by side)
#   SRUN_PLUGIN=SO  the srun figures with this build of the stub instead of spank-stub/'s
#
# The cache roots go on a private tmpfs by default: this measures our overhead
# over unsquashfs and rm, not the disk (a VM disk mounted with `discard` makes rm
# take 1-8 s for the same tree from one run to the next). The image itself is
# read from BENCH_DIR (the page cache, after the first run).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

if ((EUID != 0)); then
  echo "bench/run.sh: must run as root (it prepares cache roots and owns entries for other uids)" >&2
  exit 2
fi
for tool in mksquashfs unsquashfs /usr/bin/time /bin/busybox; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool not found (make bootstrap-test)" >&2; exit 2; }
done
deno=$repo/.tools/node_modules/deno/deno
[[ -x $deno ]] || deno=$(command -v deno) || { echo "bench/run.sh: deno not found: run 'make bootstrap'" >&2; exit 2; }

export BENCH_DIR=${BENCH_DIR:-/var/tmp/pyxis-cache-bench}
mkdir -p "$BENCH_DIR"
if [[ ${BENCH_FS:-tmpfs} == tmpfs ]]; then
  export BENCH_FS_DIR
  BENCH_FS_DIR=$(mktemp -d "$BENCH_DIR/fs.XXXXXX")
  mount -t tmpfs -o size=12g,mode=755 pxc-bench "$BENCH_FS_DIR"
  trap 'umount "$BENCH_FS_DIR" && rmdir "$BENCH_FS_DIR"' EXIT
fi

"$deno" run --quiet --no-config --no-lock -A "$here/bench.ts"
