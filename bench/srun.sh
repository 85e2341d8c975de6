#!/usr/bin/env bash
# P6/P7 of bench/run.sh: srun with the cache against plain srun, on the private
# single-node Slurm of the e2e suite (tests/e2e/slurm.sh), as root (srun as an unprivileged user: BENCH_UID, default 65534).
#   bash bench/srun.sh IMAGE REPS [bwrap|enroot]   (prints "plain|warm|cold <ms>" per run)
# Each round runs plain, warm and cold steps, in an order that rotates. enroot
# is the installed one, else the one tests/e2e/run.sh builds into
# /var/cache/pyxis-cache-test (PYXIS_CACHE_TEST_CACHE).
# "published <ms>": from a cold step's start until its entry exists; "unsquashfs <ms>":
# a plain unsquashfs of the image into the same filesystem, in the same rounds.
# "phase_<name> <ms>": where each measured warm step's time went, from the stub's
# "pyxis-cache: at <what> <stamp>" lines in slurmd's log (see phases below).
#   SRUN_SEED=1 (enroot): also "seed <ms>", what the seed PR's warm step is made of (a
#     plain `srun true`, then `enroot start` of the same entry as the job user), and
#     "seedcold <ms>" (a plain `srun true`, `enroot create` of the image, `enroot start`).
#   SRUN_PLUGIN=SO: this build of the stub rather than the checkout's.
#   SRUN_PLUGIN_B=SO: every round again with this build of the stub (slurmd restarted
#     to switch), its runs labelled "<label>_b": two builds side by side in one run.
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
export E2E_PLUGIN=${SRUN_PLUGIN:-$repo/spank-stub/spank_pyxis_cache.so} E2E_CLI=$repo/bin/pyxis-cache E2E_BASE=$E2E_TMP/base
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
# With a home of its own (root's HOME would be bound in, and enroot would chdir to it).
as_user() { setpriv --reuid="$uid" --regid="$gid" --clear-groups env HOME="$E2E_TMP/home" "$@"; }
mkdir "$E2E_TMP/work" "$E2E_TMP/home"
chown "$uid:$gid" "$E2E_TMP/work" "$E2E_TMP/home"
cd "$E2E_TMP/work"

ms() { # ms LABEL CMD...: one timed run
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>"$E2E_TMP/srun.err" || { echo "skipped: $* failed: $(grep -v "^srun: error: .*Exited with" "$E2E_TMP/srun.err" | tail -1)" | tee /dev/stderr; exit 0; }
  end=$(date +%s%N)
  echo "$label $(((end - start) / 1000))" | awk '{ printf "%s %.1f\n", $1, $2 / 1000 }'
}
plain() { label=plain$suffix ms as_user srun -N1 -n1 true; }
# The stub's stamps of one step (the lines slurmd's log gained during it), as
# "phase_<name> <ms>": the wait for the command's reply in user_init (call; callwhole:
# the call from its start, which may be before user_init), the entry's lock, the
# "step" call (enroot), root's record answering without the call (answers.c: its child and the lock; for an
# evicted entry, its child), the runtime's start, the rest of user_init, the tasks joining
# the container (from the end of user_init to the last task's task_init), exit.
#   phases OFFSET [PREFIX]: from byte OFFSET of slurmd's log; PREFIX (default phase_) names the lines.
phases() {
  # slurmstepd may still be in exit when srun returns: its last stamp is awaited (bounded).
  for _ in $(seq 100); do
    tail -c +"$(($1 + 1))" "$E2E_TMP/slurmd/slurmd.log" | grep -q 'pyxis-cache: at exit_end' && break
    sleep 0.02
  done
  tail -c +"$(($1 + 1))" "$E2E_TMP/slurmd/slurmd.log" | awk -v sfx="$suffix" -v prefix="${2:-phase_}" '
    / pyxis-cache: at / {
      n = split($0, f, " "); what = f[n - 1]; t = f[n] * 1000
      if (what == "joined" || !(what in at)) at[what] = t
    }
    function p(name, ms) { if (ms != "") printf "%s%s%s %.1f\n", prefix, name, sfx, ms }
    function d(a, b) { return (a in at) && (b in at) ? at[b] - at[a] : "" }
    END {
      if (!("user_init" in at)) exit
      p("before", d("init", "user_init"))
      p("call", d("user_init", "reply")); p("callwhole", d("call", "reply"))
      answered = ("answered_absent" in at) ? "answered_absent" : "answered"
      p("answer", d("answers", answered))
      p("lock", d("reply", "locked")); p("step", d("step_call", "step_reply"))
      p("runtime", d("runtime", "started"))
      other = d("user_init", "user_init_end") - d("user_init", "reply") - d("reply", "locked") - d("runtime", "started")
      other -= d("answers", answered)
      if ("step_call" in at) other -= d("step_call", "step_reply")
      p("other", other)
      p("join", d("user_init_end", "joined")); p("exit", d("exit", "exit_end"))
      p("stamped", d("init", "exit_end"))
    }'
}
warm() {
  local offset
  offset=$(stat -c %s "$E2E_TMP/slurmd/slurmd.log")
  label=warm$suffix ms as_user srun -N1 -n1 --container-cache --container-image="$image" true
  phases "$offset"
}
# cold: the entry evicted (root's record of the image kept, as on a node that ran it before
# a collection); cold first: the node's first sight of the image (no record either).
cold() {
  local kind=${1:-} start offset
  rm -rf "$E2E_BASE/$uid"/pyxis_cache_* 2>/dev/null
  [[ $kind == first ]] && rm -rf "$E2E_BASE/.pyxis_cache_answers"
  sync
  offset=$(stat -c %s "$E2E_TMP/slurmd/slurmd.log")
  start=$(date +%s%N)
  label=cold$kind$suffix ms as_user srun -N1 -n1 --container-cache --container-image="$image" true
  phases "$offset" "cold${kind}phase_"
  # From a FUSE mount the entry is still being made: wait for it (untimed for the other
  # runs, which must not compete with it), and say when it was published.
  for _ in $(seq 1200); do
    compgen -G "$E2E_BASE/$uid/pyxis_cache_u${uid}_*" >/dev/null && break
    sleep 0.05
  done
  echo "published$kind$suffix $((($(date +%s%N) - start) / 1000000))"
}
# A plain unsquashfs of the image into the cache's filesystem: what "published" is held to.
unpack() {
  rm -rf "$E2E_TMP/work/plain"
  sync
  label=unsquashfs$suffix ms as_user unsquashfs -no-progress -quiet -d "$E2E_TMP/work/plain" "$image"
}

