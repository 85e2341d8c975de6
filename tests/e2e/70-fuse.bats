#!/usr/bin/env bats
# A cold step's FUSE mount (spank-stub/fuse.c), driven by spank-stub/tests/fuse_mount
# as slurmstepd drives it: root's effective uid the job user's, the mount made in a user
# and mount namespace of its own, squashfuse_ll as the job user.

load helpers

FUSE_MOUNT=$E2E_REPO/spank-stub/tests/fuse_mount

# A case that failed with slurmd restarted another way leaves the default behind it.
teardown_file() {
  if [[ -e $E2E_TMP/slurmd/dirty-proctrack ]]; then
    slurmd_restart_proctrack linuxproc
    rm -f "$E2E_TMP/slurmd/dirty-proctrack"
  fi
  if [[ -e $E2E_TMP/slurmd/dirty ]]; then
    slurmd_restart_with
    rm -f "$E2E_TMP/slurmd/dirty"
  fi
}

setup() {
  command -v squashfuse_ll >/dev/null || skip "squashfuse_ll not installed (make bootstrap-test installs it)"
  [[ -c /dev/fuse ]] || skip "no /dev/fuse"
  cli prepare --uid "$(user_uid)" --gid "$(user_gid)" >/dev/null
  USER_DIR=$E2E_BASE/$(user_uid)
  NAME=$(entry_name)
}

# fuse_run IMAGE CMD...: mount IMAGE for the test user, run CMD in the mount's namespace.
fuse_run() {
  local image=$1
  shift
  (cd "$E2E_TMP" && "$FUSE_MOUNT" "$USER_DIR" "$NAME" "$(user_uid)" "$(user_gid)" "$image" "$@")
}

@test "fuse: the image's content through bwrap, root's files the user's, / read-only, no mount in the node's namespace" {
  run fuse_run "$ALPHA" sh -c 'r=$(ls -d '"$USER_DIR"'/.pyxis_cache_mnt.*/root) &&
    grep -c squashfuse /proc/self/mountinfo && grep -c squashfuse /proc/1/mountinfo;
    bwrap --bind "$r" / --proc /proc --dev /dev --tmpfs /tmp --remount-ro / -- /bin/sh -c \
      "cat /etc/os-release; id -u; stat -c %u /etc/os-release /bin/busybox /; touch /x"'
  echo "$output"
  [[ $output == *'PRETTY_NAME="pyxis-cache e2e alpha"'* ]]
  # One mount in the namespace, none in the node's.
  [[ $output == *$'\n1\n0\n'* ]]
  [[ $(grep -c "^$(user_uid)\$" <<<"$output") -ge 4 ]]
  [[ $output == *"Read-only file system"* ]]
  [[ $output == *"daemon gone"* ]]
  run ls -A "$USER_DIR"
  [[ $output != *.pyxis_cache_mnt.* ]]
  ! grep -q squashfuse /proc/self/mountinfo
}

@test "fuse: the mount reads ahead a MiB (the kernel's default is 128 KiB), set once the daemon answered" {
  run fuse_run "$ALPHA" sh -c 'dev=$(awk "/ - fuse.squashfuse_ll / { print \$3 }" /proc/self/mountinfo) &&
    echo "dev $dev" && cat "/sys/class/bdi/$dev/read_ahead_kb"'
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *$'\n1024'* ]]
}

@test "fuse: a holder killed mid-step leaves the mount to the running task; the daemon ends with the task; gc removes the mount point" {
  fuse_run "$ALPHA" sleep 4 &
  local holder=$!
  for _ in $(seq 50); do pgrep -u "$E2E_USER" -x squashfuse_ll >/dev/null && break; sleep 0.1; done
  pgrep -u "$E2E_USER" -x squashfuse_ll
  # The driver is fuse_run's subshell's child: kill the driver itself (slurmstepd SIGKILLed),
  # this suite's only (another suite's driver may run beside it).
  pkill -KILL -P "$holder" -x fuse_mount || pkill -KILL -f "fuse_mount $USER_DIR "
  sleep 0.5
  pgrep -u "$E2E_USER" -x squashfuse_ll
  for _ in $(seq 100); do pgrep -u "$E2E_USER" -x squashfuse_ll >/dev/null || break; sleep 0.1; done
  ! pgrep -u "$E2E_USER" -x squashfuse_ll || false
  wait "$holder" || true
  ls -A "$USER_DIR" | grep -q '^\.pyxis_cache_mnt\.'
  run cli gc --stale-after 0 --json
  [[ $output == *.pyxis_cache_mnt.* ]]
  run ls -A "$USER_DIR"
  [[ $output != *.pyxis_cache_mnt.* ]]
}

