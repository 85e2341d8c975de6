#!/usr/bin/env bats
# Every signal Slurm sends to a step reaches the task of a cold step (started from the
# image's FUSE mount while its entry is unpacked, docs/srun.md) exactly as it reaches a
# warm step's and a plain srun's: a signal must not reach the mount's daemon (scancel
# --signal=USR1 would kill it, and the task die of SIGBUS). Each case runs the same task three times
# at once under one job name — without a container, from an entry, from a mount — does
# the signal path to all three, and wants the same exit status and the same lines from
# each, the cold step's read through the mount after the signal. Then the daemon and
# the mount point are gone, the entry is published, and the node is idle. The cases run
# with bwrap, then again with enroot (this file switches slurmd's runtime itself).
#
# Per runtime, every path's three sruns start at once (27, --oversubscribe: the time limit's
# path alone takes 60-90 s, as slurmctld looks at limits every 30 s or so); then one test per
# path does its signals and checks its three steps, its daemon, its mount point, its entry and
# its jobs only (each path fails on its own); a last test wants nothing left of any: no
# daemon, no mount point, no job, an idle node.
load helpers

RUNTIME_FILE=$E2E_TMP/slurmd/cold-signals-runtime

# The task: ready (with `entry` when its / shows the entry's lock, a warm step, else the file
# system its / is on: overlay from the FUSE mount), then reads a file of the image in a
# loop; a signal prints GOT_<SIG> and whether the file still reads (the shell itself reads
# it: a child would die of a second TERM), then exits with a status of its own (mode exit)
# or goes on (mode stay: the time limit's KILL ends it). The shell's read builtin gives up
# when another trapped signal comes meanwhile (the time limit sends TERM more than once, and
# a read through the mount takes a round trip to its daemon): three tries; a mount that
# does not read fails all three.
# shellcheck disable=SC2016
TASK='mode=$1
got() {
  r=; for try in 1 2 3; do if read -r line </etc/os-release; then r=" read"; break; fi; done
  echo "GOT_$1$r"
  [ "$mode" = stay ] || exit "$2"
}
trap "got USR1 3" USR1; trap "got USR2 4" USR2; trap "got TERM 5" TERM; trap "got INT 6" INT; trap "got HUP 7" HUP
echo "ready $(if [ -e /.pyxis_cache_lock ]; then echo entry; else awk "\$5 == \"/\" { print \$9 }" /proc/self/mountinfo | tail -1; fi)"
while :; do cat /etc/os-release >/dev/null; sleep 0.2; done'

COLD=$E2E_TMP/cold-signals
# Every path (CASE MODE SRUN-ARGS...), the two with a time limit first: their clock runs from
# the start, so they start before the others load the node.
PATHS=(
  "timelimit stay --time=1"
  "at exit --time=2 --signal=USR1@30"
  "usr1 exit" "usr2 exit" "term exit" "int exit" "hup exit" "scancel exit" "suspend exit"
)

# The partition lets 4 jobs share a CPU (OverSubscribe=YES): 27 at once need more, for
# this file only.
setup_file() {
  warm_entry "$ALPHA"
  mkdir -p "$COLD"
  scontrol show partition e2e | grep -o 'OverSubscribe=[^ ]*' >"$COLD/oversubscribe"
  scontrol update PartitionName=e2e OverSubscribe=YES:16
}

