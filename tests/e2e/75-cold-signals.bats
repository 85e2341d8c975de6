#!/usr/bin/env bats
# Every signal Slurm sends to a step reaches the task of a cold step (started from the
# image's FUSE mount while its entry is unpacked, docs/srun.md) exactly as it reaches a
# warm step's and a plain srun's (issue 19 item 1): scancel --signal=USR1 killed the
# mount's daemon, and the task died of SIGBUS. Each case runs the same task three times
# at once under one job name — without a container, from an entry, from a mount — does
# the signal path to all three, and wants the same exit status and the same lines from
# each, the cold step's read through the mount after the signal. Then the daemon and
# the mount point are gone, the entry is published, and the node is idle. The cases run
# with bwrap, then again with enroot (this file switches slurmd's runtime itself).
load helpers

RUNTIME_FILE=$E2E_TMP/slurmd/cold-signals-runtime

# The task: ready (with the file system its / is on), then reads a file of the image in a
# loop; a signal prints GOT_<SIG> and whether the file still reads (the shell itself reads
# it: a child would die of a second TERM), then exits with a status of its own (mode exit)
# or goes on (mode stay: the time limit's KILL ends it).
# shellcheck disable=SC2016
TASK='mode=$1
got() {
  if read -r line </etc/os-release; then echo "GOT_$1 read"; else echo "GOT_$1"; fi
  [ "$mode" = stay ] || exit "$2"
}
trap "got USR1 3" USR1; trap "got USR2 4" USR2; trap "got TERM 5" TERM; trap "got INT 6" INT; trap "got HUP 7" HUP
echo "ready $(awk "\$5 == \"/\" { print \$9 }" /proc/self/mountinfo | tail -1)"
while :; do cat /etc/os-release >/dev/null; sleep 0.2; done'

setup_file() {
  warm_entry "$ALPHA"
}

teardown_file() {
  if [[ -e $RUNTIME_FILE ]]; then
    [[ $(cat "$RUNTIME_FILE") == bwrap ]] || slurmd_restart_with
    rm -f "$RUNTIME_FILE"
  fi
}

setup() {
  command -v squashfuse_ll >/dev/null || skip "squashfuse_ll not installed (make bootstrap-test installs it)"
  [[ -c /dev/fuse ]] || skip "no /dev/fuse"
}

teardown() {
  local kind
  for kind in plain warm cold; do
    [[ -z ${PIDS[$kind]:-} ]] || kill "${PIDS[$kind]}" 2>/dev/null || true
  done
  [[ -z ${JOB:-} ]] || scancel --quiet --name="$JOB" 2>/dev/null || true
}

# use_runtime RUNTIME: slurmd with that runtime (restarted only when it changes; bwrap is the default).
use_runtime() {
  RUNTIME=$1
  [[ $1 == bwrap || -n ${E2E_ENROOT:-} ]] ||
    skip "enroot is not installed and could not be built: the enroot runtime's cases are skipped"
  [[ $(cat "$RUNTIME_FILE" 2>/dev/null || echo bwrap) == "$1" ]] && return 0
  slurmd_restart_with "$(plugstack_line "container_cache_runtime=$1")"
  echo "$1" >"$RUNTIME_FILE"
}

declare -gA PIDS=() STATUS=()

# start_three CASE MODE [SRUN-ARGS...]: the task as a plain step, from ALPHA's entry and
# from a fresh image's mount, under one job name ($JOB); returns once all three are ready.
start_three() {
  local kind
  JOB=pxc-cold-$RUNTIME-$1
  COLD_IMAGE=$(fresh_image "cold-$RUNTIME-$1")
  local mode=$2
  shift 2
  for kind in plain warm cold; do
    local image=()
    [[ $kind == warm ]] && image=(--container-cache --container-image="$ALPHA")
    [[ $kind == cold ]] && image=(--container-cache --container-image="$COLD_IMAGE")
    as "$E2E_USER" srun --oversubscribe --job-name="$JOB" "$@" "${image[@]}" sh -c "$TASK" task "$mode" \
      >"$E2E_TMP/$JOB.$kind" 2>&1 3>&- &
    PIDS[$kind]=$!
  done
  for kind in plain warm cold; do
    wait_for 120 grep -q '^ready' "$E2E_TMP/$JOB.$kind" || {
      cat "$E2E_TMP/$JOB.$kind"
      return 1
    }
  done
  # The cold step really runs from the mount, the warm one from the entry.
  grep -qx 'ready overlay' "$E2E_TMP/$JOB.cold"
  ! grep -qx 'ready overlay' "$E2E_TMP/$JOB.warm" || false
}

# job_ids: the ids of the three jobs.
job_ids() { squeue -h -n "$JOB" -o %i; }

