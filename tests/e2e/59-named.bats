# Named containers (--container-name=NAME[:FLAGS], PYXIS_CONTAINER_NAME), pyxis 0.24's meaning:
# a layer of the container's own on the cache filesystem over the cached entry, kept for the
# job's later steps (container_scope=job) or across jobs (global). Once per runtime: run.sh runs
# this file with E2E_RUNTIME=bwrap and again with E2E_RUNTIME=enroot (docs/pyxis.md).
load helpers

RUNTIME=${E2E_RUNTIME:-bwrap}

setup_file() {
  runtime_available || return 0
  named_scope job
  # alpha with an /etc/environment (both runtimes apply it, as enroot does): what an attached step sees.
  rm -rf "$BATS_FILE_TMPDIR/root"
  cp -a "$E2E_TMP/rootfs-alpha" "$BATS_FILE_TMPDIR/root"
  echo PXC_ATTACH_VAR=from-image >"$BATS_FILE_TMPDIR/root/etc/environment"
  mksquashfs "$BATS_FILE_TMPDIR/root" "$E2E_TMP/images/named-$RUNTIME.sqsh" -noappend -quiet -all-root -no-progress >/dev/null
  chmod 644 "$E2E_TMP/images/named-$RUNTIME.sqsh"
  warm_entry "$E2E_TMP/images/named-$RUNTIME.sqsh"
}

teardown_file() {
  runtime_available || return 0
  write_plugstack "$E2E_TMP/plugstack.conf"
  slurmd_restart_with
  rm -rf "$E2E_BASE/$(user_uid)"/.pyxis_cache_named.*
}

setup() {
  skip_without_runtime
  IMG=$E2E_TMP/images/named-$RUNTIME.sqsh
  USER_DIR=$E2E_BASE/$(user_uid)
}

# named_scope job|global: the line's container_scope, for srun and for slurmd.
named_scope() {
  local line
  line=$(plugstack_line "container_cache_runtime=$RUNTIME" "container_scope=$1")
  write_plugstack "$E2E_TMP/plugstack.conf" "$line"
  [[ $(cat "$E2E_TMP/slurmd/plugstack.conf") == "$line" ]] || slurmd_restart_with "$line"
}

# in_job SCRIPT ARGS...: one job (salloc) whose steps SCRIPT runs, as the user; $1... are ARGS.
in_job() {
  local script=$1
  shift
  as "$E2E_USER" salloc -Q sh -c "set -e; $script" sh "$@"
}

# named_dirs: the named containers' directories in the user's directory.
named_dirs() { ls -A "$USER_DIR" | grep '^\.pyxis_cache_named\.' || true; }

# hex NAME: the name as a named container's directory has it.
hex() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }

@test "$RUNTIME: named: a step sees what an earlier step of the job wrote under its name, no other name or job does, the entry stays byte-identical, and the layer goes with the job" {
  local entry before job
  entry=$USER_DIR/$(entry_name "$IMG")
  before=$(entry_listing "$entry")
  run in_job '
    srun --container-image="$1" --container-name=box --container-writable sh -c "echo kept >/pxc-named; rm /etc/os-release; echo \$SLURM_JOB_ID"
    test -e "$2/.pyxis_cache_named.$SLURM_JOB_ID.'"$(hex box)"'/upper/pxc-named" && echo "layer on the cache filesystem"
    srun --container-name=box sh -c "cat /pxc-named; test ! -e /etc/os-release && echo still-removed"
    PYXIS_CONTAINER_NAME=box:no_exec srun --container-writable sh -c "echo again >>/pxc-named"
    srun --container-image="$1" --container-name=box sh -c "cat /pxc-named"
    srun --container-image="$1" --container-name=other sh -c "test ! -e /pxc-named && test -e /etc/os-release && echo other-clean"
    srun --container-cache --container-image="$1" sh -c "test ! -e /pxc-named && echo unnamed-clean"
  ' "$IMG" "$USER_DIR"
  echo "$output"
  [ "$status" -eq 0 ]
  job=$(grep -m1 -x '[0-9][0-9]*' <<<"$output")
  grep -qx "layer on the cache filesystem" <<<"$output"
  grep -qx still-removed <<<"$output"
  [ "$(grep -cx kept <<<"$output")" -eq 2 ]
  grep -qx again <<<"$output"
  grep -qx other-clean <<<"$output"
  grep -qx unnamed-clean <<<"$output"
  grep -q "reusing existing container filesystem: box" "$E2E_TMP/slurmd/slurmd.log"
  # The entry is every step's lower layer, never written.
  diff <(echo "$before") <(entry_listing "$entry")
  # The job's epilog removes its named containers (it runs after salloc returns: waited for).
  wait_for 60 eval "! named_dirs | grep -q '^\.pyxis_cache_named\.$job\.'"
  # Another job knows no "box".
  run srun_as_user --container-name=box cat /pxc-named
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: error: a container with name \"box\" does not exist, and --container-image is not set"* ]]
  run srun_as_user --container-image="$IMG" --container-name=box sh -c 'test ! -e /pxc-named && echo fresh'
  [ "$status" -eq 0 ]
  grep -qx fresh <<<"$output"
  assert_node_idle
  wait_for 60 eval '[ -z "$(named_dirs)" ]'
}

