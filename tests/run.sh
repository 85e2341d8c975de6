#!/usr/bin/env bash
# Every test suite, as `make test` runs them (as root, after `make bootstrap-test stub`):
#   bash tests/run.sh
# Six lanes side by side, since most of the suites' time is waiting (for Slurm, for
# processes, for locks), not computing:
#   slurm         the e2e suite but for the other lanes' files, with the fault suite's cases on Slurm
#                 (tests/faults/*.bats: srun32.bats, stub.bats, fuse.bats, cancel.bats): one private
#                 Slurm for every srun case but
#   pyxis_bwrap   pyxis's options and keys, named containers and root's records (tests/e2e/22, 57,
#   pyxis_enroot  58, 59), under bwrap and under enroot, each on a private Slurm of its own (its
#                 node, ports and users)
#   cold          cold steps: tests/e2e/70-fuse.bats and 75-cold-signals.bats, on a private Slurm
#                 of its own: mostly waiting for slurmctld's time limits and for unpacks
#   unit          the static checks (make check), the unit tests (deno test --parallel), then the
#                 ops suite (a 3-node Slurm of its own)
#   faults        the fault suite; it grades its cases on Slurm last, from the slurm lane's TAP
#                 (FAULTS_SLURM_TAP)
# Each suite's output goes to a log, printed whole when the suite ends; then a table of
# every suite's time and counts. Exit status: 0 when every suite passed.
# TEST_LANES=serial runs the same suites one after another (more time, the same checks).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo" || exit 2
export PATH=$repo/.tools/node_modules/.bin:$PATH
DENO=$repo/.tools/node_modules/deno/deno

lane=
if [[ ${1:-} == --lane ]]; then
  lane=$2 T=$TESTS_TMP
else
  if ((EUID != 0)); then
    echo "tests/run.sh: must run as root (the e2e, fault and ops suites start Slurm, mount and add users)" >&2
    exit 2
  fi
  [[ -x $DENO ]] || { echo "tests/run.sh: $DENO is missing (make bootstrap-test)" >&2; exit 2; }
  T=$(mktemp -d /tmp/pyxis-cache-tests.XXXXXX)
  chmod 755 "$T"
  export TESTS_TMP=$T
fi
# The slurm lane's TAP, for the fault suite: complete once $FAULTS_SLURM_TAP.rc exists.
export FAULTS_SLURM_TAP=$T/slurm.log

# suite NAME CMD...: runs one suite, its output in $T/NAME.log, its status and times in
# $T/NAME.status; prints the log when it ends.
suite() {
  local name=$1 t0 rc
  shift
  t0=$(date +%s)
  echo "=== $name: started: $*" | flock "$T/print.lock" cat
  "$@" >"$T/$name.log" 2>&1 </dev/null
  rc=$?
  echo "$rc $t0 $(date +%s)" >"$T/$name.status"
  {
    echo "=== $name: $( ((rc == 0)) && echo passed || echo "FAILED (exit $rc)") in $(($(date +%s) - t0))s, its output:"
    cat "$T/$name.log"
    echo "=== $name: end"
  } | flock "$T/print.lock" cat
  return "$rc"
}

# The cold and pyxis lanes' files, and their clusters: not the slurm lane's node names, ports or users.
COLD_FILES=(tests/e2e/70-fuse.bats tests/e2e/75-cold-signals.bats)
PYXIS_FILES=(tests/e2e/22-answers.bats tests/e2e/57-pyxis-options.bats tests/e2e/58-pyxis-keys.bats tests/e2e/59-named.bats)
slurm_lane() {
  local files=() f
  for f in tests/e2e/*.bats; do
    [[ " ${COLD_FILES[*]} ${PYXIS_FILES[*]} " == *" $f "* ]] || files+=("$f")
  done
  echo "$BASHPID" >"$FAULTS_SLURM_TAP.pid"
  suite slurm bash tests/e2e/run.sh "${files[@]}" tests/faults/*.bats
  echo $? >"$FAULTS_SLURM_TAP.rc"
}
pyxis_bwrap_lane() {
  E2E_RUNTIMES=bwrap E2E_USER=pxc-e2e-pyx E2E_USER2=pxc-e2e-pyx2 E2E_NODE=e2epyx E2E_PORTS="14000 15999" \
    suite pyxis_bwrap bash tests/e2e/run.sh "${PYXIS_FILES[@]}"
}
pyxis_enroot_lane() {
  E2E_RUNTIMES=enroot E2E_USER=pxc-e2e-pye E2E_USER2=pxc-e2e-pye2 E2E_NODE=e2epye E2E_PORTS="12000 13999" \
    suite pyxis_enroot bash tests/e2e/run.sh "${PYXIS_FILES[@]}"
}
cold_lane() {
  E2E_USER=pxc-e2e-cold E2E_USER2=pxc-e2e-cold2 E2E_NODE=e2ecold E2E_PORTS="18000 19999" \
    suite cold bash tests/e2e/run.sh "${COLD_FILES[@]}"
}
unit_lane() {
  suite check make -s check
  suite unit "$DENO" task test
  suite ops bash tests/ops/run.sh
}
faults_lane() {
  suite faults bash tests/faults/run.sh
}

# A lane started by the main run below, in a process group of its own.
if [[ -n $lane ]]; then
  "${lane}_lane"
  exit
fi

lanes=()
cleanup() {
  local pid
  # TERM reaches every process of a lane: the suites' own traps stop their Slurm and mounts.
  for pid in "${lanes[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  for pid in "${lanes[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make -s -C spank-stub all test-programs || exit 1
# enroot, built now if it must be: the slurm and unit lanes would both build it.
# shellcheck source=tests/lib/enroot.sh
source "$here/lib/enroot.sh"
test_enroot >/dev/null || true
start=$(date +%s)
if [[ ${TEST_LANES:-} == serial ]]; then
  slurm_lane
  pyxis_bwrap_lane
  pyxis_enroot_lane
  cold_lane
  unit_lane
  faults_lane
else
  for name in slurm pyxis_bwrap pyxis_enroot cold unit faults; do
    setsid bash "$here/run.sh" --lane "$name" &
    lanes+=($!)
  done
  for pid in "${lanes[@]}"; do wait "$pid"; done
  lanes=()
fi

# The table: each suite's time and what it counted.
counts() {
  local log=$T/$1.log
  case $1 in
    slurm | cold) echo "$(grep -c '^ok ' "$log") ok, $(grep -c '^not ok ' "$log") not ok (TAP of both runtime passes)" ;;
    pyxis_*) echo "$(grep -c '^ok ' "$log") ok, $(grep -c '^not ok ' "$log") not ok" ;;
    unit) sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ok|FAILED) \| ' | tail -1 ;;
    faults) grep -E '^# cases run:' "$log" | tail -1 | sed 's/^# //' ;;
    ops) grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 ;;
  esac
}
failed=0
echo "=== summary"
for name in check slurm pyxis_bwrap pyxis_enroot cold unit ops faults; do
  if [[ ! -e $T/$name.status ]]; then
    printf '%-12s %-7s\n' "$name" "NOT RUN"
    failed=1
    continue
  fi
  read -r rc t0 t1 <"$T/$name.status"
  ((rc == 0)) || failed=1
  printf '%-12s %-7s %4ss  %s\n' "$name" "$( ((rc)) && echo FAILED || echo ok)" "$((t1 - t0))" "$(counts "$name")"
done
echo "all suites: $(($(date +%s) - start))s on $(nproc) cores; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$failed"
