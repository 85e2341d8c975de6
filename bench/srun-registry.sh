#!/usr/bin/env bash
# P8s of bench/run.sh: a warm `srun --container-cache` of a registry reference (its
# digest fresh) against one of a squashfs file, on the private single-node Slurm of
# the e2e suite (tests/e2e/slurm.sh), runtime bwrap, as root.
#   bash bench/srun-registry.sh IMAGE REF REPS ENROOT_DIR   (prints "file|ref <ms>" per run)
# REF's registry is plain http (ENROOT_ALLOW_HTTP=y in the job's environment); enroot
# is found in slurmd's PATH, as the stub finds it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
image=$1 ref=$2 reps=$3 enroot_dir=$4

for tool in slurmctld slurmd munged srun sinfo bwrap; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool not found (make bootstrap-test)"; exit 0; }
done
make -s -C "$repo/spank-stub" >&2 || { echo "skipped: the SPANK stub does not build"; exit 0; }

export E2E_TMP
E2E_TMP=$(mktemp -d "${BENCH_FS_DIR:-/tmp}/pxc-bench-slurm.XXXXXX")
chmod 755 "$E2E_TMP"
export E2E_PLUGIN=$repo/spank-stub/spank_pyxis_cache.so E2E_CLI=$repo/bin/pyxis-cache E2E_BASE=$E2E_TMP/base
export PATH=$enroot_dir:$PATH ENROOT_ALLOW_HTTP=y
# shellcheck source=tests/e2e/slurm.sh
source "$repo/tests/e2e/slurm.sh"
trap 'slurm_stop; rm -rf "$E2E_TMP"' EXIT
slurm_start >&2 || { echo "skipped: the private Slurm did not start"; exit 0; }
# A day: every warm start of REF reads the digest the node knows, as within the interval.
slurmd_restart_with "$(plugstack_line container_cache_registry_interval=86400)" >&2 ||
  { echo "skipped: slurmd did not restart"; exit 0; }
cd "$E2E_TMP"

ms() { # ms LABEL IMAGE: one timed warm step
  local start end
  start=$(date +%s%N)
  srun -N1 -n1 --container-cache --container-image="$2" true >/dev/null 2>"$E2E_TMP/srun.err" ||
    { echo "skipped: srun of $2 failed: $(tail -1 "$E2E_TMP/srun.err")" | tee /dev/stderr; exit 0; }
  end=$(date +%s%N)
  echo "$1 $(((end - start) / 1000))" | awk '{ printf "%s %.1f\n", $1, $2 / 1000 }'
}

# Warm-up: Slurm's first steps, both entries, and the digest of REF known.
for _ in 1 2; do ms file "$image" >/dev/null; ms ref "$ref" >/dev/null; done
for ((i = 0; i < reps; i++)); do
  if ((i % 2)); then ms ref "$ref"; ms file "$image"; else ms file "$image"; ms ref "$ref"; fi
done
