# The SPANK stub against the job user's own child (its reply, its stop, its descriptors):
# run by tests/faults/run.sh (cases/50-stub.sh) through the e2e harness.
BATS_TEST_DIRNAME=$E2E_REPO/tests/e2e
load "$E2E_REPO/tests/e2e/helpers"

# What the job user runs against the stub's 'pyxis-cache reuse' child (a child of
# slurmstepd running as them, its stdout a memfd slurmstepd reads afterwards):
# tests/faults/attack.py child MODE, which waits for the child itself (inotify on
# the command: its shell opening it), so no try depends on timing:
#   rewrite  hold the child with ptrace at its exit, its reply written, and rewrite
#            the reply through /proc/<pid>/fd/1 with one that has a path without '/'
#   stop     SIGSTOP it and leave it stopped
# MARKER.seen gets the child's pid once it is found; MARKER once the attack landed
# (MARKER.late: the child was found only as it ended).
setup_file() {
  mkdir -p "$E2E_TMP/stub"
  chmod 1777 "$E2E_TMP/stub"
}

teardown_file() {
  if [[ -e $E2E_TMP/slurmd/dirty ]]; then
    slurmd_restart_with
    rm -f "$E2E_TMP/slurmd/dirty"
  fi
}

# attack MODE SRUN-ARGS...: srun as the user while attack.py child MODE watches for
# the step's reuse child. A try in which the child was found in time must land; only
# a try in which it was not (no child seen, or seen only as it ended) is tried again,
# 3 tries at most.
attack() {
  local mode=$1 try marker=$E2E_TMP/stub/marker pid apid
  shift
  for try in 1 2 3; do
    rm -f "$marker" "$marker".*
    # The attack is on the command's child: root's record of an earlier answer would start a
    # warm step without one (spank-stub/answers.c; removing the records is always safe).
    rm -rf "$E2E_BASE/.pyxis_cache_answers"
    as "$E2E_USER" /usr/bin/python3 "$E2E_REPO/tests/faults/attack.py" child "$mode" "$E2E_CLI" "$marker" \
      >"$E2E_TMP/stub/attack.out" 2>&1 &
    apid=$!
    # The attacker's watch is set before the step starts.
    until [[ -s $marker.ready ]] || ! kill -0 "$apid" 2>/dev/null; do sleep 0.01; done
    [[ -s $marker.ready ]] || { echo "attack.py did not start: $(cat "$E2E_TMP/stub/attack.out")" >&2; return 1; }
    # Its wake-ups must not wait behind a busy machine's run queue: with load 11 on 2 cores the
    # first came 0.5 s after the child's first open, when the child was long gone. Real-time
    # priority (it mostly sleeps, and each wake-up is a 2 ms look at /proc) puts it first.
    chrt -f -p 10 "$(cat "$marker.ready")" >/dev/null || renice -n -20 -p "$(cat "$marker.ready")" >/dev/null
    SECONDS=0
    run as "$E2E_USER" timeout 60 srun "$@"
    elapsed=$SECONDS
    pid=$(cat "$marker.ready")
    kill "$pid" 2>/dev/null || true
    wait "$apid" || true
    if [[ -s $marker ]]; then
      echo "# the attack landed on try $try, srun took ${elapsed}s" >&3
      # Old code leaves a stopped child, and slurmstepd waiting for it: free them.
      kill -KILL "$(cat "$marker")" 2>/dev/null || true
      return 0
    fi
    if [[ -s $marker.seen && ! -e $marker.late ]]; then
      echo "the attack found the child (pid $(cat "$marker.seen")) but did not land: $(cat "$E2E_TMP/stub/attack.out")" >&2
      return 1
    fi
    echo "# try $try: no reuse child found in time (srun exited $status: $output); attack.py: $(cat "$E2E_TMP/stub/attack.out")" >&3
  done
  echo "no reuse child was found in time in $try tries" >&2
  return 1
}