# Whatever a failed path left: its sruns and jobs.
cancel_all() {
  local path
  for path in "${PATHS[@]}"; do
    for runtime in bwrap enroot; do
      scancel --quiet --name="pxc-cold-$runtime-${path%% *}" 2>/dev/null || true
    done
  done
  wait_for 60 eval '[[ -z $(squeue -h -u "$E2E_USER" -o %j | grep "^pxc-cold-") ]]' || true
  cat "$COLD"/*.pid 2>/dev/null | xargs -r kill 2>/dev/null || true
  rm -f "$COLD"/*.pid
}

teardown_file() {
  cancel_all
  scontrol update PartitionName=e2e "$(cat "$COLD/oversubscribe")"
  if [[ -e $RUNTIME_FILE ]]; then
    [[ $(cat "$RUNTIME_FILE") == bwrap ]] || slurmd_restart_with
    rm -f "$RUNTIME_FILE"
  fi
}

setup() {
  command -v squashfuse_ll >/dev/null || skip "squashfuse_ll not installed (make bootstrap-test installs it)"
  [[ -c /dev/fuse ]] || skip "no /dev/fuse"
}

# A failed path's jobs end with its test.
teardown() {
  [[ -n ${BATS_TEST_COMPLETED:-} || -z ${PATH_JOB:-} ]] || scancel --quiet --name="$PATH_JOB" 2>/dev/null || true
}

# use_runtime RUNTIME: slurmd with that runtime (restarted only when it changes; bwrap is the default).
use_runtime() {
  RUNTIME=$1
  [[ $1 == bwrap || -n ${E2E_ENROOT:-} ]] ||
    skip "enroot is not installed and could not be built: the enroot runtime's cases are skipped"
  [[ $(cat "$RUNTIME_FILE" 2>/dev/null || echo bwrap) == "$1" ]] && return 0
  cancel_all
  slurmd_restart_with "$(plugstack_line "container_cache_runtime=$1")"
  echo "$1" >"$RUNTIME_FILE"
}

# Path CASE's job name, cold image and its sruns' files ($COLD/$JOB.KIND: output, .rc: exit status).
path_vars() {
  JOB=pxc-cold-$RUNTIME-$1
  COLD_IMAGE=$E2E_TMP/images/cold-$RUNTIME-$1.sqsh
}

# start_three CASE MODE [SRUN-ARGS...]: the task as a plain step, from ALPHA's entry and from
# a fresh image's mount, under one job name, in the background (each srun's exit status in a
# file: the tests that check them are other processes).
start_three() {
  local kind case=$1 mode=$2
  shift 2
  path_vars "$case"
  fresh_image "cold-$RUNTIME-$case" >/dev/null
  rm -f "$COLD/$JOB".*
  for kind in plain warm cold; do
    local image=()
    [[ $kind == warm ]] && image=(--container-cache --container-image="$ALPHA")
    [[ $kind == cold ]] && image=(--container-cache --container-image="$COLD_IMAGE")
    {
      rc=0
      as "$E2E_USER" srun --oversubscribe --job-name="$JOB" "$@" "${image[@]}" sh -c "$TASK" task "$mode" \
        >"$COLD/$JOB.$kind" 2>&1 || rc=$?
      echo "$rc" >"$COLD/$JOB.$kind.rc.tmp"
      mv "$COLD/$JOB.$kind.rc.tmp" "$COLD/$JOB.$kind.rc"
    } 3>&- &
    echo $! >"$COLD/$JOB.$kind.pid"
  done
}

# ready_three CASE [SECONDS]: path CASE's three tasks are ready, the cold one from the mount, the warm
# one from the entry, its cold step's daemon runs; then its job ids are in $COLD/$JOB.ids and
# $COLD/$JOB.ready exists. (Explicit returns: start_all goes on after a path that fails.)
ready_three() {
  local kind
  path_vars "$1"
  for kind in plain warm cold; do
    wait_for "${2:-180}" grep -q '^ready' "$COLD/$JOB.$kind" || {
      echo "== $kind: not ready"
      cat "$COLD/$JOB.$kind"
      return 1
    }
  done
  grep -qx 'ready overlay' "$COLD/$JOB.cold" || { echo "$JOB: the cold step is not on the mount"; return 1; }
  ! grep -qx 'ready overlay' "$COLD/$JOB.warm" || { echo "$JOB: the warm step is on a mount"; return 1; }
  squeue -h -n "$JOB" -o %i >"$COLD/$JOB.ids"
  [[ $(wc -l <"$COLD/$JOB.ids") == 3 ]] || { echo "$JOB: jobs $(cat "$COLD/$JOB.ids")"; return 1; }
  [[ -n $(cold_daemons "$COLD_IMAGE") ]] || { echo "$JOB: no squashfuse_ll reads $COLD_IMAGE"; return 1; }
  touch "$COLD/$JOB.ready"
}

# begin_path CASE: path CASE's tasks ready (checked now unless start_all did); a failed test cancels its jobs.
begin_path() {
  path_vars "$1"
  PATH_JOB=$JOB
  [[ -e $COLD/$JOB.ready ]] || ready_three "$1"
}

# cold_daemons IMAGE: the squashfuse_ll daemons (of the job user) that read IMAGE.
cold_daemons() {
  local pid fd
  for pid in $(pgrep -u "$E2E_USER" -x squashfuse_ll); do
    for fd in /proc/"$pid"/fd/*; do
      [[ $(readlink "$fd" 2>/dev/null) == "$1" ]] && echo "$pid" && break
    done
  done
  return 0
}

# start_all: every path's three sruns, the two with a time limit first; each path ready.
start_all() {
  local path failed=0
  rm -f "$COLD"/pxc-cold-"$RUNTIME"-*
  for path in "${PATHS[@]:0:2}"; do
    # shellcheck disable=SC2086
    start_three $path
  done
  wait_for 180 all_ready "${PATHS[@]:0:2}" || true
  for path in "${PATHS[@]:0:2}"; do ready_three "${path%% *}" 1 || failed=1; done
  for path in "${PATHS[@]:2}"; do
    # shellcheck disable=SC2086
    start_three $path
  done
  wait_for 180 all_ready "${PATHS[@]:2}" || true
  for path in "${PATHS[@]:2}"; do ready_three "${path%% *}" 1 || failed=1; done
  return "$failed"
}

# all_ready PATH...: every srun of these paths printed its ready line.
all_ready() {
  local path kind
  for path in "$@"; do
    for kind in plain warm cold; do
      grep -q '^ready' "$COLD/pxc-cold-$RUNTIME-${path%% *}.$kind" 2>/dev/null || return 1
    done
  done
}

declare -gA STATUS=()

# finish_three SECONDS: path $JOB's three sruns ended (within SECONDS) alike: same exit status,
# same GOT_ lines (at least one); the cold step's daemon and mount point went with it, its
# entry is published, its jobs are gone, and the node is not drained for them.
finish_three() {
  local kind
  for kind in plain warm cold; do
    wait_for "$1" test -e "$COLD/$JOB.$kind.rc" || echo "== $kind: still running after $1 s"
    STATUS[$kind]=$(cat "$COLD/$JOB.$kind.rc" 2>/dev/null || echo running)
    rm -f "$COLD/$JOB.$kind.pid"
    echo "== $kind: exit ${STATUS[$kind]}"
    cat "$COLD/$JOB.$kind"
  done
  local got
  got=$(got_lines plain)
  [[ -n $got ]]
  [ "$(got_lines warm)" = "$got" ]
  [ "$(got_lines cold)" = "$got" ]
  [[ ${STATUS[plain]} != running ]]
  [ "${STATUS[warm]}" = "${STATUS[plain]}" ]
  [ "${STATUS[cold]}" = "${STATUS[plain]}" ]
  ! grep -qiE 'bus error|not connected|signal: 7' "$COLD/$JOB.cold" || false
  # The step is over: its daemon, its mount point and its jobs go.
  wait_for 30 eval '[[ -z $(cold_daemons "$COLD_IMAGE") ]]'
  wait_for 30 eval '! ls -A "$E2E_BASE/$(user_uid)" | grep -qF ".pyxis_cache_mnt.$(entry_name "$COLD_IMAGE")."'
  wait_for 30 eval '[[ -z $(squeue -h -n "$JOB") ]]'
  wait_entry "$COLD_IMAGE"
  assert_node_up
  local id
  for id in $(cat "$COLD/$JOB.ids"); do
    ! grep "JOB NOT ENDING WITH SIGNALS" "$E2E_TMP/slurmd/slurmd.log" | grep -qE "(JOB|STEP|StepId=) ?$id([^0-9]|$)" || false
  done
  rm -rf "${E2E_BASE:?}/$(user_uid)/$(entry_name "$COLD_IMAGE")" "$COLD_IMAGE"
}

# got_lines KIND: the GOT_ lines of path $JOB's KIND srun; each once with GOT_ONCE=1 (the time
# limit: slurmd sends TERM twice, on the limit and as the job ends, and a task gets the second
# or not as the two are merged while pending or not, whichever its step).
got_lines() {
  if [[ -n ${GOT_ONCE:-} ]]; then
    grep '^GOT_' "$COLD/$JOB.$1" | sort -u
  else
    grep '^GOT_' "$COLD/$JOB.$1"
  fi
}

# assert_node_up: the node is not drained, down or failed (other paths' jobs may still run on it).
assert_node_up() {
  local state
  state=$(node_state)
  echo "node state: $state"
  [[ $state != *drain* && $state != *down* && $state != *fail* ]]
}

# scancel_signal SIG: scancel --signal=SIG, the task exits with its own status.
scancel_signal() {
  local case
  case=$(tr '[:upper:]' '[:lower:]' <<<"$1")
  begin_path "$case"
  scancel --signal="$1" --name="$JOB"
  finish_three 60
  [ "${STATUS[cold]}" -ne 0 ]
}

# srun --signal=USR1@30 with a two-minute limit. srun(1): the signal "may be sent up to 60 seconds
# earlier than specified" (slurmctld's passes): with a one-minute limit that is any time from the
# start on, and once it came before the cold srun was ready; with two minutes, not before 30 s.
srun_signal_at() {
  begin_path at
  finish_three 240
  [ "$(grep '^GOT_' "$COLD/$JOB.cold")" = "GOT_USR1 read" ]
  [ "${STATUS[cold]}" -eq 3 ]
}

# tasks_stopped: every task shell of the path's three jobs is stopped (at least one per job).
tasks_stopped() {
  local id pid n
  for id in $(cat "$COLD/$JOB.ids"); do
    n=0
    for pid in $(scontrol listpids "$id" 2>/dev/null | awk 'NR > 1 { print $1 }'); do
      [[ $(cat "/proc/$pid/comm" 2>/dev/null) == sh ]] || continue
      [[ $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) == T ]] || return 1
      n=$((n + 1))
    done
    ((n > 0)) || return 1
  done
}

# scontrol suspend, then resume: the tasks stop and go on, then USR1 ends them. slurmstepd
# stops a step in two moves (SIGTSTP, then SIGSTOP 2 s later) and rejects other signals while
# it is suspended: each move is waited for in slurmd's log.
suspend_resume() {
  local id
  begin_path suspend
  for id in $(cat "$COLD/$JOB.ids"); do scontrol suspend "$id"; done
  for id in $(cat "$COLD/$JOB.ids"); do wait_for 60 grep -q "Suspended StepId=$id.0" "$E2E_TMP/slurmd/slurmd.log"; done
  [[ $(squeue -h -n "$JOB" -o %T | sort -u) == SUSPENDED ]]
  wait_for 30 tasks_stopped
  for id in $(cat "$COLD/$JOB.ids"); do scontrol resume "$id"; done
  for id in $(cat "$COLD/$JOB.ids"); do wait_for 60 grep -q "Resumed StepId=$id.0" "$E2E_TMP/slurmd/slurmd.log"; done
  scancel --signal=USR1 --name="$JOB"
  finish_three 60
  [ "$(grep '^GOT_' "$COLD/$JOB.cold")" = "GOT_USR1 read" ]
  [ "${STATUS[cold]}" -eq 3 ]
}

# The time limit: TERM, which the task survives (mode stay), then KILL after KillWait.
time_limit() {
  begin_path timelimit
  GOT_ONCE=1 finish_three 240
  ! grep '^GOT_' "$COLD/$JOB.cold" | grep -vqx 'GOT_TERM read' || false
}

# A plain scancel: TERM (the task exits with its own status), KILL after KillWait.
plain_scancel() {
  begin_path scancel
  scancel --name="$JOB"
  finish_three 60
  ! grep '^GOT_' "$COLD/$JOB.cold" | grep -vqx 'GOT_TERM read' || false
}

# all_over: nothing is left of any path: no daemon, no mount point, no job; the node is idle;
# no step outlived its signals.
all_over() {
  wait_for 60 eval '[[ -z $(squeue -h -u "$E2E_USER" -o %j | grep "^pxc-cold-") ]]'
  wait_for 30 eval '! pgrep -u "$E2E_USER" -x squashfuse_ll'
  wait_for 30 eval '! ls -A "$E2E_BASE/$(user_uid)" | grep -q "^\.pyxis_cache_mnt\."'
  assert_node_idle
  ! grep -q "JOB NOT ENDING WITH SIGNALS" "$E2E_TMP/slurmd/slurmd.log" || false
}

@test "cold signals bwrap: every path's plain, warm and cold sruns start at once" { use_runtime bwrap; start_all; }
@test "cold signals bwrap: scancel --signal=USR1" { use_runtime bwrap; scancel_signal USR1; }
@test "cold signals bwrap: scancel --signal=USR2" { use_runtime bwrap; scancel_signal USR2; }
@test "cold signals bwrap: scancel --signal=TERM" { use_runtime bwrap; scancel_signal TERM; }
@test "cold signals bwrap: scancel --signal=INT" { use_runtime bwrap; scancel_signal INT; }
@test "cold signals bwrap: scancel --signal=HUP" { use_runtime bwrap; scancel_signal HUP; }
@test "cold signals bwrap: a plain scancel" { use_runtime bwrap; plain_scancel; }
@test "cold signals bwrap: scontrol suspend then resume" { use_runtime bwrap; suspend_resume; }
@test "cold signals bwrap: srun --signal=USR1@30" { use_runtime bwrap; srun_signal_at; }
@test "cold signals bwrap: the time limit's TERM then KILL" { use_runtime bwrap; time_limit; }
@test "cold signals bwrap: every path over: no daemon, mount point or job left, the node idle" { use_runtime bwrap; all_over; }

@test "cold signals enroot: every path's plain, warm and cold sruns start at once" { use_runtime enroot; start_all; }
@test "cold signals enroot: scancel --signal=USR1" { use_runtime enroot; scancel_signal USR1; }
@test "cold signals enroot: scancel --signal=USR2" { use_runtime enroot; scancel_signal USR2; }
@test "cold signals enroot: scancel --signal=TERM" { use_runtime enroot; scancel_signal TERM; }
@test "cold signals enroot: scancel --signal=INT" { use_runtime enroot; scancel_signal INT; }
@test "cold signals enroot: scancel --signal=HUP" { use_runtime enroot; scancel_signal HUP; }
@test "cold signals enroot: a plain scancel" { use_runtime enroot; plain_scancel; }
@test "cold signals enroot: scontrol suspend then resume" { use_runtime enroot; suspend_resume; }
@test "cold signals enroot: srun --signal=USR1@30" { use_runtime enroot; srun_signal_at; }
@test "cold signals enroot: the time limit's TERM then KILL" { use_runtime enroot; time_limit; }
@test "cold signals enroot: every path over: no daemon, mount point or job left, the node idle" { use_runtime enroot; all_over; }