@test "fuse: an image squashfuse_ll cannot read is one line at once (not at the 60 s mount timeout), and leaves nothing" {
  local start=$SECONDS
  run fuse_run /etc/passwd true
  # Once the daemon has exited, nothing may keep the FUSE connection up (the mounter's own descriptor did).
  ((SECONDS - start < 45))
  [[ $status -eq 1 ]]
  [[ $output == "error: squashfuse_ll: This doesn't look like a squashfs image." ]]
  run fuse_run "$E2E_TMP/missing.sqsh" true
  [[ $output == "error: squashfuse_ll: Can't open squashfs image: No such file or directory" ]]
  run ls -A "$USER_DIR"
  [[ $output != *.pyxis_cache_mnt.* ]]
  # The daemon is out of the step (init, not the stub, reaps it).
  wait_for 10 eval '! pgrep -u "$E2E_USER" -x squashfuse_ll'
}

@test "fuse: a step's guard that aborts late aborts its own mount, never the next step's (the kernel reuses connection numbers)" {
  # The guard aborts by number (/sys/fs/fuse/connections/N). The release removes the
  # mount point, which detaches the mounts from the namespace the guard holds: unless the
  # guard holds the mount itself, the number is free for the next mount, and a guard that
  # runs late aborts that one (then the case above fails one run in a hundred: the
  # mounter's "the image's root: Transport endpoint is not connected").
  local a b p guard= d=$E2E_TMP/guard
  mkdir "$d" && chown "$E2E_USER" "$d"
  fuse_run "$ALPHA" sh -c "awk '/ - fuse.squashfuse_ll /{print \$3}' /proc/self/mountinfo >$d/a.dev
    for i in \$(seq 1200); do [ -e $d/a.go ] && break; sleep 0.05; done" &
  a=$!
  wait_for 30 test -s "$d/a.dev"
  # The guard is a fork of the driver (the same command line) in a session of its own.
  for p in $(pgrep -f "fuse_mount $USER_DIR "); do
    [[ $(ps -o sid= -p "$p") == "$(ps -o sid= -p $$)" ]] || guard=$p
  done
  [[ -n $guard ]]
  kill -STOP "$guard"
  touch "$d/a.go"
  wait "$a"
  fuse_run "$ALPHA" sh -c "awk '/ - fuse.squashfuse_ll /{print \$3}' /proc/self/mountinfo >$d/b.dev
    for i in \$(seq 1200); do [ -e $d/b.go ] && break; sleep 0.05; done
    cat \$(ls -d $USER_DIR/.pyxis_cache_mnt.*/root)/etc/os-release" >"$d/b.out" 2>&1 &
  b=$!
  wait_for 30 test -s "$d/b.dev"
  echo "connections: $(cat "$d/a.dev" "$d/b.dev")"
  # A's late guard does its work (it was told to go) while B's task still reads.
  kill -CONT "$guard"
  wait_for 10 eval "! kill -0 $guard"
  touch "$d/b.go"
  wait "$b"
  cat "$d/b.out"
  grep -q 'PRETTY_NAME="pyxis-cache e2e alpha"' "$d/b.out"
}

@test "fuse srun: a cold step starts from the mount; its entry appears and the next step uses it; nothing stays mounted" {
  local image
  image=$(fresh_image cold1)
  run srun_as_user --container-cache --container-image="$image" sh -c "cat /etc/os-release; id -u; stat -c %u /bin/busybox; $ROOT_FS"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'PRETTY_NAME="pyxis-cache e2e alpha"'* ]]
  [[ $(tail -1 <<<"$output") == overlay ]]
  [[ $(grep -c "^$(user_uid)\$" <<<"$output") -eq 2 ]]
  grep -q "is being unpacked: the step starts from a FUSE mount" "$E2E_TMP/slurmd/slurmd.log"
  wait_entry "$image"
  run srun_as_user --container-cache --container-image="$image" sh -c "cat /etc/os-release; $ROOT_FS"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'PRETTY_NAME="pyxis-cache e2e alpha"'* ]]
  [[ $(tail -1 <<<"$output") != overlay ]]
  for _ in $(seq 50); do pgrep -u "$E2E_USER" -x squashfuse_ll >/dev/null || break; sleep 0.1; done
  ! pgrep -u "$E2E_USER" -x squashfuse_ll || false
  ! grep -q squashfuse /proc/self/mountinfo || false
  run ls -A "$E2E_BASE/$(user_uid)"
  [[ $output != *.pyxis_cache_mnt.* ]]
}