@test "stub: a reply rewritten in the child's stdout memfd fails the step with one line" {
  cli reuse --image "$ALPHA" --uid "$(user_uid)" --gid "$(user_gid)" >/dev/null
  local before
  before=$(grep -ciE 'segfault|signal 11|Segmentation|core dump' "$E2E_TMP/slurmd/slurmd.log" || true)
  attack rewrite --container-cache --container-image="$ALPHA" true
  echo "$output"
  [ "$status" -ne 0 ]
  [ "$status" -ne 124 ]
  # One clear line: the checked name was not there (held with ptrace, the child
  # never stopped in a way slurmstepd sees: the rewritten reply is what it read).
  [ "$(grep -c 'pyxis-cache: ' <<<"$output")" -eq 1 ]
  [[ $output == *"pyxis-cache: reuse: printed no entry name of uid $(user_uid)"* ]]
  [[ $output != *noslash* ]]
  # slurmstepd did not crash.
  [ "$(grep -ciE 'segfault|signal 11|Segmentation|core dump' "$E2E_TMP/slurmd/slurmd.log" || true)" = "$before" ]
  assert_node_idle
  # and the next step runs.
  run srun_as_user --container-cache --container-image="$ALPHA" cat /etc/os-release
  [ "$status" -eq 0 ]
}

@test "stub: a stopped child is killed and fails the step promptly" {
  cli reuse --image "$ALPHA" --uid "$(user_uid)" --gid "$(user_gid)" >/dev/null
  attack stop --container-cache --container-image="$ALPHA" true
  echo "$output"
  echo "# ${elapsed}s" >&3
  [ "$status" -ne 0 ]
  [ "$status" -ne 124 ]
  [ "$elapsed" -lt 20 ]
  [ "$(grep -c 'pyxis-cache: ' <<<"$output")" -eq 1 ]
  [[ $output == *"pyxis-cache: reuse: was stopped (SIGSTOP or the like), killed"* ]]
  assert_node_idle
}

@test "stub: a FIFO in place of the entry's lock fails the step at once" {
  # The user's own entry, its lock file swapped for a FIFO: root's open(2) of it
  # must not wait for a writer that never comes.
  local entry lock
  cli reuse --image "$ALPHA" --uid "$(user_uid)" --gid "$(user_gid)" >/dev/null
  entry=$E2E_BASE/$(user_uid)/$(entry_name "$ALPHA")
  lock=$entry/.pyxis_cache_lock
  as "$E2E_USER" sh -c "mv '$lock' '$lock.saved' && mkfifo '$lock'"
  SECONDS=0
  run as "$E2E_USER" timeout 60 srun --container-cache --container-image="$ALPHA" true
  local elapsed=$SECONDS
  # A writer frees whoever still waits in open(2) (the code before O_NONBLOCK did).
  timeout 2 sh -c "exec 3>'$lock'" || true
  as "$E2E_USER" sh -c "rm -f '$lock' && mv '$lock.saved' '$lock'"
  echo "$output"
  [ "$status" -ne 0 ]
  [ "$status" -ne 124 ]
  [ "$elapsed" -lt 20 ]
  [[ $output == *"pyxis-cache: $lock: not a regular file"* ]]
  assert_node_idle
}

@test "stub: the command's children inherit no descriptor from slurmstepd" {
  # A stand-in for the command, configured by root: lists its descriptors, then runs the real one.
  local fake=$E2E_TMP/fd-cli
  cat >"$fake" <<FAKE
#!/bin/bash
ls -l /proc/\$\$/fd >"$E2E_TMP/stub/fds.\$1.\$\$" 2>&1
exec "$E2E_CLI" "\$@"
FAKE
  chmod 755 "$fake"
  rm -f "$E2E_TMP"/stub/fds.*
  touch "$E2E_TMP/slurmd/dirty"
  slurmd_restart_with "required $E2E_PLUGIN container_cache_data_path=$E2E_BASE container_cache_runtime=bwrap container_cache_cli=$fake"
  rm -rf "${E2E_BASE:?}/$(user_uid)"
  run srun_as_user --container-cache --container-image="$ALPHA" true
  [ "$status" -eq 0 ]
  run srun_as_user --container-image="$ALPHA" true
  [ "$status" -eq 0 ]
  ls "$E2E_TMP"/stub/fds.prepare.* "$E2E_TMP"/stub/fds.reuse.* >/dev/null
  cat "$E2E_TMP"/stub/fds.*
  # 0-2, and bash's own 255 (the script it reads): nothing else.
  local extra
  extra=$(cat "$E2E_TMP"/stub/fds.* | awk '$9 ~ /^[0-9]+$/ && $9 > 2 && $9 != 255')
  echo "inherited: $extra"
  [ -z "$extra" ]
}