@test "$RUNTIME: named: create on an existing name and exec on a stopped one fail with pyxis's messages; a failed first step leaves nothing; a cold image's first step waits for its entry" {
  local cold
  cold=$(fresh_image "named-cold-$RUNTIME")
  run in_job '
    srun --container-image="$1" --container-name=box true
    srun --container-image="$1" --container-name=box:create true || echo "create refused"
    srun --container-name=box:exec true || echo "exec refused"
    srun --container-image="$3" --container-name=new:create sh -c "echo created"
    srun --container-name=new sh -c "echo created again"
    srun --container-name=nothing:exec true || echo "exec on nothing refused"
    ls -A "$2" | grep "^\.pyxis_cache_named\.$SLURM_JOB_ID\." | sort
  ' "$IMG" "$USER_DIR" "$cold"
  echo "$output"
  [ "$status" -eq 0 ]
  # A named container sits on the entry, never on a FUSE mount: its first step waited for the unpack.
  [ -d "$USER_DIR/$(entry_name "$cold")" ]
  grep -qx "created again" <<<"$output"
  ! grep -q "$(entry_name "$cold") is being unpacked: the step starts from a FUSE mount" "$E2E_TMP/slurmd/slurmd.log" || false
  grep -q "pyxis-cache: error: \"create\" flag was passed to --container-name but the container already exists" <<<"$output"
  grep -qx "create refused" <<<"$output"
  grep -q "pyxis-cache: error: \"exec\" flag was passed to --container-name but the container is not running" <<<"$output"
  grep -qx "exec refused" <<<"$output"
  grep -qx created <<<"$output"
  grep -qx "exec on nothing refused" <<<"$output"
  # box and new, not nothing.
  [ "$(grep -c '^\.pyxis_cache_named\.' <<<"$output")" -eq 2 ]
  grep -q "^\.pyxis_cache_named\.[0-9]*\.$(hex new)$" <<<"$output"
  ! grep -q "$(hex nothing)" <<<"$output" || false
  assert_node_idle
}

@test "$RUNTIME: named: invalid names and flags are refused before the step, as pyxis refuses them" {
  local long
  long=$(printf 'n%.0s' $(seq 101))
  run srun_as_user --container-image="$IMG" --container-name=a/b true
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: --container-name: invalid name: a/b (a name cannot contain '/')"* ]]
  run srun_as_user --container-image="$IMG" --container-name=:exec true
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: --container-name: empty name"* ]]
  run srun_as_user --container-image="$IMG" --container-name=box:bogus true
  [ "$status" -ne 0 ]
  [[ $output == *'pyxis-cache: --container-name: flag must be "auto", "create", "exec" or "no_exec"'* ]]
  run srun_as_user --container-image="$IMG" --container-name="$long" true
  [ "$status" -ne 0 ]
  [[ $output == *"(longer than 100 bytes)"* ]]
  E2E_ENV="PYXIS_CONTAINER_NAME=x/y" run srun_as_user --container-image="$IMG" true
  [ "$status" -ne 0 ]
  [[ $output == *"invalid name: x/y (a name cannot contain '/') (from PYXIS_CONTAINER_NAME)"* ]]
  [ -z "$(named_dirs)" ]
  assert_node_idle
}

