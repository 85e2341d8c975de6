# A cold step's FUSE mount against its own job user: run by
# tests/faults/run.sh (cases/55-fuse.sh) through the e2e harness. The user can stop the
# mount's daemon (it runs as them) and take its /dev/fuse descriptor (pidfd_getfd):
# neither may hold slurmstepd without bound, nor drain the node.
BATS_TEST_DIRNAME=$E2E_REPO/tests/e2e
load "$E2E_REPO/tests/e2e/helpers"

ATTACK=$E2E_REPO/tests/faults/fuse_attack.py

setup_file() {
  mkdir -p "$E2E_TMP/fuse-attack"
  chmod 1777 "$E2E_TMP/fuse-attack"
}

setup() {
  command -v squashfuse_ll >/dev/null || skip "squashfuse_ll not installed (make bootstrap-test installs it)"
  [[ -c /dev/fuse ]] || skip "no /dev/fuse"
  MARKER=$E2E_TMP/fuse-attack/$BATS_TEST_NUMBER
  rm -f "$MARKER"
}

# What an attack left: its tool and the daemon it stopped; a node it drained (old code).
teardown() {
  attack_over
  [[ -z ${FUSE_MODE:-} ]] || chmod "$FUSE_MODE" /dev/fuse
  [[ -z ${OWNFS:-} ]] || umount -l "$OWNFS" 2>/dev/null || true
  [[ $(node_state) != *drain* ]] || scontrol update nodename="$E2E_NODE" state=resume
}

# attack_over: the attack's tool and server killed, the daemon it stopped resumed, the job gone.
attack_over() {
  local pid
  pid=$(sed -n 's/^pid //p' "$MARKER" 2>/dev/null) || true
  [[ -z $pid ]] || kill -KILL "$pid" 2>/dev/null || true
  pid=$(sed -n 's/^server //p' "$MARKER" 2>/dev/null) || true
  [[ -z $pid ]] || kill -KILL "$pid" 2>/dev/null || true
  pid=$(sed -n 's/^stolen \([0-9]*\).*/\1/p' "$MARKER" 2>/dev/null) || true
  [[ -z $pid ]] || kill -CONT "$pid" 2>/dev/null || true
  [[ -z ${JOB:-} ]] || scancel --quiet --name="$JOB" 2>/dev/null || true
  [[ -z ${JOB:-} ]] || wait_for 120 eval '[[ -z $(squeue -h -n "$JOB") ]]' || true
}

# step_over: the job is gone, the node idle and never drained, no mount point left (one that is
# left is named, and removed so that the next case starts without it).
step_over() {
  assert_node_idle
  ! grep -q "JOB NOT ENDING WITH SIGNALS" "$E2E_TMP/slurmd/slurmd.log" || false
  wait_for 30 eval '! ls -A "$E2E_BASE/$(user_uid)" | grep -q "^\.pyxis_cache_mnt\."' || {
    echo "mount points left: $(ls -A "$E2E_BASE/$(user_uid)" | grep "^\.pyxis_cache_mnt\.")"
    find "$E2E_BASE/$(user_uid)" -maxdepth 1 -name '.pyxis_cache_mnt.*' -type d -empty -delete
    return 1
  }
}

# root_in_fuse: every process of real uid 0 asleep in a FUSE request (wchan) with this
# cache's mounts in its view, as "PID COMM WCHAN".
root_in_fuse() {
  local d uid wchan line
  for d in /proc/[0-9]*; do
    uid=
    while read -r line; do
      [[ $line == Uid:* ]] && { read -r _ uid _ <<<"$line"; break; }
    done 2>/dev/null <"$d/status"
    [[ $uid == 0 ]] || continue
    wchan=$(cat "$d/wchan" 2>/dev/null) || continue
    [[ $wchan == *fuse* || $wchan == request_wait_answer ]] || continue
    grep -qF "$E2E_BASE/" "$d/mountinfo" 2>/dev/null || continue
    echo "${d#/proc/} $(cat "$d/comm" 2>/dev/null) $wchan"
  done
}

