# A step cancelled while it waits in user_init (for its entry's lock, for its own unpack,
# for another step's unpack of the same image, for its FUSE mounter) ends at once: run by tests/faults/run.sh
# (cases/56-cancel.sh) through the e2e harness. Slurm signals no process of a step before
# its tasks start (slurmd's terminate waits on the step until user_init returns, up to
# 2 minutes, and then the unkillable-step timer runs): the stub's waits ask slurmctld.
BATS_TEST_DIRNAME=$E2E_REPO/tests/e2e
load "$E2E_REPO/tests/e2e/helpers"

teardown() {
  local pid
  for pid in ${STOPPED:-}; do kill -KILL "$pid" 2>/dev/null || true; done
  for job in ${JOBS:-}; do scancel --quiet --name="$job" 2>/dev/null || true; done
  if [[ -e $E2E_TMP/slurmd/dirty ]]; then
    wait_for 240 eval '[[ $(node_state) != *completing* ]]' || true
    slurmd_restart_with
    rm -f "$E2E_TMP/slurmd/dirty"
  fi
  [[ $(node_state) != *drain* ]] || scontrol update nodename="$E2E_NODE" state=resume
}

# job_id NAME: the id of the job of that name (once it is there).
job_id() {
  local name=$1
  wait_for 30 eval '[[ -n $(squeue -h -n "$name" -o %i) ]]'
  squeue -h -n "$name" -o %i
}

# step_reached JOB STAMP: slurmd's log has the stub's debug stamp STAMP for step JOB.0.
step_reached() { grep -q "\[$1\.0\] debug:  pyxis-cache: at $2 " "$E2E_TMP/slurmd/slurmd.log"; }

# ended_within SECONDS JOB...: every job's slurmstepd is gone (its socket in slurmd's spool,
# which it removes as it ends) within SECONDS of now, and the node idle; says how long it took.
ended_within() {
  local limit=$1 t0=$SECONDS job
  shift
  for job; do
    wait_for "$limit" eval '[[ ! -e $E2E_TMP/slurmd/spool/${E2E_NODE}_$job.0 ]]' || {
      echo "slurmstepd of job $job still there after $((SECONDS - t0)) s" >&2
      return 1
    }
  done
  echo "# the steps ended $((SECONDS - t0)) s after scancel" >&3
  assert_node_idle
  ! grep -q "JOB NOT ENDING WITH SIGNALS" "$E2E_TMP/slurmd/slurmd.log" || false
}

@test "stub cancel: a step waiting in user_init for its entry's lock (the user holds it LOCK_EX) ends at once on scancel" {
  local image lock job
  image=$(fresh_image cancel-lock)
  srun_as_user --container-cache --container-image="$image" true
  wait_entry "$image"
  lock=$E2E_BASE/$(user_uid)/$(entry_name "$image")/.pyxis_cache_lock
  # No record of root's: the step asks the command, then locks (answers.c locks alike).
  rm -rf "$E2E_BASE/.pyxis_cache_answers"
  as "$E2E_USER" flock -x "$lock" sleep 100 3>&- &
  wait_for 10 eval '! flock -s -n "$lock" true'
  JOBS=pxc-cancel-lock
  as "$E2E_USER" srun --job-name=pxc-cancel-lock --container-cache --container-image="$image" echo ran \
    >"$E2E_TMP/cancel-lock.out" 2>&1 3>&- &
  job=$(job_id pxc-cancel-lock)
  wait_for 30 step_reached "$job" reply
  scancel --name=pxc-cancel-lock
  # Before: slurmstepd polled the lock for its 60 s (the node completing all along).
  ended_within 20 "$job"
  cat "$E2E_TMP/cancel-lock.out"
  ! grep -q '^ran' "$E2E_TMP/cancel-lock.out" || false
}