@test "fuse srun: a bare name of a file in the job's directory is the command's to judge: a file, mounted cold" {
  # Neither / nor . first nor a squashfs suffix: only the command, looking in the job's
  # directory, can tell it from a registry reference, and the stub takes its word.
  local work
  work=$(getent passwd "$E2E_USER" | cut -d: -f6)/work
  runuser -u "$E2E_USER" -- mkdir -p "$work"
  cp "$ALPHA" "$work/plainimage"
  chown "$E2E_USER:" "$work/plainimage"
  run srun_as_user --container-cache --container-image=plainimage sh -c "cat /etc/os-release; $ROOT_FS"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'PRETTY_NAME="pyxis-cache e2e alpha"'* ]]
  [[ $(tail -1 <<<"$output") == overlay ]]
  grep -q "is being unpacked: the step starts from a FUSE mount of plainimage" "$E2E_TMP/slurmd/slurmd.log"
  wait_entry "$work/plainimage"
  rm -f "$work/plainimage"
}

@test "fuse srun: 8 concurrent cold steps all start; one entry, no temporary directory left" {
  local image pids=() i
  image=$(fresh_image cold8)
  for i in $(seq 8); do
    srun_as_user --container-cache --container-image="$image" cat /etc/os-release >"$E2E_TMP/cold8.$i" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}"; done
  for i in $(seq 8); do grep -q 'PRETTY_NAME="pyxis-cache e2e alpha"' "$E2E_TMP/cold8.$i"; done
  wait_entry "$image"
  for _ in $(seq 100); do ls -A "$E2E_BASE/$(user_uid)" | grep -q '^\.pyxis_cache_tmp\.' || break; sleep 0.1; done
  run ls -A "$E2E_BASE/$(user_uid)"
  echo "$output"
  [[ $output != *.pyxis_cache_tmp.* ]]
  [[ $(grep -c "^$(entry_name "$image")\$" <<<"$output") -eq 1 ]]
}

@test "fuse srun: a creator killed mid-unpack leaves no entry under the name; the next cold step starts from the mount and publishes" {
  local image name
  image=$(fresh_image coldkill)
  name=$(entry_name "$image")
  # The creator is detached from the step: kill every unpack of this entry as soon as it starts.
  (for _ in $(seq 200); do pkill -KILL -u "$E2E_USER" -f "unless-busy" && exit 0; sleep 0.02; done; exit 1) &
  local killer=$!
  run srun_as_user --container-cache --container-image="$image" cat /etc/os-release
  [ "$status" -eq 0 ]
  [[ $output == *'PRETTY_NAME="pyxis-cache e2e alpha"'* ]]
  # It did kill one.
  wait "$killer"
  [[ ! -e $E2E_BASE/$(user_uid)/$name ]]
  # --quiet: a job queued behind another one's end says so on srun's stderr.
  run srun_as_user --quiet --container-cache --container-image="$image" sh -c "$ROOT_FS"
  [ "$status" -eq 0 ]
  [[ $output == overlay ]]
  wait_entry "$image"
  [[ -f $E2E_BASE/$(user_uid)/$name/.pyxis_cache_lock ]]
}

@test "fuse srun: container_cache_fuse=no makes a cold step wait for the unpack, without a mount" {
  local image
  image=$(fresh_image coldoff)
  touch "$E2E_TMP/slurmd/dirty"
  slurmd_restart_with "$(plugstack_line container_cache_fuse=no)"
  run srun_as_user --container-cache --container-image="$image" sh -c "$ROOT_FS"
  slurmd_restart_with
  rm -f "$E2E_TMP/slurmd/dirty"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output != overlay ]]
  [[ -d $E2E_BASE/$(user_uid)/$(entry_name "$image") ]]
}

@test "fuse srun: no squashfuse_ll on slurmd's PATH: a cold step waits for the unpack, and slurmd's log says why" {
  local image
  image=$(fresh_image coldnofuse)
  # slurmd's PATH with the runtime, without squashfuse_ll.
  mkdir -p "$E2E_TMP/nofuse-bin"
  ln -sf "$(command -v bwrap)" "$E2E_TMP/nofuse-bin/bwrap"
  touch "$E2E_TMP/slurmd/dirty"
  E2E_SLURMD_PATH=$E2E_TMP/nofuse-bin slurmd_restart_with
  run srun_as_user --container-cache --container-image="$image" sh -c "cat /etc/os-release; $ROOT_FS"
  slurmd_restart_with
  rm -f "$E2E_TMP/slurmd/dirty"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'PRETTY_NAME="pyxis-cache e2e alpha"'* ]]
  [[ $(tail -1 <<<"$output") != overlay ]]
  [[ -d $E2E_BASE/$(user_uid)/$(entry_name "$image") ]]
  grep -q "pyxis-cache: FUSE unavailable (squashfuse_ll: not found in $E2E_TMP/nofuse-bin): a cold step waits for the unpack" "$E2E_TMP/slurmd/slurmd.log"
}