# The seed PR's steps, as the job user, with enroot's paths in a directory of their own
# (as the stub gives them): enroot start of our entry, and enroot create of the image.
seed_env=()
if [[ ${SRUN_SEED:-} == 1 && $runtime == enroot ]]; then
  mkdir "$E2E_TMP/seed"
  chown "$uid:$gid" "$E2E_TMP/seed"
  seed_env=(env -i "PATH=$(dirname "$(command -v enroot)"):$PATH" HOME="$E2E_TMP/home"
    "ENROOT_RUNTIME_PATH=$E2E_TMP/seed/runtime" "ENROOT_CACHE_PATH=$E2E_TMP/seed/cache"
    "ENROOT_CONFIG_PATH=$E2E_TMP/seed/config" "ENROOT_TEMP_PATH=$E2E_TMP/seed/temp"
    ENROOT_ROOTFS_WRITABLE=n ENROOT_MOUNT_HOME=y ENROOT_REMAP_ROOT=n)
fi
entry_name() {
  local entry
  entry=$(compgen -G "$E2E_BASE/$uid/pyxis_cache_u${uid}_*" | head -1)
  echo "${entry##*/}"
}
seed() {
  local name start end
  name=$(entry_name)
  start=$(date +%s%N)
  as_user srun -N1 -n1 true >/dev/null
  as_user "${seed_env[@]}" "ENROOT_DATA_PATH=$E2E_BASE/$uid" enroot start "$name" true >/dev/null 2>"$E2E_TMP/seed.err" ||
    { echo "skipped: enroot start $name failed: $(tail -1 "$E2E_TMP/seed.err")" | tee /dev/stderr; exit 0; }
  end=$(date +%s%N)
  awk -v l="seed$suffix" -v us="$(((end - start) / 1000))" 'BEGIN { printf "%s %.1f\n", l, us / 1000 }'
}
seedcold() {
  local start end
  rm -rf "$E2E_TMP/seed/data"
  sync
  start=$(date +%s%N)
  as_user srun -N1 -n1 true >/dev/null
  as_user "${seed_env[@]}" "ENROOT_DATA_PATH=$E2E_TMP/seed/data" enroot create -n seed "$image" >/dev/null 2>"$E2E_TMP/seed.err" &&
    as_user "${seed_env[@]}" "ENROOT_DATA_PATH=$E2E_TMP/seed/data" enroot start seed true >/dev/null 2>"$E2E_TMP/seed.err" ||
    { echo "skipped: enroot create/start of $image failed: $(tail -1 "$E2E_TMP/seed.err")" | tee /dev/stderr; exit 0; }
  end=$(date +%s%N)
  awk -v l="seedcold$suffix" -v us="$(((end - start) / 1000))" 'BEGIN { printf "%s %.1f\n", l, us / 1000 }'
}

# SRUN_PLUGIN_B: which build slurmd runs (a restart, then one unmeasured warm step).
plugin_a=$E2E_PLUGIN current=$E2E_PLUGIN suffix=
use_plugin() { # use_plugin SO SUFFIX
  suffix=$2
  [[ $1 == "$current" ]] && return 0
  E2E_PLUGIN=$1 current=$1
  slurmd_restart_with "$(plugstack_line "container_cache_runtime=$runtime")" >&2 ||
    { echo "skipped: slurmd did not restart with $1"; exit 0; }
  warm >/dev/null
}

# Warm-up: Slurm's first steps, and the entry for the warm runs.
as_user srun -N1 -n1 true >/dev/null
cold >/dev/null
warm >/dev/null
for ((i = 0; i < reps; i++)); do
  sides=("$plugin_a:")
  [[ -n ${SRUN_PLUGIN_B:-} ]] && { ((i % 2)) && sides=("$SRUN_PLUGIN_B:_b" "$plugin_a:") || sides+=("$SRUN_PLUGIN_B:_b"); }
  for side in "${sides[@]}"; do
    use_plugin "${side%:*}" "${side##*:}"
    case $((i % 3)) in
      0) plain; warm; cold; warm >/dev/null; unpack; cold first; warm >/dev/null ;;
      1) warm; cold first; warm >/dev/null; unpack; cold; warm >/dev/null; plain ;;
      2) unpack; cold; warm >/dev/null; plain; cold first; warm >/dev/null; warm ;;
    esac
    if ((${#seed_env[@]})); then
      if ((i % 2)); then seedcold; seed; else seed; seedcold; fi
    fi
  done
done