# The runtime cases run once per runtime: tests/e2e/run.sh runs this file in
# its bwrap pass and again in its enroot pass (E2E_RUNTIME).
RUNTIME=${E2E_RUNTIME:-bwrap}

# runtime_stand_in BODY: a stand-in for the runtime at the head of slurmd's
# PATH, where slurmstepd finds it; BODY runs first, then the real one. slurmd
# is restarted with it (teardown_file restores slurmd).
runtime_stand_in() {
  local dir=$E2E_TMP/stand-in-$RUNTIME real
  if [[ $RUNTIME == enroot ]]; then real=$E2E_ENROOT; else real=$(command -v bwrap); fi
  mkdir -p "$dir"
  printf '#!/bin/bash\n%s\nexec %q "$@"\n' "$1" "$real" >"$dir/$RUNTIME"
  chmod 755 "$dir/$RUNTIME"
  touch "$E2E_TMP/slurmd/dirty"
  E2E_SLURMD_PATH=$dir:$PATH slurmd_restart_with "$(plugstack_line "container_cache_runtime=$RUNTIME")"
}

skip_without_runtime() {
  [[ $RUNTIME == bwrap || -n ${E2E_ENROOT:-} ]] || skip "enroot is not installed and could not be built"
}

@test "stub: a runtime stopped before its container is set up is killed and fails the step promptly ($RUNTIME)" {
  # The runtime's own process stopping is what the stub waits for, but only
  # inside the rootfs: stopped anywhere else (here before it even starts), it
  # is a stopped child like any other. The code before took any stop of
  # enroot for its container being ready, and waited for bwrap's pid for ever.
  skip_without_runtime
  runtime_stand_in 'kill -STOP $$'
  SECONDS=0
  run as "$E2E_USER" timeout 60 srun --container-cache --container-image="$ALPHA" cat /etc/os-release
  local elapsed=$SECONDS
  echo "$output (${elapsed}s)"
  [ "$status" -ne 0 ]
  [ "$status" -ne 124 ]
  [ "$elapsed" -lt 20 ]
  [[ $output != *'pyxis-cache e2e alpha'* ]]
  [ "$(grep -c 'pyxis-cache: ' <<<"$output")" -eq 1 ]
  [[ $output == *"pyxis-cache: $RUNTIME: was stopped (SIGSTOP or the like), killed"* ]]
  # Nothing of it is left, stopped or not.
  ! pgrep -f "$E2E_TMP/stand-in-$RUNTIME" >/dev/null || false
  assert_node_idle
}

@test "stub: the runtime inherits no descriptor from slurmstepd but bwrap's --info-fd ($RUNTIME)" {
  skip_without_runtime
  local fds=$E2E_TMP/stub/rt-fds.$RUNTIME extra
  rm -f "$fds"
  # Simple commands: bash's own saved copies of a group's redirected fds (10, 11) would show.
  runtime_stand_in "echo \"args: \$*\" >'$fds'; ls -l /proc/\$\$/fd >>'$fds' 2>&1"
  run srun_as_user --container-cache --container-image="$ALPHA" cat /etc/os-release
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'pyxis-cache e2e alpha'* ]]
  cat "$fds"
  # 0-2, bash's own 255, and for bwrap the one descriptor its arguments name.
  extra=$(awk -v rt="$RUNTIME" '$9 ~ /^[0-9]+$/ && $9 > 2 && $9 != 255 && !(rt == "bwrap" && $9 == 3)' "$fds")
  echo "inherited: $extra"
  [ -z "$extra" ]
  [[ $RUNTIME != bwrap ]] || grep -q -- '--info-fd 3 ' "$fds"
}
