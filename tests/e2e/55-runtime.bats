# What the task gets, once per runtime: run.sh runs this file with
# E2E_RUNTIME=bwrap and again with E2E_RUNTIME=enroot, so the runtimes
# cannot drift apart.
load helpers

RUNTIME=${E2E_RUNTIME:-bwrap}

setup_file() { runtime_setup_file; }

teardown_file() { runtime_teardown_file; }

setup() {
  skip_without_runtime
}

cached() { srun_as_user --container-cache --container-image="$ALPHA" "$@"; }
cached_image() { srun_as_user --container-cache --container-image="$1" "${@:2}"; }

@test "$RUNTIME: the task sees the image, its own uid and groups, and srun's working directory" {
  run cached sh -c 'cat /etc/os-release; id -u; id -g; pwd'
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e alpha"'* ]]
  [ "${lines[-3]}" = "$(user_uid)" ]
  [ "${lines[-2]}" = "$(user_gid)" ]
  [ "${lines[-1]}" = "$E2E_WORK" ]
}

@test "$RUNTIME: the job's environment reaches every task (SLURM_*, a user variable)" {
  E2E_ENV="PXC_E2E_VAR=hello" run cached -n2 --oversubscribe \
    sh -c 'echo "task $SLURM_PROCID $PXC_E2E_VAR $SLURM_JOB_ID $(env | grep -c ^SLURM_)"'
  echo "$output"
  [ "$status" -eq 0 ]
  local sorted
  sorted=$(printf '%s\n' "${lines[@]}" | grep '^task ' | sort)
  [[ $(sed -n 1p <<<"$sorted") =~ ^task\ 0\ hello\ [0-9]+\ ([0-9]+)$ ]]
  ((BASH_REMATCH[1] >= 20))
  [[ $(sed -n 2p <<<"$sorted") =~ ^task\ 1\ hello\ [0-9]+\ [0-9]+$ ]]
  # One job id, the same in both tasks.
  [ "$(awk '{ print $4 }' <<<"$sorted" | sort -u | wc -l)" -eq 1 ]
}

@test "$RUNTIME: writing to / fails with Read-only file system; the working directory is writable" {
  run cached sh -c 'touch /pxc-e2e-file; echo written > pxc-e2e-runtime-file && cat pxc-e2e-runtime-file'
  echo "$output"
  [[ $output == *"Read-only file system"* ]]
  # stdout's line, wherever srun put it among the task's stderr.
  grep -qx written <<<"$output"
  [ "$(cat "$E2E_WORK/pxc-e2e-runtime-file")" = written ]
}

@test "$RUNTIME: srun's exit status is the task's" {
  run cached sh -c 'exit 7'
  [ "$status" -eq 7 ]
}

@test "$RUNTIME: scancel --signal=USR1 reaches the task, and srun exits with the task's status" {
  local out=$E2E_TMP/usr1.$RUNTIME.out
  as "$E2E_USER" srun --container-cache --container-image="$ALPHA" --job-name=pxc-usr1 \
    sh -c 'trap "echo GOT_USR1; exit 3" USR1; echo ready; while :; do sleep 0.1; done' >"$out" 2>&1 3>&- &
  local step=$!
  wait_for 60 grep -q ready "$out"
  scancel --signal=USR1 --name=pxc-usr1
  local status=0
  wait "$step" || status=$?
  cat "$out"
  [ "$status" -eq 3 ]
  grep -q GOT_USR1 "$out"
}

@test "$RUNTIME: srun --pty runs an interactive shell in the container" {
  run as "$E2E_USER" timeout 60 script -qec \
    "srun --pty --container-cache --container-image=$ALPHA sh" /dev/null <<<'echo "PTY_$((6 * 7)) $(cat /etc/os-release | grep ^NAME=)"; exit 5'
  echo "$output"
  [ "$status" -eq 5 ]
  [[ $output == *'PTY_42 NAME="pyxis-cache e2e alpha"'* ]]
}