@test "stub cancel: a cold step waiting in user_init for its unpack (container_cache_fuse=no), and a second one for the first's, end at once on scancel" {
  local src=$E2E_TMP/cancel-src image pid= try job1 job2
  mkdir -p "$src/bin" "$src/etc" "$src/many"
  cp "$(command -v busybox)" "$src/bin/busybox"
  ln -sf busybox "$src/bin/sh"
  # Many files: the unpack lasts long enough to be seen, and stopped, by its user.
  for i in $(seq 3000); do echo "$i" >"$src/many/$i"; done
  touch "$E2E_TMP/slurmd/dirty"
  slurmd_restart_with "$(plugstack_line container_cache_fuse=no)"
  JOBS="pxc-cancel-unpack1 pxc-cancel-unpack2"
  for try in 1 2 3; do
    image=$E2E_TMP/images/cancel-unpack-$try.sqsh
    mksquashfs "$src" "$image" -quiet -noappend >/dev/null
    chmod 644 "$image"
    as "$E2E_USER" srun --job-name=pxc-cancel-unpack1 --container-cache --container-image="$image" echo ran \
      >"$E2E_TMP/cancel-unpack1.out" 2>&1 3>&- &
    # The user stops their own unsquashfs: the step's reuse waits for it (up to 30 minutes).
    for _ in $(seq 3000); do
      pid=$(pgrep -u "$E2E_USER" -x unsquashfs) && break
      [[ -n $(squeue -h -n pxc-cancel-unpack1) ]] || sleep 0.01
    done
    if [[ -n $pid ]] && kill -STOP $pid; then
      STOPPED=$pid
      break
    fi
    wait_for 60 eval '[[ -z $(squeue -h -n pxc-cancel-unpack1) ]]'
  done
  [[ -n ${STOPPED:-} ]]
  job1=$(job_id pxc-cancel-unpack1)
  # The second step's reuse waits for the first's unpack (its creation lock).
  as "$E2E_USER" srun --job-name=pxc-cancel-unpack2 --container-cache --container-image="$image" echo ran \
    >"$E2E_TMP/cancel-unpack2.out" 2>&1 3>&- &
  job2=$(job_id pxc-cancel-unpack2)
  wait_for 30 step_reached "$job2" call
  scancel --name=pxc-cancel-unpack1
  scancel --name=pxc-cancel-unpack2
  # Before: each stepd waited for its reuse (30 minutes at most); slurmd's terminate gave up
  # on the step after 2 minutes and the unkillable-step timer drained the node a minute later.
  ended_within 20 "$job1" "$job2"
  cat "$E2E_TMP/cancel-unpack1.out" "$E2E_TMP/cancel-unpack2.out"
  ! grep -q '^ran' "$E2E_TMP/cancel-unpack1.out" "$E2E_TMP/cancel-unpack2.out" || false
}

@test "stub cancel: a cold step whose FUSE mounter its user stopped ends at once on scancel" {
  local image job try landed= marker=$E2E_TMP/cancel-mounter/marker out=$E2E_TMP/cancel-mounter.out
  JOBS=pxc-cancel-mounter
  # The attack's notes, written as the user.
  mkdir -p "$E2E_TMP/cancel-mounter"
  chmod 1777 "$E2E_TMP/cancel-mounter"
  for try in 1 2 3; do
    image=$(fresh_image "cancel-mounter-$try")
    rm -f "$marker"
    # The mounter becomes the job user in its namespace (uid 0 there): the user can stop it
    # once its mount point appears, and slurmstepd waits for its next message.
    as "$E2E_USER" python3 "$E2E_REPO/tests/faults/fuse_attack.py" stop 60 "$marker" "$E2E_BASE/$(user_uid)" 3>&- &
    as "$E2E_USER" srun --job-name=pxc-cancel-mounter --container-cache --container-image="$image" echo ran \
      >"$out" 2>&1 3>&- &
    wait_for 60 grep -q -e '^stopped' -e '^nothing' -e '^no mount' "$marker"
    cat "$marker"
    STOPPED=$(sed -n 's/^stopped //p' "$marker")
    job=$(squeue -h -n pxc-cancel-mounter -o %i)
    if [[ -n $STOPPED && -n $job ]]; then
      scancel --name=pxc-cancel-mounter
      # Before: slurmstepd waited for the stopped mounter its MOUNT_TIMEOUT_MS (60 s), the
      # node completing all along (Slurm signals nothing of a step in user_init).
      ended_within 20 "$job"
      cat "$out"
      # The stop came before the mounter's last message: the step never got past its mount,
      # and its task never ran. (A stop after it is a try missed: the step ran on, as it should.)
      if ! step_reached "$job" runtime; then
        ! grep -q '^ran' "$out" || false
        grep -q "\[$job\.0\] .*the step was cancelled during the mount" "$E2E_TMP/slurmd/slurmd.log"
        # The mount point the mounter made before it was stopped, never named to slurmstepd, went with it.
        ! ls -A "$E2E_BASE/$(user_uid)" | grep -q "^\.pyxis_cache_mnt\..*\.$job\.0\." || false
        landed=$try
        break
      fi
    fi
    wait_for 120 eval '[[ -z $(squeue -h -n pxc-cancel-mounter) ]]'
    for pid in $STOPPED; do kill -KILL "$pid" 2>/dev/null || true; done
  done
  echo "# the mounter was stopped in time at try ${landed:-never}" >&3
  [[ -n $landed ]]
}