@test "$RUNTIME: named: a step with a running container's name attaches to it (its tmpfs, the container's directory and environment, its own step's variables), without waiting; no_exec waits for the layer instead; exec on a stopped one fails" {
  rm -f "$E2E_WORK/att-go" "$E2E_WORK/att-ready"
  as "$E2E_USER" mkfifo "$E2E_WORK/att-go"
  run in_job '
    srun --container-image="$1" --container-name=att --container-writable mkdir /mymnt
    srun --container-name=att --container-remap-root --container-writable sh -c "mount -t tmpfs none /mymnt && echo in-tmpfs >/mymnt/f && cd /tmp && touch $PWD/att-ready && read -r _ <$PWD/att-go; echo first-done" &
    first=$!
    for i in $(seq 600); do [ -e att-ready ] && break; sleep 0.1; done
    srun --overlap --container-name=att --container-mounts=/tmp:/pxc-ignored sh -c "cat /mymnt/f; echo pwd=\$(pwd); test ! -e /pxc-ignored && echo mounts-ignored; echo var=\$PXC_ATTACH_VAR step=\$SLURM_STEP_ID uid=\$(id -u)"
    PYXIS_CONTAINER_NAME=att:exec srun --overlap sh -c "cat /mymnt/f"
    srun --overlap --container-name=att:no_exec sh -c "test -d /mymnt && ! grep -q \" /mymnt \" /proc/mounts && echo no-exec-own-mount" &
    noexec=$!
    timeout 120 sh -c "echo go >att-go"
    wait $first
    wait $noexec
    srun --container-name=att:exec true || echo "exec refused"
  ' "$IMG"
  rm -f "$E2E_WORK/att-go" "$E2E_WORK/att-ready"
  echo "$output"
  [ "$status" -eq 0 ]
  # The tmpfs the running step mounted, seen twice (auto, then exec from the environment).
  [ "$(grep -cx in-tmpfs <<<"$output")" -eq 2 ]
  # pyxis's directory: the container's /, not where the running task went (/tmp).
  grep -qx pwd=/ <<<"$output"
  grep -qx mounts-ignored <<<"$output"
  grep -q "pyxis-cache: ignoring --container-mounts when attaching to a running container" <<<"$output"
  # The image's environment, the attaching step's own SLURM_STEP_ID (2), root in the running step's user namespace.
  grep -qx "var=from-image step=2 uid=0" <<<"$output"
  grep -qx first-done <<<"$output"
  grep -qx no-exec-own-mount <<<"$output"
  grep -q "pyxis-cache: error: \"exec\" flag was passed to --container-name but the container is not running" <<<"$output"
  grep -qx "exec refused" <<<"$output"
  assert_node_idle
}

@test "$RUNTIME: named: the next step that mounts a named container's layer waits for the steps still attached to the previous one" {
  local job waited=
  rm -f "$E2E_WORK"/det-*
  as "$E2E_USER" mkfifo "$E2E_WORK/det-go1" "$E2E_WORK/det-go2"
  in_job '
    srun --container-image="$1" --container-name="$2" --container-writable sh -c "touch $PWD/det-ready; read -r _ <$PWD/det-go1" &
    first=$!
    for i in $(seq 600); do [ -e det-ready ] && break; sleep 0.1; done
    srun --overlap --container-name="$2":exec sh -c "touch $PWD/det-attached; read -r _ <$PWD/det-go2; echo attached-done >>$PWD/det-order" &
    attached=$!
    for i in $(seq 600); do [ -e det-attached ] && break; sleep 0.1; done
    timeout 120 sh -c "echo go >det-go1"
    wait $first
    srun --overlap --container-name="$2":no_exec sh -c "echo mounted >>$PWD/det-order"
    wait $attached
  ' "$IMG" "det-$RUNTIME" >"$BATS_TEST_TMPDIR/out" 2>&1 &
  job=$!
  # The third step waits (its line in slurmd's log) until the attached one ends; the job ends either way.
  wait_for 60 grep -q "det-$RUNTIME: waiting for the steps attached to its previous step" "$E2E_TMP/slurmd/slurmd.log" ||
    waited=no
  timeout 120 sh -c "echo go >'$E2E_WORK/det-go2'"
  wait "$job"
  cat "$BATS_TEST_TMPDIR/out"
  [ -z "$waited" ]
  [ "$(cat "$E2E_WORK/det-order")" = "$(printf 'attached-done\nmounted')" ]
  rm -f "$E2E_WORK"/det-*
  assert_node_idle
}

@test "$RUNTIME: named: an attached step joins the running container's --container-unshare namespaces; asking for one it lacks is pyxis's error" {
  [[ $RUNTIME == bwrap ]] || skip "enroot 4.1.2 cannot unshare (the first step would get pyxis's error)"
  local running
  rm -f "$E2E_WORK"/uns-*
  as "$E2E_USER" mkfifo "$E2E_WORK/uns-go"
  run in_job '
    srun --container-image="$1" --container-name=uns --container-unshare=ipc sh -c "readlink /proc/self/ns/ipc >$PWD/uns-ns.tmp && mv $PWD/uns-ns.tmp $PWD/uns-ns && read -r _ <$PWD/uns-go" &
    first=$!
    for i in $(seq 600); do [ -e uns-ns ] && break; sleep 0.1; done
    echo "running=$(cat uns-ns) host=$(readlink /proc/self/ns/ipc)"
    srun --overlap --container-name=uns:exec sh -c "echo attached=\$(readlink /proc/self/ns/ipc)"
    srun --overlap --container-name=uns:exec --container-unshare=uts true || echo uts-refused
    timeout 120 sh -c "echo go >uns-go"
    wait $first
  ' "$IMG"
  rm -f "$E2E_WORK"/uns-*
  echo "$output"
  [ "$status" -eq 0 ]
  running=$(sed -n 's/^running=\([^ ]*\) host=.*/\1/p' <<<"$output")
  [ -n "$running" ]
  ! grep -q "^running=$running host=$running\$" <<<"$output" || false
  grep -qxF "attached=$running" <<<"$output"
  grep -q "pyxis-cache: error: --container-unshare=uts requested but the container is not in a separate UTS namespace" <<<"$output"
  grep -qx uts-refused <<<"$output"
  assert_node_idle
}