# finish_three: the three sruns ended alike: same exit status, same GOT_ lines (at least one);
# the cold step's daemon and mount point went with it, its entry is published, the node is idle.
finish_three() {
  local kind
  for kind in plain warm cold; do
    STATUS[$kind]=0
    wait "${PIDS[$kind]}" || STATUS[$kind]=$?
    PIDS[$kind]=
    echo "== $kind: exit ${STATUS[$kind]}"
    cat "$E2E_TMP/$JOB.$kind"
  done
  local got
  got=$(grep '^GOT_' "$E2E_TMP/$JOB.plain")
  [[ -n $got ]]
  [ "$(grep '^GOT_' "$E2E_TMP/$JOB.warm")" = "$got" ]
  [ "$(grep '^GOT_' "$E2E_TMP/$JOB.cold")" = "$got" ]
  [ "${STATUS[warm]}" = "${STATUS[plain]}" ]
  [ "${STATUS[cold]}" = "${STATUS[plain]}" ]
  ! grep -qiE 'bus error|not connected|signal: 7' "$E2E_TMP/$JOB.cold" || false
  # The step is over: its daemon, its mount point and the job go.
  wait_for 30 eval '! pgrep -u "$E2E_USER" -x squashfuse_ll'
  wait_for 30 eval '! ls -A "$E2E_BASE/$(user_uid)" | grep -q "^\.pyxis_cache_mnt\."'
  wait_for 30 eval '[[ -z $(squeue -h -n "$JOB") ]]'
  wait_entry "$COLD_IMAGE"
  assert_node_idle
  ! grep -q "JOB NOT ENDING WITH SIGNALS" "$E2E_TMP/slurmd/slurmd.log" || false
  rm -rf "${E2E_BASE:?}/$(user_uid)/$(entry_name "$COLD_IMAGE")" "$COLD_IMAGE"
}

# scancel_signal SIG: scancel --signal=SIG, the task exits with its own status.
scancel_signal() {
  start_three "$(tr '[:upper:]' '[:lower:]' <<<"$1")" exit
  scancel --signal="$1" --name="$JOB"
  finish_three
  [ "${STATUS[cold]}" -ne 0 ]
}

# srun --signal=USR1@50 with a one-minute limit: sent within one slurmctld pass (30 s or so).
srun_signal_at() {
  start_three at exit --time=1 --signal=USR1@50
  finish_three
  [ "$(grep '^GOT_' "$E2E_TMP/$JOB.cold")" = "GOT_USR1 read" ]
  [ "${STATUS[cold]}" -eq 3 ]
}

# Every task's shell is stopped.
tasks_stopped() { [[ -z $(ps -u "$E2E_USER" -o stat=,comm= | awk '$2 == "sh" && $1 !~ /^T/') ]]; }

# scontrol suspend, then resume: the tasks stop and go on, then USR1 ends them. slurmstepd
# stops a step in two moves (SIGTSTP, then SIGSTOP 2 s later) and rejects other signals while
# it is suspended: each move is waited for in slurmd's log.
suspend_resume() {
  local id
  start_three suspend exit
  for id in $(job_ids); do scontrol suspend "$id"; done
  for id in $(job_ids); do wait_for 60 grep -q "Suspended StepId=$id.0" "$E2E_TMP/slurmd/slurmd.log"; done
  [[ $(squeue -h -n "$JOB" -o %T | sort -u) == SUSPENDED ]]
  wait_for 30 tasks_stopped
  for id in $(job_ids); do scontrol resume "$id"; done
  for id in $(job_ids); do wait_for 60 grep -q "Resumed StepId=$id.0" "$E2E_TMP/slurmd/slurmd.log"; done
  scancel --signal=USR1 --name="$JOB"
  finish_three
  [ "$(grep '^GOT_' "$E2E_TMP/$JOB.cold")" = "GOT_USR1 read" ]
  [ "${STATUS[cold]}" -eq 3 ]
}

# The time limit: TERM, which the task survives (mode stay), then KILL after KillWait.
time_limit() {
  start_three timelimit stay --time=1
  finish_three
  ! grep '^GOT_' "$E2E_TMP/$JOB.cold" | grep -vqx 'GOT_TERM read' || false
}

# A plain scancel: TERM (the task exits with its own status), KILL after KillWait.
plain_scancel() {
  start_three scancel exit
  scancel --name="$JOB"
  finish_three
  ! grep '^GOT_' "$E2E_TMP/$JOB.cold" | grep -vqx 'GOT_TERM read' || false
}

@test "cold signals bwrap: scancel --signal=USR1" { use_runtime bwrap; scancel_signal USR1; }
@test "cold signals bwrap: scancel --signal=USR2" { use_runtime bwrap; scancel_signal USR2; }
@test "cold signals bwrap: scancel --signal=TERM" { use_runtime bwrap; scancel_signal TERM; }
@test "cold signals bwrap: scancel --signal=INT" { use_runtime bwrap; scancel_signal INT; }
@test "cold signals bwrap: scancel --signal=HUP" { use_runtime bwrap; scancel_signal HUP; }
@test "cold signals bwrap: srun --signal=USR1@50" { use_runtime bwrap; srun_signal_at; }
@test "cold signals bwrap: scontrol suspend then resume" { use_runtime bwrap; suspend_resume; }
@test "cold signals bwrap: the time limit's TERM then KILL" { use_runtime bwrap; time_limit; }
@test "cold signals bwrap: a plain scancel" { use_runtime bwrap; plain_scancel; }

@test "cold signals enroot: scancel --signal=USR1" { use_runtime enroot; scancel_signal USR1; }
@test "cold signals enroot: scancel --signal=USR2" { use_runtime enroot; scancel_signal USR2; }
@test "cold signals enroot: scancel --signal=TERM" { use_runtime enroot; scancel_signal TERM; }
@test "cold signals enroot: scancel --signal=INT" { use_runtime enroot; scancel_signal INT; }
@test "cold signals enroot: scancel --signal=HUP" { use_runtime enroot; scancel_signal HUP; }
@test "cold signals enroot: srun --signal=USR1@50" { use_runtime enroot; srun_signal_at; }
@test "cold signals enroot: scontrol suspend then resume" { use_runtime enroot; suspend_resume; }
@test "cold signals enroot: the time limit's TERM then KILL" { use_runtime enroot; time_limit; }
@test "cold signals enroot: a plain scancel" { use_runtime enroot; plain_scancel; }
