#!/usr/bin/env bash
# P6/P7 of bench/run.sh: srun with the cache against plain srun, on the private
# single-node Slurm of the e2e suite (tests/e2e/slurm.sh), as root (srun as an unprivileged user: BENCH_UID, default 65534).
#   bash bench/srun.sh IMAGE REPS [bwrap|enroot]   (prints "plain|warm|cold <ms>" per run)
# Each round runs plain, warm and cold steps, in an order that rotates. enroot
# is the installed one, else the one tests/e2e/run.sh builds into
# /var/cache/pyxis-cache-test (PYXIS_CACHE_TEST_CACHE).
# "published <ms>": from a cold step's start until its entry exists; "unsquashfs <ms>":
# a plain unsquashfs of the image into the same filesystem, in the same rounds.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
image=$1 reps=$2 runtime=${3:-bwrap}

for tool in slurmctld slurmd munged srun sinfo bwrap; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool not found (make bootstrap-test)"; exit 0; }
done
if [[ $runtime == enroot ]] && ! command -v enroot >/dev/null; then
  enroot_bin=${PYXIS_CACHE_TEST_CACHE:-/var/cache/pyxis-cache-test}/enroot-4.1.2/bin
  [[ -x $enroot_bin/enroot ]] || { echo "skipped: enroot not found (bash tests/e2e/run.sh builds it)"; exit 0; }
  PATH=$enroot_bin:$PATH
fi
make -s -C "$repo/spank-stub" >&2 || { echo "skipped: the SPANK stub does not build"; exit 0; }

export E2E_TMP
E2E_TMP=$(mktemp -d "${BENCH_FS_DIR:-/tmp}/pxc-bench-slurm.XXXXXX")
chmod 755 "$E2E_TMP"
export E2E_PLUGIN=$repo/spank-stub/spank_pyxis_cache.so E2E_CLI=$repo/bin/pyxis-cache E2E_BASE=$E2E_TMP/base
# shellcheck source=tests/e2e/slurm.sh
source "$repo/tests/e2e/slurm.sh"
trap 'slurm_stop; rm -rf "$E2E_TMP"' EXIT
slurm_start >&2 || { echo "skipped: the private Slurm did not start"; exit 0; }
if [[ $runtime != bwrap ]]; then
  slurmd_restart_with "$(plugstack_line "container_cache_runtime=$runtime")" >&2 ||
    { echo "skipped: slurmd did not restart with container_cache_runtime=$runtime"; exit 0; }
fi
# srun as an unprivileged user, as jobs run: for uid 0 an entry is unpacked by root, which
# then strips setuid bits and device nodes in a walk of its own (docs/performance.md, P2).
uid=${BENCH_UID:-65534}
gid=$(id -g "$uid" 2>/dev/null || echo "$uid")
as_user() { setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"; }
mkdir "$E2E_TMP/work"
chown "$uid:$gid" "$E2E_TMP/work"
cd "$E2E_TMP/work"

ms() { # ms LABEL CMD...: one timed run
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>"$E2E_TMP/srun.err" || { echo "skipped: $* failed: $(tail -1 "$E2E_TMP/srun.err")" | tee /dev/stderr; exit 0; }
  end=$(date +%s%N)
  echo "$label $(((end - start) / 1000))" | awk '{ printf "%s %.1f\n", $1, $2 / 1000 }'
}
plain() { label=plain ms as_user srun -N1 -n1 true; }
warm() { label=warm ms as_user srun -N1 -n1 --container-cache --container-image="$image" true; }
cold() {
  rm -rf "$E2E_BASE/$uid"/pyxis_cache_* 2>/dev/null
  sync
  local start
  start=$(date +%s%N)
  label=cold ms as_user srun -N1 -n1 --container-cache --container-image="$image" true
  # From a FUSE mount the entry is still being made: wait for it (untimed for the other
  # runs, which must not compete with it), and say when it was published.
  for _ in $(seq 1200); do
    compgen -G "$E2E_BASE/$uid/pyxis_cache_u${uid}_*" >/dev/null && break
    sleep 0.05
  done
  echo "published $((($(date +%s%N) - start) / 1000000))"
}
# A plain unsquashfs of the image into the cache's filesystem: what "published" is held to.
unpack() {
  rm -rf "$E2E_TMP/work/plain"
  sync
  label=unsquashfs ms as_user unsquashfs -no-progress -quiet -d "$E2E_TMP/work/plain" "$image"
}

# Warm-up: Slurm's first steps, and the entry for the warm runs.
as_user srun -N1 -n1 true >/dev/null
cold >/dev/null
warm >/dev/null
for ((i = 0; i < reps; i++)); do
  case $((i % 3)) in
    0) plain; warm; cold; warm >/dev/null; unpack ;;
    1) warm; unpack; cold; warm >/dev/null; plain ;;
    2) unpack; cold; warm >/dev/null; plain; warm ;;
  esac
done