@test "$RUNTIME: a home that does not exist on the host, and no /run/enroot" {
  local before=
  if [[ -e /run/enroot ]]; then
    # Made by an enroot run as root on this machine: root's 0700, so a step
    # that needed it would fail; it must still be left as it is.
    ! as "$E2E_USER" test -w /run/enroot || skip "/run/enroot exists and $E2E_USER can write to it"
    before=$(ls -la --time-style=full-iso /run/enroot)
  fi
  E2E_ENV="HOME=/nonexistent/$E2E_USER" run cached sh -c 'echo "home=$HOME"; cat /etc/os-release'
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e alpha"'* ]]
  if [[ -n $before ]]; then [ "$(ls -la --time-style=full-iso /run/enroot)" = "$before" ]; else [ ! -e /run/enroot ]; fi
  [ ! -e "/nonexistent/$E2E_USER" ]
}

@test "$RUNTIME: 16 concurrent steps of one entry all start" {
  run cached true
  [ "$status" -eq 0 ]
  local i pids=() failed=0
  for i in $(seq 16); do
    as "$E2E_USER" srun --oversubscribe --container-cache --container-image="$ALPHA" \
      sh -c "grep -q 'e2e alpha' /etc/os-release && echo started $i" >"$E2E_TMP/concurrent.$i" 2>&1 3>&- &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || failed=$((failed + 1)); done
  cat "$E2E_TMP"/concurrent.*
  [ "$failed" -eq 0 ]
  [ "$(cat "$E2E_TMP"/concurrent.* | grep -c '^started ')" -eq 16 ]
}

@test "$RUNTIME: an entry in use survives a forced collection" {
  local name marker=$E2E_WORK/pxc-e2e-runtime-started release=$E2E_WORK/pxc-e2e-runtime-release
  name=$(entry_name "$ALPHA")
  rm -f "$marker" "$release"
  as "$E2E_USER" srun --container-cache --container-image="$ALPHA" \
    sh -c "touch $marker; while [ ! -e $release ]; do sleep 0.1; done; cat /etc/os-release" \
    >"$E2E_TMP/runtime-gc.out" 2>&1 3>&- &
  local step=$!
  wait_for 60 test -e "$marker"
  run cli gc --json --set container_cache_gc_high=2 --set container_cache_gc_low=1
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'"skippedInUse":[{"name":"'"$name"'"'* ]]
  [ -d "$E2E_BASE/$(user_uid)/$name" ]
  touch "$release"
  local status=0
  wait "$step" || status=$?
  [ "$status" -eq 0 ]
  grep -q '"pyxis-cache e2e alpha"' "$E2E_TMP/runtime-gc.out"
}

@test "$RUNTIME: a cold step starts from a FUSE mount (the image, root's files the user's, / read-only, the task's status); the next step uses the entry" {
  command -v squashfuse_ll >/dev/null || skip "squashfuse_ll not installed (make bootstrap-test installs it)"
  [[ -c /dev/fuse ]] || skip "no /dev/fuse"
  local image
  image=$(fresh_image "cold-$RUNTIME")
  run cached_image "$image" sh -c "cat /etc/os-release; id -u; stat -c %u /bin/busybox /root; touch /x; $ROOT_FS; exit 7"
  echo "$output"
  [ "$status" -eq 7 ]
  [[ $output == *'PRETTY_NAME="pyxis-cache e2e alpha"'* ]]
  [[ $output == *"Read-only file system"* ]]
  [[ $(grep -c "^$(user_uid)\$" <<<"$output") -eq 3 ]]
  grep -qx overlay <<<"$output"
  grep -q "$(entry_name "$image") is being unpacked: the step starts from a FUSE mount" "$E2E_TMP/slurmd/slurmd.log"
  wait_entry "$image"
  run cached_image "$image" sh -c "cat /etc/os-release; $ROOT_FS"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'PRETTY_NAME="pyxis-cache e2e alpha"'* ]]
  ! grep -qx overlay <<<"$output"
}