# cancel_held_step: scancel the step ($step, its output $out) that a task not yet exec'd holds in
# the user's FUSE server; the mount's guard aborts the connection once that task stays in one
# wait for CHILD_FUSE_STALL_SECONDS (30 s), and the step ends with nothing of it run.
cancel_held_step() {
  SECONDS=0
  scancel --name="$JOB"
  wait_for 60 eval '[[ -z $(squeue -h -n "$JOB") ]]'
  wait_for 30 eval '! kill -0 '"$step"
  echo "# the step ended ${SECONDS}s after scancel" >&3
  cat "$out"
  step_over
  ! grep -q '^ran' "$out" || false
}

@test "fuse attack: the mount served by the user to all but a task not yet exec'd (real uid 0) holds slurmstepd no longer than the guard's bound; the node stays idle" {
  local image first=${E2E_WORK#/} out=$E2E_TMP/fuse-rootwalk.out
  first=${first%%/*}
  JOB=pxc-fuse-rootwalk
  local try step
  # The attack races the task's chdir (on a loaded machine the chdir may come first): tried again then.
  for try in 1 2 3; do
    image=$(fresh_image "fuse-rootwalk-$try")
    # The user takes the step's connection once its daemon waits for a request, serves it with
    # a squashfuse_ll of their own, never answers a process of real uid 0, and keeps the first
    # name of the working directory out of the kernel's cache so that any walk to it asks.
    # Until Slurm execs the task, the task is such a process: its chdir to the working
    # directory in the container (task_init, as the job user since 08323df) waits for an
    # answer that never comes. (Root's own chdir before 08323df never reached the server:
    # the kernel refuses a request from a uid the mount's user namespace does not map.)
    rm -f "$MARKER" "$out"
    as "$E2E_USER" python3 "$ATTACK" rootwalk 200 "$MARKER" "$image" "$first" 3>&- &
    wait_for 30 grep -q '^watching' "$MARKER"
    as "$E2E_USER" srun --job-name="$JOB" --container-cache --container-image="$image" \
      sh -c 'echo ran in $(pwd); sleep 300' >"$out" 2>&1 3>&- &
    step=$!
    wait_for 60 eval 'grep -q "^ran" "$out" || grep -q "^root " "$MARKER"' || true
    cat "$out" "$MARKER"
    grep -q '^stolen' "$MARKER" && grep -q '^root ' "$MARKER" && break
    attack_over
    wait "$step" 2>/dev/null || true
  done
  echo "# the attack landed on try $try" >&3
  echo "# root in a FUSE request before scancel: $(root_in_fuse | tr '\n' ' ')" >&3
  grep -q '^stolen' "$MARKER"
  grep -q '^root ' "$MARKER"
  # Slurm signals no task before it execs it (scancel's SIGKILL does not reach one): it
  # waited for the task until UnkillableStepTimeout, then 'STEPD TERMINATED ... DUE TO JOB
  # NOT ENDING WITH SIGNALS' (production: the node drained, 'Kill task failed').
  cancel_held_step
  # No process of root is left in a request of the user's server.
  [[ -z $(root_in_fuse) ]]
}

@test "fuse attack: a task killed while the user holds its FUSE request ends with its step; the node stays idle" {
  local image trigger=$E2E_WORK/pxc-fuse-trigger
  JOB=pxc-fuse-hold
  image=$(fresh_image fuse-hold)
  as "$E2E_USER" rm -f "$trigger"
  # The task waits for the trigger, then looks up a name the mount was never asked for.
  as "$E2E_USER" srun --job-name="$JOB" --container-cache --container-image="$image" \
    sh -c "echo ready; while [ ! -e $trigger ]; do sleep 0.1; done; ls /pxc-never-looked-up; echo after" \
    >"$E2E_TMP/fuse-hold.out" 2>&1 3>&- &
  local step=$!
  wait_for 60 grep -q ready "$E2E_TMP/fuse-hold.out"
  # The user stops the daemon, takes its descriptor, and reads the requests without answering.
  as "$E2E_USER" python3 "$ATTACK" hold 200 "$MARKER" 3>&- &
  wait_for 30 grep -q '^stolen' "$MARKER"
  as "$E2E_USER" touch "$trigger"
  wait_for 30 grep -q '^holding' "$MARKER"
  scancel --name="$JOB"
  # SIGKILL cannot end a task in a request that is read and never answered: slurmstepd would
  # wait for it, and after UnkillableStepTimeout (60 s) drain the node. The mount's guard
  # aborts the connection a few seconds after the kill.
  wait_for 45 eval '[[ -z $(squeue -h -n "$JOB") ]]'
  wait "$step" || true
  cat "$E2E_TMP/fuse-hold.out"
  step_over
  # The attacker still holds its descriptor: the connection is aborted, not waited for.
  grep -q '^holding' "$MARKER"
  ! grep -q '^read:' "$MARKER" || [[ $(grep '^read:' "$MARKER") == *"No such device"* ]]
}

@test "fuse attack: the image swapped for a FIFO once the mount point appears, and the daemon's descriptor taken, do not hold slurmstepd" {
  local image link=$E2E_WORK/pxc-swap.sqsh fifo=$E2E_WORK/pxc-swap.fifo fifolink=$E2E_WORK/pxc-swap.fifolink try
  JOB=pxc-fuse-swap
  for try in 1 2 3 4 5; do
    image=$(fresh_image "fuse-swap-$try")
    rm -f "$MARKER"
    as "$E2E_USER" sh -c "rm -f $link $fifo $fifolink && ln -s $image $link && mkfifo $fifo && ln -s $fifo $fifolink"
    as "$E2E_USER" python3 "$ATTACK" swap 200 "$MARKER" "$E2E_BASE/$(user_uid)" "$link" "$fifolink" 3>&- &
    SECONDS=0
    as "$E2E_USER" srun --job-name="$JOB" --container-cache --container-image="$link" echo ran \
      >"$E2E_TMP/fuse-swap.out" 2>&1 3>&- &
    local step=$!
    # slurmstepd waits for the mount MOUNT_TIMEOUT_MS (60 s) at most; the attacker holds for
    # 200 s. Swapped after the daemon opened the image, the mount is made and a read the
    # attacker took holds the runtime's start (its exec from the mount): CHILD_FUSE_STALL_SECONDS
    # (30 s), the last test's attack.
    wait_for 100 eval '! kill -0 '"$step"
    local elapsed=$SECONDS
    cat "$E2E_TMP/fuse-swap.out" "$MARKER"
    echo "# srun ended after ${elapsed}s" >&3
    wait "$step" || true
    grep -q '^swapped' "$MARKER" && break
    teardown
  done
  grep -q '^swapped' "$MARKER"
  step_over
}

@test "fuse attack: the mount's reads held by the user while the runtime starts from it hold slurmstepd no longer than the stall bound" {
  local image out=$E2E_TMP/fuse-readhold.out step try
  JOB=pxc-fuse-readhold
  # The user takes the step's connection (before FUSE_INIT, or while its daemon waits for a
  # request) and serves it with a squashfuse_ll of their own, every request but the reads of
  # bwrap and the container's sh: the mount is made, and the runtime's start (bwrap's exec
  # of the container's sh) waits for a page the kernel's readahead asked for, in no FUSE
  # request (wchan folio_wait_bit_common), in a view where the mount is only the lower layer
  # of the container's overlay. The stub's wait for the
  # runtime saw neither: slurmstepd waited up to CHILD_TIMEOUT_SECONDS (30 minutes).
  # Taken while the daemon waits for a request, the descriptor may come after the runtime's
  # reads (a loaded machine): the attack is tried again.
  for try in 1 2 3; do
    image=$(fresh_image "fuse-readhold-$try")
    rm -f "$MARKER" "$out"
    as "$E2E_USER" python3 "$ATTACK" readhold 200 "$MARKER" "$image" 3>&- &
    wait_for 30 grep -q '^watching' "$MARKER"
    SECONDS=0
    as "$E2E_USER" srun --job-name="$JOB" --container-cache --container-image="$image" echo ran \
      >"$out" 2>&1 3>&- &
    step=$!
    wait_for 60 eval 'grep -q "^held read" "$MARKER" || ! kill -0 '"$step" || true
    grep -q '^held read' "$MARKER" && break
    cat "$out" "$MARKER"
    attack_over
    wait "$step" 2>/dev/null || true
  done
  echo "# the attack landed on try $try" >&3
  grep -q '^held read' "$MARKER"
  # A thread of the runtime in the same wait for CHILD_FUSE_STALL_SECONDS (30 s) has the
  # step's connection aborted: the runtime fails, and so does the step.
  wait_for 90 eval '! kill -0 '"$step"
  echo "# srun ended after ${SECONDS}s" >&3
  cat "$out" "$MARKER"
  step_over
  ! grep -q '^ran' "$out" || false
  grep -q 'error' "$out"
}

@test "fuse attack: the reads of a task's execve held by the user hold slurmstepd no longer than the guard's bound; the node stays idle" {
  local root=$E2E_TMP/rootfs-fuse-rootread image out=$E2E_TMP/fuse-rootread.out step try
  JOB=pxc-fuse-rootread
  # The command is a file nothing else of the step reads (the runtime's start execs /bin/sh):
  # its pages are read first by the task's execve, before Slurm's exec is done.
  rm -rf "$root"
  cp -a "$E2E_TMP/rootfs-alpha" "$root"
  mkdir -p "$root/opt/pxc"
  cp "$root/bin/busybox" "$root/opt/pxc/echo"
  # The user takes the step's connection (before FUSE_INIT, or while its daemon waits for a
  # request) and serves it with a squashfuse_ll of their own, every request but the reads of a process named slurmstepd. The task's
  # execve waits for a page the kernel's readahead asked for (wchan folio_wait_bit_common,
  # in no FUSE request): the guard looked only for a task in a request, Slurm signals no
  # task before its exec, and scancel ended in 'STEPD TERMINATED ... DUE TO JOB NOT ENDING
  # WITH SIGNALS' (production: the node drained).
  # Taken while the daemon waits for a request, the descriptor may come after the reads
  # (a loaded machine): the attack is tried again, on a new image.
  for try in 1 2 3; do
    image=$E2E_TMP/images/fuse-rootread-$try.sqsh
    mksquashfs "$root" "$image" -noappend -quiet -all-root -no-progress -no-duplicates >/dev/null
    chmod 644 "$image"
    rm -f "$MARKER" "$out"
    as "$E2E_USER" python3 "$ATTACK" execread 200 "$MARKER" "$image" 3>&- &
    wait_for 30 grep -q '^watching' "$MARKER"
    as "$E2E_USER" srun --job-name="$JOB" --container-cache --container-image="$image" /opt/pxc/echo ran \
      >"$out" 2>&1 3>&- &
    step=$!
    wait_for 60 eval 'grep -q "^task " "$MARKER" || ! kill -0 '"$step" || true
    cat "$out" "$MARKER"
    grep -q '^task ' "$MARKER" && break
    attack_over
    wait "$step" 2>/dev/null || true
  done
  echo "# the attack landed on try $try" >&3
  grep -q '^task ' "$MARKER"
  cancel_held_step
}

@test "fuse attack: the image swapped for another valid image once the mount point appears is never what the task runs" {
  local image other link=$E2E_WORK/pxc-replace.sqsh otherlink=$E2E_WORK/pxc-replace.other try hit=
  JOB=pxc-fuse-replace
  for try in 1 2 3 4 5; do
    # The identified image is alpha; the one renamed over its name is beta, as valid.
    image=$(fresh_image "fuse-replace-$try")
    other=$E2E_TMP/images/fuse-replace-other-$try.sqsh
    cp "$BETA" "$other" && chmod 644 "$other"
    rm -f "$MARKER"
    as "$E2E_USER" sh -c "rm -f $link $otherlink && ln -s $image $link && ln -s $other $otherlink"
    as "$E2E_USER" python3 "$ATTACK" replace 100 "$MARKER" "$E2E_BASE/$(user_uid)" "$link" "$otherlink" 3>&- &
    local attacker=$!
    as "$E2E_USER" srun --job-name="$JOB" --container-cache --container-image="$link" cat /etc/os-release \
      >"$E2E_TMP/fuse-replace.out" 2>&1 3>&- || true
    wait "$attacker" || true
    cat "$E2E_TMP/fuse-replace.out" "$MARKER"
    # Never the other image; the identified one, or one line saying the image was replaced.
    ! grep -q "e2e beta" "$E2E_TMP/fuse-replace.out" || false
    grep -q -e "e2e alpha" -e "the image is not the file the command identified" "$E2E_TMP/fuse-replace.out"
    step_over
    # The swap came before the daemon opened the image: the attack was made.
    if grep -q "the image is not the file the command identified" "$E2E_TMP/fuse-replace.out"; then
      hit=$try
      break
    fi
  done
  echo "# swapped before the daemon's open at try ${hit:-never}" >&3
  [[ -n $hit ]]
}

@test "fuse attack: an image on the user's own FUSE filesystem that never answers holds slurmstepd no longer than scancel" {
  local mnt=$E2E_WORK/pxc-ownfs
  JOB=pxc-fuse-ownfs
  as "$E2E_USER" sh -c "umount -l $mnt 2>/dev/null; rm -rf $mnt; mkdir $mnt"
  # /dev/fuse open to users (most distributions ship it 0666), only until the user's mount is made.
  FUSE_MODE=$(stat -c %a /dev/fuse)
  chmod 0666 /dev/fuse
  OWNFS=$mnt
  as "$E2E_USER" python3 "$ATTACK" ownfs 200 "$MARKER" "$mnt" 3>&- &
  wait_for 30 grep -q -e '^mounted' -e 'fusermount3' "$MARKER"
  chmod "$FUSE_MODE" /dev/fuse
  grep -q '^mounted' "$MARKER"
  grep -q " - fuse.pxc-attack .*user_id=$(user_uid)," /proc/self/mountinfo
  # The step's command (reuse, as the user) looks the image up, and waits for an answer.
  as "$E2E_USER" srun --job-name="$JOB" --container-cache --container-image="$mnt/img.sqsh" echo ran \
    >"$E2E_TMP/fuse-ownfs.out" 2>&1 3>&- &
  local step=$!
  wait_for 60 grep -q '^holding' "$MARKER"
  scancel --name="$JOB"
  # Slurm signals no process of a step before it runs (user_init), and SIGKILL does not end
  # a request the user's server read: slurmstepd waited for the command (up to its 30
  # minutes), the job stayed completing, and the node drained (UnkillableStepTimeout). A
  # child of the stub held in one request of a FUSE filesystem the job user mounted has
  # that connection aborted after CHILD_FUSE_STALL_SECONDS (30 s), or, once the step is
  # cancelled (the stub asks slurmctld, cancel.c), as soon as it is killed.
  wait_for 50 eval '[[ -z $(squeue -h -n "$JOB") ]]'
  wait_for 30 eval '! kill -0 '"$step"
  cat "$E2E_TMP/fuse-ownfs.out" "$MARKER"
  step_over
  ! grep -q '^ran' "$E2E_TMP/fuse-ownfs.out" || false
  # The user's connection is aborted: their server's reads end.
  wait_for 10 grep -q '^read:' "$MARKER"
}