@test "fuse srun: a cold step cancelled while its entry is unpacked leaves no mount, no daemon, and nothing trusted but a whole entry" {
  local image name marker=$E2E_WORK/pxc-e2e-fuse-started
  image=$(fresh_image coldcancel)
  name=$(entry_name "$image")
  rm -f "$marker"
  as "$E2E_USER" srun --container-cache --container-image="$image" \
    sh -c "echo started > $marker; sleep 300" >"$E2E_TMP/coldcancel.out" 2>&1 3>&- &
  local step=$!
  for _ in $(seq 600); do [ -e "$marker" ] && break; sleep 0.1; done
  [ -e "$marker" ]
  pgrep -u "$E2E_USER" -x squashfuse_ll
  scancel --quiet -u "$E2E_USER"
  wait "$step" || true
  for _ in $(seq 100); do pgrep -u "$E2E_USER" -x squashfuse_ll >/dev/null || break; sleep 0.1; done
  ! pgrep -u "$E2E_USER" -x squashfuse_ll || false
  ! grep -q squashfuse /proc/self/mountinfo || false
  # The unpack may finish after the step (it is detached) or not; under its name only a whole entry.
  for _ in $(seq 100); do pgrep -u "$E2E_USER" -f unless-busy >/dev/null || break; sleep 0.1; done
  if [[ -e $E2E_BASE/$(user_uid)/$name ]]; then
    [[ -f $E2E_BASE/$(user_uid)/$name/.pyxis_cache_lock ]]
    [[ -x $E2E_BASE/$(user_uid)/$name/bin/busybox ]]
  fi
  run cli gc --stale-after 0 --json
  run ls -A "$E2E_BASE/$(user_uid)"
  echo "$output"
  [[ $output != *.pyxis_cache_mnt.* ]]
  [[ $output != *.pyxis_cache_tmp.* ]]
}

# stop_creator IMAGE: SIGSTOP the background creator of IMAGE's entry before it publishes;
# prints its pid. Fails when the creator published first (the caller tries a fresh image).
stop_creator() {
  local pid entry=$E2E_BASE/$(user_uid)/$(entry_name "$1")
  for _ in $(seq 1000); do
    pid=$(pgrep -u "$E2E_USER" -f -- "--image $1 .*--unless-busy" | head -1)
    [[ -z $pid ]] || break
    sleep 0.005
  done
  [[ -n $pid ]] && kill -STOP "$pid" && [[ ! -e $entry ]] && echo "$pid"
}

# A creator a failed case left stopped (stop_creator) finishes what it started.
teardown() {
  pkill -CONT -u "$E2E_USER" -f -- "--unless-busy" || true
}

# outlives_short_step PROCTRACK: the stub forks the creator from slurmstepd in user_init, before
# any task exists: under proctrack/linuxproc it leaves the step's process tree (a session of its
# own, its parent gone), and under proctrack/cgroup it stays in slurmstepd's own cgroup, the job's,
# not the step's. Either way it outlives a step shorter than the unpack and its job: stopped
# until the job has ended, it then publishes.
outlives_short_step() {
  local image pid="" try
  if [[ $1 != linuxproc ]]; then
    touch "$E2E_TMP/slurmd/dirty-proctrack"
    slurmd_restart_proctrack "$1"
  fi
  for try in 1 2 3 4 5; do
    image=$(fresh_image "outlive-$1-$try")
    as "$E2E_USER" srun --quiet --container-cache --container-image="$image" true >"$E2E_TMP/outlive.out" 2>&1 3>&- &
    local step=$!
    pid=$(stop_creator "$image") || pid=""
    wait "$step"
    [[ -z $pid ]] || break
  done
  # The creator was stopped before it published, in one of the tries.
  [[ -n $pid ]]
  # The job and its step are over: Slurm has done whatever it does with their processes
  # (SIGKILL would have reached the stopped creator).
  wait_for 30 eval '[[ -z $(squeue -h -u "$E2E_USER") ]]'
  if [[ $1 != linuxproc ]]; then
    slurmd_restart_proctrack linuxproc
    rm -f "$E2E_TMP/slurmd/dirty-proctrack"
  fi
  kill -0 "$pid"
  [[ ! -e $E2E_BASE/$(user_uid)/$(entry_name "$image") ]]
  kill -CONT "$pid"
  wait_entry "$image"
  [[ -f $E2E_BASE/$(user_uid)/$(entry_name "$image")/.pyxis_cache_lock ]]
}

@test "fuse srun: the unpack outlives a step shorter than it and its job (proctrack/linuxproc), and publishes after" {
  outlives_short_step linuxproc
}

@test "fuse srun: the unpack outlives a step shorter than it and its job (proctrack/cgroup), and publishes after" {
  [[ -d /sys/fs/cgroup/freezer ]] || skip "no cgroup v1 freezer hierarchy for proctrack/cgroup"
  outlives_short_step cgroup
}