@test "$RUNTIME: named: an unnamed cache-mode step is attached to as <job>.<step>, as pyxis names it" {
  rm -f "$E2E_WORK/un-go" "$E2E_WORK/un-ready"
  as "$E2E_USER" mkfifo "$E2E_WORK/un-go"
  run in_job '
    srun --container-cache --container-image="$1" --container-writable sh -c "echo unnamed >/pxc-unnamed && echo \$SLURM_STEP_ID >$PWD/un-ready.tmp && mv $PWD/un-ready.tmp $PWD/un-ready && read -r _ <$PWD/un-go" &
    first=$!
    for i in $(seq 600); do [ -e un-ready ] && break; sleep 0.1; done
    srun --overlap --container-name="$SLURM_JOB_ID.$(cat un-ready)":exec cat /pxc-unnamed
    timeout 120 sh -c "echo go >un-go"
    wait $first
  ' "$IMG"
  rm -f "$E2E_WORK/un-go" "$E2E_WORK/un-ready"
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx unnamed <<<"$output"
  # The record's directory went with the step.
  wait_for 30 eval '[ -z "$(named_dirs)" ]'
  assert_node_idle
}

@test "$RUNTIME: named: a record the user plants that names root's or another user's process is refused in one line, and the step joins nothing; a FIFO in its place holds nothing" {
  local root root_ns other other_ns
  sleep 300 &
  root=$!
  root_ns=$(stat -L -c '%d %i' "/proc/$root/ns/mnt")
  setpriv --reuid="$(user_uid "$E2E_USER2")" --regid="$(user_gid "$E2E_USER2")" --clear-groups sleep 300 &
  other=$!
  other_ns=$(stat -L -c '%d %i' "/proc/$other/ns/mnt")
  rm -f "$E2E_WORK/attacked"
  run in_job '
    plant() {
      d="$2/.pyxis_cache_named.$SLURM_JOB_ID.$1"
      mkdir -p "$d"
      printf "pyxis-cache-running 1\n%s\n-\n" "$3" >"$d/running"
    }
    plant '"$(hex fake-root)"' "$1" "$5 $2"
    srun --container-name=fake-root:exec touch "$PWD/attacked" || echo refused-root
    plant '"$(hex fake-other)"' "$1" "$3 $4"
    srun --container-name=fake-other touch "$PWD/attacked" || echo refused-other
    d="$1/.pyxis_cache_named.$SLURM_JOB_ID.'"$(hex fake-fifo)"'"
    mkdir -p "$d"
    mkfifo "$d/running"
    timeout 60 srun --container-name=fake-fifo:exec touch "$PWD/attacked" || echo refused-fifo
  ' "$USER_DIR" "$root_ns" "$other" "$other_ns" "$root"
  kill "$other" "$root"
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx refused-root <<<"$output"
  grep -qx refused-other <<<"$output"
  [ "$(grep -c "pyxis-cache: --container-name: fake-root: its record names process $root, which is not the job user's: not attaching" <<<"$output")" -eq 1 ]
  [ "$(grep -c "pyxis-cache: --container-name: fake-other: its record names process $other, which is not the job user's: not attaching" <<<"$output")" -eq 1 ]
  # A FIFO in the record's place holds slurmstepd in no open(2): no container runs there.
  grep -qx refused-fifo <<<"$output"
  grep -q "pyxis-cache: error: \"exec\" flag was passed to --container-name but the container is not running" <<<"$output"
  [ "$(grep -c "pyxis-cache" <<<"$output")" -eq 3 ]
  [ ! -e "$E2E_WORK/attacked" ]
  assert_node_idle
}

@test "$RUNTIME: named: container_scope=global keeps a named container across jobs until it is removed" {
  local dir
  named_scope global
  dir=$USER_DIR/.pyxis_cache_named.g.$(hex kept)
  run srun_as_user --container-image="$IMG" --container-name=kept --container-writable sh -c 'echo across >/pxc-global'
  [ "$status" -eq 0 ]
  # Another job, no image: the container is there.
  run srun_as_user --container-name=kept cat /pxc-global
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx across <<<"$output"
  [ -d "$dir/upper" ]
  # No epilog removes it; the collector does once unused for NAMED_MAX_AGE_SECONDS (tests/named.test.ts).
  run cli gc --json --stale-after 0
  [ "$status" -eq 0 ]
  [ -f "$dir/upper/pxc-global" ]
  rm -rf "$dir"
  named_scope job
}
